"""Strict reading of zip archives that come from strangers (wheels are zip files).

We parse the central directory ourselves instead of using :mod:`zipfile` because:

* ``zipfile`` silently accepts what a wheel must never contain: duplicate names (the
  last one wins on extraction), names with ``..`` or absolute paths (sanitised at
  extraction time, not refused), symlink entries, overlapping entries (the "better zip
  bomb" construction), data before the first entry;
* it has no public access to a member's compressed bytes, which the repair writer
  needs to copy unchanged members without recompressing them;
* it inflates with the standard ``zlib`` only, and its shared file handle serialises
  every reader thread on one lock and one file position. Here contents are read with
  positional reads (``os.pread``) on one descriptor, which any number of threads use
  at once.

The central directory and the local headers are parsed from a read-only ``mmap`` that
is unmapped once the archive is validated. Contents are not read through a map: pages
of a mapped file count in the process's resident set until unmapped (a 190 MB wheel
read once through its map costs 190 MB of RSS), while ``pread`` copies into buffers
the reader owns and frees, at the same speed.

Every refusal raises :class:`ArchiveError` with one line naming the archive, the member
and the rule. Section numbers ("APPNOTE 4.3.12") refer to PKWARE's APPNOTE.TXT 6.3.10.

Limits (bad input is normal input):

* A DEFLATE stream cannot expand more than :data:`DEFLATE_MAX_RATIO` (1032:1: the best
  case codes a 258-byte match in about two bits); a member that declares more
  uncompressed bytes than that from its compressed size is refused when the archive is
  opened. So is any member declaring more than ``max_member_size`` bytes (8 GiB by
  default, far above the biggest shared libraries shipped in wheels, CUDA ones included).
* Inflating never produces more than the declared size: one byte more and the member is
  refused, so a lying header cannot make us inflate unbounded output. Output comes in
  chunks of at most ``chunk_size`` bytes, from input slices of ``chunk_size / 4`` (at
  least :data:`MIN_INPUT_CHUNK`), so memory per inflating thread is bounded by about
  ``1.25 * chunk_size`` plus the inflater's state (a 32 KiB window for zlib).
* :meth:`ZipArchive.read_whole` inflates a member of at most :data:`WHOLE_MAX` bytes
  in one call when libdeflate is installed (the ``deflate`` package, the ``fast``
  extra): about 1.4x faster than the fastest streaming inflater, at the price of the
  whole member in memory, hence the cap.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import ModuleType
from typing import Final

from manywheel.errors import InputError
from manywheel.value import Value

__all__ = [
    "DEFLATE_MAX_RATIO",
    "WHOLE_INFLATER",
    "WHOLE_MAX",
    "ArchiveError",
    "ZipArchive",
    "ZipMember",
    "streaming_inflater",
]


def _pick_inflater() -> ModuleType:
    """The fastest zlib-compatible module available (measured in benchmarks/bench_elf.py).

    python-isal and python-zlib-ng both inflate about twice as fast as the standard
    zlib on wheel members (libtorch_cpu.so, 434 MB: isal 0.38 s, zlib-ng 0.46 s, zlib
    0.81 s) and, like it, release the GIL while inflating (two threads inflating 200 MB
    each take 1.01x the time of one with isal or zlib-ng, 1.12x with zlib). Both are
    optional: the standard module is always there.
    """
    try:
        from isal import isal_zlib  # noqa: PLC0415

        return isal_zlib
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng  # noqa: PLC0415
    except ImportError:
        return zlib
    else:
        module: ModuleType = zlib_ng
        return module


@functools.cache
def streaming_inflater() -> ModuleType:
    """The module whose ``decompressobj``/``crc32`` stream members (isal, zlib-ng or
    zlib), picked on first use: a wheel whose members libdeflate inflates whole never
    pays for importing isal (a few milliseconds)."""
    return _pick_inflater()


def _pick_whole_inflater() -> ModuleType | None:
    """libdeflate (the ``deflate`` package) when installed: it inflates a whole member
    into one buffer of known size 1.3-1.4x faster than isal streams it (OpenBLAS from
    numpy's wheel, 25 MB: 27 ms against 38 ms), releasing the GIL. None otherwise."""
    try:
        import deflate  # noqa: PLC0415
    except ImportError:
        return None
    module: ModuleType = deflate
    return module


WHOLE_INFLATER: Final[ModuleType | None] = _pick_whole_inflater()
"""libdeflate's module for :meth:`ZipArchive.read_whole`, or None (streaming only)."""

WHOLE_MAX: Final = 32 * 1024 * 1024
"""The biggest member :meth:`ZipArchive.read_whole` inflates in one call (memory bound)."""


def _deflate_bound(size: int) -> int:
    """More compressed bytes than deflate needs for ``size`` bytes of content: stored
    blocks cost 5 bytes per 65,535 (RFC 1951 3.2.4), zlib's ``deflateBound`` adds
    ``size >> 12``; this allows twice that, plus a kilobyte."""
    return size + (size >> 11) + 1024


# RFC 1952 member header (no name, no extra, OS unknown) and trailer: a raw DEFLATE
# stream framed as gzip makes libdeflate check the CRC-32 and the size, and refuse
# bytes between the end of the stream and the end of the compressed data.
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_GZIP_TRAILER = struct.Struct("<II")

DEFLATE_MAX_RATIO: Final = 1032
MIN_INPUT_CHUNK: Final = 64 * 1024
DEFAULT_CHUNK: Final = 1024 * 1024
DEFAULT_MAX_MEMBER_SIZE: Final = 8 * 1024**3

STORED: Final = 0
DEFLATED: Final = 8
_METHOD_NAMES: Final = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstd",
    95: "xz",
    98: "ppmd",
}

