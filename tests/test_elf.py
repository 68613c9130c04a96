"""Unit tests of the lazy ELF reader: exact facts of gcc-built fixtures, and ElfError
(with its message) for hand-broken copies of them.

The fixtures come from ``conftest.py`` (compiled at test time); the few extra files
built here (other hash styles, linker flags, i686, a non-UTF-8 name) are compiled in
``tmp_path`` with the host gcc. Broken copies are located with the small ELF64
little-endian helpers below, written independently of the reader under test.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures import CSRC, FixtureSet, find_toolchain
from manywheel.elf import (
    DynamicInfo,
    ElfError,
    ElfFacts,
    ElfFile,
    Symbol,
    VersionDef,
    name_bytes,
    read_facts,
)

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_GNU_PROPERTY = 1, 2, 3, 0x6474E553
DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_SYMENT = 1, 5, 10, 14, 11
DT_HASH, DT_VERSYM, DT_VERNEED, DT_VERNEEDNUM = 4, 0x6FFFFFF0, 0x6FFFFFFE, 0x6FFFFFFF


def elf_hash(name: str) -> int:
    """The gABI ELF hash, which Verdef/Vernaux entries store for their names."""
    h = 0
    for byte in name.encode():
        h = (h << 4) + byte
        high = h & 0xF0000000
        if high:
            h ^= high >> 24
        h &= ~high
    return h & 0xFFFFFFFF


def facts_of(data: bytes | bytearray, name: str = "broken.so") -> ElfFacts:
    with ElfFile.from_buffer(data, name) as elf:
        return elf.facts()


def gcc(tmp_path: Path, out: str, *args: str) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found on PATH")
    target = tmp_path / out
    subprocess.run(["gcc", "-O2", "-g0", *args, "-o", str(target)], check=True)
    return target


# --- independent ELF64 little-endian helpers for locating bytes to break -------------


def phdrs(data: bytes | bytearray) -> list[tuple[int, int, int, int, int]]:
    """(entry offset, p_type, p_offset, p_vaddr, p_filesz) of each program header."""
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 0x20)[0], 56, data[0x38]
    out = []
    for i in range(phnum):
        at = phoff + i * phentsize
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, at)
        out.append((at, p_type, p_offset, p_vaddr, p_filesz))
    return out


def dyn_entries(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(entry offset, d_tag, d_val) of each dynamic entry up to DT_NULL."""
    (_, _, offset, _, size) = next(p for p in phdrs(data) if p[1] == PT_DYNAMIC)
    out = []
    for at in range(offset, offset + size, 16):
        tag, val = struct.unpack_from("<qQ", data, at)
        if tag == 0:
            break
        out.append((at, tag, val))
    return out


def dyn_entry(data: bytes | bytearray, tag: int) -> tuple[int, int]:
    return next((at, val) for at, t, val in dyn_entries(data) if t == tag)


def file_offset(data: bytes | bytearray, vaddr: int) -> int:
    for _, p_type, p_offset, p_vaddr, p_filesz in phdrs(data):
        if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return p_offset + vaddr - p_vaddr
    raise AssertionError(f"{vaddr:#x} not mapped")


def put(data: bytearray, at: int, fmt: str, *values: int) -> bytearray:
    struct.pack_into(fmt, data, at, *values)
    return data


# --- facts of the native fixtures -----------------------------------------------------


def test_header_of_a_native_library(native_fixtures: FixtureSet) -> None:
    header = read_facts(native_fixtures.libalpha).header
    assert (header.elf_class, header.byte_order, header.machine) == (64, "little", 62)
    assert (header.elf_type, header.osabi, header.abiversion, header.flags) == (3, 0, 0, 0)
    assert (header.arch, header.arch_problem) == ("x86_64", None)


def test_dynamic_section_of_the_dependency_chain(native_fixtures: FixtureSet) -> None:
    assert read_facts(native_fixtures.libalpha).dynamic == DynamicInfo(
        needed=("libbeta.so.1",),
        soname="libalpha.so.1",
        rpath=None,
        runpath=None,
        flags=0,
        flags_1=0,
    )
    assert read_facts(native_fixtures.libgamma).dynamic == DynamicInfo(
        needed=(), soname="libgamma.so.1", rpath=None, runpath=None, flags=0, flags_1=0
    )


