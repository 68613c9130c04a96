"""The wheel archive layer: strict zip reading (zipread) and ELF facts streamed from members.

Zips are built with :mod:`zipfile` at test time; crafted corruptions patch their bytes.
ELF members are system libraries or the compiled session fixtures (``conftest.py``),
and their facts must equal those :class:`ElfFile` reads from the same file on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import os
import shutil
import stat
import struct
import subprocess
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import FixtureSet
from manywheel.archive import (
    DEFLATE_MAX_RATIO,
    ArchiveError,
    MemberFacts,
    MissingRange,
    SparseSource,
    ZipArchive,
    archive_facts,
    member_facts,
    wheel_elf_facts,
)
from manywheel.elf import ElfFacts, ElfFile
from manywheel.errors import InputError
from manywheel.memberfacts import _Pieces, scan_archive
from manywheel.zipread import WHOLE_INFLATER, WHOLE_MAX

LIBZ = Path("/lib/x86_64-linux-gnu/libz.so.1")
LIBSTDCXX = Path("/lib/x86_64-linux-gnu/libstdc++.so.6")
needs_system_libs = pytest.mark.skipif(
    not (LIBZ.exists() and LIBSTDCXX.exists()), reason="needs Debian's x86-64 libz and libstdc++"
)

STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
Entry = tuple[str, bytes, int]


def _inflaters() -> list[ModuleType]:
    found = [zlib]
    for name in ("zlib_ng.zlib_ng", "isal.isal_zlib"):
        with contextlib.suppress(ImportError):
            found.append(importlib.import_module(name))
    return found


INFLATERS = _inflaters()


def make_zip(path: Path, entries: Iterable[Entry]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we write
        with zipfile.ZipFile(path, "w") as zf:
            for name, data, method in entries:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, data)
    return path


def central_offset(data: bytes | bytearray, name: str) -> int:
    """Offset of the central directory header (APPNOTE 4.3.12) of ``name``."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == name.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"no central header for {name}")


def patch(path: Path, offset: int, fmt: str, *values: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


# (central header offset, local header offset) of the fields a lying archive changes in both
_FIELDS = {"crc": (16, 14), "csize": (20, 18), "usize": (24, 22)}


def patch_entry(path: Path, name: str, field: str, value: int) -> None:
    """Set a CRC or size field consistently in the central and the local header."""
    central = central_offset(path.read_bytes(), name)
    local = struct.unpack_from("<I", path.read_bytes(), central + 42)[0]
    in_central, in_local = _FIELDS[field]
    patch(path, central + in_central, "<I", value)
    patch(path, local + in_local, "<I", value)


def refusal(path: Path) -> str:
    with pytest.raises(ArchiveError) as info:
        ZipArchive(path).close()
    return str(info.value)


def same_facts(got: ElfFacts | None, path: Path) -> None:
    """``got`` equals the facts ElfFile reads from ``path`` on disk (names aside)."""
    assert got is not None
    want = ElfFile.open(path).facts()
    assert dataclasses.replace(got, name=want.name) == want


def one_facts(path: Path, **options: int) -> MemberFacts:
    with ZipArchive(path) as archive:
        result = member_facts(archive, archive.members[0], **options)
    assert result is not None
    return result


# -- members, content and raw bytes ---------------------------------------------------


def test_members_are_described(tmp_path: Path) -> None:
    data = os.urandom(3000) + bytes(5000)
    zpath = make_zip(tmp_path / "a.zip", [("pkg/", b"", STORED), ("pkg/x.bin", data, DEFLATED)])
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("pkg/x.bin")
    with ZipArchive(zpath) as archive:
        directory, member = archive.members
        assert directory.is_dir and not member.is_dir
        assert member.name == "pkg/x.bin"
        assert member.method == DEFLATED
        assert member.crc32 == zlib.crc32(data)
        assert member.file_size == len(data)
        assert member.compress_size == info.compress_size
        assert member.header_offset == info.header_offset
        assert member.mode == stat.S_IFREG | 0o644
        assert not member.is_symlink and not member.is_executable
        assert member.date_time == (2020, 1, 1, 0, 0, 0)
        assert archive.member("pkg/x.bin") == member


@pytest.mark.parametrize("inflater", INFLATERS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_content_in_chunks(tmp_path: Path, inflater: ModuleType, chunk: int) -> None:
    data = os.urandom(20_000) + bytes(50_000) + os.urandom(10)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED), ("s", data, STORED)])
    with ZipArchive(zpath, inflater=inflater) as archive:
        for member in archive.members:
            chunks = list(archive.iter_content(member, chunk))
            assert b"".join(chunks) == data
            assert max(map(len, chunks)) <= chunk
            assert archive.read_prefix(member, 5) == data[:5]


def test_raw_bytes_are_the_stored_bytes(tmp_path: Path) -> None:
    data = b"hello wheel " * 1000
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED), ("s", data, STORED)])
    with ZipArchive(zpath) as archive:
        deflated, stored = archive.members
        raw = b"".join(archive.iter_raw(deflated, 100))
        assert len(raw) == deflated.compress_size < len(data)
        assert zlib.decompress(raw, -15) == data
        assert archive.read_raw(stored) == data
        assert archive.read_raw(stored, 6, 5) == b"wheel"
        with pytest.raises(ValueError):
            archive.read_raw(stored, len(data) - 1, 2)


