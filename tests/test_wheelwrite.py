"""The wheel writer on real zip archives: raw copies, RECORD, order, modes, timestamps,
reproducibility, zip64, atomic output, and the errors a user can see."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manywheel.errors import EnvironmentProblem, InputError, UsageError
from manywheel.wheel import (
    MemberDigest,
    check_record,
    member_digests,
    parse_record,
    read_wheel,
)
from manywheel.wheelwrite import (
    CHUNK,
    DEFLATER,
    ZIP_MAX_EPOCH,
    ZIP_MIN_EPOCH,
    NewMember,
    Predeflater,
    WrittenWheel,
    available_deflaters,
    epoch_from_environment,
    get_deflater,
    newest_member_time,
    write_wheel,
)
from manywheel.zipread import ZipArchive
from wheelbuild import build_wheel, record_hash

DIST = "demo-1.0.dist-info"
RECORD = f"{DIST}/RECORD"
WHEEL = f"{DIST}/WHEEL"
NEW_WHEEL_TEXT = (
    "Wheel-Version: 1.0\nGenerator: manywheel (tests)\nRoot-Is-Purelib: false\n"
    "Tag: cp311-cp311-manylinux_2_17_x86_64\n"
)
EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC

# Members of the input wheel: (content, compress type, level, mode, date_time).
Spec = tuple[bytes, int, int, int, tuple[int, int, int, int, int, int]]


def _payload(seed: int, size: int) -> bytes:
    """Compressible but not trivial bytes (a repeated hash chain)."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 8
    return bytes(out[:size])


def _input_specs() -> dict[str, Spec]:
    """Members deflated by the standard zlib at level 1 or 9, or stored: a writer that
    recompressed them with its own deflater at level 6 would change their bytes."""
    when = (2021, 3, 4, 5, 6, 8)
    return {
        "demo/__init__.py": (b"VALUE = 1\n", zipfile.ZIP_DEFLATED, 9, 0o644, when),
        "demo/core.py": (_payload(1, 40_000), zipfile.ZIP_DEFLATED, 1, 0o600, when),
        "demo/_ext.so": (
            b"\x7fELF" + _payload(2, 30_000),
            zipfile.ZIP_DEFLATED,
            9,
            0o775,
            (2022, 6, 7, 8, 9, 10),
        ),
        "demo/data/blob.bin": (_payload(3, 5000), zipfile.ZIP_STORED, 0, 0o644, when),
        "demo/bin/tool": (b"#!/bin/sh\necho hi\n", zipfile.ZIP_DEFLATED, 6, 0o744, when),
        "demo/ünïcode.txt": ("grüße\n".encode(), zipfile.ZIP_DEFLATED, 6, 0o644, when),
        f"{DIST}/METADATA": (
            b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
            zipfile.ZIP_DEFLATED,
            6,
            0o644,
            when,
        ),
        f"{DIST}/WHEEL": (
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n",
            zipfile.ZIP_DEFLATED,
            6,
            0o644,
            when,
        ),
    }


def _make_input(directory: Path, specs: Mapping[str, Spec] | None = None) -> Path:
    """A wheel written by :mod:`zipfile` (with a directory entry and an extra-field-free
    but otherwise arbitrary layout), RECORD correct."""
    specs = _input_specs() if specs is None else specs
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-1.0-cp311-cp311-linux_x86_64.whl"
    lines = [f"{name},{record_hash(spec[0])},{len(spec[0])}" for name, spec in specs.items()]
    lines.append(f"{RECORD},,")
    record = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(path, "w") as zf:
        directory_entry = zipfile.ZipInfo("demo/", date_time=(2020, 1, 1, 0, 0, 0))
        directory_entry.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
        zf.writestr(directory_entry, b"")
        for name, (data, method, level, mode, when) in specs.items():
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = method
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data, compresslevel=level if method else None)
        info = zipfile.ZipInfo(RECORD, date_time=(2021, 3, 4, 5, 6, 8))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        zf.writestr(info, record)
    return path


