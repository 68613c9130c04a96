"""Differential tests: manywheel's ELF reader against pyelftools (``tests/elf_oracle.py``).

Every fact of ``ElfFile.facts()`` (and the program header table) must be *equal* to what
the oracle extracts, field by field, for three corpora:

* the ELF files installed on this machine (system, cross-sysroot, musl and gcc
  library directories): a deterministic hash-based sample, all of them with
  ``MANYWHEEL_ORACLE_FULL=1``;
* the fixture sets compiled by every available toolchain (native, six cross targets,
  musl);
* copies without section headers: pyelftools then only sees segments, so those are
  compared with the facts of the file they were made from, and their symbols with
  what pyelftools finds through DT_SYMTAB + DT_GNU_HASH.

Documented departures from "pyelftools says so" (each also asserted by hand below):

* ``arch_problem`` is free text: only its presence is compared (``elf_oracle.PROBLEM``);
* names that are not valid UTF-8: the reader keeps the bytes (surrogateescape), pyelftools
  replaces them with U+FFFD; the reader's names are mapped through its documented
  ``name_bytes(...).decode("utf-8", "replace")`` before comparison;
* no section headers: pyelftools cannot read version tables or GNU property notes
  through segments, so the original file's oracle facts stand in for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import struct
import sysconfig
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import (
    ENUM_P_TYPE_AARCH64,
    ENUM_P_TYPE_ARM,
    ENUM_P_TYPE_BASE,
    ENUM_P_TYPE_RISCV,
)

from elf_oracle import (
    PROBLEM,
    oracle_facts,
    segment_only_symbols,
)
from fixtures import (
    ELF_FIXTURE_NAMES,
    MANGLED_ORIGINALS,
    FixtureBuilder,
    FixtureSet,
    all_toolchains,
)
from manywheel.elf import ElfFacts, ElfFile, ProgramHeader, Symbol, name_bytes

# --------------------------------------------------------------------------- corpus

CROSS_TRIPLETS = (
    "aarch64-linux-gnu",
    "arm-linux-gnueabihf",
    "powerpc64le-linux-gnu",
    "powerpc64-linux-gnu",
    "s390x-linux-gnu",
    "riscv64-linux-gnu",
)


def corpus_dirs() -> list[Path]:
    dirs = [Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu")]
    dirs += sorted(Path("/usr/lib").glob("python3*"))
    dirs += [Path("/usr") / t / "lib" for t in CROSS_TRIPLETS]
    dirs += [Path("/usr/lib/gcc-cross"), Path("/usr/lib/gcc/x86_64-linux-gnu")]
    dirs += [Path("/usr/lib/x86_64-linux-musl"), Path("/usr/lib/musl")]
    dynload = sysconfig.get_config_var("DESTSHARED")  # the running Python's extensions
    if isinstance(dynload, str):
        dirs.append(Path(dynload))
    return [d for d in dirs if d.is_dir()]


def _walk_elf(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            try:
                with path.open("rb") as fh:
                    magic = fh.read(4)
            except OSError:
                continue
            if magic == b"\x7fELF":
                yield path


def system_elf_files() -> list[Path]:
    """Every ELF file of the corpus directories, once per real file, sorted."""
    seen: set[Path] = set()
    found: list[Path] = []
    for root in corpus_dirs():
        for path in _walk_elf(root):
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                found.append(path)
    return sorted(found)


#: 1 in SAMPLE_EVERY files (by a hash of the path: stable, spread over all directories);
#: pyelftools needs ~30 s for the ~1300 files of this box, so half keeps us well below.
SAMPLE_EVERY = 2
FULL = os.environ.get("MANYWHEEL_ORACLE_FULL") == "1"


def sampled(paths: list[Path]) -> list[Path]:
    if FULL:
        return paths
    return [p for p in paths if hashlib.sha256(str(p).encode()).digest()[0] % SAMPLE_EVERY == 0]


SYSTEM_FILES = system_elf_files()
SYSTEM_SAMPLE = sampled(SYSTEM_FILES)

# --------------------------------------------------------------------------- comparing


def _norm_name(name: str) -> str:
    return name_bytes(name).decode("utf-8", "replace")


def normalized(facts: ElfFacts, name: str) -> ElfFacts:
    """The reader's facts in the oracle's conventions (see the module docstring)."""
    header = facts.header
    if header.arch_problem is not None:
        header = dataclasses.replace(header, arch_problem=PROBLEM)
    symbols = tuple(
        s._replace(name=_norm_name(s.name)) if not s.name.isascii() else s for s in facts.symbols
    )
    return dataclasses.replace(facts, name=name, header=header, symbols=symbols)


def _symbol_diff(got: tuple[Symbol, ...], want: tuple[Symbol, ...]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"symbol #{i + 1} differs:\n  reader: {g}\n  oracle: {w}"
    return f"symbol counts differ: reader {len(got)}, oracle {len(want)}"


def assert_same_facts(got: ElfFacts, want: ElfFacts) -> None:
    """Field-by-field equality with a readable first difference (big symbol tables)."""
    got = normalized(got, want.name)
    problems: list[str] = []
    for field in dataclasses.fields(ElfFacts):
        g, w = getattr(got, field.name), getattr(want, field.name)
        if g == w:
            continue
        if field.name == "symbols":
            problems.append(_symbol_diff(g, w))
        else:
            problems.append(f"{field.name}:\n  reader: {g!r}\n  oracle: {w!r}")
    assert not problems, f"{want.name}: " + "\n".join(problems)


def _p_type_enum(machine: str) -> Mapping[str, int]:
    # pyelftools decodes p_type with a machine-specific table; invert the same one.
    return {
        "EM_ARM": ENUM_P_TYPE_ARM,
        "EM_AARCH64": ENUM_P_TYPE_AARCH64,
        "EM_RISCV": ENUM_P_TYPE_RISCV,
    }.get(machine, ENUM_P_TYPE_BASE)


def oracle_program_headers(data: bytes) -> tuple[ProgramHeader, ...]:
    elf = ELFFile(io.BytesIO(data))
    enum = _p_type_enum(elf.header["e_machine"])
    out = []
    for seg in elf.iter_segments():
        p_type = seg["p_type"]
        out.append(
            ProgramHeader(
                type=enum[p_type] if isinstance(p_type, str) else p_type,
                flags=seg["p_flags"],
                offset=seg["p_offset"],
                vaddr=seg["p_vaddr"],
                filesz=seg["p_filesz"],
                memsz=seg["p_memsz"],
                align=seg["p_align"],
            )
        )
    return tuple(out)


def reader_facts(path: Path) -> tuple[ElfFacts, tuple[ProgramHeader, ...]]:
    with ElfFile.open(path) as elf:
        return elf.facts(), elf.program_headers


def gnu_hash_is_empty(data: bytes) -> bool:
    """True when DT_GNU_HASH exists and none of its buckets names a symbol."""
    elf = ELFFile(io.BytesIO(data))
    for seg in elf.iter_segments():
        if isinstance(seg, DynamicSegment):
            _, offset = seg.get_table_offset("DT_GNU_HASH")
            if offset is None:
                return False
            order = "<" if elf.little_endian else ">"
            nbuckets, _symoffset, bloom, _shift = struct.unpack_from(order + "4I", data, offset)
            start = offset + 16 + bloom * (elf.elfclass // 8)
            buckets = struct.unpack_from(f"{order}{nbuckets}I", data, start)
            return not any(buckets)
    return False


ET_REL = 1


def loader_view(facts: ElfFacts) -> ElfFacts:
    """The oracle's facts restricted to what the loader sees.

    A relocatable object (``.o``) has no program headers, so the reader (which reads
    segments only, by design) reports no GNU property note for it, while pyelftools
    finds ``.note.gnu.property`` in its sections (e.g. Scrt1.o: ISA_1_NEEDED = 1).
    Object files are never loaded; for them the expected note is None.
    """
    if facts.header.elf_type == ET_REL:
        return dataclasses.replace(facts, x86_isa_needed=None)
    return facts


def check_file(path: Path) -> ElfFacts:
    """Compare reader and oracle on one file; return the reader's facts."""
    data = path.read_bytes()
    want = oracle_facts(data, str(path))
    assert want.has_sections, f"{path}: the oracle needs section headers"
    got, phdrs = reader_facts(path)
    assert_same_facts(got, loader_view(want.facts))
    assert phdrs == oracle_program_headers(data)
    return got


