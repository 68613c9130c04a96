"""Hostile input: the ELF reader on corrupted files.

Property, for any bytes: ``ElfFile.from_buffer(data).facts()`` returns, or raises exactly
:class:`ElfError`. Never another exception, never longer than ``TIME_LIMIT`` seconds
(a SIGALRM watchdog turns a hang into a failure), never a traced-memory peak above
``memory_limit(len(data))``.

The corpus is mutated where it hurts: the mutations target the regions of each seed
file that the reader trusts (ELF header, program headers, dynamic segment, string and
symbol tables, hash and version tables, notes), located through the *original* file's
section headers with pyelftools, plus truncation at any point. Hypothesis runs
derandomized with a fixed number of examples, so the test is deterministic.
Hand-written cases pin the classic traps (chained-table loops, sizes past the end,
huge counts, unterminated strings).
"""

from __future__ import annotations

import io
import signal
import struct
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fixtures import (
    FixtureBuilder,
    compile_shared,
    cross_toolchains,
    musl_toolchain,
    native_toolchain,
)
from manywheel.elf import ElfFile
from manywheel.errors import ElfError

TIME_LIMIT = 2.0  # seconds per file: a 20 KB file takes about a millisecond
WATCHDOG = 10  # seconds before SIGALRM aborts a call that hangs
EXAMPLES_PER_SEED = 300


def memory_limit(size: int) -> int:
    """Peak traced allocation allowed for one file: generous, but not "trusted a count"."""
    return 8 * 1024 * 1024 + 64 * size