def test_zip64_structures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Force zipfile to write zip64 extra fields and end records (APPNOTE 4.3.14, 4.5.3)."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 64)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    data = os.urandom(1000)
    zpath = make_zip(tmp_path / "a.zip", [("a", data, DEFLATED), ("b", data, STORED)])
    raw = zpath.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw
    with ZipArchive(zpath) as archive:
        assert [archive.read(m) for m in archive.members] == [data, data]


# -- refusals ---------------------------------------------------------------------------


def test_not_a_zip(tmp_path: Path) -> None:
    for content in (b"", b"PK", os.urandom(5000)):
        path = tmp_path / "x.whl"
        path.write_bytes(content)
        assert "not a zip archive" in refusal(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        ZipArchive(tmp_path / "absent.whl")


def test_truncated_archive(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x" * 100, DEFLATED), ("b", b"y", STORED)])
    raw = zpath.read_bytes()
    zpath.write_bytes(raw[:-5])
    assert "not a zip archive" in refusal(zpath)
    # The end record survives but the central directory lost its first bytes.
    cd = central_offset(raw, "a")
    zpath.write_bytes(raw[:cd] + raw[cd + 10 :])
    assert "truncated or corrupt central directory" in refusal(zpath)


def test_wrong_entry_count(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x", STORED), ("b", b"y", STORED)])
    eocd = zpath.read_bytes().rfind(b"PK\x05\x06")
    patch(zpath, eocd + 8, "<HH", 3, 3)
    assert "2 entries, the end record says 3" in refusal(zpath)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.so", "'..' component"),
        ("pkg/../../evil.so", "'..' component"),
        ("/etc/passwd", "absolute path"),
        ("C:/evil.so", "absolute path"),
        ("pkg\\..\\evil.so", "backslash"),
        ("pkg//evil.so", "empty or '.' component"),
        ("./evil.so", "empty or '.' component"),
    ],
)
def test_bad_names(tmp_path: Path, name: str, message: str) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("ok", b"", STORED), (name, b"x", DEFLATED)])
    assert message in refusal(zpath)


def _refused(check: Callable[[], None]) -> str | None:
    try:
        check()
    except ArchiveError as exc:
        return str(exc)
    return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="ab/.\\\x00:C\n", min_size=0, max_size=8), min_size=1, max_size=6))
def test_names_checked_at_once_as_one_by_one(names: list[str]) -> None:
    """The whole-directory name check refuses exactly what the rules applied member by
    member refuse, first offender and message included (it skips them only when no name
    can break one)."""
    from manywheel.zipread import _check_name, _check_names

    def one_by_one() -> None:
        for name in names:
            _check_name(name, "w")

    got = _refused(lambda: _check_names(names, "w"))
    assert got == _refused(lambda: _names_in_member_order(names, "w"))
    if got is None:
        assert _refused(one_by_one) is None


def _names_in_member_order(names: list[str], label: str) -> None:
    """The rules as first written, member by member: what the fast check must match,
    first offender and message included."""
    from manywheel.zipread import _check_name

    seen: set[str] = set()
    directories: set[str] = set()
    for name in names:
        _check_name(name, label)
        if name in seen:
            raise ArchiveError(f"{label}: duplicate member name {name!r}")
        seen.add(name)
        directory = name[:-1] if name.endswith("/") else name.rpartition("/")[0]
        while directory and directory not in directories:
            directories.add(directory)
            directory = directory.rpartition("/")[0]
    for name in names:
        if not name.endswith("/") and name in directories:
            raise ArchiveError(f"{label}: {name!r} is both a file and a directory")


def test_duplicate_names(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a/b.so", b"1", STORED), ("a/b.so", b"2", STORED)])
    assert "duplicate member name 'a/b.so'" in refusal(zpath)


def test_file_and_directory_with_one_name(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"1", STORED), ("a/b", b"2", STORED)])
    assert "'a' is both a file and a directory" in refusal(zpath)


def test_symlink_entry(tmp_path: Path) -> None:
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        info = zipfile.ZipInfo("pkg/link.so")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    assert "symbolic links are not allowed" in refusal(zpath)


def test_special_file_entry(tmp_path: Path) -> None:
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        info = zipfile.ZipInfo("pkg/fifo")
        info.create_system = 3
        info.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(info, b"")
    assert "special file" in refusal(zpath)