def test_dt_needed_keeps_link_order(native_fixtures: FixtureSet) -> None:
    facts = read_facts(native_fixtures.hello_pie)
    assert facts.dynamic is not None
    assert facts.dynamic.needed == ("libalpha.so.1", "libc.so.6")


def test_rpath_and_runpath_are_raw_strings(native_fixtures: FixtureSet) -> None:
    rpath = read_facts(native_fixtures.rpath_user).dynamic
    runpath = read_facts(native_fixtures.runpath_user).dynamic
    assert rpath is not None and runpath is not None
    assert (rpath.rpath, rpath.runpath) == ("$ORIGIN/../chain", None)
    assert (runpath.rpath, runpath.runpath) == (None, "$ORIGIN/../chain")


def test_executables_interpreter_and_type(native_fixtures: FixtureSet) -> None:
    pie = read_facts(native_fixtures.hello_pie)
    nopie = read_facts(native_fixtures.hello_nopie)
    assert pie.interpreter == nopie.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert (pie.header.elf_type, nopie.header.elf_type) == (3, 2)
    assert pie.dynamic is not None
    assert pie.dynamic.flags_1 & 0x08000000  # DF_1_PIE
    assert read_facts(native_fixtures.libalpha).interpreter is None


def test_static_executable_has_no_dynamic_facts(native_fixtures: FixtureSet) -> None:
    if native_fixtures.static_exe is None:
        pytest.skip(native_fixtures.problems["static_exe"])
    facts = read_facts(native_fixtures.static_exe)
    assert (facts.interpreter, facts.dynamic) == (None, None)
    assert (facts.symbols, facts.version_needs, facts.version_defs) == ((), (), ())
    assert facts.header.elf_type == 2


def test_version_definitions_of_a_version_script(native_fixtures: FixtureSet) -> None:
    assert read_facts(native_fixtures.libversioned).version_defs == (
        VersionDef(1, 1, elf_hash("libversioned.so.1"), ("libversioned.so.1",)),
        VersionDef(2, 0, elf_hash("VERS_1.0"), ("VERS_1.0",)),
        VersionDef(3, 0, elf_hash("VERS_2.0"), ("VERS_2.0", "VERS_1.0")),
    )


def test_defined_symbols_carry_their_version(native_fixtures: FixtureSet) -> None:
    symbols = read_facts(native_fixtures.libversioned).symbols
    exported = {s for s in symbols if s.name.startswith("vers_")}
    assert exported == {
        Symbol("vers_func", True, "GLOBAL", "FUNC", "VERS_1.0", True, None),
        Symbol("vers_func", True, "GLOBAL", "FUNC", "VERS_2.0", False, None),
        Symbol("vers_new", True, "GLOBAL", "FUNC", "VERS_2.0", False, None),
        Symbol("vers_other", True, "GLOBAL", "FUNC", "VERS_1.0", False, None),
    }


def test_version_needs_and_undefined_symbols(native_fixtures: FixtureSet) -> None:
    facts = read_facts(native_fixtures.libuseversioned)
    (need,) = [n for n in facts.version_needs if n.file == "libversioned.so.1"]
    assert {(v.name, v.hash, v.flags) for v in need.versions} == {
        ("VERS_1.0", elf_hash("VERS_1.0"), 0),
        ("VERS_2.0", elf_hash("VERS_2.0"), 0),
    }
    assert sorted(v.index for v in need.versions) == [2, 3]
    imported = {s for s in facts.symbols if s.name.startswith("vers_")}
    lib = "libversioned.so.1"
    assert imported == {
        Symbol("vers_func", False, "GLOBAL", "FUNC", "VERS_2.0", False, lib),
        Symbol("vers_new", False, "GLOBAL", "FUNC", "VERS_2.0", False, lib),
        Symbol("vers_other", False, "GLOBAL", "FUNC", "VERS_1.0", False, lib),
    }
    assert Symbol("use_versioned", True, "GLOBAL", "FUNC", None, False, None) in facts.symbols


def test_glibc_version_needs_of_an_executable(native_fixtures: FixtureSet) -> None:
    facts = read_facts(native_fixtures.hello_pie)
    (libc,) = facts.version_needs
    assert libc.file == "libc.so.6"
    assert {v.name for v in libc.versions} == {"GLIBC_2.2.5", "GLIBC_2.34"}
    printf = next(s for s in facts.symbols if s.name == "printf")
    assert printf == Symbol("printf", False, "GLOBAL", "FUNC", "GLIBC_2.2.5", False, "libc.so.6")


