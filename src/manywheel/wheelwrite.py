"""Write a repaired wheel: unchanged members copied raw, new ones deflated, RECORD rebuilt.

The writer is one of the three places manywheel touches the filesystem (DESIGN.md, "Side
effects at the edges"), and the output is reproducible (DESIGN.md, "Reproducible by
default"; docs/reproducibility.md says exactly what is guaranteed):

* Members the caller keeps are copied **raw**: their compressed bytes, CRC-32, sizes and
  method go into the new archive unchanged (no inflating, no recompressing), so an
  unchanged member is byte-for-byte the member of the input wheel.
* Replaced and added members are deflated (APPNOTE 4.4.5 method 8, raw RFC 1951 stream)
  at ``compresslevel`` by :data:`DEFLATER` in fixed :data:`CHUNK`-sized pieces, each
  deflated alone, primed with the :data:`WINDOW` bytes before it and sync-flushed (pigz's
  scheme, :func:`manywheel.deflate.deflate_piece`), so the pieces of one big member
  deflate in parallel threads (the deflaters release the GIL) and the bytes never depend
  on the threads. The deflate machinery lives in :mod:`manywheel.deflate`; its public
  names are re-exported here.
* ``WHEEL`` is the caller's text; ``RECORD`` is regenerated with ``sha256=`` and size for
  every file (PEP 427 "The .dist-info directory"; its own row is ``path,,``).
* Entries are sorted by path, the ``.dist-info`` directory last and ``RECORD`` the very
  last entry (PEP 427 recommends the dist-info files at the end of the archive, so that
  an installer can stream the archive). Every entry has the same timestamp (the UTC
  broken-down time of ``epoch``), a normalized Unix mode, no extra field (except zip64
  when a size or offset needs it), no comment, fixed "version made by" and "version
  needed to extract" values.
* The archive is written to a temporary file next to ``out_path``, fsync'ed and renamed
  into place (:func:`os.replace`); on any failure nothing is left behind.

Section numbers ("APPNOTE 4.3.7") refer to PKWARE's APPNOTE.TXT 6.3.10.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import hashlib
import os
import re
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, TypeVar

from manywheel.deflate import (
    CHUNK,
    DEFLATER,
    WINDOW,
    Cancelled,
    Deflated,
    DeflateOptions,
    Deflater,
    NewMember,
    PreDeflated,
    Predeflater,
    assemble,
    available_deflaters,
    cannot_write,
    chunk_count,
    content_size,
    deflate_member,
    deflate_piece,
    get_deflater,
    worker_count,
)
from manywheel.errors import UsageError
from manywheel.value import Value
from manywheel.wheel import (
    SIGNATURE_SUFFIXES,
    MemberDigest,
    RecordEntry,
    RecordHasher,
    format_record,
)
from manywheel.zipread import DEFLATED, ZipArchive, ZipMember

__all__ = [
    "CHUNK",
    "DEFLATER",
    "WINDOW",
    "ZIP_MAX_EPOCH",
    "ZIP_MIN_EPOCH",
    "Deflater",
    "NewMember",
    "Predeflater",
    "WrittenWheel",
    "available_deflaters",
    "clamp_epoch",
    "epoch_from_environment",
    "get_deflater",
    "newest_member_time",
    "write_wheel",
]

_T = TypeVar("_T")

_PARALLEL_MIN_BYTES: Final = 1024 * 1024
"""Below this much content to deflate or hash, threads cost more than they save."""

# -- timestamps ------------------------------------------------------------------------

ZIP_MIN_EPOCH: Final = calendar.timegm((1980, 1, 1, 0, 0, 0))
"""1980-01-01 00:00:00 UTC: the earliest MS-DOS date a zip entry can hold (APPNOTE 4.4.6)."""

ZIP_MAX_EPOCH: Final = calendar.timegm((2107, 12, 31, 23, 59, 58))
"""2107-12-31 23:59:58 UTC: the latest one (a 7-bit year from 1980, 2-second resolution)."""

_DECIMAL: Final = re.compile(r"[0-9]+")


def clamp_epoch(epoch: int) -> int:
    """``epoch`` moved into [:data:`ZIP_MIN_EPOCH`, :data:`ZIP_MAX_EPOCH`]."""
    return min(max(epoch, ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)


def epoch_from_environment(environ: Mapping[str, str], fallback: int) -> int:
    """The timestamp of every entry of the output wheel, in seconds since 1970 (UTC).

    ``SOURCE_DATE_EPOCH`` when set (reproducible-builds.org specification: the decimal
    integer number of seconds since 1970-01-01 00:00:00 UTC, as ``date +%s`` prints it);
    a malformed value is a :class:`UsageError` (the specification: exit non-zero). Set
    but empty counts as unset, as in CPython's ``py_compile`` and the ``wheel`` builders.
    When unset: ``fallback`` -- manywheel passes :func:`newest_member_time` of the input
    wheel, never the clock, so the same input gives the same output with no variable set.
    The result is clamped to the range a zip entry can hold (:func:`clamp_epoch`).
    """
    value = environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return clamp_epoch(fallback)
    if not _DECIMAL.fullmatch(value):
        raise UsageError(
            f"SOURCE_DATE_EPOCH={value!r} is not valid: expected a non-negative decimal "
            "integer, the number of seconds since 1970-01-01 00:00:00 UTC (as date +%s prints)"
        )
    return clamp_epoch(int(value))


def newest_member_time(archive: ZipArchive) -> int:
    """The newest entry timestamp of ``archive``, read as UTC, in seconds since 1970.

    Zip timestamps are MS-DOS local times without a zone (APPNOTE 4.4.6); reading them as
    UTC and writing the result back as UTC (:func:`write_wheel`) reproduces the input's
    newest timestamp exactly, whatever the time zone of either machine. Entries with an
    impossible date (month 13, day 0) are ignored; with none left, :data:`ZIP_MIN_EPOCH`.
    """
    newest = ZIP_MIN_EPOCH
    for member in archive.members:
        year, month, day, hour, minute, second = member.date_time
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
            continue
        if hour > 23 or minute > 59 or second > 59:
            continue
        newest = max(newest, calendar.timegm((year, month, day, hour, minute, second)))
    return clamp_epoch(newest)


def _dos_date_time(epoch: int) -> tuple[int, int]:
    """``(date, time)`` fields of an entry (APPNOTE 4.4.6) for ``epoch``, in UTC."""
    t = time.gmtime(clamp_epoch(epoch))
    date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return date, clock


# -- what the caller gives and gets -----------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class WrittenWheel(Value):
    """The wheel :func:`write_wheel` wrote: its final path, size in bytes, and the sha256 of
    the whole file (hex, as ``pip hash`` and ``sha256sum`` print it). ``kept_digests``:
    the RECORD digest written for each member copied raw (from ``known_digests`` or
    hashed here)."""

    path: Path
    size: int
    sha256: str
    kept_digests: Mapping[str, MemberDigest] = field(default_factory=dict)


# -- zip structures (APPNOTE 4.3) -------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 4.3.7 local file header
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 4.3.12 central directory header
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # 4.3.14 zip64 end of central directory record
_LOCATOR = struct.Struct("<4sIQI")  # 4.3.15 zip64 end of central directory locator
_EOCD = struct.Struct("<4sHHHHIIH")  # 4.3.16 end of central directory record
_EXTRA_HEADER = struct.Struct("<HH")  # 4.5.1 extra field block header
_ZIP64_TAG: Final = 0x0001  # 4.5.3
_U32_MAX: Final = 0xFFFFFFFF
_U16_MAX: Final = 0xFFFF

_UNIX: Final = 3  # 4.4.2.2 "UNIX"
_SPEC_VERSION: Final = 45  # 4.4.2.3: we write features up to 4.5 (zip64)
_MADE_BY: Final = (_UNIX << 8) | _SPEC_VERSION
_NEEDED: Final = 20  # 4.4.3.2: 2.0 -- deflate, directories
_NEEDED_ZIP64: Final = 45  # 4.4.3.2: 4.5 -- zip64
_FLAG_UTF8: Final = 0x0800  # 4.4.4 bit 11 (Appendix D)
_MSDOS_DIRECTORY: Final = 0x10
_FILE_MODE: Final = 0o644
_EXEC_MODE: Final = 0o755


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Entry(Value):
    """One entry as it will be written: where its data comes from, and its header fields."""

    name: str
    mode: int  # full st_mode (type and permission bits)
    kept: ZipMember | None = None  # raw copy from the source archive
    new: NewMember | None = None  # deflated here (WHEEL and RECORD too)

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


# -- the writer -------------------------------------------------------------------------


def write_wheel(
    source: ZipArchive,
    out_path: Path,
    *,
    keep: Sequence[str],
    replace: Mapping[str, NewMember] | None = None,
    add: Sequence[NewMember] = (),
    wheel_file: tuple[str, str],
    record_path: str,
    epoch: int,
    compresslevel: int = 6,
    workers: int | None = None,
    known_digests: Mapping[str, MemberDigest] | None = None,
    deflater: Deflater | None = None,
    force_zip64: bool = False,
    predeflated: Mapping[str, PreDeflated] | None = None,
) -> WrittenWheel:
    """Write a wheel built from ``source`` to ``out_path``; the input is never modified.

    * ``keep`` -- members of ``source`` copied raw (compressed bytes, CRC, sizes, method
      unchanged); members of ``source`` in none of ``keep``/``replace`` are dropped.
    * ``replace`` -- maps a member of ``source`` to its new content (whose ``path`` is
      where it goes, normally the same); it stays executable if it was.
    * ``add`` -- members that were not in ``source``.
    * ``wheel_file`` -- ``(path, text)`` of the new ``.dist-info/WHEEL``.
    * ``record_path`` -- where RECORD goes; it is generated (PEP 376 / PEP 427 format).
    * ``epoch`` -- the timestamp of every entry (:func:`epoch_from_environment`).
    * ``known_digests`` -- sha256 digests and sizes of kept members' *content* the caller
      already computed from this same ``source`` (e.g. during the audit, which streams
      every member through zipread's CRC check). A kept member without one (or whose
      size disagrees with the central directory) is inflated and hashed here.
    * ``workers`` -- threads for deflating and hashing (default: the CPUs this process may
      use; the output does not depend on it). ``deflater`` -- default :data:`DEFLATER`.
    * ``force_zip64`` -- write zip64 fields everywhere (APPNOTE 4.5.3), to test readers;
      otherwise zip64 appears only where a size, offset or count needs it.
    * ``predeflated`` -- new members (by output path) already deflated by a
      :class:`Predeflater` with the same ``compresslevel`` and deflater (the same bytes
      :func:`write_wheel` would make); they are written as they are. Each is closed.

    Naming the same output path twice, a path absent from ``source`` in ``keep`` or
    ``replace``, RECORD or WHEEL in ``keep``, or an invalid member name is a programming
    error: :class:`ValueError`. An output directory that cannot be written is an
    :class:`EnvironmentProblem`; an unreadable ``NewMember`` file is an :class:`InputError`.
    """
    deflater = DEFLATER if deflater is None else deflater
    if not 0 <= compresslevel <= 9:
        raise ValueError(f"compresslevel must be 0..9, not {compresslevel}")
    ready = dict(predeflated or {})
    try:
        return _write_wheel(
            source,
            Path(out_path),
            keep=keep,
            replace=replace,
            add=add,
            wheel_file=wheel_file,
            record_path=record_path,
            epoch=epoch,
            compresslevel=compresslevel,
            workers=workers,
            known_digests=known_digests,
            deflater=deflater,
            force_zip64=force_zip64,
            predeflated=ready,
        )
    finally:
        for done in ready.values():
            done.deflated.data.close()


def _write_wheel(
    source: ZipArchive,
    out_path: Path,
    *,
    keep: Sequence[str],
    replace: Mapping[str, NewMember] | None,
    add: Sequence[NewMember],
    wheel_file: tuple[str, str],
    record_path: str,
    epoch: int,
    compresslevel: int,
    workers: int | None,
    known_digests: Mapping[str, MemberDigest] | None,
    deflater: Deflater,
    force_zip64: bool,
    predeflated: Mapping[str, PreDeflated],
) -> WrittenWheel:
    for path, done in predeflated.items():
        if (done.compresslevel, done.deflater) != (compresslevel, deflater):
            raise ValueError(f"predeflated: {path!r} was deflated with other options")
    entries = _plan(
        source, keep, replace or {}, add, wheel_file=wheel_file, record_path=record_path
    )
    out_path = Path(out_path)
    directory = out_path.parent
    _refuse_overwriting_input(source, out_path)
    writer = _TempFile(directory, out_path.name)
    try:
        written = _write(
            writer,
            source,
            entries,
            record_path=record_path,
            date_time=_dos_date_time(epoch),
            options=_Options(
                compresslevel=compresslevel,
                deflater=deflater,
                workers=worker_count(workers),
                known=known_digests or {},
                force_zip64=force_zip64,
                spool_dir=directory,
                predeflated=predeflated,
            ),
        )
        writer.commit(out_path)
    except BaseException:
        writer.discard()
        raise
    return WrittenWheel(out_path, written[0], written[1], written[2])


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Options(DeflateOptions):
    workers: int
    known: Mapping[str, MemberDigest]
    force_zip64: bool
    predeflated: Mapping[str, PreDeflated] = field(default_factory=dict)


def _check_member_path(path: str, what: str) -> None:
    """A member name we write must be canonical (APPNOTE 4.4.17.1) and relative."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or ".." in parts
        or "." in parts
        or "" in parts
    ):
        raise ValueError(f"{what}: {path!r} is not a valid wheel member path")