@pytest.mark.parametrize(
    ("method", "label"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")]
)
def test_unsupported_method(tmp_path: Path, method: int, label: str) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x" * 100, method)])
    assert f"unsupported compression method {method} ({label})" in refusal(zpath)


def test_unicode_path_extra_field_naming_another_file(tmp_path: Path) -> None:
    def zip_with_unicode_path(unicode_name: str) -> Path:
        body = b"\x01" + struct.pack("<I", zlib.crc32(b"safe.txt")) + unicode_name.encode()
        info = zipfile.ZipInfo("safe.txt")
        info.extra = struct.pack("<HH", 0x7075, len(body)) + body
        zpath = tmp_path / f"{len(unicode_name)}.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            zf.writestr(info, b"x")
        return zpath

    with ZipArchive(zip_with_unicode_path("safe.txt")) as archive:
        assert archive.members[0].name == "safe.txt"
    assert "Unicode Path extra field names another file" in refusal(
        zip_with_unicode_path("../evil.txt")
    )


def test_truncated_extra_field(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("a")
    info.extra = struct.pack("<HH", 0xCAFE, 10) + b"abc"
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(info, b"x")
    assert "truncated extra field" in refusal(zpath)


def test_encrypted_member(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x", STORED)])
    patch(zpath, central_offset(zpath.read_bytes(), "a") + 8, "<H", 1)
    assert "encrypted members are not supported" in refusal(zpath)


def test_absurd_declared_size(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x" * 1000, DEFLATED)])
    cd = central_offset(zpath.read_bytes(), "a")
    csize = struct.unpack_from("<I", zpath.read_bytes(), cd + 20)[0]
    patch_entry(zpath, "a", "usize", csize * DEFLATE_MAX_RATIO + 1)
    assert f"more than deflate can produce ({DEFLATE_MAX_RATIO}:1)" in refusal(zpath)


def test_member_size_limit(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", bytes(10_000), DEFLATED)])
    with pytest.raises(ArchiveError, match="more than the limit of 9999"):
        ZipArchive(zpath, max_member_size=9999)


def test_stored_size_mismatch(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("a", b"x" * 10, STORED)])
    patch_entry(zpath, "a", "usize", 11)
    assert "stored member declares 11 bytes but holds 10" in refusal(zpath)


def test_local_header_disagrees(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("abc", b"x", STORED)])
    raw = bytearray(zpath.read_bytes())
    raw[30:33] = b"xyz"  # the name in the local header (APPNOTE 4.3.7) of the first member
    zpath.write_bytes(bytes(raw))
    assert "the local header names a different file" in refusal(zpath)


def test_local_header_sizes_disagree(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("abc", b"x" * 100, DEFLATED)])
    patch(zpath, 22, "<I", 5)  # the local header's uncompressed size
    assert "its local and central headers disagree" in refusal(zpath)


def test_data_descriptor_members(tmp_path: Path) -> None:
    """zipfile streaming to an unseekable file writes bit 3 and data descriptors."""
    buffer = io.BytesIO()

    class Unseekable(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            return buffer.write(data)

    with zipfile.ZipFile(Unseekable(), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a", b"hello" * 100)
        with zf.open("b", "w") as member:
            member.write(b"world" * 100)
    zpath = tmp_path / "a.zip"
    zpath.write_bytes(buffer.getvalue())
    with ZipArchive(zpath) as archive:
        assert any(m.flags & 0x8 for m in archive.members)
        assert [archive.read(m) for m in archive.members] == [b"hello" * 100, b"world" * 100]


def test_overlapping_members(tmp_path: Path) -> None:
    """Member 'b' lies inside the stored data of member 'a' (the overlapping-bomb trick)."""
    inner = io.BytesIO()
    make_zip(tmp_path / "inner.zip", [("b", b"payload", STORED)])
    inner_raw = (tmp_path / "inner.zip").read_bytes()
    inner.write(inner_raw[: inner_raw.find(b"PK\x01\x02")])  # b's local header and data
    zpath = make_zip(tmp_path / "a.zip", [("a", inner.getvalue(), STORED)])
    raw = zpath.read_bytes()
    cd = central_offset(raw, "a")
    a_central = raw[cd:]
    eocd = a_central.rfind(b"PK\x05\x06")
    b_central = bytearray(inner_raw[inner_raw.find(b"PK\x01\x02") : inner_raw.rfind(b"PK\x05\x06")])
    struct.pack_into("<I", b_central, 42, 30 + 1)  # b's local header: inside a's data
    central = a_central[:eocd] + bytes(b_central)
    end = bytearray(a_central[eocd:])
    struct.pack_into("<HHII", end, 8, 2, 2, len(central), cd)
    zpath.write_bytes(raw[:cd] + central + bytes(end))
    assert "members 'a' and 'b' overlap" in refusal(zpath)


def test_crc_mismatch(tmp_path: Path) -> None:
    data = os.urandom(5000)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED), ("s", data, STORED)])
    for name in ("d", "s"):
        patch_entry(zpath, name, "crc", zlib.crc32(data) ^ 1)
    with ZipArchive(zpath) as archive:
        for member in archive.members:
            with pytest.raises(ArchiveError, match=f"{member.name}: CRC-32 mismatch"):
                archive.read(member)
            # Reading a prefix is not a full read: no check, no error.
            assert archive.read_prefix(member, 10) == data[:10]


def test_stream_longer_than_declared(tmp_path: Path) -> None:
    data = os.urandom(5000)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED)])
    patch_entry(zpath, "d", "usize", 4000)
    with ZipArchive(zpath) as archive, pytest.raises(ArchiveError, match="more than the 4000"):
        archive.read(archive.members[0])


