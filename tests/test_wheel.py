"""Tests of manywheel.wheel: filename, WHEEL, dist-info, RECORD and their cross-checks.

Wheels are real zip files written with :mod:`zipfile` at test time (and one built by
``pip wheel`` from a tiny setuptools project), read back through ZipArchive.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manywheel.errors import InputError
from manywheel.report import WheelIdentity
from manywheel.wheel import (
    MemberDigest,
    RecordEntry,
    RecordHasher,
    check_record,
    check_tags,
    find_dist_info,
    format_record,
    hash_member,
    member_digests,
    parse_record,
    parse_wheel_filename,
    parse_wheel_metadata,
    purelib_note,
    read_wheel,
    record_algorithms,
    record_hash,
)
from manywheel.zipread import ZipArchive

RECORD = "foo-1.0.dist-info/RECORD"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sha256(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def record_line(path: str, data: bytes) -> str:
    return f"{path},sha256={sha256(data)},{len(data)}\n"


WHEEL_TEXT = (
    "Wheel-Version: 1.0\n"
    "Generator: handmade 1\n"
    "Root-Is-Purelib: false\n"
    "Tag: cp311-cp311-linux_x86_64\n"
)


def write_wheel(
    path: Path,
    files: dict[str, bytes],
    *,
    dist_info: str = "foo-1.0.dist-info",
    wheel_text: str = WHEEL_TEXT,
    record: str | bytes | None = None,
    with_wheel: bool = True,
    with_record: bool = True,
) -> Path:
    """A wheel at ``path`` holding ``files``, WHEEL and a correct RECORD (unless given)."""
    contents = dict(files)
    if with_wheel:
        contents[f"{dist_info}/WHEEL"] = wheel_text.encode()
    if record is None:
        record = "".join(record_line(p, d) for p, d in contents.items())
        record += f"{dist_info}/RECORD,,\n"
    if with_record:
        contents[f"{dist_info}/RECORD"] = record.encode() if isinstance(record, str) else record
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def identity(
    filename_tags: tuple[str, ...],
    wheel_tags: tuple[str, ...],
    *,
    purelib: bool = False,
) -> WheelIdentity:
    platforms = tuple(dict.fromkeys(t.rsplit("-", 1)[1] for t in filename_tags))
    return WheelIdentity(
        filename="foo-1.0-x.whl",
        name="foo",
        version="1.0",
        build=None,
        filename_tags=filename_tags,
        wheel_tags=wheel_tags,
        platform_tags=platforms,
        root_is_purelib=purelib,
        pure=False,
    )


# -- filename ------------------------------------------------------------------------------


def test_filename_without_build() -> None:
    assert parse_wheel_filename("foo-1.0-cp311-cp311-linux_x86_64.whl") == (
        "foo",
        "1.0",
        None,
        ("cp311-cp311-linux_x86_64",),
    )


def test_filename_with_build_keeps_spelling() -> None:
    assert parse_wheel_filename("/some/dir/Foo_Bar-01.0-7abc-py3-none-any.whl") == (
        "Foo_Bar",
        "01.0",
        "7abc",
        ("py3-none-any",),
    )


def test_compressed_tag_set_expands_in_written_order() -> None:
    name = "foo-1.0-cp39.cp310-abi3.none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert parse_wheel_filename(name)[3] == (
        "cp39-abi3-manylinux_2_17_x86_64",
        "cp39-abi3-manylinux2014_x86_64",
        "cp39-none-manylinux_2_17_x86_64",
        "cp39-none-manylinux2014_x86_64",
        "cp310-abi3-manylinux_2_17_x86_64",
        "cp310-abi3-manylinux2014_x86_64",
        "cp310-none-manylinux_2_17_x86_64",
        "cp310-none-manylinux2014_x86_64",
    )


def test_repeated_compressed_tags_appear_once() -> None:
    assert parse_wheel_filename("foo-1.0-py3.py3-none-any.whl")[3] == ("py3-none-any",)


@pytest.mark.parametrize(
    "name",
    [
        "foo-1.0.tar.gz",
        "foo-1.0-py3-none.whl",
        "foo-bar-1.0-py3-none-any.whl",
        "foo-1.0-x-py3-none-any.whl",
        "foo-1.0-1-2-py3-none-any.whl",
        "foo-not_a_version-py3-none-any.whl",
    ],
)
def test_bad_filenames(name: str) -> None:
    with pytest.raises(InputError) as info:
        parse_wheel_filename(name)
    message = str(info.value)
    assert message.startswith(
        f"{name}: not a wheel filename "
        "(PEP 427: {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl): "
    )
    assert "\n" not in message


# -- WHEEL ---------------------------------------------------------------------------------


def test_wheel_metadata_all_fields_and_tags_in_order() -> None:
    meta = parse_wheel_metadata(
        "Wheel-Version: 1.0\n"
        "Generator: bdist_wheel (0.42.0)\n"
        "Root-Is-Purelib: False\n"
        "Tag: cp310-cp310-manylinux_2_17_x86_64\n"
        "Tag: cp310-cp310-manylinux2014_x86_64\n"
        "Build: 3\n",
        "x.whl: foo-1.0.dist-info/WHEEL",
    )
    assert meta.wheel_version == "1.0"
    assert meta.version_tuple == (1, 0)
    assert meta.generator == "bdist_wheel (0.42.0)"
    assert meta.root_is_purelib is False
    assert meta.tags == ("cp310-cp310-manylinux_2_17_x86_64", "cp310-cp310-manylinux2014_x86_64")
    assert meta.build == "3"
    assert meta.notes == ()


def test_wheel_metadata_purelib_true() -> None:
    meta = parse_wheel_metadata("Wheel-Version: 1.0\nRoot-Is-Purelib: true\n", "W")
    assert meta.root_is_purelib is True
    assert meta.tags == ()
    assert meta.generator is None
    assert meta.build is None


def test_wheel_metadata_missing_version() -> None:
    with pytest.raises(InputError, match=r"^W: no Wheel-Version header \(PEP 427 requires one\)$"):
        parse_wheel_metadata("Root-Is-Purelib: true\nTag: py3-none-any\n", "W")


def test_wheel_metadata_major_2_is_refused() -> None:
    with pytest.raises(InputError, match=r"^W: Wheel-Version 2\.0 is not supported"):
        parse_wheel_metadata("Wheel-Version: 2.0\nRoot-Is-Purelib: true\n", "W")


def test_wheel_metadata_newer_minor_is_a_note() -> None:
    meta = parse_wheel_metadata("Wheel-Version: 1.9\nRoot-Is-Purelib: true\n", "W")
    assert meta.notes == ("W: Wheel-Version 1.9 is newer than 1.0; read as 1.0 (PEP 427: warn)",)


@pytest.mark.parametrize("value", ["one", "1", "1.0.0", ""])
def test_wheel_metadata_malformed_version(value: str) -> None:
    with pytest.raises(InputError, match="Wheel-Version"):
        parse_wheel_metadata(f"Wheel-Version: {value}\n", "W")


def test_wheel_metadata_odd_purelib_notes() -> None:
    missing = parse_wheel_metadata("Wheel-Version: 1.0\n", "W")
    assert missing.root_is_purelib is False
    assert missing.notes == ("W: no Root-Is-Purelib header; taken as false",)
    odd = parse_wheel_metadata("Wheel-Version: 1.0\nRoot-Is-Purelib: yes\n", "W")
    assert odd.notes == ("W: Root-Is-Purelib is 'yes', neither true nor false; taken as false",)


# -- dist-info -----------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ["foo_bar-1.0.dist-info", "foo-bar-1.0.dist-info"])
def test_dist_info_name_normalization(directory: str) -> None:
    names = ["foo_bar/__init__.py", f"{directory}/WHEEL", f"{directory}/RECORD"]
    assert find_dist_info(names, "Foo_Bar", "1.0") == directory


def test_dist_info_version_normalization() -> None:
    names = ["Foo.Bar-1.0.0.dist-info/RECORD"]
    assert find_dist_info(names, "foo_bar", "1.0") == "Foo.Bar-1.0.0.dist-info"


def test_two_dist_info_dirs() -> None:
    names = ["foo-1.0.dist-info/RECORD", "bar-2.0.dist-info/RECORD", "foo/x.py"]
    with pytest.raises(InputError) as info:
        find_dist_info(names, "foo", "1.0", source="foo-1.0-py3-none-any.whl")
    assert str(info.value) == (
        "foo-1.0-py3-none-any.whl: expected one .dist-info directory (foo-1.0.dist-info), "
        "found 2: foo-1.0.dist-info, bar-2.0.dist-info"
    )


def test_no_dist_info_dir() -> None:
    with pytest.raises(InputError, match=r"found 0: none$"):
        find_dist_info(["foo/x.py", "pkg/sub.dist-info/x"], "foo", "1.0")


@pytest.mark.parametrize("directory", ["bar-1.0.dist-info", "foo-1.1.dist-info", "foo.dist-info"])
def test_dist_info_of_another_project(directory: str) -> None:
    with pytest.raises(InputError, match=r"does not match the filename's foo 1\.0"):
        find_dist_info([f"{directory}/RECORD"], "foo", "1.0")


# -- RECORD parsing ------------------------------------------------------------------------


def test_record_quoted_commas_and_empty_fields() -> None:
    text = (
        "foo/a,b.py,sha256=AAAA,12\r\n"
        '"foo/c,d.py",sha256=BBBB,3\n'
        '"foo/say ""hi"".txt",sha512=CCCC,0\n'
        "\n"
        "foo-1.0.dist-info/RECORD,,\n"
    )
    # the first row is unquoted, so its comma splits it into 4 fields: refused
    with pytest.raises(InputError, match=r"^R: line 1: expected 3 fields"):
        parse_record(text, "R")
    entries = parse_record(text.split("\n", 1)[1], "R")
    assert entries == (
        RecordEntry("foo/c,d.py", "sha256", "BBBB", 3, 1),
        RecordEntry('foo/say "hi".txt', "sha512", "CCCC", 0, 2),
        RecordEntry("foo-1.0.dist-info/RECORD", None, None, None, 4),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,sha256=x,1\nb,sha256=y\n", "R: line 2: expected 3 fields (path,hash,size), found 2"),
        ("a,sha256=x,1,\n", "R: line 1: expected 3 fields (path,hash,size), found 4"),
        ("a,sha256=x,1\nb,sha256=y,-1\n", "R: line 2: size '-1' is not a non-negative integer"),
        ("a,sha256=x,1\n\nb,sha256=y,1k\n", "R: line 3: size '1k' is not a non-negative integer"),
        ("a,sha256,1\n", "R: line 1: hash 'sha256' is not of the form algorithm=digest"),
        ("a,=abc,1\n", "R: line 1: hash '=abc' is not of the form algorithm=digest"),
        (",sha256=x,1\n", "R: line 1: empty path"),
        ('a,sha256=x,1\n"b,sha256=y,1\n', "R: line 2: malformed CSV"),
    ],
)
def test_record_malformed_rows(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_record(text, "R")
    assert str(info.value).startswith(message)


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
            st.one_of(st.none(), st.integers(0, 2**40)),
        ),
        max_size=8,
    )
)
def test_format_record_round_trips(rows: list[tuple[str, int | None]]) -> None:
    entries = tuple(
        RecordEntry(path, "sha256", "abc-_", size, i + 1) for i, (path, size) in enumerate(rows)
    )
    assert parse_record(format_record(entries), "R") == entries


# -- hashing -------------------------------------------------------------------------------


def test_record_hash_and_streaming_agree() -> None:
    data = b"hello wheel\n" * 1000
    whole = record_hash(data, ["sha512"])
    assert whole.sha256 == sha256(data)
    assert whole.size == len(data)
    assert whole.digest("sha512") == b64(hashlib.sha512(data).digest())
    assert whole.digest("blake2b") is None
    hasher = RecordHasher(["SHA512"])
    for i in range(0, len(data), 777):
        hasher.update(memoryview(data)[i : i + 777])
    assert hasher.result() == whole
    with pytest.raises(ValueError, match="md5"):
        RecordHasher(["md5"])


def test_hash_member_streams_from_the_archive(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    wheel = write_wheel(tmp_path / "foo-1.0-cp311-cp311-linux_x86_64.whl", {"foo/big": data})
    with ZipArchive(wheel) as archive:
        digest = hash_member(archive, archive.member("foo/big"))
    assert digest == MemberDigest(sha256(data), len(data))


# -- RECORD against the archive ------------------------------------------------------------

A = b"aaa"
B = b"bbbb"


def members() -> dict[str, MemberDigest | None]:
    return {
        "foo/a.py": record_hash(A),
        "foo/b.py": record_hash(B),
        RECORD: MemberDigest(None, 100),
    }


def good_record() -> tuple[RecordEntry, ...]:
    return parse_record(
        record_line("foo/a.py", A) + record_line("foo/b.py", B) + RECORD + ",,\n", "R"
    )


def texts(entries: tuple[RecordEntry, ...], found: dict[str, MemberDigest | None]) -> list[str]:
    evidence = check_record(entries, found, RECORD)
    assert all(e.kind == "record" for e in evidence)
    return [e.text for e in evidence]


def test_record_consistent() -> None:
    assert check_record(good_record(), members(), RECORD) == ()


def test_record_missing_member_entry() -> None:
    found = members()
    found["foo/c.py"] = record_hash(b"")
    (evidence,) = check_record(good_record(), found, RECORD)
    assert evidence.file == "foo/c.py"
    assert evidence.text == f"foo/c.py is not listed in {RECORD}"


def test_record_entry_without_member() -> None:
    found = members()
    del found["foo/b.py"]
    assert texts(good_record(), found) == [f"{RECORD} lists foo/b.py, which is not in the wheel"]


def test_record_wrong_hash() -> None:
    found = members()
    found["foo/a.py"] = record_hash(b"aab")
    (evidence,) = check_record(good_record(), found, RECORD)
    assert evidence.text == f"foo/a.py has sha256 {sha256(b'aab')}, {RECORD} says {sha256(A)}"
    assert evidence.detail == f"expected={sha256(A)} actual={sha256(b'aab')}"


def test_record_wrong_size_with_and_without_hashes() -> None:
    found = members()
    found["foo/a.py"] = MemberDigest(None, 4)  # not hashed: size from the central directory
    assert texts(good_record(), found) == [f"foo/a.py has 4 bytes, {RECORD} says 3"]
    found["foo/a.py"] = record_hash(b"aaaa")
    assert texts(good_record(), found) == [
        f"foo/a.py has 4 bytes, {RECORD} says 3",
        f"foo/a.py has sha256 {sha256(b'aaaa')}, {RECORD} says {sha256(A)}",
    ]


def test_record_unhashed_member_only_checks_presence() -> None:
    found = members()
    found["foo/a.py"] = None
    assert check_record(good_record(), found, RECORD) == ()


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA1", "sha224"])
def test_record_weak_hash(algorithm: str) -> None:
    weak = hashlib.new(algorithm.lower(), A).digest()
    text = f"foo/a.py,{algorithm}={b64(weak)},3\n" + record_line("foo/b.py", B) + RECORD + ",,\n"
    assert texts(parse_record(text, "R"), members()) == [
        f"{RECORD} hashes foo/a.py with {algorithm}, "
        "which PEP 427 does not allow (sha256 or better)"
    ]


def test_record_unknown_algorithm_and_missing_hash() -> None:
    text = "foo/a.py,crc32=abc,3\nfoo/b.py,,4\n" + RECORD + ",,\n"
    assert texts(parse_record(text, "R"), members()) == [
        f"{RECORD} hashes foo/a.py with unknown algorithm 'crc32' (PEP 427: sha256 or better)",
        f"{RECORD} has no hash for foo/b.py (PEP 427: every file but RECORD)",
    ]


def test_record_other_strong_algorithm_is_compared_when_computed() -> None:
    text = f"foo/a.py,sha512={b64(hashlib.sha512(b'zzz').digest())},3\n"
    text += record_line("foo/b.py", B) + RECORD + ",,\n"
    entries = parse_record(text, "R")
    assert record_algorithms(entries) == {"sha512", "sha256"}
    assert check_record(entries, members(), RECORD) == ()  # sha512 not computed: size only
    found = members()
    found["foo/a.py"] = record_hash(A, ["sha512"])
    assert texts(entries, found) == [
        f"foo/a.py has sha512 {b64(hashlib.sha512(A).digest())}, {RECORD} says "
        f"{b64(hashlib.sha512(b'zzz').digest())}"
    ]


def test_record_and_signatures_are_exempt() -> None:
    found = members()
    found[RECORD + ".jws"] = record_hash(b"sig")
    found[RECORD + ".p7s"] = None
    # RECORD listed with a bogus hash and size, signatures not listed at all
    text = record_line("foo/a.py", A) + record_line("foo/b.py", B) + RECORD + ",md5=x,1\n"
    assert check_record(parse_record(text, "R"), found, RECORD) == ()
    # and RECORD not listing itself is fine too
    text = record_line("foo/a.py", A) + record_line("foo/b.py", B)
    assert check_record(parse_record(text, "R"), found, RECORD) == ()


def test_record_duplicate_rows() -> None:
    text = record_line("foo/a.py", A) * 3 + record_line("foo/b.py", B) + RECORD + ",,\n"
    assert texts(parse_record(text, "R"), members()) == [f"{RECORD} lists foo/a.py 3 times"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x", "a path with a '..' component"),
        ("foo/../../etc/passwd", "a path with a '..' component"),
        ("/etc/passwd", "an absolute path"),
        ("C:/x", "an absolute path"),
        ("foo\\a.py", "a path with a backslash"),
        ("foo//a.py", "a path with an empty or '.' component"),
        ("./foo/a.py", "a path with an empty or '.' component"),
    ],
)
def test_record_invalid_paths(path: str, why: str) -> None:
    text = record_line("foo/a.py", A) + record_line("foo/b.py", B) + record_line(path, b"x")
    (evidence,) = check_record(parse_record(text, "R"), members(), RECORD)
    assert evidence.file == path
    assert evidence.text == f"{RECORD} lists {path!r}, {why}, which cannot be a wheel member"


def test_record_evidence_order() -> None:
    found = members()
    found["zz/new.py"] = None
    found["aa/new.py"] = None
    del found["foo/a.py"]
    found["foo/b.py"] = record_hash(b"x")
    assert texts(good_record(), found) == [
        f"{RECORD} lists foo/a.py, which is not in the wheel",
        f"foo/b.py has 1 bytes, {RECORD} says 4",
        f"foo/b.py has sha256 {sha256(b'x')}, {RECORD} says {sha256(B)}",
        f"zz/new.py is not listed in {RECORD}",
        f"aa/new.py is not listed in {RECORD}",
    ]


# -- tags ----------------------------------------------------------------------------------


def test_tags_agree_regardless_of_order_and_case() -> None:
    ident = identity(
        ("cp39-abi3-linux_x86_64", "cp310-abi3-linux_x86_64"),
        ("CP310-abi3-linux_x86_64", "cp39-abi3-linux_x86_64"),
    )
    assert check_tags(ident) == ()


def test_compressed_wheel_tag_line_is_expanded() -> None:
    ident = identity(("py2-none-any", "py3-none-any"), ("py2.py3-none-any",))
    assert check_tags(ident) == ()


def test_tags_only_in_filename() -> None:
    ident = identity(
        ("cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"),
        ("cp311-cp311-manylinux_2_17_x86_64",),
    )
    (evidence,) = check_tags(ident, "foo-1.0.dist-info/WHEEL")
    assert evidence.kind == "tag-mismatch"
    assert evidence.file == "foo-1.0.dist-info/WHEEL"
    assert evidence.text == (
        "tags in the filename but not in foo-1.0.dist-info/WHEEL: cp311-cp311-manylinux2014_x86_64"
    )


def test_tags_only_in_wheel_and_both_ways() -> None:
    ident = identity(("cp311-cp311-manylinux_2_17_x86_64",), ("cp311-cp311-linux_x86_64", "junk"))
    assert [(e.kind, e.text, e.detail) for e in check_tags(ident)] == [
        (
            "tag-mismatch",
            "tags in the filename but not in WHEEL: cp311-cp311-manylinux_2_17_x86_64",
            "only-in-filename",
        ),
        (
            "tag-mismatch",
            "tags in WHEEL but not in the filename: cp311-cp311-linux_x86_64, junk",
            "only-in-wheel",
        ),
    ]


def test_no_wheel_tags_at_all() -> None:
    (evidence,) = check_tags(identity(("py3-none-any",), ()))
    assert evidence.text == "tags in the filename but not in WHEEL: py3-none-any"


def test_purelib_note() -> None:
    assert purelib_note(identity(("py3-none-any",), (), purelib=True)) is None
    assert purelib_note(identity(("cp311-cp311-linux_x86_64",), ())) is None
    ident = identity(("cp311-cp311-linux_x86_64",), (), purelib=True)
    assert purelib_note(ident, "W") == (
        "W says Root-Is-Purelib: true, but the wheel is tagged for linux_x86_64: "
        "its root installs into purelib, not platlib"
    )


# -- read_wheel ----------------------------------------------------------------------------


def test_read_wheel_handmade(tmp_path: Path) -> None:
    files = {
        "foo/__init__.py": b"",
        "foo/_ext.so": b"\x7fELF...",
        "Foo-1.0.data/scripts/foo-cli": b"#!python\n",
        "Foo-1.0.data/headers/foo.h": b"int x;\n",
        "Foo-1.0.data/purelib/foo_extra.py": b"",
        "foo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: Foo\nVersion: 1.0\n",
    }
    path = write_wheel(tmp_path / "Foo-1.0-2-cp311-cp311-linux_x86_64.whl", files)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("foo/sub/", b"")  # a directory entry: not a file member
    with ZipArchive(path) as archive:
        info = read_wheel(archive, str(path))
        digests = member_digests(archive, info.record)
        sizes_only = member_digests(archive, info.record, hash_contents=False)
    assert list(digests) == list(info.members)
    assert sizes_only["foo/_ext.so"] == MemberDigest(None, 7)
    assert info.record_evidence(dict(sizes_only)) == ()
    assert info.filename == "Foo-1.0-2-cp311-cp311-linux_x86_64.whl"
    assert info.identity == WheelIdentity(
        filename="Foo-1.0-2-cp311-cp311-linux_x86_64.whl",
        name="Foo",
        version="1.0",
        build="2",
        filename_tags=("cp311-cp311-linux_x86_64",),
        wheel_tags=("cp311-cp311-linux_x86_64",),
        platform_tags=("linux_x86_64",),
        root_is_purelib=False,
        pure=False,
    )
    assert info.with_pure(True).identity.pure is True
    assert info.dist_info == "foo-1.0.dist-info"
    assert info.wheel_path == "foo-1.0.dist-info/WHEEL"
    assert info.record_path == "foo-1.0.dist-info/RECORD"
    assert info.metadata.generator == "handmade 1"
    assert info.data_dir == "Foo-1.0.data"
    assert info.data_members == {
        "scripts": ("Foo-1.0.data/scripts/foo-cli",),
        "headers": ("Foo-1.0.data/headers/foo.h",),
        "purelib": ("Foo-1.0.data/purelib/foo_extra.py",),
    }
    assert "foo/sub/" not in info.members
    assert len(info.members) == len(files) + 2
    assert len(info.record) == len(files) + 2
    assert info.notes == ()
    assert info.tag_evidence() == ()
    assert info.record_evidence(digests) == ()
    # tampering is seen
    digests["foo/_ext.so"] = record_hash(b"\x7fELF..!")
    assert [e.file for e in info.record_evidence(digests)] == ["foo/_ext.so"]


def test_read_wheel_notes_purelib_and_build(tmp_path: Path) -> None:
    text = WHEEL_TEXT.replace("false", "true") + "Build: 3\n"
    path = write_wheel(tmp_path / "foo-1.0-cp311-cp311-linux_x86_64.whl", {}, wheel_text=text)
    with ZipArchive(path) as archive:
        info = read_wheel(archive, path.name, pure=True)
    assert info.identity.pure is True
    assert info.data_dir is None
    assert info.data_members == {}
    assert info.notes == (
        f"{path.name}: foo-1.0.dist-info/WHEEL says Build: 3, the filename says no build tag",
        f"{path.name}: foo-1.0.dist-info/WHEEL says Root-Is-Purelib: true, but the wheel is "
        "tagged for linux_x86_64: its root installs into purelib, not platlib",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"with_wheel": False}, "W.whl: no foo-1.0.dist-info/WHEEL (PEP 427 requires it)"),
        ({"with_record": False}, "W.whl: no foo-1.0.dist-info/RECORD (PEP 427 requires it)"),
        (
            {"wheel_text": "Wheel-Version: 2.0\n"},
            "W.whl: foo-1.0.dist-info/WHEEL: Wheel-Version 2.0 is not supported",
        ),
        ({"record": "a,b\n"}, "W.whl: foo-1.0.dist-info/RECORD: line 1: expected 3 fields"),
        ({"dist_info": "bar-1.0.dist-info"}, "W.whl: the .dist-info directory bar-1.0.dist-info"),
    ],
)
def test_read_wheel_refusals(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    path = write_wheel(tmp_path / "foo-1.0-py3-none-any.whl", {"foo.py": b""}, **kwargs)  # type: ignore[arg-type]
    with ZipArchive(path) as archive, pytest.raises(InputError) as info:
        read_wheel(archive, path.name)
    assert str(info.value).replace(path.name, "W.whl").startswith(message)


def test_read_wheel_record_not_utf8(tmp_path: Path) -> None:
    path = write_wheel(tmp_path / "foo-1.0-py3-none-any.whl", {}, record=b"caf\xe9,,\n")
    with ZipArchive(path) as archive, pytest.raises(InputError, match="RECORD is not UTF-8"):
        read_wheel(archive, path.name)


# -- a wheel built by pip ------------------------------------------------------------------


def _setuptools_builds_without_isolation() -> bool:
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
    except Exception:
        return False
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
def test_pip_built_wheel_passes_every_check(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "src" / "tiny_pkg").mkdir(parents=True)
    (project / "src" / "tiny_pkg" / "__init__.py").write_text("VALUE = 1\n")
    (project / "src" / "tiny_pkg" / "a,b.txt").write_text("comma in the name\n")
    (project / "bin").mkdir()
    (project / "bin" / "tiny-hello").write_text("#!/usr/bin/env python\nprint('hi')\n")
    (project / "share").mkdir()
    (project / "share" / "tiny.conf").write_text("x = 1\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "Tiny_Pkg"\nversion = "0.1.0"\n'
        "[tool.setuptools]\n"
        'script-files = ["bin/tiny-hello"]\n'
        '[tool.setuptools.package-data]\ntiny_pkg = ["*.txt"]\n'
        '[tool.setuptools.data-files]\n"share/tiny" = ["share/tiny.conf"]\n'
    )
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(project)]
    if _setuptools_builds_without_isolation():
        cmd.insert(4, "--no-build-isolation")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.skip(f"pip could not build the test wheel: {result.stderr.strip()[-300:]}")
    (wheel,) = out.glob("*.whl")
    with ZipArchive(wheel) as archive:
        info = read_wheel(archive, str(wheel))
        digests: dict[str, MemberDigest | None] = dict(member_digests(archive, info.record))
    assert info.identity.name.lower() == "tiny_pkg"
    assert info.identity.filename_tags == ("py3-none-any",)
    assert info.identity.root_is_purelib is True
    assert info.dist_info.lower() == "tiny_pkg-0.1.0.dist-info"
    assert info.data_dir is not None
    assert sorted(info.data_members) == ["data", "scripts"]
    assert info.data_members["scripts"] == (f"{info.data_dir}/scripts/tiny-hello",)
    assert "tiny_pkg/a,b.txt" in {e.path for e in info.record}
    assert info.notes == ()
    assert info.tag_evidence() == ()
    assert all(d is not None and d.sha256 for d in digests.values())
    assert info.record_evidence(digests) == ()
    # the same check can fail: one byte off in one member
    digests["tiny_pkg/__init__.py"] = record_hash(b"VALUE = 2\n")
    assert len(info.record_evidence(digests)) == 1
