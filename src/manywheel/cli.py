"""Command-line front end (placeholder until the subcommands land)."""

from __future__ import annotations

import sys

from manywheel import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"manywheel {__version__}")
        return 0
    return 0
