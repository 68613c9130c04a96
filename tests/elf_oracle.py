"""The facts of an ELF file as pyelftools sees them: the oracle for manywheel's reader.

Written from the gABI / LSB texts, independently of ``manywheel.elf``: the architecture
mapping, the symbol-binding names and the version resolution are re-derived here, and
pyelftools (not our reader) does all the byte parsing. Where the two paths could take
different routes to the same fact, this one takes the *other* route on purpose:

* version needs/defs and the symbol table come from the **section headers**
  (``.gnu.version_r``, ``.gnu.version_d``, ``.dynsym``, ``.gnu.version``), while a lazy
  reader is expected to use the dynamic segment (DT_VERNEED, DT_SYMTAB...);
* the GNU property note comes from the ``SHT_NOTE`` sections, not from PT_GNU_PROPERTY.

Files without section headers therefore cannot be fully described by this oracle; the
tests compare them with the facts of the file they were made from instead.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import (
    ENUM_E_MACHINE,
    ENUM_E_TYPE,
    ENUM_EI_OSABI,
    ENUM_ST_INFO_BIND,
    ENUM_ST_INFO_TYPE,
    ENUM_VERSYM,
)
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import NoteSection, SymbolTableSection
from elftools.elf.segments import InterpSegment

from manywheel.elf import (
    DynamicInfo,
    ElfFacts,
    ElfHeader,
    Symbol,
    VersionDef,
    VersionNeed,
    VersionNeedAux,
)

# gABI machine numbers (Figure 4-5 "Machine"), written out rather than imported.
EM_386 = 3
EM_ARM = 40
EM_PPC64 = 21
EM_S390 = 22
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

# ARM EABI (AAELF): EF_ARM_EABIMASK and the hard-float flag of EABI version 5.
EF_ARM_EABIMASK = 0xFF000000
EF_ARM_EABI_VER5 = 0x05000000
EF_ARM_ABI_FLOAT_HARD = 0x00000400
# RISC-V psABI: float ABI bits of e_flags; manylinux riscv64 means lp64d.
EF_RISCV_FLOAT_ABI = 0x6
EF_RISCV_FLOAT_ABI_DOUBLE = 0x4

#: Marker put in ``arch_problem`` on both sides: the reason is free text, the
#: *presence* of a problem is what is compared.
PROBLEM = "<problem>"

# Symbol binding and type names (gABI, plus the GNU OS-specific values that Linux
# uses; the contract names them without prefix: IFUNC, UNIQUE).
BIND_NAMES = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}
TYPE_NAMES = {
    0: "NOTYPE",
    1: "OBJECT",
    2: "FUNC",
    3: "SECTION",
    4: "FILE",
    5: "COMMON",
    6: "TLS",
    10: "IFUNC",
}

GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
VERSYM_HIDDEN = 0x8000


def expected_arch(elf_class: int, byte_order: str, machine: int, flags: int) -> str | None:
    """The manywheel architecture name for a header, None when unsupported."""
    little = byte_order == "little"
    if machine == EM_X86_64 and elf_class == 64 and little:
        return "x86_64"
    if machine == EM_386 and elf_class == 32 and little:
        return "i686"
    if machine == EM_AARCH64 and elf_class == 64 and little:
        return "aarch64"
    if machine == EM_ARM and elf_class == 32 and little:
        hard_float = flags & EF_ARM_ABI_FLOAT_HARD
        eabi5 = flags & EF_ARM_EABIMASK == EF_ARM_EABI_VER5
        return "armv7l" if hard_float and eabi5 else None
    if machine == EM_PPC64 and elf_class == 64:
        return "ppc64le" if little else "ppc64"
    if machine == EM_S390 and elf_class == 64 and not little:
        return "s390x"
    if machine == EM_RISCV and elf_class == 64 and little:
        return "riscv64" if flags & EF_RISCV_FLOAT_ABI == EF_RISCV_FLOAT_ABI_DOUBLE else None
    if machine == EM_LOONGARCH and elf_class == 64 and little:
        return "loongarch64"
    return None


def _raw(value: object, enum: Mapping[str, int]) -> int:
    """pyelftools decodes known enum values to names: turn them back into numbers."""
    if isinstance(value, str):
        return enum[value]
    assert isinstance(value, int)
    return value


def _name(value: int, names: dict[int, str], prefix: str) -> str:
    return names.get(value, f"{prefix}_{value}")


@dataclass(frozen=True)
class OracleFacts:
    """What pyelftools could answer about one file, and what it could not."""

    facts: ElfFacts
    has_sections: bool


def _header(elf: ELFFile) -> ElfHeader:
    hdr = elf.header
    elf_class = elf.elfclass
    byte_order = "little" if elf.little_endian else "big"
    machine = _raw(hdr["e_machine"], ENUM_E_MACHINE)
    flags = hdr["e_flags"]
    arch = expected_arch(elf_class, byte_order, machine, flags)
    return ElfHeader(
        elf_class=elf_class,
        byte_order=byte_order,
        machine=machine,
        osabi=_raw(hdr["e_ident"]["EI_OSABI"], ENUM_EI_OSABI),
        abiversion=hdr["e_ident"]["EI_ABIVERSION"],
        elf_type=_raw(hdr["e_type"], ENUM_E_TYPE),
        flags=flags,
        entry=hdr["e_entry"],
        arch=arch,
        arch_problem=None if arch is not None else PROBLEM,
    )


def _interpreter(elf: ELFFile) -> str | None:
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            assert isinstance(segment, InterpSegment)
            name: str = segment.get_interp_name()
            return name
    return None


def _dynamic_segment(elf: ELFFile) -> DynamicSegment | None:
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_DYNAMIC":
            assert isinstance(segment, DynamicSegment)
            return segment
    return None


def _dynamic(segment: DynamicSegment) -> DynamicInfo:
    needed: list[str] = []
    single: dict[str, str | int] = {}
    for tag in segment.iter_tags():
        kind = tag.entry.d_tag
        if kind == "DT_NEEDED":
            needed.append(tag.needed)  # type: ignore[attr-defined]
        elif kind == "DT_SONAME":
            single[kind] = tag.soname  # type: ignore[attr-defined]
        elif kind == "DT_RPATH":
            single[kind] = tag.rpath  # type: ignore[attr-defined]
        elif kind == "DT_RUNPATH":
            single[kind] = tag.runpath  # type: ignore[attr-defined]
        elif kind in {"DT_FLAGS", "DT_FLAGS_1"}:
            single[kind] = tag.entry.d_val
        # Later duplicates win, as in glibc's ld.so (l_info[tag] is overwritten).
    soname, rpath, runpath = (single.get(k) for k in ("DT_SONAME", "DT_RPATH", "DT_RUNPATH"))
    flags, flags_1 = single.get("DT_FLAGS", 0), single.get("DT_FLAGS_1", 0)
    assert isinstance(flags, int) and isinstance(flags_1, int)
    assert soname is None or isinstance(soname, str)
    assert rpath is None or isinstance(rpath, str)
    assert runpath is None or isinstance(runpath, str)
    return DynamicInfo(
        needed=tuple(needed),
        soname=soname,
        rpath=rpath,
        runpath=runpath,
        flags=flags,
        flags_1=flags_1,
    )


def _version_needs(elf: ELFFile) -> tuple[VersionNeed, ...]:
    needs: list[VersionNeed] = []
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for verneed, auxes in section.iter_versions():
                versions = tuple(
                    VersionNeedAux(
                        name=aux.name,
                        hash=aux.entry["vna_hash"],
                        flags=aux.entry["vna_flags"],
                        index=aux.entry["vna_other"],
                    )
                    for aux in auxes
                )
                assert verneed.name is not None
                needs.append(VersionNeed(file=verneed.name, versions=versions))
    return tuple(needs)


def _version_defs(elf: ELFFile) -> tuple[VersionDef, ...]:
    defs: list[VersionDef] = []
    for section in elf.iter_sections():
        if isinstance(section, GNUVerDefSection):
            for verdef, auxes in section.iter_versions():
                defs.append(
                    VersionDef(
                        index=verdef.entry["vd_ndx"],
                        flags=verdef.entry["vd_flags"],
                        hash=verdef.entry["vd_hash"],
                        names=tuple(aux.name for aux in auxes),
                    )
                )
    return tuple(defs)


def _symbols(
    elf: ELFFile, needs: tuple[VersionNeed, ...], defs: tuple[VersionDef, ...]
) -> tuple[Symbol, ...]:
    dynsym = next(
        (s for s in elf.iter_sections() if s["sh_type"] == "SHT_DYNSYM"),
        None,
    )
    if dynsym is None:
        return ()
    assert isinstance(dynsym, SymbolTableSection)
    versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
    # Version index -> (version name, library); LSB "Symbol Versioning": indices 0 and
    # 1 are local/global, others name a Verdef (vd_ndx) or a Vernaux (vna_other).
    by_index: dict[int, tuple[str, str | None]] = {}
    for vdef in defs:
        by_index[vdef.index] = (vdef.names[0], None)
    for need in needs:
        for aux in need.versions:
            by_index[aux.index] = (aux.name, need.file)

    symbols: list[Symbol] = []
    for i, sym in enumerate(dynsym.iter_symbols()):
        if i == 0:
            continue
        defined = sym["st_shndx"] != "SHN_UNDEF"
        bind = _raw(sym["st_info"]["bind"], ENUM_ST_INFO_BIND)
        stype = _raw(sym["st_info"]["type"], ENUM_ST_INFO_TYPE)
        version: str | None = None
        library: str | None = None
        hidden = False
        if versym is not None:
            raw = _raw(versym.get_symbol(i).entry["ndx"], ENUM_VERSYM)
            hidden = bool(raw & VERSYM_HIDDEN)
            index = raw & ~VERSYM_HIDDEN
            if index > 1 and index in by_index:
                version, lib = by_index[index]
                library = lib if not defined else None
        symbols.append(
            Symbol(
                name=sym.name,
                defined=defined,
                bind=_name(bind, BIND_NAMES, "STB"),
                type=_name(stype, TYPE_NAMES, "STT"),
                version=version,
                hidden=hidden,
                library=library,
            )
        )
    return tuple(symbols)


def _x86_isa_needed(elf: ELFFile, machine: int) -> int | None:
    if machine not in {EM_X86_64, EM_386}:
        return None  # 0xc0008002 is processor-specific: it means ISA_1_NEEDED on x86 only
    value: int | None = None
    for section in elf.iter_sections():
        if not isinstance(section, NoteSection):
            continue
        for note in section.iter_notes():
            if note["n_type"] != "NT_GNU_PROPERTY_TYPE_0" or note["n_name"] != "GNU":
                continue
            for prop in note["n_desc"]:
                pr_type = prop["pr_type"]
                if pr_type in ("GNU_PROPERTY_X86_ISA_1_NEEDED", GNU_PROPERTY_X86_ISA_1_NEEDED):
                    value = (value or 0) | prop["pr_data"]
    return value


def oracle_facts(data: bytes, name: str) -> OracleFacts:
    """Parse ``data`` with pyelftools into the same shape as ``ElfFile.facts()``."""
    elf = ELFFile(io.BytesIO(data))
    header = _header(elf)
    has_sections = elf.num_sections() > 0
    segment = _dynamic_segment(elf)
    needs = _version_needs(elf)
    defs = _version_defs(elf)
    facts = ElfFacts(
        name=name,
        header=header,
        interpreter=_interpreter(elf),
        dynamic=_dynamic(segment) if segment is not None else None,
        version_needs=needs,
        version_defs=defs,
        symbols=_symbols(elf, needs, defs),
        x86_isa_needed=_x86_isa_needed(elf, header.machine),
    )
    return OracleFacts(facts=facts, has_sections=has_sections)


def segment_only_symbols(data: bytes) -> tuple[tuple[str, bool, str, str], ...]:
    """(name, defined, bind, type) of the dynamic symbols, found through PT_DYNAMIC only.

    pyelftools sizes DT_SYMTAB from DT_GNU_HASH (or DT_HASH) here, as a reader without
    section headers must; versions are not available this way.
    """
    elf = ELFFile(io.BytesIO(data))
    segment = _dynamic_segment(elf)
    if segment is None:
        return ()
    out: list[tuple[str, bool, str, str]] = []
    for i, sym in enumerate(segment.iter_symbols()):
        if i == 0:
            continue
        bind = _raw(sym["st_info"]["bind"], ENUM_ST_INFO_BIND)
        stype = _raw(sym["st_info"]["type"], ENUM_ST_INFO_TYPE)
        out.append(
            (
                sym.name,
                sym["st_shndx"] != "SHN_UNDEF",
                _name(bind, BIND_NAMES, "STB"),
                _name(stype, TYPE_NAMES, "STT"),
            )
        )
    return tuple(out)


def read_oracle(path: Path) -> OracleFacts:
    return oracle_facts(path.read_bytes(), str(path))