def _plan(
    source: ZipArchive,
    keep: Sequence[str],
    replace: Mapping[str, NewMember],
    add: Sequence[NewMember],
    *,
    wheel_file: tuple[str, str],
    record_path: str,
) -> list[_Entry]:
    """Every output entry, checked for collisions, in archive order (PEP 427)."""
    entries: dict[str, _Entry] = {}

    def put(entry: _Entry, what: str) -> None:
        if entry.name in entries:
            raise ValueError(f"{what}: {entry.name!r} is written twice")
        entries[entry.name] = entry

    def source_member(name: str, what: str) -> ZipMember:
        try:
            return source.member(name)
        except KeyError:
            raise ValueError(f"{what}: {name!r} is not a member of {source.path}") from None

    wheel_path, wheel_text = wheel_file
    for path, what in ((record_path, "record_path"), (wheel_path, "wheel_file")):
        _check_member_path(path, what)
    generated = {record_path, wheel_path}
    signatures = {record_path + suffix for suffix in SIGNATURE_SUFFIXES}
    for name in keep:
        member = source_member(name, "keep")
        if name in generated:
            raise ValueError(f"keep: {name!r} is generated, it cannot be kept")
        if name in signatures:
            raise ValueError(f"keep: {name!r} signs the old RECORD, which is rewritten")
        if member.is_dir:
            put(_Entry(name, stat.S_IFDIR | _EXEC_MODE, kept=member), "keep")
        else:
            mode = _EXEC_MODE if member.is_executable else _FILE_MODE
            put(_Entry(name, stat.S_IFREG | mode, kept=member), "keep")
    for name, new in replace.items():
        member = source_member(name, "replace")
        _check_member_path(new.path, "replace")
        executable = new.executable or member.is_executable
        mode = _EXEC_MODE if executable else _FILE_MODE
        put(_Entry(new.path, stat.S_IFREG | mode, new=new), "replace")
    for new in add:
        _check_member_path(new.path, "add")
        mode = _EXEC_MODE if new.executable else _FILE_MODE
        put(_Entry(new.path, stat.S_IFREG | mode, new=new), "add")
    wheel = NewMember(wheel_path, wheel_text.encode("utf-8"))
    put(_Entry(wheel_path, stat.S_IFREG | _FILE_MODE, new=wheel), "wheel_file")
    if record_path in entries:
        raise ValueError(f"record_path: {record_path!r} is written twice")
    dist_info = record_path.rpartition("/")[0] + "/"

    def order(entry: _Entry) -> tuple[bool, str]:
        return entry.name.startswith(dist_info), entry.name

    # RECORD is appended last by _write, once every other digest is known.
    return sorted(entries.values(), key=order)