def test_weak_undefined_symbol(native_fixtures: FixtureSet) -> None:
    symbols = read_facts(native_fixtures.libweak).symbols
    assert Symbol("maybe_there", False, "WEAK", "NOTYPE", None, False, None) in symbols


def test_symbols_of_a_file_exporting_nothing(native_fixtures: FixtureSet) -> None:
    # A non-PIE executable's GNU hash table is empty: the count comes from relocations.
    names = [s.name for s in read_facts(native_fixtures.hello_nopie).symbols]
    assert sorted(names) == ["__gmon_start__", "__libc_start_main", "alpha_value", "printf"]


def test_x86_isa_level_from_gnu_property(native_fixtures: FixtureSet) -> None:
    if native_fixtures.libisa is None:
        pytest.skip(native_fixtures.problems["libisa"])
    facts = read_facts(native_fixtures.libisa)
    assert (facts.x86_isa_needed, facts.x86_isa_level) == (0b100, "v3")
    assert read_facts(native_fixtures.libalpha).x86_isa_level is None


@pytest.mark.parametrize(
    ("mask", "level"),
    [(None, None), (0, None), (0b1, "baseline"), (0b11, "v2"), (0b1011, "v4"), (0b10000, None)],
)
def test_isa_level_is_the_highest_known_bit(
    native_fixtures: FixtureSet, mask: int | None, level: str | None
) -> None:
    facts = dataclasses.replace(read_facts(native_fixtures.libgamma), x86_isa_needed=mask)
    assert facts.x86_isa_level == level


@pytest.mark.parametrize("field", ["noshdr", "noshdr_versioned", "stripped"])
def test_facts_do_not_depend_on_sections(native_fixtures: FixtureSet, field: str) -> None:
    original = {"noshdr": "libalpha", "noshdr_versioned": "libversioned"}.get(field, "libversioned")
    mangled = read_facts(getattr(native_fixtures, field))
    expected = read_facts(getattr(native_fixtures, original))
    assert dataclasses.replace(mangled, name=expected.name) == expected


def test_closed_file_keeps_computed_facts(native_fixtures: FixtureSet) -> None:
    elf = ElfFile.open(native_fixtures.libalpha)
    header = elf.header
    elf.close()
    assert elf.header is header
    with pytest.raises(ValueError, match="closed ElfFile"):
        _ = elf.dynamic


def test_buffer_and_mapped_file_agree(native_fixtures: FixtureSet) -> None:
    path = native_fixtures.libuseversioned
    from_buffer = facts_of(bytearray(path.read_bytes()), str(path))
    assert from_buffer == read_facts(path)


# --- other builds ----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["sysv", "both"])
def test_hash_styles_give_the_same_symbols(tmp_path: Path, style: str) -> None:
    script = f"-Wl,--version-script={CSRC / 'versioned.map'}"
    args = ["-shared", "-fPIC", str(CSRC / "versioned.c"), script]
    gnu = read_facts(gcc(tmp_path, "gnu.so", *args, "-Wl,--hash-style=gnu"))
    other = read_facts(gcc(tmp_path, f"{style}.so", *args, f"-Wl,--hash-style={style}"))
    assert len(other.symbols) == len(gnu.symbols) > 4
    assert set(other.symbols) == set(gnu.symbols)


def test_dynamic_flags(tmp_path: Path) -> None:
    lib = gcc(
        tmp_path, "libnow.so", "-shared", "-fPIC", str(CSRC / "gamma.c"), "-Wl,-z,now,-z,nodelete"
    )
    dynamic = read_facts(lib).dynamic
    assert dynamic is not None
    assert (dynamic.flags, dynamic.flags_1) == (0x8, 0x1 | 0x8)  # BIND_NOW; NOW|NODELETE


