"""Fact types: what the ELF reader reports about one file, as immutable values.

:class:`ElfFacts` is everything manywheel knows about one ELF file; its parts mirror the
structures the System V gABI defines (the ELF header, program headers, the dynamic
section) and the LSB symbol-versioning chapter (Verneed/Vernaux, Verdef, the dynamic
symbols with their .gnu.version index), plus the x86-64 psABI's ISA-level property.
The parser (:mod:`manywheel.elf`) builds them; the loader model, the policies and the
reports read them, often with no parser at hand (facts read once from a wheel member
travel as plain values). Kept apart from the parser because what the facts are is one
idea and how they are read is another; :mod:`manywheel.elf` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from manywheel import elfconst as C
from manywheel.value import Value

__all__ = [
    "EXPORT_PREFIX",
    "DynamicInfo",
    "ElfFacts",
    "ElfHeader",
    "ProgramHeader",
    "Symbol",
    "SymbolScope",
    "VersionDef",
    "VersionNeed",
    "VersionNeedAux",
]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ElfHeader(Value):
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


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ProgramHeader(Value):
    """One program header entry (gABI "Program Header")."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DynamicInfo(Value):
    """The link-relevant entries of the dynamic section (gABI "Dynamic Section").

    ``rpath``/``runpath`` are the raw strings (not split, not expanded) or None when
    the tag is absent: ld.so ignores DT_RPATH whenever DT_RUNPATH is present, even empty.
    A tag that appears twice counts with its last value, as in glibc's ld.so.
    """

    needed: tuple[str, ...]  # DT_NEEDED, in order
    soname: str | None
    rpath: str | None
    runpath: str | None
    flags: int  # DT_FLAGS (0 when absent)
    flags_1: int  # DT_FLAGS_1 (0 when absent)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class VersionNeedAux(Value):
    """One Vernaux entry: a version this file needs from a library."""

    name: str  # e.g. "GLIBC_2.14"
    hash: int
    flags: int  # VER_FLG_WEAK = 0x2
    index: int  # vna_other: the .gnu.version index that refers to it


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class VersionNeed(Value):
    """One Verneed entry: a library (by DT_NEEDED name) and the versions needed of it."""

    file: str
    versions: tuple[VersionNeedAux, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class VersionDef(Value):
    """One Verdef entry: a version this file defines; ``names[1:]`` are its parents."""

    index: int
    flags: int  # VER_FLG_BASE = 0x1
    hash: int
    names: tuple[str, ...]


SymbolScope = Literal["all", "imports"]
"""Which dynamic symbols :meth:`ElfFile.facts` keeps.

``"all"``: every one. ``"imports"``: the undefined symbols (what a file imports, with the
versions it needs: all that symbol-version and blacklist checks look at) plus the
defined symbols whose name starts with ``PyInit_`` (a CPython extension module's entry
point, PEP 489), in table order. Big libraries define 10^5 symbols and import a few
thousand, so ``"imports"`` never decodes most names and keeps a fraction of the tuples.
"""

#: The name prefix of the defined symbols an ``"imports"`` scope keeps.
EXPORT_PREFIX: Final = "PyInit_"


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


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ElfFacts(Value):
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
    # Which symbols ``symbols`` holds (see :data:`SymbolScope`): "all" of them, or
    # "imports", the undefined ones and the defined ``PyInit_*`` ones only.
    symbol_scope: SymbolScope = "all"

    @property
    def x86_isa_level(self) -> str | None:
        """The highest x86-64 micro-architecture level the file declares it needs.

        x86-64 psABI: bit i of GNU_PROPERTY_X86_ISA_1_NEEDED is level i (baseline, v2,
        v3, v4); None when no known bit is set or the property is absent.
        """
        return _isa_level(self.x86_isa_needed)


def _isa_level(mask: int | None) -> str | None:
    if not mask:
        return None
    known = mask & ((1 << len(C.X86_ISA_LEVELS)) - 1)
    return C.X86_ISA_LEVELS[known.bit_length() - 1] if known else None