def _refuse_overwriting_input(source: ZipArchive, out_path: Path) -> None:
    try:
        same = os.path.samefile(source.path, out_path)
    except OSError:
        return
    if same:
        raise UsageError(
            f"refusing to overwrite the input wheel {source.path}; choose another -w DIR"
        )


# -- output file ------------------------------------------------------------------------


def _umask() -> int:
    """This process's umask, read without changing it (``/proc/self/status``, Linux 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class _TempFile:
    """A hidden temporary file in the output directory, renamed into place on success.

    Every byte goes through :meth:`write`, which hashes it (the result's sha256) and turns
    an :class:`OSError` into the one-line :class:`EnvironmentProblem`.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        try:
            fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        except OSError as exc:
            raise cannot_write(directory, exc) from None
        self.path = path
        self._file: IO[bytes] | None = open(fd, "wb", buffering=CHUNK)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes | memoryview) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except OSError as exc:
            raise cannot_write(self.directory, exc) from None
        self._hash.update(data)
        self.offset += len(data)

    def finish(self) -> tuple[int, str]:
        """Flush and fsync; the file's size and sha256 (hex)."""
        assert self._file is not None
        try:
            self._file.flush()
            os.fchmod(self._file.fileno(), 0o666 & ~_umask())
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise cannot_write(self.directory, exc) from None
        return self.offset, self._hash.hexdigest()

    def commit(self, out_path: Path) -> None:
        """Close, rename over ``out_path`` (atomic on one filesystem), fsync the directory."""
        self._close()
        try:
            os.replace(self.path, out_path)
        except OSError as exc:
            raise cannot_write(self.directory, exc) from None
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # pragma: no cover - the rename worked, durability is best effort
            return
        try:
            os.fsync(dir_fd)
        except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
            pass
        finally:
            os.close(dir_fd)

    def discard(self) -> None:
        """Close and remove the temporary file (after a failure); never raises."""
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()