def _write(
    source: Path,
    out_dir: Path,
    *,
    keep: Sequence[str] | None = None,
    replace: Mapping[str, NewMember] | None = None,
    add: Sequence[NewMember] = (),
    epoch: int = EPOCH,
    workers: int | None = None,
    known_digests: Mapping[str, MemberDigest] | None = None,
    force_zip64: bool = False,
    name: str | None = None,
    mkdir: bool = True,
) -> WrittenWheel:
    replace = {} if replace is None else replace
    if mkdir:
        out_dir.mkdir(exist_ok=True)
    with ZipArchive(source) as archive:
        if keep is None:
            keep = [
                m.name
                for m in archive.members
                if m.name not in (RECORD, WHEEL) and m.name not in replace
            ]
        return write_wheel(
            archive,
            out_dir / (name or "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
            keep=keep,
            replace=replace,
            add=add,
            wheel_file=(WHEEL, NEW_WHEEL_TEXT),
            record_path=RECORD,
            epoch=epoch,
            workers=workers,
            known_digests=known_digests,
            force_zip64=force_zip64,
        )


def _raw_bytes(path: Path, info: zipfile.ZipInfo) -> bytes:
    """A member's compressed bytes, found through its local header (APPNOTE 4.3.7)."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        assert header[:4] == b"PK\x03\x04"
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        return f.read(info.compress_size)


def _standard_changes() -> tuple[dict[str, NewMember], list[NewMember]]:
    replace = {"demo/__init__.py": NewMember("demo/__init__.py", b"VALUE = 2\n")}
    add = [
        NewMember("demo.libs/libfoo-1a2b3c4d.so.1", b"\x7fELF" + _payload(9, 70_000), True),
        NewMember("demo/added.txt", b"added\n"),
    ]
    return replace, add


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _make_input(tmp_path / "in")


@pytest.fixture
def written(source: Path, tmp_path: Path) -> WrittenWheel:
    replace, add = _standard_changes()
    return _write(source, tmp_path / "out", replace=replace, add=add)


# -- raw copies -----------------------------------------------------------------------


def test_kept_members_are_copied_raw(source: Path, written: WrittenWheel) -> None:
    with zipfile.ZipFile(source) as before, zipfile.ZipFile(written.path) as after:
        old = {i.filename: i for i in before.infolist()}
        new = {i.filename: i for i in after.infolist()}
        kept = [n for n in old if n not in (RECORD, WHEEL, "demo/__init__.py")]
        assert len(kept) == 7  # a directory, five files, METADATA
        for name in kept:
            a, b = old[name], new[name]
            assert (b.compress_type, b.CRC, b.compress_size, b.file_size) == (
                a.compress_type,
                a.CRC,
                a.compress_size,
                a.file_size,
            ), name
            assert _raw_bytes(written.path, b) == _raw_bytes(source, a), name
        # The stored member stayed stored, the level-1 member was not re-deflated.
        assert new["demo/data/blob.bin"].compress_type == zipfile.ZIP_STORED
        level6 = zlib.compressobj(6, zlib.DEFLATED, -15)
        core = _input_specs()["demo/core.py"][0]
        assert new["demo/core.py"].compress_size != len(level6.compress(core) + level6.flush())


def test_new_members_are_deflated_with_the_level(source: Path, tmp_path: Path) -> None:
    content = _payload(5, 300_000)
    add = [NewMember("demo/new.bin", content)]
    sizes = {}
    for level in (1, 9):
        (tmp_path / f"l{level}").mkdir()
        with ZipArchive(source) as archive:
            out = write_wheel(
                archive,
                tmp_path / f"l{level}" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
                keep=[m.name for m in archive.members if m.name not in (RECORD, WHEEL)],
                add=add,
                wheel_file=(WHEEL, NEW_WHEEL_TEXT),
                record_path=RECORD,
                epoch=EPOCH,
                compresslevel=level,
            )
        with zipfile.ZipFile(out.path) as zf:
            info = zf.getinfo("demo/new.bin")
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert zf.read(info) == content
            sizes[level] = info.compress_size
    assert sizes[9] < sizes[1] < len(content)


# -- readable, installable --------------------------------------------------------------


def test_output_reads_with_zipfile_and_zipread(source: Path, written: WrittenWheel) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zipfile", "-t", str(written.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _, add = _standard_changes()
    with zipfile.ZipFile(written.path) as zf:
        assert zf.testzip() is None
        assert zf.read("demo/__init__.py") == b"VALUE = 2\n"
        assert zf.read(WHEEL).decode() == NEW_WHEEL_TEXT
        for new in add:
            assert zf.read(new.path) == new.source
        with zipfile.ZipFile(source) as before:
            assert zf.read("demo/_ext.so") == before.read("demo/_ext.so")
    with ZipArchive(written.path) as archive:  # the strict reader accepts it too
        assert archive.read(archive.member("demo/added.txt")) == b"added\n"
    data = written.path.read_bytes()
    assert written.size == len(data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_pip_installs_a_rewritten_pure_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "in",
        {"tinypkg/__init__.py": b"ANSWER = 1\n", "tinypkg/util.py": b"def f():\n    return 3\n"},
        name="tinypkg",
        version="0.1",
        python_tag="py3",
        abi_tag="none",
        platform_tags=("any",),
        root_is_purelib=True,
    )
    dist = "tinypkg-0.1.dist-info"
    (tmp_path / "out").mkdir()
    with ZipArchive(wheel) as archive:
        out = write_wheel(
            archive,
            tmp_path / "out" / wheel.name,
            keep=["tinypkg/util.py", f"{dist}/METADATA"],
            replace={"tinypkg/__init__.py": NewMember("tinypkg/__init__.py", b"ANSWER = 42\n")},
            wheel_file=(
                f"{dist}/WHEEL",
                "Wheel-Version: 1.0\nGenerator: manywheel\nRoot-Is-Purelib: true\n"
                "Tag: py3-none-any\n",
            ),
            record_path=f"{dist}/RECORD",
            epoch=EPOCH,
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "--disable-pip-version-check",
            "install",
            "--no-index",
            "--no-deps",
            str(out.path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run(
        [
            str(python),
            "-c",
            "import tinypkg, tinypkg.util; print(tinypkg.ANSWER, tinypkg.util.f())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split() == ["42", "3"]


# -- RECORD -----------------------------------------------------------------------------


def test_record_is_correct_for_every_member(written: WrittenWheel) -> None:
    with ZipArchive(written.path) as archive:
        info = read_wheel(archive, written.path.name)
        digests = member_digests(archive, info.record)
        assert check_record(info.record, digests, RECORD) == ()
        rows = {e.path: e for e in info.record}
        files = [m.name for m in archive.members if not m.is_dir]
        assert list(rows) == files  # same order as the archive, directories left out
        assert all(e.hash_algorithm == "sha256" for p, e in rows.items() if p != RECORD)
        own = rows[RECORD]
        assert (own.hash_algorithm, own.hash_digest, own.size) == (None, None, None)
    with zipfile.ZipFile(written.path) as zf:
        assert zf.read(RECORD).decode().endswith(f"\n{RECORD},,\n")


def test_known_digests_are_used_instead_of_inflating(source: Path, tmp_path: Path) -> None:
    size = len(_input_specs()["demo/core.py"][0])
    known = {
        "demo/core.py": MemberDigest("trusted-digest", size),  # believed, not recomputed
        "demo/_ext.so": MemberDigest("wrong-size", 1),  # size disagrees: hashed again
        "demo/bin/tool": MemberDigest(None, 18),  # no sha256: hashed again
    }
    out = _write(source, tmp_path / "out", known_digests=known)
    with zipfile.ZipFile(out.path) as zf:
        rows = {e.path: e for e in parse_record(zf.read(RECORD).decode(), "RECORD")}
        assert rows["demo/core.py"].hash_digest == "trusted-digest"
        ext = zf.read("demo/_ext.so")
        assert f"sha256={rows['demo/_ext.so'].hash_digest}" == record_hash(ext)
        tool = zf.read("demo/bin/tool")
        assert f"sha256={rows['demo/bin/tool'].hash_digest}" == record_hash(tool)


# -- reproducibility --------------------------------------------------------------------


def test_two_runs_are_byte_identical(source: Path, tmp_path: Path) -> None:
    replace, add = _standard_changes()
    first = _write(source, tmp_path / "a", replace=replace, add=add)
    time.sleep(2.1)  # a writer that used the clock would now produce other timestamps
    second = _write(source, tmp_path / "b", replace=replace, add=add)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256


def test_output_does_not_depend_on_workers_order_or_time_zone(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = [NewMember(f"demo.libs/lib{i}.so", _payload(i, 3 * CHUNK // 2), True) for i in range(3)]
    reference = _write(source, tmp_path / "a", add=big, workers=1)
    with ZipArchive(source) as archive:
        names = [m.name for m in archive.members if m.name not in (RECORD, WHEEL)]
    shuffled = _write(source, tmp_path / "b", keep=names[::-1], add=big[::-1], workers=4)
    monkeypatch.setenv("TZ", "XYZ-12:45")  # POSIX form: needs no tzdata
    time.tzset()
    try:
        zoned = _write(source, tmp_path / "c", add=big, workers=2)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    expected = reference.path.read_bytes()
    assert shuffled.path.read_bytes() == expected
    assert zoned.path.read_bytes() == expected


def test_predeflated_members_give_the_same_bytes(source: Path, tmp_path: Path) -> None:
    """Members deflated ahead by a Predeflater (from several threads at once, any number
    of workers; repair's pipeline) are written as they are: the same wheel as when
    write_wheel deflates them itself. Options that differ are refused."""
    files = []
    for i in range(3):
        path = tmp_path / f"lib{i}.so"
        path.write_bytes(_payload(10 + i, 5 * CHUNK // 2 + i))
        files.append(NewMember(f"demo.libs/lib{i}.so", path, True))
    add = [*files, NewMember("demo/small.txt", b"small\n")]
    reference = _write(source, tmp_path / "a", add=add, workers=1)
    for workers in (1, 3):
        spool = tmp_path / f"spool{workers}"
        spool.mkdir()
        with Predeflater(spool, workers=workers) as deflater, ThreadPoolExecutor(2) as pool:
            ready = {done.member.path: done for done in pool.map(deflater.deflate, files)}
        out = tmp_path / f"b{workers}"
        out.mkdir()
        with ZipArchive(source) as archive:
            keep = [m.name for m in archive.members if m.name not in (RECORD, WHEEL)]
            written = write_wheel(
                archive,
                out / reference.path.name,
                keep=keep,
                add=add,
                wheel_file=(WHEEL, NEW_WHEEL_TEXT),
                record_path=RECORD,
                epoch=EPOCH,
                predeflated=ready,
            )
        assert written.path.read_bytes() == reference.path.read_bytes()
    with Predeflater(tmp_path, compresslevel=1) as deflater:
        other = deflater.deflate(files[0])
    with ZipArchive(source) as archive, pytest.raises(ValueError, match="other options"):
        write_wheel(
            archive,
            tmp_path / "c" / reference.path.name,
            keep=[],
            add=add,
            wheel_file=(WHEEL, NEW_WHEEL_TEXT),
            record_path=RECORD,
            epoch=EPOCH,
            predeflated={files[0].path: other},
        )


def _pigz_stream(content: bytes, level: int = 6) -> bytes:
    """The deflate scheme of docs/reproducibility.md, written out independently: CHUNK
    pieces, each deflated alone with the previous 32 KiB as preset dictionary, sync
    flushes between them, Z_FINISH at the end."""
    module = DEFLATER.module
    pieces = []
    count = max(1, -(-len(content) // CHUNK))
    for i in range(count):
        start = i * CHUNK
        zdict = content[max(0, start - 32768) : start]
        args = (level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
        c = module.compressobj(*args, zdict=zdict) if zdict else module.compressobj(*args)
        flush = zlib.Z_FINISH if i == count - 1 else zlib.Z_SYNC_FLUSH
        pieces.append(c.compress(content[start : start + CHUNK]) + c.flush(flush))
    return b"".join(pieces)


def test_big_members_are_deflated_in_pieces_in_parallel(source: Path, tmp_path: Path) -> None:
    """A member of several CHUNKs is deflated piece by piece (pigz's scheme), the pieces
    on several threads: same bytes whatever the number of workers, one valid deflate
    stream, and about the size of a single-stream deflate."""
    # Repeats that span chunk boundaries, so the preset dictionary matters.
    content = (_payload(3, 40_000) + _payload(4, 200_000)) * 22 + b"tail"
    assert len(content) > 5 * CHUNK
    member = "demo.libs/libbig.so"
    outputs = [
        _write(source, tmp_path / f"w{n}", add=[NewMember(member, content)], workers=n)
        for n in (1, 2, 3, 8)
    ]
    first = outputs[0].path.read_bytes()
    assert all(o.path.read_bytes() == first for o in outputs[1:])
    with zipfile.ZipFile(outputs[0].path) as zf:
        info = zf.getinfo(member)
        assert zf.read(member) == content
    raw = _raw_bytes(outputs[0].path, info)
    assert raw == _pigz_stream(content)
    assert zlib.decompress(raw, -15) == content
    single = DEFLATER.module.compressobj(6, zlib.DEFLATED, -15)
    whole = single.compress(content) + single.flush()
    assert len(raw) <= len(whole) * 1.01 + 64


def test_a_member_of_one_chunk_is_one_plain_deflate_stream(source: Path, tmp_path: Path) -> None:
    content = _payload(5, CHUNK - 1)
    out = _write(source, tmp_path / "o", add=[NewMember("demo/one.bin", content)], workers=2)
    with zipfile.ZipFile(out.path) as zf:
        raw = _raw_bytes(out.path, zf.getinfo("demo/one.bin"))
    single = DEFLATER.module.compressobj(6, zlib.DEFLATED, -15)
    assert raw == single.compress(content) + single.flush()


def test_bytes_and_file_sources_give_the_same_output(source: Path, tmp_path: Path) -> None:
    content = _payload(7, 2 * CHUNK + 12345)  # several CHUNK pieces, the last one short
    file = tmp_path / "libbar.so"
    file.write_bytes(content)
    from_bytes = _write(source, tmp_path / "a", add=[NewMember("demo.libs/libbar.so", content)])
    from_file = _write(source, tmp_path / "b", add=[NewMember("demo.libs/libbar.so", file)])
    assert from_bytes.path.read_bytes() == from_file.path.read_bytes()


def test_source_date_epoch_sets_every_timestamp_reproducibly(source: Path, tmp_path: Path) -> None:
    replace, add = _standard_changes()
    epochs = []
    for run in ("a", "b", "c"):
        environ = {"SOURCE_DATE_EPOCH": "1234567890" if run != "c" else "1600000000"}
        epoch = epoch_from_environment(environ, fallback=0)
        epochs.append(epoch)
        _write(source, tmp_path / run, replace=replace, add=add, epoch=epoch)
    assert epochs == [1234567890, 1234567890, 1600000000]
    outputs = {run: next((tmp_path / run).iterdir()) for run in "abc"}
    with zipfile.ZipFile(outputs["a"]) as zf:
        # 2009-02-13 23:31:30 UTC, whatever this machine's time zone.
        assert {i.date_time for i in zf.infolist()} == {(2009, 2, 13, 23, 31, 30)}
    with zipfile.ZipFile(outputs["c"]) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2020, 9, 13, 12, 26, 40)}
    assert outputs["a"].read_bytes() == outputs["b"].read_bytes()
    assert outputs["a"].read_bytes() != outputs["c"].read_bytes()


def test_without_source_date_epoch_the_newest_input_time_is_used(
    source: Path, tmp_path: Path
) -> None:
    with ZipArchive(source) as archive:
        newest = newest_member_time(archive)
    assert time.gmtime(newest)[:6] == (2022, 6, 7, 8, 9, 10)  # demo/_ext.so's time
    epoch = epoch_from_environment({}, fallback=newest)
    out = _write(source, tmp_path / "out", epoch=epoch)
    with zipfile.ZipFile(out.path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2022, 6, 7, 8, 9, 10)}


@pytest.mark.parametrize("value", ["abc", "12.5", "-5", " 123", "123 ", "1e9", "0x10", "١٢٣", "+7"])
def test_invalid_source_date_epoch_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        epoch_from_environment({"SOURCE_DATE_EPOCH": value}, fallback=EPOCH)
    message = str(caught.value)
    assert message == (
        f"SOURCE_DATE_EPOCH={value!r} is not valid: expected a non-negative decimal integer, "
        "the number of seconds since 1970-01-01 00:00:00 UTC (as date +%s prints)"
    )
    assert "\n" not in message


def test_source_date_epoch_is_clamped_to_the_zip_range() -> None:
    assert epoch_from_environment({"SOURCE_DATE_EPOCH": "0"}, 1) == ZIP_MIN_EPOCH
    assert epoch_from_environment({"SOURCE_DATE_EPOCH": "9" * 30}, 1) == ZIP_MAX_EPOCH
    assert epoch_from_environment({"SOURCE_DATE_EPOCH": ""}, EPOCH) == EPOCH  # empty: unset
    assert epoch_from_environment({}, 5) == ZIP_MIN_EPOCH
    assert time.gmtime(ZIP_MIN_EPOCH)[:6] == (1980, 1, 1, 0, 0, 0)
    assert time.gmtime(ZIP_MAX_EPOCH)[:6] == (2107, 12, 31, 23, 59, 58)


@given(st.integers(min_value=0, max_value=10**12))
def test_any_valid_epoch_lands_in_the_zip_range(seconds: int) -> None:
    epoch = epoch_from_environment({"SOURCE_DATE_EPOCH": str(seconds)}, fallback=0)
    assert ZIP_MIN_EPOCH <= epoch <= ZIP_MAX_EPOCH
    assert epoch == seconds or seconds < ZIP_MIN_EPOCH or seconds > ZIP_MAX_EPOCH


def test_extreme_epochs_are_written_exactly(source: Path, tmp_path: Path) -> None:
    for epoch, expected in ((ZIP_MIN_EPOCH, (1980, 1, 1, 0, 0, 0)), (ZIP_MAX_EPOCH, None)):
        out = _write(source, tmp_path / str(epoch), epoch=epoch)
        with zipfile.ZipFile(out.path) as zf:
            stamps = {i.date_time for i in zf.infolist()}
        assert stamps == {expected or (2107, 12, 31, 23, 59, 58)}


# -- layout -----------------------------------------------------------------------------


def test_entry_order(written: WrittenWheel) -> None:
    with zipfile.ZipFile(written.path) as zf:
        names = zf.namelist()
    assert names == [
        "demo.libs/libfoo-1a2b3c4d.so.1",
        "demo/",
        "demo/__init__.py",
        "demo/_ext.so",
        "demo/added.txt",
        "demo/bin/tool",
        "demo/core.py",
        "demo/data/blob.bin",
        "demo/ünïcode.txt",
        f"{DIST}/METADATA",
        f"{DIST}/WHEEL",
        RECORD,
    ]


def test_headers_are_normalized(written: WrittenWheel) -> None:
    expected_modes = {
        "demo/": stat.S_IFDIR | 0o755,
        "demo.libs/libfoo-1a2b3c4d.so.1": stat.S_IFREG | 0o755,  # added, executable
        "demo/_ext.so": stat.S_IFREG | 0o755,  # kept, was 0o775
        "demo/bin/tool": stat.S_IFREG | 0o755,  # kept, was 0o744
        "demo/core.py": stat.S_IFREG | 0o644,  # kept, was 0o600
    }
    with zipfile.ZipFile(written.path) as zf:
        for info in zf.infolist():
            mode = expected_modes.get(info.filename, stat.S_IFREG | 0o644)
            assert info.external_attr >> 16 == mode, info.filename
            assert info.external_attr & 0xFFFF == (0x10 if info.is_dir() else 0)
            assert info.create_system == 3
            assert info.create_version == 45
            assert info.extract_version == 20
            assert info.extra == b""
            assert info.comment == b""
            assert info.flag_bits == (0x800 if not info.filename.isascii() else 0)
            assert info.date_time == (2023, 11, 14, 22, 13, 20)
        assert zf.comment == b""


def test_replaced_member_keeps_its_executable_bit(source: Path, tmp_path: Path) -> None:
    replace = {"demo/_ext.so": NewMember("demo/_ext.so", b"\x7fELF patched")}
    out = _write(source, tmp_path / "out", replace=replace)
    with zipfile.ZipFile(out.path) as zf:
        assert zf.getinfo("demo/_ext.so").external_attr >> 16 == stat.S_IFREG | 0o755
        assert zf.read("demo/_ext.so") == b"\x7fELF patched"


def test_forced_zip64_is_read_by_zipfile_and_zipread(source: Path, tmp_path: Path) -> None:
    replace, add = _standard_changes()
    plain = _write(source, tmp_path / "plain", replace=replace, add=add)
    wide = _write(source, tmp_path / "wide", replace=replace, add=add, force_zip64=True)
    data = wide.path.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # APPNOTE 4.3.14, 4.3.15
    assert b"PK\x06\x06" not in plain.path.read_bytes()
    with zipfile.ZipFile(plain.path) as a, zipfile.ZipFile(wide.path) as b:
        assert b.testzip() is None
        assert a.namelist() == b.namelist()
        for x, y in zip(a.infolist(), b.infolist(), strict=True):
            assert y.extract_version == 45
            assert y.extra[:2] == b"\x01\x00"  # a zip64 extra field (APPNOTE 4.5.3)
            assert (x.CRC, x.compress_size, x.file_size) == (y.CRC, y.compress_size, y.file_size)
            assert a.read(x) == b.read(y)
    with ZipArchive(wide.path) as archive:
        info = read_wheel(archive, wide.path.name)
        assert check_record(info.record, member_digests(archive, info.record), RECORD) == ()


# -- failures ---------------------------------------------------------------------------


def _directory_listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_vanished_source_file_leaves_nothing(source: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    missing = tmp_path / "gone" / "libgone.so"
    with pytest.raises(InputError, match=r"libgone\.so: cannot read \(for demo\.libs/libgone"):
        _write(source, out_dir, add=[NewMember("demo.libs/libgone.so", missing)])
    assert _directory_listing(out_dir) == []


def test_a_failure_in_a_worker_leaves_the_old_output_untouched(
    source: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    target.write_bytes(b"previous wheel")
    big = [NewMember(f"demo.libs/lib{i}.so", _payload(i, 2 * CHUNK)) for i in range(3)]
    broken = NewMember("demo.libs/libzz.so", tmp_path / "nope.so")
    with pytest.raises(InputError):
        _write(source, out_dir, add=[*big, broken], workers=3)
    assert _directory_listing(out_dir) == [target.name]
    assert target.read_bytes() == b"previous wheel"


def test_an_existing_output_is_replaced(source: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    target.write_bytes(b"previous wheel")
    out = _write(source, out_dir)
    assert out.path == target
    assert _directory_listing(out_dir) == [target.name]
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_a_missing_output_directory_is_an_environment_problem(source: Path, tmp_path: Path) -> None:
    directory = tmp_path / "no" / "such"
    with pytest.raises(EnvironmentProblem) as caught:
        _write(source, directory, mkdir=False)
    assert str(caught.value) == (
        f"cannot write to {directory}: No such file or directory; choose another -w DIR"
    )
    assert caught.value.exit_code == 4


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores modes: use /sys)."""
    if os.geteuid() != 0:
        directory = tmp_path / "readonly"
        directory.mkdir()
        directory.chmod(0o555)
        return directory
    directory = Path("/sys")
    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return directory
    os.close(fd)  # pragma: no cover - a writable /sys: nothing to test with
    os.unlink(name)
    pytest.skip("no unwritable directory to test with")


def test_an_unwritable_output_directory_is_an_environment_problem(
    source: Path, tmp_path: Path
) -> None:
    directory = _unwritable_directory(tmp_path)
    try:
        with pytest.raises(EnvironmentProblem) as caught:
            _write(source, directory, mkdir=False)
    finally:
        if directory != Path("/sys"):
            directory.chmod(0o755)
    message = str(caught.value)
    assert message.startswith(f"cannot write to {directory}: ")
    assert message.endswith("; choose another -w DIR")
    assert "\n" not in message


def test_refuses_to_overwrite_the_input(source: Path) -> None:
    with pytest.raises(UsageError, match="refusing to overwrite the input wheel"):
        _write(source, source.parent, name=source.name)
    with zipfile.ZipFile(source) as zf:
        assert zf.testzip() is None


@pytest.mark.parametrize(
    ("keep", "replace", "add", "message"),
    [
        (["demo/core.py"], {"demo/core.py": NewMember("demo/core.py", b"")}, [], "twice"),
        ([], {}, [NewMember("x.py", b""), NewMember("x.py", b"")], "twice"),
        ([], {}, [NewMember(WHEEL, b"")], "twice"),
        ([], {}, [NewMember(RECORD, b"")], "twice"),
        (["demo/missing.py"], {}, [], "not a member"),
        ([], {"demo/missing.py": NewMember("demo/missing.py", b"")}, [], "not a member"),
        ([RECORD], {}, [], "generated"),
        ([WHEEL], {}, [], "generated"),
        ([], {}, [NewMember("../evil.py", b"")], "not a valid wheel member path"),
        ([], {}, [NewMember("/abs.py", b"")], "not a valid wheel member path"),
        ([], {}, [NewMember("dir/", b"")], "not a valid wheel member path"),
    ],
)
def test_programming_errors_are_value_errors(
    source: Path,
    tmp_path: Path,
    *,
    keep: list[str],
    replace: dict[str, NewMember],
    add: list[NewMember],
    message: str,
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ValueError, match=message):
        _write(source, out_dir, keep=keep, replace=replace, add=add)
    assert _directory_listing(out_dir) == []


# -- deflaters --------------------------------------------------------------------------


def test_deflater_choice() -> None:
    found = available_deflaters()
    assert "zlib" in found
    assert next(iter(found.values())) == DEFLATER
    assert get_deflater("zlib").identity == f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
    with pytest.raises(UsageError, match="deflater 'brotli' is not available here"):
        get_deflater("brotli")


def test_every_deflater_writes_a_valid_wheel(source: Path, tmp_path: Path) -> None:
    replace, add = _standard_changes()
    for name, deflater in available_deflaters().items():
        (tmp_path / name).mkdir()
        with ZipArchive(source) as archive:
            out = write_wheel(
                archive,
                tmp_path / name / "demo-1.0-cp311-cp311-linux_x86_64.whl",
                keep=[
                    m.name
                    for m in archive.members
                    if m.name not in (RECORD, WHEEL, "demo/__init__.py")
                ],
                replace=replace,
                add=add,
                wheel_file=(WHEEL, NEW_WHEEL_TEXT),
                record_path=RECORD,
                epoch=EPOCH,
                deflater=deflater,
            )
        with ZipArchive(out.path) as archive:
            info = read_wheel(archive, out.path.name)
            assert check_record(info.record, member_digests(archive, info.record), RECORD) == ()