# --------------------------------------------------------------------------- system corpus


def test_system_corpus_size(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(
            f"\n[oracle] {len(SYSTEM_FILES)} system ELF files in {len(corpus_dirs())} "
            f"directories, {len(SYSTEM_SAMPLE)} sampled (MANYWHEEL_ORACLE_FULL=1 for all)"
        )
    # This box has ~1300: far fewer means the discovery broke, not that the box is small.
    assert len(SYSTEM_FILES) >= 50
    assert len(SYSTEM_SAMPLE) >= len(SYSTEM_FILES) // (SAMPLE_EVERY * 2)


@pytest.mark.parametrize("path", SYSTEM_SAMPLE, ids=lambda p: str(p).lstrip("/"))
def test_system_file(path: Path) -> None:
    check_file(path)


# --------------------------------------------------------------------------- fixtures

TOOLCHAINS = {tc.name: tc for tc in all_toolchains()}


# Every (toolchain, fixture) pair, but the x86-64 ISA-level library only where it exists.
FIXTURE_CASES = [
    pytest.param(tc_name, fixture_name, id=f"{tc_name}-{fixture_name}")
    for tc_name, tc in TOOLCHAINS.items()
    for fixture_name in ELF_FIXTURE_NAMES
    if fixture_name != "libisa" or tc.arch == "x86_64"
]


@pytest.mark.parametrize(("toolchain_name", "fixture_name"), FIXTURE_CASES)
def test_fixture_file(
    fixture_builder: FixtureBuilder, toolchain_name: str, fixture_name: str
) -> None:
    fx = fixture_builder(TOOLCHAINS[toolchain_name])
    path: Path | None = getattr(fx, fixture_name)
    if path is None:
        pytest.skip(fx.problems[fixture_name])
    if fixture_name.startswith("noshdr"):
        check_without_sections(path, getattr(fx, MANGLED_ORIGINALS[fixture_name]))
        return
    got = check_file(path)
    # The same bytes through from_buffer give the same facts.
    with ElfFile.from_buffer(path.read_bytes(), "buffer") as elf:
        assert dataclasses.replace(elf.facts(), name=got.name) == got
    if fixture_name == "stripped":
        # --strip-all keeps everything dynamic: the facts are those of the original.
        original, _ = reader_facts(getattr(fx, MANGLED_ORIGINALS[fixture_name]))
        assert dataclasses.replace(got, name=original.name) == original


def check_without_sections(path: Path, original: Path) -> None:
    data = path.read_bytes()
    # pyelftools through segments only: header, interpreter, dynamic, symbol names.
    partial = oracle_facts(data, str(path))
    assert not partial.has_sections
    got, phdrs = reader_facts(path)
    norm = normalized(got, str(path))
    assert norm.header == partial.facts.header
    assert norm.interpreter == partial.facts.interpreter
    assert norm.dynamic == partial.facts.dynamic
    assert phdrs == oracle_program_headers(data)
    # pyelftools sizes DT_SYMTAB from DT_GNU_HASH here. That count is only right when
    # the table hashes at least one symbol: with none (an executable that exports
    # nothing), binutils writes the special empty table (1 bucket, symoffset 1) and
    # the count says "no symbols" although .dynsym holds the imports. Then the
    # expectation is the original's section-based symbol list (checked below).
    segment_symbols = list(segment_only_symbols(data))
    full = oracle_facts(original.read_bytes(), str(original))
    if gnu_hash_is_empty(data):
        assert len(segment_symbols) < len(full.facts.symbols), "pyelftools blind spot gone?"
    else:
        assert [(s.name, s.defined, s.bind, s.type) for s in norm.symbols] == segment_symbols
    # Versions and notes: pyelftools cannot reach them without sections; the file
    # is the original with the section header table unlinked, so its facts must be
    # the original's, compared through the oracle on the original.
    assert_same_facts(got, full.facts)


# --------------------------------------------------------------------------- by hand
# Expectations computed from the C sources, not from any parser: they guard against
# the oracle and the reader being wrong the same way.


def facts_of(path: Path) -> ElfFacts:
    return reader_facts(path)[0]


def test_fixture_meaning(any_fixtures: FixtureSet) -> None:
    fx = any_fixtures
    tc = fx.toolchain
    alpha = facts_of(fx.libalpha)
    assert alpha.header.arch == tc.arch and alpha.header.arch_problem is None
    assert alpha.header.elf_type == 3  # ET_DYN
    assert alpha.dynamic is not None
    assert alpha.dynamic.soname == "libalpha.so.1"
    assert "libbeta.so.1" in alpha.dynamic.needed
    assert alpha.interpreter is None
    exported = {s.name for s in alpha.symbols if s.defined}
    assert "alpha_value" in exported
    assert any(s.name == "beta_value" and not s.defined for s in alpha.symbols)

    rpath, runpath = facts_of(fx.rpath_user).dynamic, facts_of(fx.runpath_user).dynamic
    assert rpath is not None and runpath is not None
    assert (rpath.rpath, rpath.runpath) == ("$ORIGIN/../chain", None)
    assert (runpath.rpath, runpath.runpath) == (None, "$ORIGIN/../chain")

    versioned = facts_of(fx.libversioned)
    assert versioned.dynamic is not None and versioned.dynamic.soname == "libversioned.so.1"
    defs = {d.names[0]: d for d in versioned.version_defs}
    assert set(defs) == {"libversioned.so.1", "VERS_1.0", "VERS_2.0"}
    assert defs["libversioned.so.1"].flags & 1  # VER_FLG_BASE
    assert defs["VERS_2.0"].names == ("VERS_2.0", "VERS_1.0")
    vers_func = {(s.version, s.hidden) for s in versioned.symbols if s.name == "vers_func"}
    assert vers_func == {("VERS_2.0", False), ("VERS_1.0", True)}

    user = facts_of(fx.libuseversioned)
    [need] = [n for n in user.version_needs if n.file == "libversioned.so.1"]
    assert {v.name for v in need.versions} == {"VERS_1.0", "VERS_2.0"}
    by_name = {s.name: s for s in user.symbols}
    assert by_name["vers_func"][4:] == ("VERS_2.0", False, "libversioned.so.1")
    assert by_name["vers_other"].version == "VERS_1.0"
    assert by_name["vers_func"].defined is False

    weak = {s.name: s for s in facts_of(fx.libweak).symbols}
    assert weak["maybe_there"].bind == "WEAK" and not weak["maybe_there"].defined

    pie, nopie = facts_of(fx.hello_pie), facts_of(fx.hello_nopie)
    assert (pie.header.elf_type, nopie.header.elf_type) == (3, 2)  # ET_DYN, ET_EXEC
    assert pie.interpreter is not None and pie.interpreter == nopie.interpreter
    if tc.kind == "musl":
        assert pie.interpreter == "/lib/ld-musl-x86_64.so.1"
    assert pie.dynamic is not None and pie.dynamic.flags_1 & 0x08000000  # DF_1_PIE

    ext = facts_of(fx.ext)
    assert any(s.name == "PyInit__demo" and s.defined and s.type == "FUNC" for s in ext.symbols)

    if fx.static_exe is not None:
        static = facts_of(fx.static_exe)
        assert (static.interpreter, static.dynamic, static.symbols) == (None, None, ())


def test_isa_level_by_hand(native_fixtures: FixtureSet) -> None:
    assert native_fixtures.libisa is not None
    isa = facts_of(native_fixtures.libisa)
    assert isa.x86_isa_needed is not None and isa.x86_isa_needed & 0b100  # v3 bit
    assert isa.x86_isa_level == "v3"  # elf.py names levels baseline, v2, v3, v4
    assert facts_of(native_fixtures.libalpha).x86_isa_needed is None


def test_non_utf8_symbol_name(native_fixtures: FixtureSet, tmp_path: Path) -> None:
    """A name byte that is not UTF-8: the reader keeps the byte, pyelftools replaces it."""
    data = bytearray(native_fixtures.libalpha.read_bytes())
    at = data.index(b"\0alpha_value\0") + 1
    data[at] = 0xFF  # "\xfflpha_value"
    path = tmp_path / "libalpha-latin.so.1"
    path.write_bytes(bytes(data))
    got = check_file(path)  # equal to the oracle under the documented normalization
    [sym] = [s for s in got.symbols if s.name.endswith("lpha_value")]
    assert name_bytes(sym.name) == b"\xfflpha_value"
    oracle = oracle_facts(bytes(data), str(path)).facts
    assert "\ufffdlpha_value" in {s.name for s in oracle.symbols}