# -- deflating and hashing --------------------------------------------------------------


def _hash_kept(source: ZipArchive, member: ZipMember, cancel: threading.Event) -> MemberDigest:
    """Inflate (CRC-checked by zipread) and hash a kept member's content for RECORD."""
    hasher = RecordHasher()
    for chunk in source.iter_content(member, CHUNK):
        if cancel.is_set():
            raise Cancelled
        hasher.update(chunk)
    return hasher.result()


def _known_digest(entry: _Entry, known: Mapping[str, MemberDigest]) -> MemberDigest | None:
    assert entry.kept is not None
    digest = known.get(entry.name)
    if digest is None or digest.sha256 is None or digest.size != entry.kept.file_size:
        return None
    return MemberDigest(digest.sha256, digest.size)


class _Jobs:
    """The deflating and hashing work, run in a thread pool when it pays, else inline.

    Output bytes never depend on scheduling: every job works on one member alone, and the
    archive is assembled in entry order from the results.
    """

    def __init__(self, options: _Options) -> None:
        self.cancel = threading.Event()
        self._options = options
        self._pending: list[tuple[int, Callable[[], object]]] = []
        self._futures: list[Future[object]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._ordered: list[tuple[Callable[[], object], list[Future[object]]]] = []
        self._fed = 0
        self._window = 4 * options.workers
        self.ordered_weight = 0

    def add_ordered(self, job: Callable[[], object]) -> Callable[[], object]:
        """Register a job whose results are consumed in the order of registration (the
        deflate pieces): submitted at most :attr:`window` ahead of the one consumed, so
        finished pieces waiting to be written stay few (bounded memory)."""
        index = len(self._ordered)
        slot: list[Future[object]] = []
        self._ordered.append((job, slot))

        def result() -> object:
            if self._pool is None:  # inline mode
                return job()
            self._feed(index + 1 + self._window)
            return slot[0].result()

        return result

    def _feed(self, upto: int) -> None:
        while self._fed < min(upto, len(self._ordered)):
            job, slot = self._ordered[self._fed]
            slot.append(self._submit(job))
            self._fed += 1

    def add(self, weight: int, job: Callable[[], object]) -> Callable[[], object]:
        """Register ``job``; returns a function that gives its result (waiting if needed)."""
        slot: list[Future[object]] = []
        self._pending.append((weight, lambda: slot.append(self._submit(job))))

        def result() -> object:
            if not slot:  # inline mode
                return job()
            return slot[0].result()

        return result

    def _submit(self, job: Callable[[], object]) -> Future[object]:
        assert self._pool is not None
        future = self._pool.submit(job)
        self._futures.append(future)
        return future

    def start(self) -> None:
        total = sum(weight for weight, _ in self._pending) + self.ordered_weight
        workers = min(self._options.workers, len(self._pending) + len(self._ordered))
        if workers < 2 or total < _PARALLEL_MIN_BYTES:
            return
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wheelwrite")
        # Biggest first: the longest job starts at once (longest-processing-time order).
        for _, submit in sorted(self._pending, key=lambda p: -p[0]):
            submit()
        self._feed(self._window)

    def close(self, failed: bool) -> None:
        """Stop the pool; after a failure, cancel what has not started, stop what has."""
        if failed:
            self.cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=failed)