def test_i686_and_32_bit_property_alignment(tmp_path: Path) -> None:
    try:
        lib = gcc(
            tmp_path,
            "lib32.so",
            "-m32",
            "-nostdlib",
            "-shared",
            "-fPIC",
            str(CSRC / "gamma.c"),
            "-Wl,-z,x86-64-v2",
        )
    except subprocess.CalledProcessError:
        pytest.skip("gcc cannot build -m32 here")
    facts = read_facts(lib)
    assert (facts.header.elf_class, facts.header.arch) == (32, "i686")
    assert (facts.x86_isa_needed, facts.x86_isa_level) == (0b10, "v2")
    assert facts.symbols == (Symbol("gamma_value", True, "GLOBAL", "FUNC", None, False, None),)


def test_non_utf8_names_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "latin.c"
    src.write_text("int cafX_marker(void) { return 1; }\n")
    lib = gcc(tmp_path, "liblatin.so", "-shared", "-fPIC", str(src))
    data = lib.read_bytes().replace(b"cafX_marker", b"caf\xe9_marker")
    (symbol,) = [s for s in facts_of(data).symbols if s.name.startswith("caf")]
    assert symbol.name == "caf\udce9_marker"
    assert name_bytes(symbol.name) == b"caf\xe9_marker"


# --- other architectures ------------------------------------------------------------


CROSS_LAYOUT = {
    "aarch64": (64, "little"),
    "armv7l": (32, "little"),
    "ppc64le": (64, "little"),
    "ppc64": (64, "big"),
    "s390x": (64, "big"),
    "riscv64": (64, "little"),
}


def test_cross_built_files(cross_fixtures: FixtureSet) -> None:
    arch = cross_fixtures.toolchain.arch
    facts = read_facts(cross_fixtures.libuseversioned)
    header = facts.header
    assert (header.arch, header.arch_problem) == (arch, None)
    assert (header.elf_class, header.byte_order) == CROSS_LAYOUT[arch]
    lib = "libversioned.so.1"
    assert Symbol("vers_func", False, "GLOBAL", "FUNC", "VERS_2.0", False, lib) in facts.symbols
    assert Symbol("vers_other", False, "GLOBAL", "FUNC", "VERS_1.0", False, lib) in facts.symbols
    defs = read_facts(cross_fixtures.libversioned).version_defs
    assert [d.names for d in defs] == [(lib,), ("VERS_1.0",), ("VERS_2.0", "VERS_1.0")]
    noshdr = read_facts(cross_fixtures.noshdr_versioned)
    assert noshdr.symbols == read_facts(cross_fixtures.libversioned).symbols


def test_musl_interpreter_and_libc(musl_fixtures: FixtureSet) -> None:
    facts = read_facts(musl_fixtures.hello_pie)
    assert facts.interpreter == "/lib/ld-musl-x86_64.so.1"
    assert facts.dynamic is not None
    assert facts.dynamic.needed == ("libalpha.so.1", "libc.so")


def _patched_header(path: Path, machine: int | None = None, flags: int | None = None) -> bytes:
    data = bytearray(path.read_bytes())
    order = "<" if data[5] == 1 else ">"
    if machine is not None:
        struct.pack_into(order + "H", data, 18, machine)
    if flags is not None:
        struct.pack_into(order + "I", data, 0x24 if data[4] == 1 else 0x30, flags)
    return bytes(data)


def test_loongarch_machine(native_fixtures: FixtureSet) -> None:
    header = facts_of(_patched_header(native_fixtures.libgamma, machine=258)).header
    assert (header.arch, header.arch_problem) == ("loongarch64", None)


def test_unsupported_machine_has_a_reason(native_fixtures: FixtureSet) -> None:
    header = facts_of(_patched_header(native_fixtures.libgamma, machine=3)).header  # EM_386
    assert header.arch is None
    assert header.arch_problem is not None and "64-bit" in header.arch_problem


def test_arm_soft_float_is_unsupported(fixture_builder: Callable[..., FixtureSet]) -> None:
    armhf = fixture_builder(find_toolchain("armhf"))
    hard = read_facts(armhf.libgamma).header
    assert hard.arch == "armv7l" and hard.flags & 0x400
    soft = facts_of(_patched_header(armhf.libgamma, flags=0x05000200)).header
    assert soft.arch is None
    assert soft.arch_problem is not None and "soft-float" in soft.arch_problem


# --- laziness and foreign exceptions -------------------------------------------------