# APPNOTE 4.3.16 end of central directory record.
_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD_SIG: Final = b"PK\x05\x06"
# APPNOTE 4.3.15 zip64 end of central directory locator.
_LOCATOR = struct.Struct("<4sIQI")
_LOCATOR_SIG: Final = b"PK\x06\x07"
# APPNOTE 4.3.14 zip64 end of central directory record (fixed part).
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_EOCD64_SIG: Final = b"PK\x06\x06"
# APPNOTE 4.3.12 central directory file header (fixed part).
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_CENTRAL_SIG: Final = b"PK\x01\x02"
# APPNOTE 4.3.7 local file header (fixed part).
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIG: Final = b"PK\x03\x04"

_FLAG_ENCRYPTED: Final = 0x0001  # APPNOTE 4.4.4 bit 0
_FLAG_STRONG_ENCRYPTION: Final = 0x0040  # bit 6
_FLAG_DATA_DESCRIPTOR: Final = 0x0008  # bit 3
_FLAG_UTF8: Final = 0x0800  # bit 11 (APPNOTE Appendix D)
_FLAG_MASKED_HEADERS: Final = 0x2000  # bit 13
_ZIP64_EXTRA: Final = 0x0001  # APPNOTE 4.5.3
_UNICODE_PATH_EXTRA: Final = 0x7075  # APPNOTE 4.6.9
_CREATOR_UNIX: Final = 3  # APPNOTE 4.4.2.2
_MSDOS_DIRECTORY: Final = 0x10
_DRIVE: Final = re.compile(r"[A-Za-z]:")