# -- assembling the archive -------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Central(Value):
    """What the central directory needs of an entry already written."""

    name: bytes
    flags: int
    method: int
    crc32: int
    compress_size: int
    file_size: int
    offset: int
    external_attr: int


def _write(
    out: _TempFile,
    source: ZipArchive,
    entries: list[_Entry],
    *,
    record_path: str,
    date_time: tuple[int, int],
    options: _Options,
) -> tuple[int, str, dict[str, MemberDigest]]:
    jobs = _Jobs(options)
    results: list[Callable[[], object]] = []
    for entry in entries:
        done = options.predeflated.get(entry.name) if entry.new is not None else None
        if done is not None:
            if done.member != entry.new:
                raise ValueError(f"predeflated: {entry.name!r} was deflated from another source")
            results.append(functools.partial(_same, done.deflated))
        elif entry.new is not None:
            new = entry.new
            size = content_size(new)
            count = chunk_count(size)
            jobs.ordered_weight += size
            pieces = [
                jobs.add_ordered(
                    functools.partial(
                        deflate_piece,
                        new,
                        i,
                        count=count,
                        size=size,
                        options=options,
                        cancel=jobs.cancel,
                    )
                )
                for i in range(count)
            ]
            results.append(functools.partial(assemble, new, pieces, options))
        elif entry.is_dir:
            results.append(_nothing)
        else:
            member = entry.kept
            assert member is not None
            digest = _known_digest(entry, options.known)
            if digest is not None:
                results.append(functools.partial(_same, digest))
            else:
                job = functools.partial(_hash_kept, source, member, jobs.cancel)
                results.append(jobs.add(member.file_size, job))
    failed = True
    try:
        jobs.start()
        central: list[_Central] = []
        record: list[RecordEntry] = []
        kept: dict[str, MemberDigest] = {}
        for entry, result in zip(entries, results, strict=True):
            outcome = result()
            if isinstance(outcome, Deflated):
                central.append(_write_deflated(out, entry, outcome, date_time, options))
                digest = outcome.digest
            else:
                assert entry.kept is not None
                central.append(_write_kept(out, source, entry, date_time, options))
                if entry.is_dir:
                    continue
                assert isinstance(outcome, MemberDigest)
                digest = outcome
                kept[entry.name] = digest
            assert digest.sha256 is not None
            record.append(RecordEntry(entry.name, "sha256", digest.sha256, digest.size))
        record.append(RecordEntry(record_path, None, None, None))
        record_entry = _Entry(record_path, stat.S_IFREG | _FILE_MODE)
        record_member = NewMember(record_path, format_record(record).encode("utf-8"))
        deflated = deflate_member(record_member, options, jobs.cancel)
        central.append(_write_deflated(out, record_entry, deflated, date_time, options))
        _write_directory(out, central, date_time, options.force_zip64)
        failed = False
    finally:
        jobs.close(failed)
    return (*out.finish(), kept)


