"""Reader for glibc's ``/etc/ld.so.cache``, the index ``ldconfig`` writes and ld.so consults.

Three layouts exist (glibc ``sysdeps/generic/dl-cache.h``, ``elf/cache.c``):

``old``
    magic ``"ld.so-1.7.0"``, ``uint32 nlibs``, then ``nlibs`` entries of
    ``{int32 flags; uint32 key, value}``; ``key``/``value`` index a string table that
    starts right after the last entry.
``new`` (the default since glibc 2.32)
    a 48-byte header: magic ``"glibc-ld.so.cache"`` + version ``"1.1"``,
    ``uint32 nlibs``, ``uint32 len_strings``, ``uint8 flags`` (endianness in the low two
    bits), 3 bytes of padding, ``uint32 extension_offset``, 12 unused bytes; then
    ``nlibs`` entries of ``{int32 flags; uint32 key, value; uint32 osversion;
    uint64 hwcap}``. String offsets count from the start of this header. The optional
    extension directory (magic ``0xeaa42174``) holds the glibc version that wrote the
    file and the names of the ``glibc-hwcaps`` subdirectories entries may refer to.
``compat``
    an old-format table whose string area starts with a new-format cache, aligned to
    8 bytes. ld.so reads the new part, and so do we.

The entry ``flags`` say which ABI a library was built for: the low byte is the type
(``3`` = ELF for libc6) and the next byte the architecture (``0x03`` x86-64, ``0x0a``
AArch64, ...). ld.so only accepts entries whose flags match its own ABI
(``_dl_cache_check_flags``); :func:`cache_flags_for_arch` gives that set per arch.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from manywheel.value import Value

__all__ = [
    "CacheEntry",
    "CacheFormatError",
    "LdCache",
    "cache_flags_for_arch",
    "parse_ld_so_cache",
]

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
_NEW_HEADER_SIZE = 48
_NEW_ENTRY_SIZE = 24
_OLD_HEADER_SIZE = 16  # 11 bytes of magic, padded to 12, then uint32 nlibs
_OLD_ENTRY_SIZE = 12
_EXTENSION_MAGIC = 0xEAA42174
_EXT_TAG_GENERATOR = 0
_EXT_TAG_GLIBC_HWCAPS = 1
#: hwcap bit meaning "the low 32 bits index the glibc-hwcaps subdirectory names".
HWCAP_EXTENSION = 1 << 62
_ISA_LEVEL_MASK = (1 << 10) - 1

# Entry types (low byte of the flags) and required-ABI values (second byte), from
# glibc's ldconfig.h; the labels are the ones ``ldconfig -p`` prints.
FLAG_TYPE_MASK = 0x00FF
FLAG_REQUIRED_MASK = 0xFF00
FLAG_ELF = 0x0001
FLAG_ELF_LIBC6 = 0x0003
_TYPE_LABELS = {0x0000: "libc4", 0x0001: "ELF", 0x0002: "libc5", 0x0003: "libc6"}
_ABI_LABELS = {
    0x0100: "64bit",  # SPARC
    0x0200: "IA-64",
    0x0300: "x86-64",
    0x0400: "64bit",  # s390x
    0x0500: "64bit",  # powerpc64
    0x0600: "N32",
    0x0700: "64bit",  # mips64 n64
    0x0800: "x32",
    0x0900: "hard-float",
    0x0A00: "AArch64",
    0x0B00: "soft-float",
    0x0C00: "nan2008",
    0x0D00: "N32,nan2008",
    0x0E00: "64bit,nan2008",
    0x0F00: "soft-float",  # RISC-V
    0x1000: "double-float",  # RISC-V
    0x1100: "soft-float",  # LoongArch
    0x1200: "double-float",  # LoongArch
}

#: The flags ld.so accepts, per manywheel arch (``_DL_CACHE_DEFAULT_ID`` and
#: ``_dl_cache_check_flags`` of each ``sysdeps/unix/sysv/linux/<arch>/dl-cache.h``).
_ARCH_FLAGS: dict[str, frozenset[int]] = {
    "x86_64": frozenset({0x0303}),
    "i686": frozenset({FLAG_ELF, FLAG_ELF_LIBC6}),
    "aarch64": frozenset({0x0A03}),
    "armv7l": frozenset({0x0903}),
    "ppc64le": frozenset({0x0503}),
    "ppc64": frozenset({0x0503}),
    "s390x": frozenset({0x0403}),
    "riscv64": frozenset({0x1003}),
    "loongarch64": frozenset({0x1203}),
}


class CacheFormatError(ValueError):
    """The bytes are not an ld.so.cache file, or one whose tables are inconsistent."""


def cache_flags_for_arch(arch: str | None) -> frozenset[int]:
    """The entry flags the ld.so of ``arch`` accepts (generic glibc: ELF or libc6)."""
    if arch is None:
        return frozenset({FLAG_ELF, FLAG_ELF_LIBC6})
    return _ARCH_FLAGS.get(arch, frozenset({FLAG_ELF, FLAG_ELF_LIBC6}))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CacheEntry(Value):
    """One library of the cache: ``name`` (the soname) is found at ``path``."""

    name: str
    path: str
    flags: int
    osversion: int = 0
    hwcap: int = 0
    #: The ``glibc-hwcaps`` subdirectory (``x86-64-v3``...) this entry serves, if any.
    hwcaps_subdir: str | None = None

    @property
    def is_baseline(self) -> bool:
        """True for an entry any CPU of the ABI may use (no hwcap requirement)."""
        return self.hwcap == 0 and self.hwcaps_subdir is None

    def describe(self) -> str:
        """The ABI label as ``ldconfig -p`` prints it, e.g. ``libc6,x86-64``."""
        kind = _TYPE_LABELS.get(self.flags & FLAG_TYPE_MASK, "unknown")
        abi = self.flags & FLAG_REQUIRED_MASK
        label = kind if abi == 0 else f"{kind},{_ABI_LABELS.get(abi, f'abi {abi >> 8:#x}')}"
        if self.hwcaps_subdir is not None:
            label += f', hwcap: "{self.hwcaps_subdir}"'
        elif self.hwcap:
            label += f", hwcap: {self.hwcap:#018x}"
        if self.osversion:
            major, minor, patch = (
                self.osversion >> 16 & 0xFF,
                self.osversion >> 8 & 0xFF,
                self.osversion & 0xFF,
            )
            label += f", OS ABI: Linux {major}.{minor}.{patch}"
        return label


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LdCache(Value):
    """A parsed ld.so.cache: its entries in file order (the order ld.so scans them)."""

    format: Literal["old", "new", "compat"]
    byte_order: Literal["little", "big"]
    entries: tuple[CacheEntry, ...]
    #: The "generator" extension: which ldconfig wrote the file (new format only).
    generator: str | None = None
    #: ``entries`` by name, each in file order: the audit of a big wheel looks names up
    #: thousands of times (3,700 on torch), each a scan of every entry without it.
    _by_name: Mapping[str, tuple[CacheEntry, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        by_name: dict[str, list[CacheEntry]] = {}
        for entry in self.entries:
            by_name.setdefault(entry.name, []).append(entry)
        index = {name: tuple(found) for name, found in by_name.items()}
        object.__setattr__(self, "_by_name", index)

    def candidates(self, name: str) -> tuple[CacheEntry, ...]:
        """Every entry for ``name``, in file order."""
        return self._by_name.get(name, ())

    def lookup(self, name: str, accepted_flags: Iterable[int]) -> CacheEntry | None:
        """The entry ld.so would use for ``name`` on a CPU without optional features.

        ``_dl_load_cache_lookup`` scans the entries with this name in file order and
        takes the first whose flags ld.so accepts. Entries tied to a ``glibc-hwcaps``
        subdirectory or to legacy hwcap bits depend on the CPU; we model a baseline
        CPU and skip them (documented in docs/loader.md).
        """
        accepted = frozenset(accepted_flags)
        for entry in self._by_name.get(name, ()):
            if entry.flags in accepted and entry.is_baseline:
                return entry
        return None


def _cstring(data: bytes, offset: int, what: str) -> str:
    if not 0 <= offset < len(data):
        raise CacheFormatError(f"{what} string offset {offset} is outside the file")
    end = data.find(b"\0", offset)
    if end < 0:
        raise CacheFormatError(f"{what} string at offset {offset} is not terminated")
    return data[offset:end].decode("utf-8", "surrogateescape")


def _new_byte_order(data: bytes, base: int) -> Literal["little", "big"]:
    """The byte order of a new-format header (its flags byte; else guess by sizes)."""
    endian = data[base + 28] & 3
    if endian == 2:
        return "little"
    if endian == 3:
        return "big"
    if endian == 1:
        raise CacheFormatError("the cache marks itself invalid (endianness flag 1)")
    # Written by an ldconfig older than 2.33: no flag. Pick the reading whose tables fit.
    for order in ("little", "big"):
        fmt = "<II" if order == "little" else ">II"
        nlibs, len_strings = struct.unpack_from(fmt, data, base + 20)
        if base + _NEW_HEADER_SIZE + nlibs * _NEW_ENTRY_SIZE + len_strings <= len(data) + 8:
            return "little" if order == "little" else "big"
    raise CacheFormatError("cannot tell the byte order of the cache")


def _parse_new(
    data: bytes, base: int
) -> tuple[Literal["little", "big"], list[CacheEntry], str | None]:
    if len(data) < base + _NEW_HEADER_SIZE:
        raise CacheFormatError("file too short for a glibc-ld.so.cache1.1 header")
    order = _new_byte_order(data, base)
    e = "<" if order == "little" else ">"
    nlibs, _len_strings = struct.unpack_from(e + "II", data, base + 20)
    (extension_offset,) = struct.unpack_from(e + "I", data, base + 32)
    table_end = base + _NEW_HEADER_SIZE + nlibs * _NEW_ENTRY_SIZE
    if table_end > len(data):
        raise CacheFormatError(f"the cache declares {nlibs} entries but is only {len(data)} bytes")

    generator: str | None = None
    hwcaps_names: list[str] = []
    if extension_offset:
        generator, hwcaps_names = _parse_extensions(data, base, extension_offset, e)

    entries: list[CacheEntry] = []
    for index in range(nlibs):
        flags, key, value, osversion, hwcap = struct.unpack_from(
            e + "iIIIQ", data, base + _NEW_HEADER_SIZE + index * _NEW_ENTRY_SIZE
        )
        subdir: str | None = None
        if (hwcap >> 32) & ~_ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32:
            slot = hwcap & 0xFFFFFFFF
            subdir = hwcaps_names[slot] if slot < len(hwcaps_names) else f"#{slot}"
        entries.append(
            CacheEntry(
                name=_cstring(data, base + key, "library name"),
                path=_cstring(data, base + value, "library path"),
                flags=flags,
                osversion=osversion,
                hwcap=hwcap,
                hwcaps_subdir=subdir,
            )
        )
    return order, entries, generator


def _parse_extensions(data: bytes, base: int, offset: int, e: str) -> tuple[str | None, list[str]]:
    """The extension directory (``struct cache_extension``); offsets are file offsets."""
    # glibc's cache_extension_load: a malformed directory is ignored, not fatal.
    if offset % 4 or offset + 8 > len(data):
        return None, []
    magic, count = struct.unpack_from(e + "II", data, offset)
    if magic != _EXTENSION_MAGIC or offset + 8 + 16 * count > len(data):
        return None, []
    generator: str | None = None
    hwcaps: list[str] = []
    for index in range(count):
        tag, _flags, sec_offset, size = struct.unpack_from(
            e + "IIII", data, offset + 8 + 16 * index
        )
        if sec_offset + size > len(data):
            return None, []
        if tag == _EXT_TAG_GENERATOR:
            generator = data[sec_offset : sec_offset + size].decode("utf-8", "replace")
        elif tag == _EXT_TAG_GLIBC_HWCAPS and size % 4 == 0:
            for slot in range(size // 4):
                (string_offset,) = struct.unpack_from(e + "I", data, sec_offset + 4 * slot)
                hwcaps.append(_cstring(data, base + string_offset, "hwcaps name"))
    return generator, hwcaps


def _parse_old(data: bytes) -> tuple[Literal["little", "big"], int, list[CacheEntry]]:
    if len(data) < _OLD_HEADER_SIZE:
        raise CacheFormatError("file too short for an ld.so-1.7.0 header")
    # The old format has no endianness mark: take the reading whose table fits.
    order: Literal["little", "big"] = "little"
    e = "<"
    (nlibs,) = struct.unpack_from("<I", data, 12)
    if _OLD_HEADER_SIZE + nlibs * _OLD_ENTRY_SIZE > len(data):
        order, e = "big", ">"
        (nlibs,) = struct.unpack_from(">I", data, 12)
    strings = _OLD_HEADER_SIZE + nlibs * _OLD_ENTRY_SIZE
    if strings > len(data):
        raise CacheFormatError("the ld.so-1.7.0 table extends beyond the end of the file")
    entries = []
    for index in range(nlibs):
        flags, key, value = struct.unpack_from(
            e + "iII", data, _OLD_HEADER_SIZE + index * _OLD_ENTRY_SIZE
        )
        entries.append(
            CacheEntry(
                name=_cstring(data, strings + key, "library name"),
                path=_cstring(data, strings + value, "library path"),
                flags=flags,
            )
        )
    return order, strings, entries


def parse_ld_so_cache(data: bytes) -> LdCache:
    """Parse the bytes of an ld.so.cache file (any of the three layouts).

    Raises :class:`CacheFormatError` when the bytes are not a cache ld.so would use.
    """
    if data.startswith(NEW_MAGIC):
        order, entries, generator = _parse_new(data, 0)
        return LdCache("new", order, tuple(entries), generator)
    if data.startswith(OLD_MAGIC):
        order, strings, old_entries = _parse_old(data)
        # dl-cache.c: a new-format cache may follow the old table, 8-byte aligned.
        embedded = (strings + 7) & ~7
        if data[embedded : embedded + len(NEW_MAGIC)] == NEW_MAGIC:
            new_order, entries, generator = _parse_new(data, embedded)
            return LdCache("compat", new_order, tuple(entries), generator)
        return LdCache("old", order, tuple(old_entries))
    raise CacheFormatError("not an ld.so.cache file (unknown magic)")