class Hang(BaseException):
    """Raised by the watchdog inside a call that ran past ``WATCHDOG`` seconds."""


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    def fire(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    error: ElfError | None
    elapsed: float
    peak: int


def read_all(data: bytes) -> Outcome:
    """Every fact of ``data`` under the watchdog and tracemalloc; only ElfError is caught."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    error: ElfError | None = None
    start = time.perf_counter()
    try:
        with watchdog(WATCHDOG), ElfFile.from_buffer(data, "mutant") as elf:
            facts = elf.facts()
            assert facts.x86_isa_level in {None, "baseline", "v2", "v3", "v4"}
            assert len(elf.program_headers) >= 0
    except ElfError as exc:
        error = exc
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        if not tracing:
            tracemalloc.stop()
    return Outcome(error=error, elapsed=elapsed, peak=peak)


def assert_survives(data: bytes) -> Outcome:
    outcome = read_all(data)
    assert outcome.elapsed < TIME_LIMIT, f"took {outcome.elapsed:.2f} s"
    limit = memory_limit(len(data))
    assert outcome.peak < limit, f"peak {outcome.peak} bytes > {limit} for {len(data)} bytes"
    if outcome.error is not None:
        assert str(outcome.error), "an ElfError must say what is wrong"
    return outcome


# --------------------------------------------------------------------------- seeds

REGION_SECTIONS = {
    ".dynamic": "dynamic",
    ".dynstr": "dynstr",
    ".dynsym": "dynsym",
    ".gnu.version": "versym",
    ".gnu.version_r": "verneed",
    ".gnu.version_d": "verdef",
    ".gnu.hash": "hash",
    ".hash": "hash",
    ".note.gnu.property": "notes",
    ".interp": "interp",
}


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    little: bool
    regions: tuple[tuple[str, int, int], ...]  # (kind, start, end)


def regions_of(data: bytes) -> tuple[tuple[str, int, int], ...]:
    """Where the reader's structures lie, from the file's own section headers."""
    elf = ELFFile(io.BytesIO(data))
    hdr = elf.header
    found = [
        ("ehdr", 0, hdr["e_ehsize"]),
        ("phdrs", hdr["e_phoff"], hdr["e_phoff"] + hdr["e_phnum"] * hdr["e_phentsize"]),
    ]
    for section in elf.iter_sections():
        kind = REGION_SECTIONS.get(section.name)
        if kind is not None and section["sh_type"] != "SHT_NOBITS" and section["sh_size"]:
            found.append((kind, section["sh_offset"], section["sh_offset"] + section["sh_size"]))
    return tuple(r for r in found if r[2] > r[1])


def make_seed(name: str, path: Path, layout_from: Path | None = None) -> Seed:
    data = path.read_bytes()
    # A copy without section headers has the original's layout.
    regions = regions_of((layout_from or path).read_bytes())
    return Seed(name=name, data=data, little=data[5] == 1, regions=regions)


def small_system_libs(count: int = 3) -> list[Path]:
    """A few small real libraries (deterministic: the smallest, by name on ties)."""
    libdir = Path("/lib") / "x86_64-linux-gnu"
    if not libdir.is_dir():
        return []
    candidates = []
    for path in sorted(libdir.glob("*.so.*")):
        if path.is_symlink() or not path.is_file():
            continue
        size = path.stat().st_size
        if 4096 < size < 64 * 1024 and path.read_bytes()[:4] == b"\x7fELF":
            candidates.append((size, path.name, path))
    return [p for _, _, p in sorted(candidates)[:count]]


SEED_NAMES = [
    "native-libversioned",
    "native-libuseversioned",
    "native-hello_pie",
    "native-hello_nopie",
    "native-libisa",
    "native-noshdr_versioned",
    "armhf-libuseversioned",
    "ppc64-libuseversioned",
    "s390x-hello_pie",
    "riscv64-libversioned",
    "musl-hello_pie",
    *(f"system-{p.name}" for p in small_system_libs()),
]


@pytest.fixture(scope="session")
def seeds(fixture_builder: FixtureBuilder) -> dict[str, Seed]:
    toolchains = {tc.name: tc for tc in [native_toolchain(), *cross_toolchains(), musl_toolchain()]}
    out: dict[str, Seed] = {}
    for seed_name in SEED_NAMES:
        kind, _, field = seed_name.partition("-")
        if kind == "system":
            path = Path("/lib/x86_64-linux-gnu") / field
            out[seed_name] = make_seed(seed_name, path)
            continue
        toolchain = toolchains[kind]
        if toolchain.missing is not None:
            continue
        fx = fixture_builder(toolchain)
        path = getattr(fx, field)
        layout = fx.libversioned if field == "noshdr_versioned" else None
        out[seed_name] = make_seed(seed_name, path, layout)
    return out


# --------------------------------------------------------------------------- mutations


def interesting_ints(size: int) -> list[int]:
    return [
        0,
        1,
        2,
        7,
        0x7F,
        0x80,
        0xFF,
        0x100,
        0x7FFF,
        0xFFFF,
        0x7FFFFFFF,
        0x80000000,
        0xFFFFFFFF,
        1 << 63,
        (1 << 64) - 1,
        size - 1,
        size,
        size + 1,
        size * 2,
    ]


@st.composite
def mutants(draw: st.DrawFn, seed: Seed) -> bytes:
    data = bytearray(seed.data)
    for _ in range(draw(st.integers(1, 6))):
        _kind, start, end = draw(st.sampled_from(seed.regions))
        pos = draw(st.integers(start, end - 1))
        how = draw(st.sampled_from(["byte", "flip", "int"]))
        if how == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif how == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        else:
            width = draw(st.sampled_from([2, 4, 8]))
            pos -= pos % width
            value = draw(st.sampled_from(interesting_ints(len(data)))) % (1 << (8 * width))
            order: Literal["little", "big"] = "little" if seed.little else "big"
            data[pos : pos + width] = value.to_bytes(width, order)[: len(data) - pos]
    if draw(st.integers(0, 3)) == 0:  # a quarter of the mutants are also truncated
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@pytest.mark.parametrize("seed_name", SEED_NAMES)
@settings(
    max_examples=EXAMPLES_PER_SEED,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_file(seeds: dict[str, Seed], seed_name: str, data: st.DataObject) -> None:
    if seed_name not in seeds:
        pytest.skip(f"toolchain for {seed_name} is not installed")
    seed = seeds[seed_name]
    outcome = assert_survives(data.draw(mutants(seed), label="mutant"))
    event("ElfError" if outcome.error is not None else "facts")


def test_seeds_are_valid(seeds: dict[str, Seed]) -> None:
    """The unmutated seeds read cleanly: otherwise the mutation test proves little."""
    assert len(seeds) >= 6
    for seed in seeds.values():
        assert read_all(seed.data).error is None, seed.name
        kinds = {kind for kind, _, _ in seed.regions}
        assert {"ehdr", "phdrs", "dynamic", "dynstr", "dynsym"} <= kinds, seed.name


@pytest.mark.parametrize("seed_name", SEED_NAMES[:4])
def test_every_truncation_point_of_the_headers(seeds: dict[str, Seed], seed_name: str) -> None:
    """Exhaustively: every prefix up to the end of the program headers is an ElfError."""
    seed = seeds[seed_name]
    phdrs_end = max(end for kind, _, end in seed.regions if kind == "phdrs")
    for cut in range(phdrs_end):
        outcome = assert_survives(seed.data[:cut])
        assert outcome.error is not None, f"{seed.name} cut at {cut} was accepted"


# --------------------------------------------------------------------------- by hand


@dataclass
class Patchable:
    """A fixture's bytes with helpers to rewrite its structures (via pyelftools offsets)."""

    data: bytearray

    def __post_init__(self) -> None:
        self.elf = ELFFile(io.BytesIO(bytes(self.data)))
        self.order = "<" if self.elf.little_endian else ">"
        self.word = "Q" if self.elf.elfclass == 64 else "I"

    def put(self, fmt: str, offset: int, *values: int) -> None:
        struct.pack_into(self.order + fmt, self.data, offset, *values)

    def get(self, fmt: str, offset: int) -> int:
        value: int = struct.unpack_from(self.order + fmt, self.data, offset)[0]
        return value

    def section_offset(self, name: str) -> int:
        section = self.elf.get_section_by_name(name)
        assert section is not None, name
        offset: int = section["sh_offset"]
        return offset

    def dyn_entries(self) -> list[tuple[int, str]]:
        """(file offset of d_val, tag name) of every dynamic entry."""
        seg = next(s for s in self.elf.iter_segments() if isinstance(s, DynamicSegment))
        size = struct.calcsize(self.word) * 2
        return [
            (seg["p_offset"] + i * size + size // 2, tag.entry.d_tag)
            for i, tag in enumerate(seg.iter_tags())
        ]

    def set_dyn(self, tag_name: str, value: int) -> None:
        hits = [off for off, name in self.dyn_entries() if name == tag_name]
        assert hits, f"no {tag_name}"
        for off in hits:
            self.put(self.word, off, value)

    def dyn(self, tag_name: str) -> int:
        off = next(off for off, name in self.dyn_entries() if name == tag_name)
        return self.get(self.word, off)

    def bytes(self) -> bytes:
        return bytes(self.data)


@pytest.fixture(scope="session")
def two_needs(fixture_builder: FixtureBuilder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with two Verneed entries (libversioned.so.1 and libc.so.6)."""
    fx = fixture_builder(native_toolchain())
    out = tmp_path_factory.mktemp("hostile") / "libtwoneeds.so"
    return compile_shared(fx.toolchain, ["twoneeds.c"], out, needed_libs=[fx.libversioned])


def patchable(path: Path) -> Patchable:
    return Patchable(bytearray(path.read_bytes()))


def expect_elf_error(data: bytes) -> ElfError:
    outcome = assert_survives(data)
    assert outcome.error is not None, "accepted a corrupt file"
    return outcome.error


def test_verneed_chain_points_back(two_needs: Path) -> None:
    p = patchable(two_needs)
    base = p.section_offset(".gnu.version_r")
    second = base + p.get("I", base + 12)  # first entry's vn_next
    p.put("I", second + 12, (base - second) & 0xFFFFFFFF)  # second entry: vn_next -> first
    p.set_dyn("DT_VERNEEDNUM", 0xFFFFFFFF)
    expect_elf_error(p.bytes())


def test_verneed_chain_with_count_too_large(two_needs: Path) -> None:
    p = patchable(two_needs)
    p.set_dyn("DT_VERNEEDNUM", 3)  # the chain ends (vn_next 0) after two entries
    expect_elf_error(p.bytes())


def test_vernaux_chain_points_back(seeds: dict[str, Seed]) -> None:
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    vn = p.section_offset(".gnu.version_r")
    aux0 = vn + p.get("I", vn + 8)
    aux1 = aux0 + p.get("I", aux0 + 12)
    p.put("I", aux1 + 12, (aux0 - aux1) & 0xFFFFFFFF)  # vna_next of the last -> first
    p.put("H", vn + 2, 0xFFFF)  # vn_cnt
    expect_elf_error(p.bytes())


def test_verdef_chain_points_back(seeds: dict[str, Seed]) -> None:
    p = Patchable(bytearray(seeds["native-libversioned"].data))
    vd = p.section_offset(".gnu.version_d")
    last = vd
    while (step := p.get("I", last + 16)) != 0:
        last += step
    assert last != vd
    p.put("I", last + 16, (vd - last) & 0xFFFFFFFF)
    p.set_dyn("DT_VERDEFNUM", 0xFFFF)
    expect_elf_error(p.bytes())


def test_verdef_self_loop_within_count(seeds: dict[str, Seed]) -> None:
    """vd_next = 0 on a non-last entry while DT_VERDEFNUM says more follow."""
    p = Patchable(bytearray(seeds["native-libversioned"].data))
    vd = p.section_offset(".gnu.version_d")
    p.put("I", vd + 16, 0)
    expect_elf_error(p.bytes())


def test_strsz_beyond_the_file(seeds: dict[str, Seed]) -> None:
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    p.set_dyn("DT_STRSZ", 1 << 40)
    expect_elf_error(p.bytes())


def test_needed_string_without_terminator(seeds: dict[str, Seed]) -> None:
    """DT_STRSZ ends inside the DT_NEEDED name: no NUL within the string table."""
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    needed_off = p.dyn("DT_NEEDED")
    p.set_dyn("DT_STRSZ", needed_off + 3)
    expect_elf_error(p.bytes())


def test_needed_string_running_off_the_end_of_the_file(seeds: dict[str, Seed]) -> None:
    """The file ends inside the DT_NEEDED name (truncated right after its first bytes)."""
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    strtab = p.section_offset(".dynstr")
    cut = strtab + p.dyn("DT_NEEDED") + 3
    expect_elf_error(p.bytes()[:cut])


@pytest.mark.parametrize("phnum", [0xFFFE, 0x1000])
def test_huge_phnum(seeds: dict[str, Seed], phnum: int) -> None:
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    p.put("H", 0x38, phnum)  # e_phnum (64-bit header)
    expect_elf_error(p.bytes())


def test_phnum_escape_pn_xnum(seeds: dict[str, Seed]) -> None:
    """e_phnum = PN_XNUM (0xffff): the count is sh_info of section header 0 (gABI)."""
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    p.put("H", 0x38, 0xFFFF)
    shoff = p.get("Q", 0x28)
    # sh_info of a normal section 0 is 0: a valid file with no program headers.
    with ElfFile.from_buffer(p.bytes(), "xnum") as elf:
        assert elf.program_headers == ()
        assert (elf.dynamic, elf.interpreter) == (None, None)
    p.put("I", shoff + 0x2C, 0x0FFFFFFF)  # sh_info of section 0: far too many
    expect_elf_error(p.bytes())
    p.put("Q", 0x28, len(p.data) + 64)  # and no section header 0 at all
    expect_elf_error(p.bytes())


def test_huge_phnum_32bit(seeds: dict[str, Seed]) -> None:
    if "armhf-libuseversioned" not in seeds:
        pytest.skip("arm-linux-gnueabihf-gcc not installed")
    p = Patchable(bytearray(seeds["armhf-libuseversioned"].data))
    p.put("H", 0x2C, 0xFFFE)  # e_phnum (32-bit header; 0xffff is PN_XNUM)
    expect_elf_error(p.bytes())


@pytest.mark.parametrize("syment", [0, 1, 23, 25, 0x1000000, (1 << 64) - 1])
def test_absurd_syment(seeds: dict[str, Seed], syment: int) -> None:
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    p.set_dyn("DT_SYMENT", syment)
    expect_elf_error(p.bytes())


def test_dynamic_segment_without_null_terminator(seeds: dict[str, Seed]) -> None:
    """Every dynamic entry rewritten to DT_DEBUG: no DT_NULL inside the segment."""
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    word = struct.calcsize(p.word)
    for off, _ in p.dyn_entries():
        p.put(p.word, off - word, 21)  # d_tag = DT_DEBUG
    assert_survives(p.bytes())  # an answer (no strings) or an ElfError, both fine


def test_symtab_address_outside_every_load(seeds: dict[str, Seed]) -> None:
    p = Patchable(bytearray(seeds["native-libuseversioned"].data))
    p.set_dyn("DT_SYMTAB", 0x7FFF_FFFF_0000)
    expect_elf_error(p.bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7f",
        b"\x7fELF",
        b"hello, world\n",
        b"#!/bin/sh\necho not an ELF file\n",
        b"PK\x03\x04" + bytes(60),
        b"\x7fELF\x03\x01\x01" + bytes(57),  # ELFCLASS 3
        b"\x7fELF\x02\x03\x01" + bytes(57),  # data encoding 3
        b"\x7fELF\x02\x01\x01" + bytes(57),  # all-zero 64-bit header
        bytes(4096),
    ],
    ids=[
        "empty",
        "1-byte",
        "magic-only",
        "text",
        "script",
        "zip",
        "bad-class",
        "bad-data",
        "zero-header",
        "zeros",
    ],
)
def test_not_elf(data: bytes) -> None:
    expect_elf_error(data)


def test_32bit_header_truncated_at_byte_20(seeds: dict[str, Seed]) -> None:
    if "armhf-libuseversioned" not in seeds:
        pytest.skip("arm-linux-gnueabihf-gcc not installed")
    expect_elf_error(seeds["armhf-libuseversioned"].data[:20])


def test_open_empty_and_non_elf_files(tmp_path: Path) -> None:
    """Through ElfFile.open (mmap) too: an empty file cannot even be mapped."""
    for name, content in [("empty", b""), ("text", b"not ELF at all\n"), ("magic", b"\x7fELF")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ElfError), ElfFile.open(path) as elf:
            elf.facts()


def test_watchdog_turns_a_hang_into_a_failure() -> None:
    """The harness itself: a call that never returns is stopped and reported."""
    start = time.perf_counter()
    with pytest.raises(Hang), watchdog(1):
        time.sleep(5)
    assert time.perf_counter() - start < 3