class ArchiveError(InputError):
    """A zip archive that is corrupt, truncated, or contains something a wheel must not."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ZipMember(Value):
    """One entry of the central directory (APPNOTE 4.3.12), checked against its local header.

    ``data_offset`` is where the compressed bytes start in the archive (after the local
    header, APPNOTE 4.3.7); ``mode`` holds the Unix permission and type bits when the
    entry was made on Unix (APPNOTE 4.4.2.2, 4.4.15), else 0.
    """

    name: str
    method: int  # 0 stored, 8 deflated (the only ones accepted)
    flags: int
    crc32: int
    compress_size: int
    file_size: int
    header_offset: int
    data_offset: int
    external_attr: int
    create_system: int
    date_time: tuple[int, int, int, int, int, int]

    @property
    def mode(self) -> int:
        """``st_mode`` bits from the external attributes (0 when not made on Unix)."""
        if self.create_system != _CREATOR_UNIX:
            return 0
        return self.external_attr >> 16

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_executable(self) -> bool:
        return bool(self.mode & 0o111)


class ZipArchive:
    """A zip archive open for reading; its members are validated when it is opened.

    Thread-safe for reading: every method only makes positional reads (``os.pread``)
    on the shared descriptor. Use it as a context manager, or call :meth:`close`.
    ``inflater`` overrides :func:`streaming_inflater` (any module with zlib's ``decompressobj``,
    ``crc32`` and ``error``); ``whole_inflater`` is :data:`WHOLE_INFLATER` when True,
    none when False or None (streaming only), else the module given.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
        inflater: ModuleType | None = None,
        whole_inflater: ModuleType | bool | None = True,
    ) -> None:
        self.path = os.fspath(path)
        self._inflater = inflater
        self.whole_inflater: ModuleType | None = (
            (WHOLE_INFLATER if whole_inflater else None)
            if isinstance(whole_inflater, bool)
            else whole_inflater
        )
        self._label = os.path.basename(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        try:
            self._size = os.fstat(self._fd).st_size
            if self._size < _EOCD.size:
                raise ArchiveError(f"{self._label}: not a zip archive (only {self._size} bytes)")
            with mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) as mm:
                self.members: tuple[ZipMember, ...] = _read_members(
                    mm, self._label, max_member_size
                )
        except OSError as exc:
            os.close(self._fd)
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        except BaseException:
            os.close(self._fd)
            raise
        self._by_name = {m.name: m for m in self.members}
        self._closed = False

    @property
    def inflater(self) -> ModuleType:
        """The streaming inflater (``inflater`` as given, else :func:`streaming_inflater`)."""
        if self._inflater is None:
            self._inflater = streaming_inflater()
        return self._inflater

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self._size

    def member(self, name: str) -> ZipMember:
        """The member called ``name``; :class:`KeyError` when there is none."""
        return self._by_name[name]

    # -- raw access -------------------------------------------------------------------

    def read_raw(self, member: ZipMember, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes of the member's stored (possibly compressed) data from ``offset``.

        For a STORED member these are its content bytes: random access without inflating.
        """
        end = member.compress_size if length is None else offset + length
        if offset < 0 or end < offset or end > member.compress_size:
            raise ValueError(f"range {offset}..{end} outside {member.name}")
        return self._pread(member.data_offset + offset, end - offset)

    def iter_raw(self, member: ZipMember, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """The member's compressed bytes in chunks, for copying it unchanged into a new zip."""
        start, end = member.data_offset, member.data_offset + member.compress_size
        for pos in range(start, end, chunk_size):
            yield self._pread(pos, min(chunk_size, end - pos))

    def _pread(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of the archive (one ``pread`` call,
        more only if the kernel returns a short read)."""
        self._check_open()
        try:
            data = os.pread(self._fd, length, offset)
            while len(data) < length:
                more = os.pread(self._fd, length - len(data), offset + len(data))
                if not more:
                    raise self._shorter(offset + len(data))
                data += more
        except OSError as exc:
            raise self._unreadable(exc) from None
        return data

    def _pread_into(self, view: memoryview, offset: int) -> None:
        """Fill ``view`` with the archive's bytes at ``offset`` (``preadv``, no copy)."""
        self._check_open()
        done = 0
        try:
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], offset + done)
                if not got:
                    raise self._shorter(offset + done)
                done += got
        except OSError as exc:
            raise self._unreadable(exc) from None

    def _check_open(self) -> None:
        if self._closed:  # the descriptor's number may already name another file
            raise ValueError(f"{self._label}: read from a closed archive")

    def _shorter(self, offset: int) -> ArchiveError:
        return ArchiveError(
            f"{self._label}: the file became shorter while it was read (no data at offset {offset})"
        )

    def _unreadable(self, exc: OSError) -> InputError:
        return InputError(f"{self.path}: cannot read: {exc.strerror or exc}")

    # -- content ----------------------------------------------------------------------

    def iter_content(
        self, member: ZipMember, chunk_size: int = DEFAULT_CHUNK
    ) -> Generator[bytes, None, None]:
        """The member's uncompressed bytes in chunks of at most ``chunk_size`` bytes.

        Once the last chunk is produced, the size and the CRC-32 (APPNOTE 4.4.7) are
        checked against the central directory; a mismatch raises :class:`ArchiveError`.
        A consumer that stops early gets no check (and pays for no more inflating).
        """
        if member.method == STORED:
            crc = 0
            for chunk in self.iter_raw(member, chunk_size):
                crc = self.inflater.crc32(chunk, crc)
                yield chunk
            self._check_crc(member, crc)
            return
        crc = 0
        produced = 0
        for chunk in _inflate(self._pread, member, chunk_size, self._label, self.inflater):
            crc = self.inflater.crc32(chunk, crc)
            produced += len(chunk)
            yield chunk
        if produced != member.file_size:
            raise ArchiveError(
                f"{self._label}: {member.name}: inflates to {produced} bytes, "
                f"the central directory says {member.file_size}"
            )
        self._check_crc(member, crc)

    def read(self, member: ZipMember) -> bytes:
        """The whole uncompressed content, CRC-checked (for small members: WHEEL, RECORD)."""
        if self.whole_inflater is not None and member.method == DEFLATED:
            return bytes(self.read_whole(member))
        return b"".join(self.iter_content(member))

    def read_whole(self, member: ZipMember) -> bytes | bytearray:
        """The whole uncompressed content in one buffer, size- and CRC-checked.

        Inflated in one call by :attr:`whole_inflater` when :meth:`can_read_whole`;
        anything else, and any member that call refuses, goes through
        :meth:`iter_content`, which names the fault.
        """
        if self.can_read_whole(member):
            assert self.whole_inflater is not None
            out = self._inflate_whole(self.whole_inflater, member)
            if out is not None:
                return out
        return b"".join(self.iter_content(member))

    def can_read_whole(self, member: ZipMember) -> bool:
        """Whether :meth:`read_whole` inflates ``member`` in one call: a one-call inflater
        is there, and it is a DEFLATED member of at most :data:`WHOLE_MAX` bytes whose
        compressed size is no more than deflate needs for that content (the compressed
        bytes are read whole too: a lying header must not make us read a big member at
        once)."""
        return (
            self.whole_inflater is not None
            and member.method == DEFLATED
            and 0 < member.file_size <= WHOLE_MAX
            and member.compress_size <= _deflate_bound(member.file_size)
        )

    def _inflate_whole(self, module: ModuleType, member: ZipMember) -> bytearray | None:
        """``member`` inflated by libdeflate as one gzip member (see :data:`_GZIP_HEADER`),
        or None when libdeflate refuses it or the framing could be fooled.

        libdeflate reads the trailer right after the end of the deflate stream and ignores
        what follows it, so bytes after the stream are refused unless they begin with
        this member's own trailer: when those 8 bytes occur anywhere in the compressed
        data, streaming judges instead (a chance occurrence costs only speed).
        """
        size = member.compress_size
        trailer = _GZIP_TRAILER.pack(member.crc32, member.file_size & 0xFFFFFFFF)
        start = len(_GZIP_HEADER)
        framed = bytearray(start + size + _GZIP_TRAILER.size)
        framed[:start] = _GZIP_HEADER
        self._pread_into(memoryview(framed)[start : start + size], member.data_offset)
        if framed.find(trailer, start, start + size) >= 0:
            return None
        framed[start + size :] = trailer
        try:
            out: bytearray = module.gzip_decompress(framed, member.file_size)
        except module.DeflateError:
            return None
        return out if len(out) == member.file_size else None

    def read_prefix(self, member: ZipMember, length: int) -> bytes:
        """The first ``length`` bytes of content (fewer if the member is shorter), no CRC check.

        Inflates only as much as needed: sniffing a member's magic number costs microseconds.
        """
        length = min(length, member.file_size)
        if member.method == STORED:
            return self.read_raw(member, 0, length)
        # Fast path: the standard zlib sets up an inflater faster than the big-window
        # ones, and a few hundred compressed bytes hold the first bytes of any stream.
        head = self._pread(member.data_offset, min(member.compress_size, 1024))
        try:
            out = zlib.decompressobj(-15).decompress(head, length)
        except zlib.error:
            out = b""  # let the full path below report the corruption
        if len(out) == length:
            return out
        return self._read_prefix_slowly(member, length)

    def _read_prefix_slowly(self, member: ZipMember, length: int) -> bytes:
        out = bytearray()
        for chunk in _inflate(self._pread, member, max(length, 1), self._label, self.inflater):
            out += chunk
            if len(out) >= length:
                break
        return bytes(out[:length])

    def _check_crc(self, member: ZipMember, crc: int) -> None:
        if crc != member.crc32:
            raise ArchiveError(
                f"{self._label}: {member.name}: CRC-32 mismatch "
                f"(computed {crc:08x}, the central directory says {member.crc32:08x})"
            )