def test_stream_shorter_than_declared(tmp_path: Path) -> None:
    data = bytes(5000)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED)])
    patch_entry(zpath, "d", "usize", 6000)
    with ZipArchive(zpath) as archive, pytest.raises(ArchiveError, match="inflates to 5000 bytes"):
        archive.read(archive.members[0])


@pytest.mark.parametrize("inflater", INFLATERS, ids=lambda m: m.__name__)
def test_corrupt_deflate_data(tmp_path: Path, inflater: ModuleType) -> None:
    data = os.urandom(20_000)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED)])
    with ZipArchive(zpath) as archive:
        start, size = archive.members[0].data_offset, archive.members[0].compress_size
    raw = bytearray(zpath.read_bytes())
    raw[start : start + size] = b"\xff" * size  # block type 3: invalid (RFC 1951 3.2.3)
    zpath.write_bytes(bytes(raw))
    with (
        ZipArchive(zpath, inflater=inflater) as archive,
        pytest.raises(ArchiveError, match="corrupt deflate data"),
    ):
        archive.read(archive.members[0])


# -- ELF facts from members -------------------------------------------------------------


def _elf_files(native: FixtureSet) -> list[Path]:
    fixed = [native.libversioned, native.libuseversioned, native.libweak, native.ext]
    optional = [native.hello_pie, native.noshdr, native.libisa, native.static_exe]
    return [LIBZ, LIBSTDCXX, *fixed, *(path for path in optional if path is not None)]


@needs_system_libs
@pytest.mark.parametrize("method", [STORED, DEFLATED], ids=["stored", "deflated"])
def test_member_facts_equal_disk_facts(
    tmp_path: Path, native_fixtures: FixtureSet, method: int
) -> None:
    files = _elf_files(native_fixtures)
    entries = [(f"pkg/{i}/{path.name}", path.read_bytes(), method) for i, path in enumerate(files)]
    zpath = make_zip(tmp_path / "a.whl", [*entries, ("pkg/__init__.py", b"", method)])
    results = wheel_elf_facts(zpath)
    assert [r.name for r in results] == [name for name, _, _ in entries]
    for result, path in zip(results, files, strict=True):
        assert result.error is None
        same_facts(result.facts, path)
        assert result.passes == (0 if method == STORED else 1)


@needs_system_libs
def test_imports_scope_from_members(tmp_path: Path, native_fixtures: FixtureSet) -> None:
    """scan_archive(symbols="imports") gives what ElfFile.facts("imports") reads on disk."""
    files = _elf_files(native_fixtures)
    entries = [
        (f"pkg/{i}/{path.name}", path.read_bytes(), STORED if i % 2 else DEFLATED)
        for i, path in enumerate(files)
    ]
    zpath = make_zip(tmp_path / "a.whl", entries)
    with ZipArchive(zpath) as archive:
        results = scan_archive(archive, symbols="imports").facts
    for result, path in zip(results, files, strict=True):
        assert result.facts is not None
        want = ElfFile.open(path).facts("imports")
        assert dataclasses.replace(result.facts, name=want.name) == want


def test_big_endian_and_32_bit_members(tmp_path: Path, cross_fixtures: FixtureSet) -> None:
    path = cross_fixtures.libuseversioned
    zpath = make_zip(tmp_path / "a.whl", [("x.so", path.read_bytes(), DEFLATED)])
    same_facts(one_facts(zpath).facts, path)


@needs_system_libs
def test_inflating_stops_after_the_last_needed_byte(tmp_path: Path) -> None:
    """Bytes after PT_DYNAMIC (here 1 MiB of stand-in debug info) are never inflated."""
    zpath = make_zip(
        tmp_path / "a.whl", [("libz.so.1", LIBZ.read_bytes() + os.urandom(1 << 20), DEFLATED)]
    )
    result = one_facts(zpath, chunk_size=16384)
    same_facts(result.facts, LIBZ)
    assert result.passes == 1
    assert result.inflated < LIBZ.stat().st_size + 16384


@needs_system_libs
def test_separate_code_head_is_the_first_segment(tmp_path: Path) -> None:
    """With -z separate-code the head window shrinks to the read-only first PT_LOAD."""
    first_load = next(
        ph for ph in ElfFile.open(LIBSTDCXX).program_headers if ph.type == 1 and ph.offset == 0
    )
    assert not first_load.flags & 1  # Debian builds it with separate code
    zpath = make_zip(tmp_path / "a.whl", [("libstdc++.so.6", LIBSTDCXX.read_bytes(), DEFLATED)])
    result = one_facts(zpath, chunk_size=65536)
    same_facts(result.facts, LIBSTDCXX)
    assert result.kept < first_load.filesz + 2 * 65536