def _nothing() -> None:
    return None


def _same(value: _T) -> _T:
    return value


def _flags(name: str) -> int:
    """Bit 11 (UTF-8 names, APPNOTE Appendix D) for a name that is not plain ASCII."""
    return 0 if name.isascii() else _FLAG_UTF8


def _external_attr(entry: _Entry) -> int:
    """Unix ``st_mode`` in the high 16 bits (APPNOTE 4.4.15), MS-DOS directory bit."""
    return (entry.mode << 16) | (_MSDOS_DIRECTORY if entry.is_dir else 0)


def _write_local(
    out: _TempFile, entry: _Central, date_time: tuple[int, int], force_zip64: bool
) -> None:
    """A local file header (APPNOTE 4.3.7), zip64 sizes when needed (4.5.3: both)."""
    zip64 = force_zip64 or entry.compress_size >= _U32_MAX or entry.file_size >= _U32_MAX
    extra = b""
    if zip64:
        sizes = struct.pack("<QQ", entry.file_size, entry.compress_size)
        extra = _EXTRA_HEADER.pack(_ZIP64_TAG, len(sizes)) + sizes
    date, clock = date_time
    out.write(
        _LOCAL.pack(
            b"PK\x03\x04",
            _NEEDED_ZIP64 if zip64 else _NEEDED,
            entry.flags,
            entry.method,
            clock,
            date,
            entry.crc32,
            _U32_MAX if zip64 else entry.compress_size,
            _U32_MAX if zip64 else entry.file_size,
            len(entry.name),
            len(extra),
        )
        + entry.name
        + extra
    )