class RecordingSource:
    """A ByteSource over bytes that records the ranges read, and refuses some."""

    def __init__(self, data: bytes, refuse_from: int | None = None) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []
        self.refuse_from = refuse_from

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        if self.refuse_from is not None and offset + length > self.refuse_from:
            raise LookupError(f"range {offset}+{length} was not kept")
        self.reads.append((offset, length))
        return self.data[offset : offset + length]


def test_header_reads_only_the_header(native_fixtures: FixtureSet) -> None:
    source = RecordingSource(native_fixtures.libalpha.read_bytes())
    assert ElfFile(source, "libalpha").header.arch == "x86_64"
    assert source.reads == [(0, 16), (16, 48)]


def test_source_exceptions_propagate_untouched(native_fixtures: FixtureSet) -> None:
    data = native_fixtures.libalpha.read_bytes()
    (_, _, dyn_offset, _, _) = next(p for p in phdrs(data) if p[1] == PT_DYNAMIC)
    elf = ElfFile(RecordingSource(data, refuse_from=dyn_offset), "libalpha")
    assert elf.header.arch == "x86_64"
    with pytest.raises(LookupError, match="was not kept"):
        _ = elf.dynamic


# --- hostile input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "broken.so: not an ELF file: 0 bytes, shorter than the 16-byte ELF identification"),
        (b"PK\x03\x04" + bytes(60), r"not an ELF file: starts with b'PK\\x03\\x04'"),
        (b"\x7fELF\x03\x01\x01" + bytes(57), "invalid EI_CLASS 3 at offset 0x4"),
        (b"\x7fELF\x02\x00\x01" + bytes(57), "invalid EI_DATA 0 at offset 0x5"),
        (b"\x7fELF\x02\x01\x01" + bytes(20), "truncated ELF header: 27 bytes"),
    ],
)
def test_not_elf(data: bytes, message: str) -> None:
    with pytest.raises(ElfError, match=message):
        facts_of(data)


def test_wrong_byte_order_is_caught(native_fixtures: FixtureSet) -> None:
    data = bytearray(native_fixtures.libalpha.read_bytes())
    data[5] = 2  # claim big-endian
    with pytest.raises(ElfError, match=r"e_ehsize is 16384 .*wrong EI_CLASS or EI_DATA"):
        facts_of(data)


def _broken(fixtures: FixtureSet, field: str, edit: Callable[[bytearray], object]) -> bytearray:
    data = bytearray(getattr(fixtures, field).read_bytes())
    edit(data)
    return data


def _no_terminator(data: bytearray) -> None:
    soname = dyn_entry(data, DT_SONAME)[1]
    put(data, dyn_entry(data, DT_STRSZ)[0] + 8, "<Q", soname + 3)


def _loop_versym(data: bytearray) -> None:
    versym = file_offset(data, dyn_entry(data, DT_VERSYM)[1])
    put(data, versym + 2, "<H", 0x7FFF)


def _huge_nchain(data: bytearray) -> None:
    # Replace DT_HASH's value by DT_STRTAB's: its second word becomes the "nchain".
    at, _ = dyn_entry(data, DT_HASH)
    strtab = dyn_entry(data, DT_STRTAB)[1]
    put(data, at + 8, "<Q", strtab)
    put(data, file_offset(data, strtab) + 4, "<I", 0x7FFFFFFF)


def _broken_note(data: bytearray) -> None:
    (_, _, offset, _, _) = next(p for p in phdrs(data) if p[1] == PT_GNU_PROPERTY)
    put(data, offset + 4, "<I", 0x10000)  # descsz


def _interp_unterminated(data: bytearray) -> None:
    (_, _, offset, _, size) = next(p for p in phdrs(data) if p[1] == PT_INTERP)
    data[offset + size - 1] = ord("X")


def _strtab_unmapped(data: bytearray) -> None:
    put(data, dyn_entry(data, DT_STRTAB)[0] + 8, "<Q", 0x7FFF0000)