def test_non_separate_code_layout(tmp_path: Path) -> None:
    """One R+E PT_LOAD from offset 0, as in libtorch_cpu.so: the head window holds the tables."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "big.c"
    body = "\n".join(f"int function_{i}(int x) {{ return x * {i} + {i}; }}" for i in range(400))
    src.write_text(body + "\n")
    lib = tmp_path / "libbig.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", "-Wl,-z,noseparate-code", "-o", lib, src], check=True
    )
    loads = [ph for ph in ElfFile.open(lib).program_headers if ph.type == 1]
    assert loads[0].offset == 0 and loads[0].flags & 1
    zpath = make_zip(tmp_path / "a.whl", [("libbig.so", lib.read_bytes(), DEFLATED)])
    one = one_facts(zpath, chunk_size=4096)
    same_facts(one.facts, lib)
    assert one.facts is not None
    assert len(one.facts.symbols) >= 400


def test_tables_patchelf_moved_past_dynamic_are_kept_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """patchelf appends grown .dynstr/.dynsym in new PT_LOADs after PT_DYNAMIC: the first
    pass looks ahead once PT_DYNAMIC is kept and keeps them (one pass, not two), with and
    without hashing; the facts are those read from the file on disk."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    from manywheel import memberfacts
    from manywheel.patch import find_patchelf
    from manywheel.wheel import RecordHasher

    src = tmp_path / "big.c"
    body = "\n".join(f"int function_{i}(int x) {{ return x * {i} + {i}; }}" for i in range(400))
    # Over scan_archive's small-member size, so that it streams the member.
    pad = "__attribute__((used)) static const char pad[400000] = {1};\n"
    src.write_text(body + "\n" + pad)
    lib = tmp_path / "libbig.so"
    # A soname already there: .dynamic does not grow, so patchelf leaves it in place
    # and appends the grown .dynstr after it (the layout of a grafted libLLVM).
    command = ["gcc", "-shared", "-fPIC", "-O0", "-Wl,-soname,libbig.so.1", "-o", lib, src]
    subprocess.run(command, check=True)
    patchelf = find_patchelf({})
    subprocess.run([patchelf.path, "--set-soname", "libbig-" + "x" * 5000 + ".so", lib], check=True)
    dynamic_end = max(
        ph.offset + ph.filesz for ph in ElfFile.open(lib).program_headers if ph.type == 2
    )
    assert any(
        ph.type == 1 and ph.offset >= dynamic_end for ph in ElfFile.open(lib).program_headers
    )
    zpath = make_zip(tmp_path / "a.whl", [("libbig.so", lib.read_bytes(), DEFLATED)])
    one = one_facts(zpath, chunk_size=4096)
    same_facts(one.facts, lib)
    assert one.passes == 1
    # Streamed: a one-call inflater would read the whole member in one pass anyway.
    with ZipArchive(zpath, whole_inflater=False) as archive:
        scan = scan_archive(archive, RecordHasher, chunk_size=4096, symbols="imports")
        (hashed,) = scan.facts
        assert hashed.passes == 1 and hashed.error is None
        monkeypatch.setattr(memberfacts, "_tables_may_follow", lambda phdrs, size: None)
        assert one_facts(zpath, chunk_size=4096).passes == 2  # without looking ahead
        again = scan_archive(archive, RecordHasher, chunk_size=4096, symbols="imports")
        assert again.facts[0].facts == hashed.facts and again.facts[0].passes == 2


@needs_system_libs
@pytest.mark.parametrize("head_window", [64, 4096, 100_000])
def test_two_pass_when_tables_lie_beyond_the_head_window(tmp_path: Path, head_window: int) -> None:
    zpath = make_zip(tmp_path / "a.whl", [("libstdc++.so.6", LIBSTDCXX.read_bytes(), DEFLATED)])
    result = one_facts(zpath, head_window=head_window, chunk_size=4096)
    assert result.error is None
    same_facts(result.facts, LIBSTDCXX)
    assert result.passes >= 2
    assert result.kept < LIBSTDCXX.stat().st_size // 2