def _write_kept(
    out: _TempFile,
    source: ZipArchive,
    entry: _Entry,
    date_time: tuple[int, int],
    options: _Options,
) -> _Central:
    """Copy a member raw: its compressed bytes as they are in ``source``."""
    member = entry.kept
    assert member is not None
    central = _Central(
        name=entry.name.encode("utf-8"),
        flags=_flags(entry.name),
        method=member.method,
        crc32=member.crc32,
        compress_size=member.compress_size,
        file_size=member.file_size,
        offset=out.offset,
        external_attr=_external_attr(entry),
    )
    _write_local(out, central, date_time, options.force_zip64)
    for chunk in source.iter_raw(member, CHUNK):
        out.write(chunk)
    return central


def _write_deflated(
    out: _TempFile,
    entry: _Entry,
    deflated: Deflated,
    date_time: tuple[int, int],
    options: _Options,
) -> _Central:
    """Write a deflated member from its spool, and close the spool."""
    central = _Central(
        name=entry.name.encode("utf-8"),
        flags=_flags(entry.name),
        method=DEFLATED,
        crc32=deflated.crc32,
        compress_size=deflated.compress_size,
        file_size=deflated.digest.size,
        offset=out.offset,
        external_attr=_external_attr(entry),
    )
    with deflated.data as data:
        _write_local(out, central, date_time, options.force_zip64)
        while chunk := data.read(CHUNK):
            out.write(chunk)
    return central


def _write_directory(
    out: _TempFile, central: Sequence[_Central], date_time: tuple[int, int], force_zip64: bool
) -> None:
    """The central directory (APPNOTE 4.3.12) and its end records (4.3.14-4.3.16)."""
    date, clock = date_time
    start = out.offset
    for entry in central:
        values = (entry.file_size, entry.compress_size, entry.offset)
        # 4.5.3: the zip64 extra holds exactly the fields whose 32-bit value is 0xFFFFFFFF,
        # in the order uncompressed size, compressed size, local header offset.
        big = [force_zip64 or value >= _U32_MAX for value in values]
        extra = b""
        if any(big):
            body = b"".join(struct.pack("<Q", v) for v, b in zip(values, big, strict=True) if b)
            extra = _EXTRA_HEADER.pack(_ZIP64_TAG, len(body)) + body
        file_size, compress_size, offset = (
            _U32_MAX if b else v for v, b in zip(values, big, strict=True)
        )
        out.write(
            _CENTRAL.pack(
                b"PK\x01\x02",
                _MADE_BY,
                _NEEDED_ZIP64 if any(big) else _NEEDED,
                entry.flags,
                entry.method,
                clock,
                date,
                entry.crc32,
                compress_size,
                file_size,
                len(entry.name),
                len(extra),
                0,  # comment length
                0,  # disk number start
                0,  # internal attributes
                entry.external_attr,
                offset,
            )
            + entry.name
            + extra
        )
    end = out.offset
    size = end - start
    count = len(central)
    zip64 = force_zip64 or count >= _U16_MAX or size >= _U32_MAX or start >= _U32_MAX
    if zip64:
        out.write(
            _EOCD64.pack(
                b"PK\x06\x06",
                _EOCD64.size - 12,  # 4.3.14.1: the size excludes the leading 12 bytes
                _MADE_BY,
                _NEEDED_ZIP64,
                0,
                0,
                count,
                count,
                size,
                start,
            )
        )
        out.write(_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
    out.write(
        _EOCD.pack(
            b"PK\x05\x06",
            0,
            0,
            _U16_MAX if zip64 else count,
            _U16_MAX if zip64 else count,
            _U32_MAX if zip64 else size,
            _U32_MAX if zip64 else start,
            0,  # comment length
        )
    )