def _inflate(
    read: Callable[[int, int], bytes],
    member: ZipMember,
    chunk_size: int,
    label: str,
    module: ModuleType,
) -> Iterator[bytes]:
    """Inflate a raw DEFLATE stream (RFC 1951; APPNOTE 4.4.5 method 8) in bounded chunks.

    Never yields more than ``member.file_size`` bytes in total: the output cap is one byte
    above what remains, so a stream that tries to go beyond its declared size is refused
    at the first extra byte. The stream must end exactly at the end of the compressed data.
    """
    inflater = module.decompressobj(-15)
    error: type[Exception] = module.error
    pos, end = member.data_offset, member.data_offset + member.compress_size
    remaining = member.file_size
    in_chunk = max(MIN_INPUT_CHUNK, chunk_size // 4)
    pending = b""
    try:
        while True:
            if not pending and pos < end:
                pending = read(pos, min(in_chunk, end - pos))
                pos += len(pending)
            out = inflater.decompress(pending, min(chunk_size, remaining + 1))
            pending = inflater.unconsumed_tail
            if len(out) > remaining:
                raise ArchiveError(
                    f"{label}: {member.name}: inflates to more than the "
                    f"{member.file_size} bytes the central directory says"
                )
            remaining -= len(out)
            if out:
                yield out
            if inflater.eof:
                break
            if not out and not pending and pos >= end:
                raise ArchiveError(f"{label}: {member.name}: the deflate stream is truncated")
    except error as exc:
        raise ArchiveError(f"{label}: {member.name}: corrupt deflate data ({exc})") from None
    if pending or inflater.unused_data or pos < end:
        raise ArchiveError(f"{label}: {member.name}: data after the end of the deflate stream")


# -- central directory ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Directory(Value):
    """Where the central directory is and how many entries it declares (APPNOTE 4.3.6)."""

    offset: int
    size: int
    count: int


def _find_directory(mm: mmap.mmap, label: str) -> _Directory:
    """Locate the end records (APPNOTE 4.3.16, 4.3.15, 4.3.14) and check they agree.

    The EOCD record is found by scanning backwards over the at most 64 KiB comment; its
    comment must end exactly at the end of the file. The central directory must end
    exactly where the (zip64) end record starts: no gap, no prepended data.
    """
    size = len(mm)
    floor = max(0, size - _EOCD.size - 0xFFFF)
    at = mm.rfind(_EOCD_SIG, floor, size - _EOCD.size + 4)
    while at >= 0:
        if at + _EOCD.size + _EOCD.unpack_from(mm, at)[7] == size:
            break
        at = mm.rfind(_EOCD_SIG, floor, at)
    if at < 0:
        raise ArchiveError(f"{label}: not a zip archive (no end of central directory record)")
    _, disk, cd_disk, disk_count, count, cd_size, cd_offset, _ = _EOCD.unpack_from(mm, at)
    end_of_cd = at
    loc = at - _LOCATOR.size
    if loc >= 0 and mm[loc : loc + 4] == _LOCATOR_SIG:
        _, cd_disk64, rec_offset, disks = _LOCATOR.unpack_from(mm, loc)
        if cd_disk64 != 0 or disks > 1:
            raise ArchiveError(f"{label}: multi-disk zip archives are not supported")
        if rec_offset + _EOCD64.size > loc or mm[rec_offset : rec_offset + 4] != _EOCD64_SIG:
            raise ArchiveError(f"{label}: corrupt zip64 end of central directory locator")
        fields = _EOCD64.unpack_from(mm, rec_offset)
        rec_size, disk, cd_disk, disk_count, count, cd_size, cd_offset = (
            fields[1],
            fields[4],
            fields[5],
            fields[6],
            fields[7],
            fields[8],
            fields[9],
        )
        if rec_offset + 12 + rec_size != loc:
            raise ArchiveError(f"{label}: corrupt zip64 end of central directory record")
        end_of_cd = rec_offset
    if disk != 0 or cd_disk != 0 or disk_count != count:
        raise ArchiveError(f"{label}: multi-disk zip archives are not supported")
    if cd_offset + cd_size != end_of_cd:
        raise ArchiveError(
            f"{label}: truncated or corrupt central directory "
            f"(it should end at offset {cd_offset + cd_size}, the end record is at {end_of_cd})"
        )
    return _Directory(cd_offset, cd_size, count)


def _read_members(mm: mmap.mmap, label: str, max_member_size: int) -> tuple[ZipMember, ...]:
    """Parse and validate every central directory entry, then the archive as a whole."""
    directory = _find_directory(mm, label)
    members: list[ZipMember] = []
    pos, end = directory.offset, directory.offset + directory.size
    while pos < end:
        member, pos = _read_entry(mm, pos, end, directory.offset, label)
        if not _plain_member(member, max_member_size):
            _check_member(member, label, max_member_size)
        members.append(member)
    if pos != end or len(members) != directory.count:
        raise ArchiveError(
            f"{label}: corrupt central directory ({len(members)} entries, "
            f"the end record says {directory.count})"
        )
    _check_names([m.name for m in members], label)
    _check_no_overlap(members, label)
    return tuple(members)


def _read_entry(
    mm: mmap.mmap, pos: int, end: int, cd_offset: int, label: str
) -> tuple[ZipMember, int]:
    """Read one central directory header (APPNOTE 4.3.12) and its local header (4.3.7).

    Run once per member (10^4 on big wheels): the common case allocates no message.
    """
    if pos + _CENTRAL.size > end:
        raise ArchiveError(f"{label}: corrupt central directory at offset {pos}")
    (
        signature,
        made_by,
        _needed,
        flags,
        method,
        mtime,
        mdate,
        crc,
        csize,
        usize,
        name_len,
        extra_len,
        comment_len,
        _disk,
        _internal,
        external,
        offset,
    ) = _CENTRAL.unpack_from(mm, pos)
    name_at = pos + _CENTRAL.size
    next_pos = name_at + name_len + extra_len + comment_len
    if signature != _CENTRAL_SIG or next_pos > end:
        raise ArchiveError(f"{label}: corrupt central directory at offset {pos}")
    raw_name = mm[name_at : name_at + name_len]
    try:
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        name = _decode_name(raw_name, flags, label)  # raises, naming the rule
    if extra_len:
        where = f"{label}: {name}"
        extras = _extra_fields(mm[name_at + name_len : name_at + name_len + extra_len], where)
        usize, csize, offset = _apply_zip64(extras, (usize, csize, offset), where)
        _check_unicode_path(extras, name, where)
    elif usize == 0xFFFFFFFF or csize == 0xFFFFFFFF or offset == 0xFFFFFFFF:
        raise ArchiveError(f"{label}: {name}: 32-bit size field is 0xFFFFFFFF but no zip64 extra")
    if offset + _LOCAL.size > cd_offset:
        raise ArchiveError(f"{label}: {name}: local header offset {offset} is out of range")
    local = _LOCAL.unpack_from(mm, offset)
    if local[0] != _LOCAL_SIG:
        raise ArchiveError(f"{label}: {name}: no local header at offset {offset}")
    name_end = offset + _LOCAL.size + local[9]
    data_offset = name_end + local[10]
    if mm[offset + _LOCAL.size : name_end] != raw_name:
        raise ArchiveError(f"{label}: {name}: the local header names a different file")
    if local[3] != method or (
        # The usual case inline; _local_agrees weighs data descriptors and zip64.
        (local[6] != crc or local[7] != csize or local[8] != usize)
        and not _local_agrees(local, flags, crc, csize, usize)
    ):
        raise ArchiveError(f"{label}: {name}: its local and central headers disagree")
    if data_offset + csize > cd_offset:
        raise ArchiveError(f"{label}: {name}: data runs past the start of the central directory")
    date_time = (
        (mdate >> 9) + 1980,
        (mdate >> 5) & 0xF,
        mdate & 0x1F,
        mtime >> 11,
        (mtime >> 5) & 0x3F,
        (mtime & 0x1F) * 2,
    )
    # Positional, in field order (name, method, flags, crc32, compress_size, file_size,
    # header_offset, data_offset, external_attr, create_system, date_time): cheaper.
    member = ZipMember(
        name,
        method,
        flags,
        crc,
        csize,
        usize,
        offset,
        data_offset,
        external,
        made_by >> 8,
        date_time,
    )
    return member, next_pos


def _local_agrees(local: tuple[int, ...], flags: int, crc: int, csize: int, usize: int) -> bool:
    """Whether a local header (APPNOTE 4.3.7) matches its central entry.

    With flag bit 3 the CRC and sizes follow the data in a data descriptor (APPNOTE
    4.3.9) and the local fields may be zero; 0xFFFFFFFF sizes defer to zip64 extras.
    Extractors that trust the local header must not see another file than we do.
    """
    if flags & _FLAG_DATA_DESCRIPTOR:
        return True
    local_csize, local_usize = local[7], local[8]
    return (
        local[6] == crc
        and local_csize in (csize, 0xFFFFFFFF)
        and local_usize in (usize, 0xFFFFFFFF)
    )


def _decode_name(raw: bytes, flags: int, label: str) -> str:
    """Decode a file name: UTF-8 when flag bit 11 is set, else IBM 437 (APPNOTE Appendix D)."""
    if flags & _FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(
                f"{label}: member name {raw!r} is flagged UTF-8 but is not valid UTF-8"
            ) from None
    return raw.decode("cp437")


def _extra_fields(extra: bytes, where: str) -> dict[int, bytes]:
    """Split an extra field into its (header ID -> data) blocks (APPNOTE 4.5.1)."""
    fields: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            raise ArchiveError(f"{where}: truncated extra field")
        fields.setdefault(tag, extra[at + 4 : at + 4 + length])
        at += 4 + length
    return fields


def _apply_zip64(
    extras: dict[int, bytes], fields: tuple[int, int, int], where: str
) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF sizes/offset by their zip64 extra field values (APPNOTE 4.5.3).

    The extra field holds only the values whose 32-bit field is 0xFFFFFFFF, in the
    order uncompressed size, compressed size, local header offset.
    """
    wanted = [v == 0xFFFFFFFF for v in fields]
    if not any(wanted):
        return fields
    body = extras.get(_ZIP64_EXTRA)
    if body is None:
        raise ArchiveError(f"{where}: 32-bit size field is 0xFFFFFFFF but no zip64 extra")
    values = list(fields)
    cursor = 0
    for i, needed in enumerate(wanted):
        if needed:
            if cursor + 8 > len(body):
                raise ArchiveError(f"{where}: truncated zip64 extra field")
            values[i] = struct.unpack_from("<Q", body, cursor)[0]
            cursor += 8
    return values[0], values[1], values[2]


def _check_unicode_path(extras: dict[int, bytes], name: str, where: str) -> None:
    """Refuse an Info-ZIP Unicode Path field (APPNOTE 4.6.9) naming another file.

    Some unzip tools (and zipfile since Python 3.12) extract under that name instead of
    the header's, so a difference would let one file hide behind another name.
    """
    body = extras.get(_UNICODE_PATH_EXTRA)
    if body is None:
        return
    if body[:1] != b"\x01" or body[5:].decode("utf-8", "replace") != name:
        raise ArchiveError(f"{where}: its Unicode Path extra field names another file")


_REFUSED_FLAGS: Final = _FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS
_PLAIN_TYPES: Final = frozenset({0, stat.S_IFREG, stat.S_IFDIR})


def _plain_member(member: ZipMember, max_member_size: int) -> bool:
    """True when :func:`_check_member` has nothing to refuse (the common case, checked
    without building any message: 10^4 members per big wheel)."""
    method, size = member.method, member.file_size
    return (
        not member.flags & _REFUSED_FLAGS
        and (method == DEFLATED or (method == STORED and size == member.compress_size))
        and stat.S_IFMT(member.mode) in _PLAIN_TYPES
        and size <= max_member_size
        and size <= member.compress_size * DEFLATE_MAX_RATIO
        and not (size and member.name[-1:] == "/")
    )


def _check_member(member: ZipMember, label: str, max_member_size: int) -> None:
    """Refuse what a wheel member must not be: encrypted, exotic, special, or oversized."""
    where = f"{label}: {member.name}"
    if member.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS):
        raise ArchiveError(f"{where}: encrypted members are not supported")
    if member.method not in (STORED, DEFLATED):
        method = _METHOD_NAMES.get(member.method, "unknown")
        raise ArchiveError(
            f"{where}: unsupported compression method {member.method} ({method}); "
            "wheels use stored (0) or deflated (8)"
        )
    mode = member.mode
    file_type = stat.S_IFMT(mode)
    if file_type == stat.S_IFLNK:
        raise ArchiveError(f"{where}: symbolic links are not allowed in a wheel")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveError(f"{where}: special file (mode {mode:o}) is not allowed")
    if member.file_size > max_member_size:
        raise ArchiveError(
            f"{where}: declares {member.file_size} bytes, more than the limit of {max_member_size}"
        )
    if member.method == STORED and member.file_size != member.compress_size:
        raise ArchiveError(
            f"{where}: stored member declares {member.file_size} bytes "
            f"but holds {member.compress_size}"
        )
    if member.method == DEFLATED and member.file_size > member.compress_size * DEFLATE_MAX_RATIO:
        raise ArchiveError(
            f"{where}: declares {member.file_size} bytes from {member.compress_size} "
            f"compressed bytes, more than deflate can produce ({DEFLATE_MAX_RATIO}:1)"
        )
    if member.is_dir and member.file_size:
        raise ArchiveError(f"{where}: directory entry with content")


def _check_name(name: str, label: str) -> None:
    """A member name must be a relative path in canonical form (APPNOTE 4.4.17.1).

    "All slashes MUST be forward slashes"; no drive letter or leading slash; and we add:
    no ``..``, ``.`` or empty components, no NUL — anything that could escape the
    destination directory or name one file two ways.
    """
    where = f"{label}: member name {name!r}"
    if not name:
        raise ArchiveError(f"{label}: empty member name")
    if "\\" in name:
        raise ArchiveError(f"{where} contains a backslash")
    if "\x00" in name:
        raise ArchiveError(f"{where} contains a NUL byte")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"{where} is an absolute path")
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if ".." in parts:
        raise ArchiveError(f"{where} has a '..' component")
    if "" in parts or "." in parts:
        raise ArchiveError(f"{where} has an empty or '.' component")


# What _check_name refuses, looked for in all names at once (substring searches run in
# C; 12k names take about a millisecond): they are joined with newlines, so "\n" marks
# where a name starts or ends. A hit sends every name through _check_name, which names
# the first offender and the rule.
_SUSPECT_TEXT: Final = ("\\", "\x00", "\n/", "//", "\n\n")
_DOT_PART: Final = re.compile(r"[\n/]\.\.?(?=[/\n])")
_DRIVE_START: Final = re.compile(r"\n[A-Za-z]:")


def _suspect_names(joined: str) -> bool:
    return (
        any(text in joined for text in _SUSPECT_TEXT)
        or (("/." in joined or "\n." in joined) and _DOT_PART.search(joined) is not None)
        or _DRIVE_START.search(joined) is not None
    )


def _check_names(names: Sequence[str], label: str) -> None:
    """Each name canonical (:func:`_check_name`) and once, and no name that is both a
    file and a directory."""
    joined = "\n" + "\n".join(names) + "\n"
    suspect = joined.count("\n") != len(names) + 1 or _suspect_names(joined)
    if suspect or len(set(names)) != len(names):
        # Something to refuse: the rules in member order, so the first offender is named.
        seen: set[str] = set()
        for name in names:
            _check_name(name, label)
            if name in seen:
                raise ArchiveError(f"{label}: duplicate member name {name!r}")
            seen.add(name)
    directories: set[str] = set()
    for name in names:
        directory = name[:-1] if name[-1] == "/" else name.rpartition("/")[0]
        while directory and directory not in directories:
            directories.add(directory)
            directory = directory.rpartition("/")[0]
    for name in names:
        if name[-1] != "/" and name in directories:
            raise ArchiveError(f"{label}: {name!r} is both a file and a directory")


def _check_no_overlap(members: Sequence[ZipMember], label: str) -> None:
    """Entries must not share bytes: overlapping entries are how zip bombs multiply output."""
    spans = sorted((m.header_offset, m.data_offset + m.compress_size, m.name) for m in members)
    for (_, end, name), (start, _, other) in pairwise(spans):
        if start < end:
            raise ArchiveError(f"{label}: members {name!r} and {other!r} overlap")