@needs_system_libs
def test_kept_bytes_are_limited(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.whl", [("libstdc++.so.6", LIBSTDCXX.read_bytes(), DEFLATED)])
    result = one_facts(zpath, head_window=4096, chunk_size=4096, max_kept=100_000)
    assert result.facts is None
    assert result.error is not None
    assert "more than the limit of 100000" in result.error


@needs_system_libs
def test_lying_segment_sizes_are_limited(tmp_path: Path) -> None:
    """A PT_NOTE claiming the whole file would be kept in pass 1: refused up front."""
    data = bytearray(LIBZ.read_bytes())
    phdrs = ElfFile.open(LIBZ).program_headers
    index = next(i for i, ph in enumerate(phdrs) if ph.type == 4)  # PT_NOTE
    entry = 64 + 56 * index  # Elf64_Ehdr size, Elf64_Phdr size (gABI)
    struct.pack_into("<QQQQ", data, entry + 8, 0, 0, 0, len(data))  # offset, vaddr, paddr, filesz
    zpath = make_zip(tmp_path / "a.whl", [("libz.so.1", bytes(data), DEFLATED)])
    result = one_facts(zpath, head_window=4096, chunk_size=4096, max_kept=50_000)
    assert result.error is not None
    assert "more than the limit of 50000" in result.error
    assert result.inflated < 50_000


def test_inconsistent_options(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.whl", [("a", b"x", STORED)])
    with ZipArchive(zpath) as archive, pytest.raises(ValueError, match="head_window"):
        archive_facts(archive, head_window=2 << 20, max_kept=1 << 20)


@needs_system_libs
def test_non_elf_members_are_skipped(tmp_path: Path) -> None:
    zpath = make_zip(
        tmp_path / "a.whl",
        [
            ("pkg/", b"", STORED),
            ("pkg/data.bin", b"\x7fEL", DEFLATED),
            ("pkg/text.py", b"print('hi')\n" * 1000, DEFLATED),
            ("pkg/libz.so.1", LIBZ.read_bytes(), DEFLATED),
        ],
    )
    with ZipArchive(zpath) as archive:
        assert [member_facts(archive, m) is None for m in archive.members] == [
            True,
            True,
            True,
            False,
        ]
        assert [r.name for r in archive_facts(archive)] == ["pkg/libz.so.1"]


@needs_system_libs
def test_malformed_members_are_reported_as_data(tmp_path: Path) -> None:
    good = LIBZ.read_bytes()
    bad_class = b"\x7fELF\x07" + good[5:]
    header = bytearray(good[:4096])
    struct.pack_into("<Q", header, 32, 1 << 40)  # e_phoff far beyond the end of the file
    zpath = make_zip(
        tmp_path / "a.whl",
        [
            ("a/bad_class.so", bad_class, DEFLATED),
            ("a/good.so", good, DEFLATED),
            ("a/truncated.so", good[:100], DEFLATED),
            ("a/bad_phoff.so", bytes(header), STORED),
            ("a/stored_truncated.so", good[:100], STORED),
        ],
    )
    results = wheel_elf_facts(zpath, workers=2)
    assert [r.name for r in results] == [
        "a/bad_class.so",
        "a/good.so",
        "a/truncated.so",
        "a/bad_phoff.so",
        "a/stored_truncated.so",
    ]
    assert [r.facts is None for r in results] == [True, False, True, True, True]
    for result in results:
        assert (result.error is None) == (result.facts is not None)
        if result.error is not None:
            assert result.error.startswith(result.name)
    same_facts(results[1].facts, LIBZ)


@needs_system_libs
def test_corrupt_elf_member_stream_raises(tmp_path: Path) -> None:
    """A CRC mismatch is archive-level corruption: it raises instead of being data."""
    zpath = make_zip(tmp_path / "a.whl", [("libz.so.1", LIBZ.read_bytes(), DEFLATED)])
    patch_entry(zpath, "libz.so.1", "crc", 0)
    with pytest.raises(ArchiveError, match="CRC-32 mismatch"):
        wheel_elf_facts(zpath)


@needs_system_libs
def test_results_do_not_depend_on_workers(tmp_path: Path) -> None:
    files = [LIBSTDCXX, LIBZ] * 3
    entries = [(f"m{i}.so", p.read_bytes(), (STORED, DEFLATED)[i % 2]) for i, p in enumerate(files)]
    zpath = make_zip(tmp_path / "a.whl", entries)
    serial = wheel_elf_facts(zpath, workers=1)
    assert wheel_elf_facts(zpath, workers=2) == serial == wheel_elf_facts(zpath, workers=4)
    assert [r.name for r in serial] == [name for name, _, _ in entries]


def test_sparse_source() -> None:
    source = SparseSource(100, [(0, b"abcd"), (50, bytearray(b"xyz"))])
    assert source.size == 100
    assert source.read(1, 3) == b"bcd"
    assert source.read(51, 2) == b"yz"
    with pytest.raises(MissingRange) as info:
        source.read(3, 2)
    assert (info.value.offset, info.value.length) == (3, 2)
    with pytest.raises(MissingRange):
        source.read(60, 1)
    with pytest.raises(InputError):  # ElfError: outside the file
        source.read(99, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)), max_size=12))
def test_kept_pieces_merge_to_the_union(ranges: list[tuple[int, int]]) -> None:
    """However streaming passes add ranges, the kept pieces are the disjoint union."""
    content = bytes(range(256)) * 2
    pieces = _Pieces()
    covered: set[int] = set()
    for start, length in ranges:
        pieces.add(start, memoryview(content)[start : start + length])
        covered.update(range(start, start + length))
    starts = [start for start, _ in pieces.items]
    assert starts == sorted(starts)
    for (s1, d1), (s2, _) in zip(pieces.items, pieces.items[1:], strict=False):
        assert s1 + len(d1) < s2  # neither overlapping nor touching
    kept = {s + i for s, d in pieces.items for i in range(len(d))}
    assert kept == covered
    for start, data in pieces.items:
        assert bytes(data) == content[start : start + len(data)]
    assert pieces.total == len(covered)


def test_closed_archive_refuses_reads(tmp_path: Path) -> None:
    """Contents come from positional reads on a descriptor: once closed, reading is an
    error (never a read from whatever file reused the descriptor's number)."""
    zpath = make_zip(tmp_path / "a.zip", [("x.bin", b"abc" * 1000, DEFLATED)])
    archive = ZipArchive(zpath)
    member = archive.members[0]
    assert archive.read(member) == b"abc" * 1000
    archive.close()
    archive.close()  # idempotent
    with pytest.raises(ValueError, match="closed archive"):
        archive.read(member)
    with pytest.raises(ValueError, match="closed archive"):
        archive.read_raw(member, 0, 4)


