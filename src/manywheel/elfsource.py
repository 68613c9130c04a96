"""Byte sources: where the bytes of one ELF file come from.

The reader (:mod:`manywheel.elf`) never reads a file directly: it asks a
:class:`ByteSource` for exactly the ranges it needs (the ELF header, the program header
table, the segments the gABI "Program Loading" and "Dynamic Linking" chapters name), after
checking each range against the source's ``size``. This module holds that protocol and
the two sources the reader builds itself: :class:`BufferSource` over bytes already in
memory and a private source over a memory-mapped file (:meth:`ElfFile.open
<manywheel.elf.ElfFile.open>`). Other sources live with their callers (the archive's
member sources in :mod:`manywheel.memberfacts`). Kept apart from the parser because
where the bytes come from is one idea and what they mean is another;
:mod:`manywheel.elf` re-exports the public names.
"""

from __future__ import annotations

import mmap
import os
from typing import Protocol

from manywheel.errors import ElfError, InputError

__all__ = [
    "BufferSource",
    "ByteSource",
]


class ByteSource(Protocol):
    """Random access to the bytes of one ELF file.

    ``read`` returns exactly ``length`` bytes starting at ``offset`` or raises
    :class:`ElfError` when the range lies outside the file. A source may also raise
    another exception type (the archive's sparse source raises one when a range was
    not kept while streaming); the reader lets such exceptions propagate untouched.
    The reader checks every range against ``size`` before calling ``read``.
    """

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes | memoryview: ...


class BufferSource:
    """A :class:`ByteSource` over bytes already in memory (zero-copy slices)."""

    def __init__(self, data: bytes | bytearray | memoryview, name: str = "<buffer>") -> None:
        self._view = memoryview(data).cast("B")
        self._name = name

    @property
    def size(self) -> int:
        return self._view.nbytes

    def read(self, offset: int, length: int) -> memoryview:
        if offset < 0 or length < 0 or offset + length > self._view.nbytes:
            raise ElfError(
                f"{self._name}: range {offset:#x}+{length:#x} lies outside the file "
                f"({self._view.nbytes} bytes)"
            )
        return self._view[offset : offset + length]

    def close(self) -> None:
        self._view.release()


class _MappedSource:
    """A :class:`ByteSource` over a memory-mapped file; reads are copies, so closing
    the map never fails on exported buffers."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    raise ElfError(f"{path}: not an ELF file: the file is empty")
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        self._name = path

    @property
    def size(self) -> int:
        return len(self._map)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > len(self._map):
            raise ElfError(
                f"{self._name}: range {offset:#x}+{length:#x} lies outside the file "
                f"({len(self._map)} bytes)"
            )
        return self._map[offset : offset + length]

    def close(self) -> None:
        self._map.close()
