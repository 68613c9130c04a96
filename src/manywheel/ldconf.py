"""Reader for ``/etc/ld.so.conf``: the directories ``ldconfig`` indexes into the cache.

ld.so itself never reads this file; ``ldconfig`` does, and writes ``/etc/ld.so.cache``
from the libraries it finds. When a root has no cache (a bare sysroot), the loader
model reads the configuration instead, to search the directories the cache would have
covered. The syntax follows glibc's ``elf/ldconfig.c`` (``parse_conf``,
``parse_conf_include``, ``add_dir_1``):

- everything after ``#`` is a comment; leading and trailing white space is dropped;
  blank lines are ignored;
- ``include PATTERN...`` reads every file matching each glob pattern, in sorted order;
  a relative pattern is relative to the directory of the file that contains it;
- ``hwcap ...`` lines are obsolete and ignored;
- any other line is one directory; trailing slashes are removed, and an old-style
  ``=TYPE`` suffix (``/usr/lib=libc5``) is dropped.

Every path (the file, the include patterns) is taken inside the filesystem view
given, so a sysroot applies to them too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal, Protocol

from manywheel.value import Value

__all__ = ["ConfLine", "ConfSource", "LdSoConf", "parse_conf_lines", "read_ld_so_conf"]


class ConfSource(Protocol):
    """What reading a configuration needs from a filesystem view."""

    def read_bytes(self, path: str) -> bytes: ...

    def glob(self, pattern: str) -> list[str]: ...


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ConfLine(Value):
    """One meaningful line of a configuration file."""

    kind: Literal["dir", "include", "hwcap"]
    value: str  # the directory, or one include pattern
    lineno: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LdSoConf(Value):
    """The outcome of reading a configuration file and its includes."""

    dirs: tuple[str, ...]  # in order of appearance, first occurrence kept
    files: tuple[str, ...]  # every file read, in order
    problems: tuple[str, ...]  # unreadable files, include loops, ignored lines


def parse_conf_lines(text: str) -> list[ConfLine]:
    """Split the text of one configuration file into its directives."""
    result: list[ConfLine] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include") and line[7:8] in (" ", "\t"):
            result.extend(
                ConfLine("include", pattern, lineno)
                for pattern in line[8:].replace("\t", " ").split(" ")
                if pattern
            )
        elif line[:5].lower() == "hwcap" and line[5:6] in (" ", "\t"):
            result.append(ConfLine("hwcap", line[6:].strip(), lineno))
        else:
            directory = line.split("=", 1)[0].rstrip()
            while len(directory) > 1 and directory.endswith("/"):
                directory = directory[:-1]
            if directory:
                result.append(ConfLine("dir", directory, lineno))
    return result


def read_ld_so_conf(source: ConfSource, path: str = "/etc/ld.so.conf") -> LdSoConf:
    """Read ``path`` and everything it includes, as ldconfig would.

    A missing top-level file gives an empty result with the problem recorded (ldconfig
    warns and goes on with its built-in directories).
    """
    dirs: list[str] = []
    files: list[str] = []
    problems: list[str] = []
    active: list[str] = []

    def visit(conf_path: str) -> None:
        if conf_path in active:
            problems.append(f"{conf_path}: include loop, not read again")
            return
        try:
            text = source.read_bytes(conf_path).decode("utf-8", "surrogateescape")
        except OSError as exc:
            problems.append(f"{conf_path}: cannot read ({exc.strerror or exc})")
            return
        files.append(conf_path)
        active.append(conf_path)
        try:
            for line in parse_conf_lines(text):
                if line.kind == "dir":
                    if line.value not in dirs:
                        dirs.append(line.value)
                elif line.kind == "include":
                    pattern = line.value
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(conf_path), pattern)
                    for match in sorted(source.glob(pattern)):
                        visit(match)
                else:
                    problems.append(f"{conf_path}:{line.lineno}: hwcap directive ignored")
        finally:
            active.pop()

    visit(path)
    return LdSoConf(tuple(dirs), tuple(files), tuple(problems))