# -- whole members inflated in one call (libdeflate, the `fast` and `test` extras) ------------

needs_whole_inflater = pytest.mark.skipif(
    WHOLE_INFLATER is None, reason="needs the deflate package (libdeflate)"
)


def hand_made_zip(path: Path, compressed: bytes, crc: int, usize: int) -> Path:
    """One DEFLATED member ``d`` whose stored bytes are exactly ``compressed`` (APPNOTE
    4.3.7 local header, 4.3.12 central header, 4.3.16 end record), whatever they hold."""
    name = b"d"
    fields = (20, 0, 8, 0, 0x21, crc, len(compressed), usize, len(name), 0)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields) + name
    central = struct.pack(
        "<4sHH" + "HHHHIIIHHHHHII",
        b"PK\x01\x02",
        (3 << 8) | 20,
        *fields,
        0,
        0,
        0,
        (stat.S_IFREG | 0o644) << 16,
        0,
    )
    body = local + compressed
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central + name), len(body), 0)
    path.write_bytes(body + central + name + end)
    return path


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def read_both(path: Path) -> tuple[bytes | str, bytes | str]:
    """What streaming and one-call inflating make of the only member: bytes or the error."""
    outcomes: list[bytes | str] = []
    for whole in (False, True):
        with ZipArchive(path, whole_inflater=whole) as archive:
            try:
                outcomes.append(bytes(archive.read_whole(archive.members[0])))
            except ArchiveError as exc:
                outcomes.append(str(exc))
    return outcomes[0], outcomes[1]


@needs_whole_inflater
@pytest.mark.parametrize("size", [1, 7, 5000, 300_000])
def test_whole_member_equals_streamed_content(tmp_path: Path, size: int) -> None:
    data = (os.urandom(size // 2) + bytes(size))[:size]
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED), ("s", data, STORED)])
    with ZipArchive(zpath) as archive:
        assert archive.whole_inflater is WHOLE_INFLATER
        for member in archive.members:
            assert archive.read_whole(member) == data == archive.read(member)


@needs_whole_inflater
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("crc", 12345, "CRC-32 mismatch"),
        ("usize", 4000, "more than the 4000"),
        ("usize", 6000, "inflates to 5000 bytes"),
    ],
)
def test_whole_member_faults_are_named_as_when_streamed(
    tmp_path: Path, field: str, value: int, message: str
) -> None:
    zpath = make_zip(tmp_path / "a.zip", [("d", os.urandom(2500) + bytes(2500), DEFLATED)])
    patch_entry(zpath, "d", field, value)
    streamed, whole = read_both(zpath)
    assert isinstance(streamed, str) and message in streamed
    assert whole == streamed


@needs_whole_inflater
def test_whole_member_corrupt_stream_is_named_as_when_streamed(tmp_path: Path) -> None:
    data = os.urandom(20_000)
    compressed = b"\xff" * len(raw_deflate(data))  # block type 3: invalid (RFC 1951 3.2.3)
    streamed, whole = read_both(hand_made_zip(tmp_path / "a.zip", compressed, 0, len(data)))
    assert isinstance(streamed, str) and "corrupt deflate data" in streamed
    assert whole == streamed


@needs_whole_inflater
@pytest.mark.parametrize(
    "tail",
    [b"\x00", b"garbage", b"trailer", b"trailer+X", b"trailer*2"],
    ids=["1", "7", "trailer", "trailer-and-more", "trailer-twice"],
)
def test_whole_member_refuses_bytes_after_the_stream(tmp_path: Path, tail: bytes) -> None:
    """Bytes between the end of the deflate stream and the end of the member's data are
    refused both ways, also when they begin with the gzip trailer libdeflate is given
    (libdeflate would read it as the trailer and ignore the rest)."""
    data = os.urandom(3000) + bytes(3000)
    crc = zlib.crc32(data)
    own = struct.pack("<II", crc, len(data))
    tail = {b"trailer": own, b"trailer+X": own + b"X", b"trailer*2": own * 2}.get(tail, tail)
    zpath = hand_made_zip(tmp_path / "a.zip", raw_deflate(data) + tail, crc, len(data))
    streamed, whole = read_both(zpath)
    assert isinstance(streamed, str) and "data after the end of the deflate stream" in streamed
    assert whole == streamed


@needs_whole_inflater
def test_whole_member_limit(tmp_path: Path) -> None:
    """Members above WHOLE_MAX are streamed (memory stays bounded); the content is the same."""
    data = bytes(WHOLE_MAX + 1)
    zpath = make_zip(tmp_path / "a.zip", [("d", data, DEFLATED)])
    calls: list[int] = []

    class Counting:
        DeflateError = WHOLE_INFLATER.DeflateError  # type: ignore[union-attr]

        @staticmethod
        def gzip_decompress(framed: bytearray, size: int) -> bytearray:
            calls.append(size)
            return WHOLE_INFLATER.gzip_decompress(framed, size)  # type: ignore[union-attr,no-any-return]

    with ZipArchive(zpath, whole_inflater=Counting) as archive:  # type: ignore[arg-type]
        assert archive.read_whole(archive.members[0]) == data
        assert calls == []
    small = make_zip(tmp_path / "b.zip", [("d", data[:WHOLE_MAX], DEFLATED)])
    with ZipArchive(small, whole_inflater=Counting) as archive:  # type: ignore[arg-type]
        assert archive.read_whole(archive.members[0]) == data[:WHOLE_MAX]
        assert calls == [WHOLE_MAX]


