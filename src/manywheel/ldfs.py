"""The loader model's view of a filesystem: a Protocol, and the host's disk seen from a sysroot.

The only place the loader model touches the disk; each ELF file is parsed once per real path.
"""

from __future__ import annotations

import glob as _glob
import os
import posixpath
import stat
from typing import Protocol

from manywheel.elf import DynamicInfo, ElfFile, ElfHeader
from manywheel.errors import ElfError

__all__ = ["ElfView", "Filesystem", "HostFilesystem"]

_SYMLINK_LIMIT = 40  # Linux's MAXSYMLINKS


class ElfView(Protocol):
    """What the loader model reads of an ELF file: the header, PT_INTERP, PT_DYNAMIC.

    Both a lazy :class:`~manywheel.elf.ElfFile` (files on disk) and an already parsed
    :class:`~manywheel.elf.ElfFacts` (wheel members, read from the zip once) qualify,
    so a filesystem view never has to re-read a file it already has the facts of.
    """

    @property
    def header(self) -> ElfHeader: ...

    @property
    def interpreter(self) -> str | None: ...

    @property
    def dynamic(self) -> DynamicInfo | None: ...


class Filesystem(Protocol):
    """The loader's view of a filesystem; paths are absolute POSIX paths in that view.

    The host implementation maps them under a sysroot; a wheel overlay can add the
    members of a wheel without extracting them. Implementations cache per path.
    """

    def realpath(self, path: str) -> str:
        """``path`` with every symlink resolved, inside the view."""
        ...

    def exists(self, path: str) -> bool: ...

    def is_file(self, path: str) -> bool: ...

    def read_bytes(self, path: str) -> bytes:
        """The content of a file; raises OSError when it cannot be read."""
        ...

    def glob(self, pattern: str) -> list[str]: ...

    def open_elf(self, path: str) -> ElfView:
        """The parsed ELF file at ``path`` (one object per real path).

        Raises ElfError when the file is not ELF or is malformed, OSError when unreadable.
        """
        ...

    def host_path(self, path: str) -> str | None:
        """Where the file really is on this machine, if it is a plain file."""
        ...


class HostFilesystem:
    """The machine's filesystem, optionally seen from inside ``sysroot``.

    Inside a sysroot, an absolute symlink target is resolved against the sysroot (as
    if chrooted) and ``..`` never climbs above it.
    """

    def __init__(self, sysroot: str | None = None) -> None:
        self.sysroot = os.path.abspath(sysroot) if sysroot else None
        self._prefix = "" if self.sysroot in (None, "/") else (self.sysroot or "")
        self._realpaths: dict[str, str] = {}
        self._elves: dict[str, ElfFile | ElfError | OSError] = {}

    def __enter__(self) -> HostFilesystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every mapped ELF file."""
        for elf in self._elves.values():
            if isinstance(elf, ElfFile):
                elf.close()
        self._elves.clear()

    def _host(self, path: str) -> str:
        return self._prefix + path if self._prefix else path

    def host_path(self, path: str) -> str | None:
        return self._host(self.realpath(path))

    def realpath(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path}")
        cached = self._realpaths.get(path)
        if cached is None:
            cached = self._resolve(path)
            self._realpaths[path] = cached
        return cached

    def _resolve(self, path: str) -> str:
        if not self._prefix:
            return os.path.realpath(path)
        pending = list(reversed(path.split("/")))
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join([*resolved, part])
            try:
                target = os.readlink(self._host(candidate))
            except OSError:
                resolved.append(part)
                continue
            hops += 1
            if hops > _SYMLINK_LIMIT:  # a loop: stop resolving, the open will fail
                resolved.append(part)
                resolved.extend(p for p in reversed(pending) if p)
                break
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed(target.split("/")))
        return "/" + "/".join(resolved)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._host(self.realpath(path)))

    def is_file(self, path: str) -> bool:
        return os.path.isfile(self._host(self.realpath(path)))

    def read_bytes(self, path: str) -> bytes:
        with open(self._host(self.realpath(path)), "rb") as handle:
            return handle.read()

    def glob(self, pattern: str) -> list[str]:
        # Resolve the literal directory part inside the view, then glob on the host.
        head, tail = posixpath.split(pattern)
        while head != "/" and _glob.has_magic(head):
            head, extra = posixpath.split(head)
            tail = posixpath.join(extra, tail)
        base = self.realpath(head)
        host_base = self._host(base)
        matches = _glob.glob(os.path.join(host_base, tail))
        result = []
        for match in matches:
            rel = os.path.relpath(match, host_base)
            result.append(posixpath.normpath(posixpath.join(base, rel)))
        return sorted(result)

    def open_elf(self, path: str) -> ElfFile:
        real = self.realpath(path)
        cached = self._elves.get(real)
        if cached is None:
            host = self._host(real)
            try:
                st = os.stat(host)
                if not stat.S_ISREG(st.st_mode):
                    raise IsADirectoryError(21, "not a regular file", host)
                elf = ElfFile.open(host)
                elf.header  # noqa: B018  (read the header now: reject non-ELF early)
                cached = elf
            except ElfError as exc:
                cached = exc
            except OSError as exc:
                cached = exc
            self._elves[real] = cached
        if isinstance(cached, (ElfError, OSError)):
            raise cached
        return cached