BROKEN = {
    "phentsize-zero": (
        "libalpha",
        lambda d: put(d, 0x36, "<H", 0),
        r"e_phentsize is 0, expected 56",
    ),
    "phnum-huge": (
        "libalpha",
        lambda d: put(d, 0x38, "<H", 0xFFFE),
        r"program header table at offset 0x40 \(65534 entries of 56 bytes\) does not fit",
    ),
    "phoff-outside": (
        "libalpha",
        lambda d: put(d, 0x20, "<Q", 1 << 40),
        r"program header table at offset 0x10000000000 .* does not fit",
    ),
    "needed-outside-strtab": (
        "libalpha",
        lambda d: put(d, dyn_entry(d, DT_NEEDED)[0] + 8, "<Q", 1 << 20),
        r"DT_NEEDED name at index 1048576 of the dynamic string table .* is outside the table",
    ),
    "string-without-terminator": (
        "libalpha",
        _no_terminator,
        r"DT_SONAME name at index \d+ .* is without a NUL terminator in the table",
    ),
    "syment-zero": (
        "libalpha",
        lambda d: put(d, dyn_entry(d, DT_SYMENT)[0] + 8, "<Q", 0),
        r"DT_SYMENT is 0, expected 24 for a 64-bit file",
    ),
    "verneednum-lies": (
        "libuseversioned",
        lambda d: put(d, dyn_entry(d, DT_VERNEEDNUM)[0] + 8, "<Q", 1 << 31),
        r"Verneed chain ends at address 0x[0-9a-f]+ after 1 of 2147483648 declared entries",
    ),
    "vn-cnt-lies": (
        "libuseversioned",
        lambda d: put(d, file_offset(d, dyn_entry(d, DT_VERNEED)[1]) + 2, "<H", 0xFFFF),
        r"Vernaux chain ends at address 0x[0-9a-f]+ after 2 of 65535 declared entries",
    ),
    "unknown-version-index": (
        "libuseversioned",
        _loop_versym,
        r"symbol 1 \('\w+'\) has version index 32767 \(DT_VERSYM entry at file offset "
        r"0x[0-9a-f]+\), which no version definition or need declares",
    ),
    "strtab-unmapped": (
        "libalpha",
        _strtab_unmapped,
        r"DT_STRTAB address 0x7fff0000 is not in the file data of any PT_LOAD",
    ),
    "interp-unterminated": (
        "hello_pie",
        _interp_unterminated,
        r"PT_INTERP at offset 0x[0-9a-f]+ is not NUL-terminated",
    ),
}


def imports_of(data: bytes | bytearray, name: str = "broken.so") -> ElfFacts:
    with ElfFile.from_buffer(data, name) as elf:
        return elf.facts("imports")


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("read", [facts_of, imports_of], ids=["all", "imports"])
def test_broken_structures(
    native_fixtures: FixtureSet, case: str, read: Callable[[bytearray], ElfFacts]
) -> None:
    field, edit, message = BROKEN[case]
    data = _broken(native_fixtures, field, edit)
    with pytest.raises(ElfError, match=f"^broken.so: {message}"):
        read(data)


# --- the "imports" symbol scope ----------------------------------------------------------


def _imports(symbols: tuple[Symbol, ...]) -> tuple[Symbol, ...]:
    return tuple(s for s in symbols if not s.defined or s.name.startswith("PyInit_"))


def test_imports_scope_is_the_undefined_and_pyinit_symbols(any_fixtures: FixtureSet) -> None:
    for path in any_fixtures.elf_files().values():
        full = read_facts(path)
        want = dataclasses.replace(full, symbols=_imports(full.symbols), symbol_scope="imports")
        with ElfFile.open(path) as elf:
            assert elf.facts("imports") == want, path
        with ElfFile.open(path) as elf:  # names already decoded: filtered, same result
            assert elf.symbols == full.symbols
            assert elf.facts("imports") == want, path
    ext = ElfFile.open(any_fixtures.ext).facts("imports")
    assert [s.name for s in ext.symbols if s.defined] == ["PyInit__demo"]
    assert any(not s.defined for s in ext.symbols)


def test_imports_scope_of_a_name_inside_a_longer_string(tmp_path: Path) -> None:
    """The linker merges "PyInit_x" into the tail of "_PyInit_x": found all the same."""
    src = tmp_path / "m.c"
    src.write_text("int _PyInit_x(void) { return 1; }\nint PyInit_x(void) { return 2; }\n")
    lib = gcc(tmp_path, "m.so", "-shared", "-fPIC", str(src))
    full = read_facts(lib)
    imports = ElfFile.open(lib).facts("imports").symbols
    assert imports == _imports(full.symbols)
    assert [s.name for s in imports if s.defined] == ["PyInit_x"]


