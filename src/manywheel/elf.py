"""Lazy ELF reader: the facts of one ELF file, read from a path or a buffer.

CONTRACT STUB written by the lead: the names and fields below are the interface the
loader model (ld.py), the archive reader (archive.py) and the tests code against.
The implementation replaces the ``NotImplementedError`` bodies; renaming a public
field needs the lead's agreement.

References: System V gABI (ELF header, program headers, dynamic section), the LSB
symbol-versioning chapter (.gnu.version, .gnu.version_r, .gnu.version_d), and the
x86-64 psABI (GNU property notes, ISA level).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from manywheel.errors import ElfError

__all__ = [
    "ByteSource",
    "DynamicInfo",
    "ElfError",
    "ElfFacts",
    "ElfFile",
    "ElfHeader",
    "ProgramHeader",
    "Symbol",
    "VersionDef",
    "VersionNeed",
    "VersionNeedAux",
]


class ByteSource(Protocol):
    """Random access to the bytes of one ELF file.

    ``read`` returns exactly ``length`` bytes starting at ``offset`` or raises
    :class:`ElfError` when the range lies outside the file. A source may also raise
    another exception type (the archive's sparse source raises one when a range was
    not kept while streaming); the reader lets such exceptions propagate untouched.
    """

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes | memoryview: ...


@dataclass(frozen=True, slots=True)
class ElfHeader:
    """The ELF file header (gABI "ELF Header"), plus the architecture name it implies."""

    elf_class: int  # 32 or 64
    byte_order: str  # "little" or "big"
    machine: int  # e_machine
    osabi: int  # e_ident[EI_OSABI]
    abiversion: int  # e_ident[EI_ABIVERSION]
    elf_type: int  # e_type: 1 REL, 2 EXEC, 3 DYN, 4 CORE
    flags: int  # e_flags
    entry: int
    # x86_64, i686, aarch64, armv7l, ppc64le, ppc64, s390x, riscv64, loongarch64;
    # None when the machine/class/byte-order/flags combination is not one we support
    # (e.g. ARM soft-float), with the reason in ``arch_problem``.
    arch: str | None
    arch_problem: str | None


@dataclass(frozen=True, slots=True)
class ProgramHeader:
    """One program header entry (gABI "Program Header")."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class DynamicInfo:
    """The link-relevant entries of the dynamic section (gABI "Dynamic Section").

    ``rpath``/``runpath`` are the raw strings (not split, not expanded) or None when
    the tag is absent: ld.so ignores DT_RPATH whenever DT_RUNPATH is present, even empty.
    """

    needed: tuple[str, ...]  # DT_NEEDED, in order
    soname: str | None
    rpath: str | None
    runpath: str | None
    flags: int  # DT_FLAGS (0 when absent)
    flags_1: int  # DT_FLAGS_1 (0 when absent)


@dataclass(frozen=True, slots=True)
class VersionNeedAux:
    """One Vernaux entry: a version this file needs from a library."""

    name: str  # e.g. "GLIBC_2.14"
    hash: int
    flags: int  # VER_FLG_WEAK = 0x2
    index: int  # vna_other: the .gnu.version index that refers to it


@dataclass(frozen=True, slots=True)
class VersionNeed:
    """One Verneed entry: a library (by DT_NEEDED name) and the versions needed of it."""

    file: str
    versions: tuple[VersionNeedAux, ...]


@dataclass(frozen=True, slots=True)
class VersionDef:
    """One Verdef entry: a version this file defines; ``names[1:]`` are its parents."""

    index: int
    flags: int  # VER_FLG_BASE = 0x1
    hash: int
    names: tuple[str, ...]


class Symbol(NamedTuple):
    """One dynamic symbol with its version (a NamedTuple: big libraries have 10^5 of them).

    ``bind`` and ``type`` are the gABI names without prefix ("GLOBAL", "WEAK", "FUNC",
    "OBJECT", "IFUNC", ...; unknown values as "STB_<n>"/"STT_<n>").
    ``version`` is None for index 0/1 (local/global); ``library`` is the DT_NEEDED name
    the version belongs to, for undefined symbols with a needed version, else None.
    """

    name: str
    defined: bool  # st_shndx != SHN_UNDEF
    bind: str
    type: str
    version: str | None
    hidden: bool  # bit 15 of the .gnu.version entry
    library: str | None


@dataclass(frozen=True, slots=True)
class ElfFacts:
    """Everything manywheel knows about one ELF file; immutable, parsed once."""

    name: str
    header: ElfHeader
    interpreter: str | None  # PT_INTERP
    dynamic: DynamicInfo | None  # None: no PT_DYNAMIC (static executable, object file)
    version_needs: tuple[VersionNeed, ...]
    version_defs: tuple[VersionDef, ...]
    symbols: tuple[Symbol, ...]  # the dynamic symbols, without the null symbol 0
    # GNU_PROPERTY_X86_ISA_1_NEEDED bitmask (bit 0 baseline, 1 v2, 2 v3, 3 v4), or None
    x86_isa_needed: int | None

    @property
    def x86_isa_level(self) -> str | None:
        """The highest x86-64 micro-architecture level the file declares it needs."""
        raise NotImplementedError


class ElfFile:
    """A lazily read ELF file: each property reads only the bytes it needs, once."""

    def __init__(self, source: ByteSource, name: str) -> None:
        raise NotImplementedError

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Map the file at ``path`` (use as a context manager to release the map)."""
        raise NotImplementedError

    @classmethod
    def from_buffer(cls, data: bytes | bytearray | memoryview, name: str) -> ElfFile:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The properties below are cached; each is computed on first access.
    @property
    def header(self) -> ElfHeader:
        raise NotImplementedError

    @property
    def program_headers(self) -> tuple[ProgramHeader, ...]:
        raise NotImplementedError

    @property
    def interpreter(self) -> str | None:
        raise NotImplementedError

    @property
    def dynamic(self) -> DynamicInfo | None:
        raise NotImplementedError

    @property
    def version_needs(self) -> tuple[VersionNeed, ...]:
        raise NotImplementedError

    @property
    def version_defs(self) -> tuple[VersionDef, ...]:
        raise NotImplementedError

    @property
    def symbols(self) -> tuple[Symbol, ...]:
        raise NotImplementedError

    @property
    def x86_isa_needed(self) -> int | None:
        raise NotImplementedError

    def facts(self) -> ElfFacts:
        """All facts at once, as an immutable snapshot."""
        raise NotImplementedError


def read_facts(path: str | os.PathLike[str]) -> ElfFacts:
    """Parse the ELF file at ``path`` once and return its facts."""
    with ElfFile.open(path) as elf:
        return elf.facts()