@needs_whole_inflater
def test_a_lying_compressed_size_is_streamed_not_read_at_once(tmp_path: Path) -> None:
    """A member whose header claims far more compressed bytes than its content can need
    is not read whole (that would hold all of them in memory at once): it streams, and
    streaming names the fault."""
    junk = b"\xff" * (4 * 1024 * 1024)  # block type 3 from the first byte
    zpath = hand_made_zip(tmp_path / "a.zip", junk, 0, 100)
    calls: list[int] = []

    class Counting:
        DeflateError = WHOLE_INFLATER.DeflateError  # type: ignore[union-attr]

        @staticmethod
        def gzip_decompress(framed: bytearray, size: int) -> bytearray:
            calls.append(len(framed))
            return WHOLE_INFLATER.gzip_decompress(framed, size)  # type: ignore[union-attr,no-any-return]

    with (
        ZipArchive(zpath, whole_inflater=Counting) as archive,  # type: ignore[arg-type]
        pytest.raises(ArchiveError, match="corrupt deflate data"),
    ):
        archive.read_whole(archive.members[0])
    assert calls == []


@needs_system_libs
@needs_whole_inflater
def test_scan_facts_do_not_depend_on_the_inflater(
    tmp_path: Path, native_fixtures: FixtureSet
) -> None:
    """The audit's scan: the same facts and hashes whether members are inflated in one
    call or streamed; in one call, every ELF member is read in one whole pass."""
    from manywheel.wheel import RecordHasher

    files = _elf_files(native_fixtures)
    entries = [(f"m{i}.so", p.read_bytes(), DEFLATED) for i, p in enumerate(files)]
    zpath = make_zip(tmp_path / "a.whl", [*entries, ("x.txt", b"text\n", DEFLATED)])
    scans = []
    for whole in (False, True):
        with ZipArchive(zpath, whole_inflater=whole) as archive:
            scans.append(scan_archive(archive, RecordHasher, symbols="imports", workers=2))
    streamed, whole_scan = scans
    assert [m.facts for m in whole_scan.facts] == [m.facts for m in streamed.facts]
    assert {k: h.result() for k, h in whole_scan.hashes.items()} == {
        k: h.result() for k, h in streamed.hashes.items()
    }
    sizes = {name: len(data) for name, data, _ in entries}
    assert all(m.passes == 1 and m.inflated == sizes[m.name] for m in whole_scan.facts)
    with ZipArchive(zpath, whole_inflater=False) as archive:
        unhashed = scan_archive(archive, symbols="imports", workers=2).facts
    assert [m.facts for m in unhashed] == [m.facts for m in streamed.facts]
    assert any(m.inflated < sizes[m.name] for m in unhashed)  # streaming stops early


# -- the scan's pool of threads ------------------------------------------------------------


def test_pool_waits_for_tasks_a_joining_thread_runs() -> None:
    """finish() returns only once every task has run, those a thread that joined with
    work() took included (the early scan's thread works that way), and re-raises the
    first failure."""
    import threading
    import time

    from manywheel.memberfacts import _Pool

    done: list[int] = []
    started = threading.Event()

    def run(task: int) -> None:
        if task == 0:
            started.set()
            time.sleep(0.2)
        done.append(task)

    pool = _Pool(list(range(5)), run)
    helper = threading.Thread(target=pool.work)
    helper.start()
    started.wait()
    pool.finish()
    assert sorted(done) == [0, 1, 2, 3, 4]
    helper.join()

    def fail(task: int) -> None:
        if task == 2:
            raise ArchiveError("member 2 is corrupt")

    failing = _Pool(list(range(50)), fail)
    failing.start(2)
    with pytest.raises(ArchiveError, match="member 2 is corrupt"):
        failing.finish()


def test_whole_member_reads_share_a_memory_budget() -> None:
    """A second hold that would pass the budget waits for the first to end; one hold
    alone always passes, however big."""
    import threading

    from manywheel.memberfacts import _Budget

    budget = _Budget(150)
    order: list[str] = []
    first_in, second_tried = threading.Event(), threading.Event()

    def second() -> None:
        second_tried.set()
        with budget.hold(100):
            order.append("second in")

    with budget.hold(100):
        order.append("first in")
        first_in.set()
        thread = threading.Thread(target=second)
        thread.start()
        second_tried.wait()
        thread.join(0.2)
        assert thread.is_alive()  # waiting: 100 + 100 > 150
        order.append("first out")
    thread.join()
    assert order == ["first in", "first out", "second in"]
    with budget.hold(10_000):  # alone: never blocked
        pass