def _last_defined(data: bytes | bytearray) -> int:
    """Table index (1-based) of the last defined dynamic symbol."""
    symbols = facts_of(data, "x.so").symbols
    return max(i for i, s in enumerate(symbols, 1) if s.defined)


def _defined_name_outside(data: bytearray) -> None:
    symtab = file_offset(data, dyn_entry(data, 6)[1])  # DT_SYMTAB
    put(data, symtab + 24 * _last_defined(data), "<I", 1 << 24)


def _defined_version_unknown(data: bytearray) -> None:
    versym = file_offset(data, dyn_entry(data, DT_VERSYM)[1])
    put(data, versym + 2 * _last_defined(data), "<H", 0x7FFE)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_defined_name_outside, r"symbol \d+ name at index 16777216 .* is outside the table"),
        (_defined_version_unknown, r"symbol \d+ \('\w+'\) has version index 32766"),
    ],
    ids=["name", "version"],
)
def test_imports_scope_checks_every_symbol(
    native_fixtures: FixtureSet, edit: Callable[[bytearray], None], message: str
) -> None:
    """A broken defined symbol is an error in both scopes, with the same message."""
    data = _broken(native_fixtures, "libuseversioned", edit)
    errors = []
    for read in (facts_of, imports_of):
        with pytest.raises(ElfError, match=f"^broken.so: {message}") as info:
            read(data)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_unknown_symbol_scope(native_fixtures: FixtureSet) -> None:
    with ElfFile.open(native_fixtures.libalpha) as elf, pytest.raises(ValueError, match="all"):
        elf.facts("exports")  # type: ignore[arg-type]


def test_huge_symbol_count(tmp_path: Path) -> None:
    lib = gcc(
        tmp_path, "sysv.so", "-shared", "-fPIC", str(CSRC / "gamma.c"), "-Wl,--hash-style=sysv"
    )
    data = bytearray(lib.read_bytes())
    _huge_nchain(data)
    with pytest.raises(ElfError, match=r"would hold 2147483647 symbols but its PT_LOAD"):
        facts_of(data)


def test_broken_property_note(native_fixtures: FixtureSet) -> None:
    if native_fixtures.libisa is None:
        pytest.skip(native_fixtures.problems["libisa"])
    data = _broken(native_fixtures, "libisa", _broken_note)
    with pytest.raises(ElfError, match=r"note at offset 0x[0-9a-f]+ .* runs past the end"):
        facts_of(data)


def test_truncated_before_the_dynamic_segment(native_fixtures: FixtureSet) -> None:
    data = native_fixtures.libalpha.read_bytes()
    (_, _, offset, _, _) = next(p for p in phdrs(data) if p[1] == PT_DYNAMIC)
    with pytest.raises(
        ElfError, match=rf"PT_DYNAMIC segment at offset {offset:#x} .* past the end"
    ):
        facts_of(data[: offset + 8])


def test_version_chain_loop_in_a_32_bit_file(fixture_builder: Callable[..., FixtureSet]) -> None:
    # 32-bit addresses wrap like C pointers: vna_next = 2**32 - 16 points one entry back.
    armhf = fixture_builder(find_toolchain("armhf"))
    data = bytearray(armhf.libuseversioned.read_bytes())
    phoff, phnum = struct.unpack_from("<I", data, 0x1C)[0], struct.unpack_from("<H", data, 0x2C)[0]
    loads, tags = [], {}
    for i in range(phnum):
        p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIIII", data, phoff + 32 * i)
        if p_type == PT_LOAD:
            loads.append((p_offset, p_vaddr, p_filesz))
        if p_type == PT_DYNAMIC:
            tags = dict(struct.iter_unpack("<iI", data[p_offset : p_offset + p_filesz]))
    addr = tags[DT_VERNEED]
    verneed = next(o + addr - v for o, v, size in loads if v <= addr < v + size)
    _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, verneed)
    assert (cnt, nxt) == (2, 0)  # the single Verneed entry: libversioned.so.1
    first = verneed + aux
    second = first + struct.unpack_from("<I", data, first + 12)[0]
    put(data, second + 12, "<I", (1 << 32) - (second - first))
    put(data, verneed + 2, "<H", 3)  # vn_cnt = 3, so the walk follows the loop
    with pytest.raises(ElfError, match=r"Vernaux chain loops back to address 0x[0-9a-f]+"):
        facts_of(data)
