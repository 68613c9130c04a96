"""The ld.so.cache reader against ``ldconfig -p``, on the real cache and on caches of
each layout written by ``ldconfig -c {old,compat,new}`` into tmp_path."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from manywheel.ldcache import (
    CacheEntry,
    CacheFormatError,
    cache_flags_for_arch,
    parse_ld_so_cache,
)

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"


def ldconfig_p(cache: Path) -> list[tuple[str, str, str]]:
    """``ldconfig -p -C cache`` as (name, label, path) in printed order."""
    proc = subprocess.run(
        [LDCONFIG, "-p", "-C", str(cache)], capture_output=True, text=True, check=True
    )
    rows = []
    for line in proc.stdout.splitlines():
        match = re.match(r"^\t(\S+) \((.*)\) => (.*)$", line)
        if match:
            rows.append((match.group(1), match.group(2), match.group(3)))
    return rows


def rows(entries: tuple[CacheEntry, ...]) -> list[tuple[str, str, str]]:
    return [(e.name, e.describe(), e.path) for e in entries]


def test_real_cache_matches_ldconfig() -> None:
    cache = Path("/etc/ld.so.cache")
    if not cache.exists() or not Path(LDCONFIG).exists():
        pytest.skip("no ld.so.cache or ldconfig here")
    parsed = parse_ld_so_cache(cache.read_bytes())
    assert parsed.format in ("new", "compat")
    expected = ldconfig_p(cache)
    assert len(expected) > 10
    assert rows(parsed.entries) == expected
    assert parsed.generator is not None and "ldconfig" in parsed.generator
    libc = parsed.lookup("libc.so.6", cache_flags_for_arch("x86_64"))
    assert libc is not None and libc.path.endswith("/libc.so.6")
    assert parsed.lookup("libc.so.6", cache_flags_for_arch("aarch64")) is None


@pytest.mark.parametrize("fmt", ["old", "compat", "new"])
def test_generated_caches_match_ldconfig(tmp_path: Path, fmt: str) -> None:
    if not Path(LDCONFIG).exists():
        pytest.skip("ldconfig not available")
    libdir = tmp_path / "lib"
    libdir.mkdir()
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(libdir / "libcachetest.so.3"),
            "-x",
            "c",
            "-",
            "-Wl,-soname,libcachetest.so.3",
        ],
        input="int f(void){return 3;}\n",
        text=True,
        check=True,
    )
    conf = tmp_path / "ld.so.conf"
    conf.write_text(f"{libdir}\n")
    cache = tmp_path / f"{fmt}.cache"
    # -X: do not touch symlinks; -C/-f: our own cache and configuration only.
    subprocess.run(
        [LDCONFIG, "-X", "-c", fmt, "-C", str(cache), "-f", str(conf)],
        check=True,
        capture_output=True,
    )
    parsed = parse_ld_so_cache(cache.read_bytes())
    assert parsed.format == fmt
    assert rows(parsed.entries) == ldconfig_p(cache)
    entry = parsed.lookup("libcachetest.so.3", cache_flags_for_arch("x86_64"))
    assert entry is not None and entry.path == str(libdir / "libcachetest.so.3")


def _new_cache(entries: list[tuple[int, str, str, int]], order: str = "<") -> bytes:
    """A hand-made new-format cache (flags, name, path, hwcap)."""
    strings = bytearray()
    offsets = []
    base = 48 + 24 * len(entries)
    for _, name, path, _ in entries:
        offsets.append((base + len(strings), base + len(strings) + len(name) + 1))
        strings += name.encode() + b"\0" + path.encode() + b"\0"
    endian = 2 if order == "<" else 3
    head = b"glibc-ld.so.cache1.1" + struct.pack(order + "II", len(entries), len(strings))
    head += bytes([endian, 0, 0, 0]) + struct.pack(order + "I", 0) + bytes(12)
    body = b"".join(
        struct.pack(order + "iIIIQ", flags, key, value, 0, hwcap)
        for (flags, _, _, hwcap), (key, value) in zip(entries, offsets, strict=True)
    )
    return head + body + bytes(strings)


def test_lookup_prefers_first_matching_baseline_entry() -> None:
    data = _new_cache(
        [
            (0x0303, "libx.so.1", "/hw/libx.so.1", (1 << 62) | 0),
            (0x0003, "libx.so.1", "/lib32/libx.so.1", 0),
            (0x0303, "libx.so.1", "/lib64/libx.so.1", 0),
            (0x0303, "libx.so.1", "/later/libx.so.1", 0),
        ]
    )
    cache = parse_ld_so_cache(data)
    assert cache.entries[0].hwcaps_subdir == "#0"  # no extension directory: index only
    entry = cache.lookup("libx.so.1", cache_flags_for_arch("x86_64"))
    assert entry is not None and entry.path == "/lib64/libx.so.1"
    assert cache.lookup("libx.so.1", cache_flags_for_arch("i686")) is not None
    assert cache.lookup("liby.so.1", cache_flags_for_arch("x86_64")) is None


def test_big_endian_cache() -> None:
    cache = parse_ld_so_cache(_new_cache([(0x0403, "libs.so.1", "/lib64/libs.so.1", 0)], ">"))
    assert cache.byte_order == "big"
    assert rows(cache.entries) == [("libs.so.1", "libc6,64bit", "/lib64/libs.so.1")]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a cache at all",
        b"glibc-ld.so.cache1.1" + b"\xff" * 28,
        b"ld.so-1.7.0\0" + struct.pack("<I", 1000),
    ],
)
def test_malformed_caches_rejected(data: bytes) -> None:
    with pytest.raises(CacheFormatError):
        parse_ld_so_cache(data)


def test_name_index_keeps_file_order_across_interleaved_names() -> None:
    rows = [
        (0x0303, "liba.so.1", "/x/liba.so.1", 0),
        (0x0303, "libb.so.1", "/x/libb.so.1", 0),
        (0x0003, "liba.so.1", "/y/liba.so.1", 0),
        (0x0303, "libb.so.1", "/y/libb.so.1", 0),
        (0x0303, "liba.so.1", "/z/liba.so.1", 0),
    ]
    cache = parse_ld_so_cache(_new_cache(rows))
    for name in ("liba.so.1", "libb.so.1", "libc.so.9"):
        scanned = tuple(entry for entry in cache.entries if entry.name == name)
        assert cache.candidates(name) == scanned
    entry = cache.lookup("liba.so.1", cache_flags_for_arch("i686"))
    assert entry is not None and entry.path == "/y/liba.so.1"
    assert cache == parse_ld_so_cache(_new_cache(rows))  # the index is not compared
