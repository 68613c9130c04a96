"""The wheel archive as the rest of manywheel reads it: validated members and ELF facts.

Two modules do the work, one idea each: :mod:`manywheel.zipread` reads an untrusted zip
strictly (central directory, refusals, raw and inflated member bytes) and
:mod:`manywheel.memberfacts` streams the ELF facts of the members out of it. This module
gathers their public names and adds the one-call entry point.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from manywheel.memberfacts import (
    DEFAULT_HEAD_WINDOW,
    DEFAULT_MAX_KEPT,
    MemberFacts,
    MissingRange,
    SparseSource,
    StoredSource,
    archive_facts,
    member_facts,
)
from manywheel.zipread import (
    DEFLATE_MAX_RATIO,
    ArchiveError,
    ZipArchive,
    ZipMember,
    streaming_inflater,
)

__all__ = [
    "DEFAULT_HEAD_WINDOW",
    "DEFAULT_MAX_KEPT",
    "DEFLATE_MAX_RATIO",
    "ArchiveError",
    "MemberFacts",
    "MissingRange",
    "SparseSource",
    "StoredSource",
    "ZipArchive",
    "ZipMember",
    "archive_facts",
    "member_facts",
    "streaming_inflater",
    "wheel_elf_facts",
]


def wheel_elf_facts(
    path: str | os.PathLike[str],
    members: Sequence[str] | None = None,
    *,
    workers: int | None = None,
) -> tuple[MemberFacts, ...]:
    """Open the wheel at ``path`` and read the facts of its ELF members (of ``members``
    by name, default all), in archive order. Raises :class:`ArchiveError` for a corrupt
    archive; a malformed ELF member is reported in its :class:`MemberFacts`."""
    with ZipArchive(path) as archive:
        chosen = None if members is None else [archive.member(name) for name in members]
        return archive_facts(archive, chosen, workers=workers)
