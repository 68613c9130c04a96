"""Deflate new wheel members: the deflater (zlib-ng or zlib) and pigz-style chunked deflate.

Split from :mod:`manywheel.wheelwrite` so the compression scheme (whose bytes are the
reproducibility contract, docs/reproducibility.md) reads apart from the zip layout.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Final

from manywheel.errors import EnvironmentProblem, InputError, UsageError
from manywheel.value import Value
from manywheel.wheel import MemberDigest, RecordHasher
from manywheel.zipread import DEFLATED

__all__ = [
    "CHUNK",
    "DEFLATER",
    "WINDOW",
    "Cancelled",
    "DeflateOptions",
    "Deflated",
    "Deflater",
    "NewMember",
    "PreDeflated",
    "Predeflater",
    "assemble",
    "available_deflaters",
    "cannot_write",
    "chunk_count",
    "content_size",
    "deflate_member",
    "deflate_piece",
    "get_deflater",
    "worker_count",
]


@dataclass(frozen=True, eq=False, repr=False)
class Deflater(Value):
    """A zlib-compatible module used to deflate new members, and what identifies its output.

    Two runs produce the same compressed bytes when their deflaters have the same
    :attr:`identity` (library and version) on the same CPU architecture; see
    docs/reproducibility.md. ``module`` provides zlib's ``compressobj`` and ``crc32``.
    """

    name: str
    version: str
    module: ModuleType

    @property
    def identity(self) -> str:
        """``"zlib-ng 2.3.3"``: what a user compares to reproduce a wheel elsewhere."""
        return f"{self.name} {self.version}"


def available_deflaters() -> dict[str, Deflater]:
    """The deflaters this Python can use, best first: python-zlib-ng (when installed), zlib.

    python-isal is not offered: its levels (0-3) are not zlib's, and its best level
    deflates ~10% larger than zlib-ng's level 6 (docs/reproducibility.md, measurements).
    """
    found: dict[str, Deflater] = {}
    try:
        from zlib_ng import zlib_ng  # noqa: PLC0415
    except ImportError:
        pass
    else:
        found["zlib-ng"] = Deflater("zlib-ng", str(zlib_ng.ZLIBNG_RUNTIME_VERSION), zlib_ng)
    found["zlib"] = Deflater("zlib", zlib.ZLIB_RUNTIME_VERSION, zlib)
    return found


def get_deflater(name: str) -> Deflater:
    """The deflater called ``name`` (``"zlib-ng"`` or ``"zlib"``); :class:`UsageError` when
    this Python does not have it."""
    found = available_deflaters()
    try:
        return found[name]
    except KeyError:
        raise UsageError(
            f"deflater {name!r} is not available here; available: {', '.join(found)}"
        ) from None


DEFLATER: Final[Deflater] = next(iter(available_deflaters().values()))
"""The default deflater: zlib-ng when python-zlib-ng is installed, else the standard zlib."""

CHUNK: Final = 1024 * 1024
"""New members are deflated in pieces of exactly this many bytes (the last one shorter),
each alone (:func:`deflate_piece`); changing this changes output bytes."""

_SPOOL_IN_MEMORY: Final = 4 * 1024 * 1024
"""Compressed output of a new member stays in memory up to this size, then spills into an
unnamed temporary file in the output directory."""


@dataclass(frozen=True, eq=False, repr=False)
class NewMember(Value):
    """Content for a new or replaced member: ``source`` bytes, or a file read (streamed)
    from disk when the archive is written. ``executable`` gives it mode 0o755."""

    path: str
    source: bytes | Path
    executable: bool = False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Deflated(Value):
    """A new member's compressed bytes (spooled) and what the headers and RECORD need."""

    data: IO[bytes]
    crc32: int
    compress_size: int
    digest: MemberDigest


class Cancelled(Exception):
    """Raised in a worker thread when the write failed elsewhere: stop early."""


def worker_count(workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def cannot_write(directory: Path, exc: OSError) -> EnvironmentProblem:
    reason = exc.strerror or str(exc)
    return EnvironmentProblem(f"cannot write to {directory}: {reason}; choose another -w DIR")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DeflateOptions(Value):
    """How new members are deflated: level, deflater, and where big outputs spill."""

    compresslevel: int
    deflater: Deflater
    spool_dir: Path


#: How much of the previous chunk's content primes the next chunk's compressor: the
#: deflate window (RFC 1951: back references reach at most 32 KiB).
WINDOW: Final = 32 * 1024


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Piece(Value):
    """One chunk of a new member: its content and its deflated bytes."""

    content: bytes | memoryview
    deflated: bytes


def chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK))


def _read_span(new: NewMember, start: int, end: int, last: bool) -> bytes | memoryview:
    """Bytes ``start..end`` of ``new``'s content; a file shorter than that, or (``last``:
    ``end`` is the size it had when the write was planned) longer, is an InputError."""
    if isinstance(new.source, bytes):
        return memoryview(new.source)[start:end]
    try:
        fd = os.open(new.source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, end - start, start)
            while len(data) < end - start:
                more = os.pread(fd, end - start - len(data), start + len(data))
                if not more:
                    break
                data += more
            if last and len(data) == end - start and os.pread(fd, 1, end):
                data = b""  # grew since it was measured: reported below
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(
            f"{new.source}: cannot read (for {new.path}): {exc.strerror or exc}"
        ) from None
    if len(data) < end - start:
        raise InputError(f"{new.source}: changed while it was read (for {new.path})")
    return data


def deflate_piece(
    new: NewMember,
    index: int,
    *,
    count: int,
    size: int,
    options: DeflateOptions,
    cancel: threading.Event,
) -> _Piece:
    """Chunk ``index`` of ``count`` of ``new`` (``size`` bytes in all), deflated alone.

    The pigz scheme: a fresh compressor primed with the previous :data:`WINDOW` bytes of
    content as its preset dictionary (so matches still reach back across the boundary),
    ended by a sync flush (an empty stored block: byte-aligned, the state the next chunk
    starts from), the last one by ``Z_FINISH``. The concatenation of the pieces is one
    raw deflate stream (RFC 1951) that inflates to the content; each piece depends on
    the content alone, never on which thread made it or when.
    """
    if cancel.is_set():
        raise Cancelled
    start = index * CHUNK
    end = min(start + CHUNK, size)
    primed = max(0, start - WINDOW)
    span = _read_span(new, primed, end, index == count - 1)
    content = span[start - primed :]
    module = options.deflater.module
    if start == 0:
        compressor = module.compressobj(
            options.compresslevel, DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY
        )
    else:
        compressor = module.compressobj(
            options.compresslevel,
            DEFLATED,
            -15,
            8,
            zlib.Z_DEFAULT_STRATEGY,
            zdict=bytes(span[: start - primed]),
        )
    last = index == count - 1
    deflated = compressor.compress(content) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )
    return _Piece(content, deflated)


def assemble(
    new: NewMember,
    pieces: Sequence[Callable[[], object]],
    options: DeflateOptions,
) -> Deflated:
    """Collect ``new``'s deflated pieces in order into a spool (memory, then an unnamed
    file in the output directory), computing its CRC-32 (APPNOTE 4.4.7) and RECORD
    digest over the content in order."""
    module = options.deflater.module
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=_SPOOL_IN_MEMORY, dir=os.fspath(options.spool_dir)
    )
    try:
        hasher = RecordHasher()
        crc = 0
        try:
            for result in pieces:
                piece = result()
                assert isinstance(piece, _Piece)
                crc = module.crc32(piece.content, crc)
                hasher.update(piece.content)
                spool.write(piece.deflated)
            compress_size = spool.tell()
            spool.seek(0)
        except OSError as exc:
            raise cannot_write(options.spool_dir, exc) from None
        return Deflated(spool, crc, compress_size, hasher.result())
    except BaseException:
        spool.close()
        raise


def deflate_member(new: NewMember, options: DeflateOptions, cancel: threading.Event) -> Deflated:
    """Deflate ``new`` in this thread (the same bytes as the parallel path)."""
    size = content_size(new)
    count = chunk_count(size)
    pieces = [
        functools.partial(
            deflate_piece, new, i, count=count, size=size, options=options, cancel=cancel
        )
        for i in range(count)
    ]
    return assemble(new, pieces, options)


def content_size(new: NewMember) -> int:
    if isinstance(new.source, bytes):
        return len(new.source)
    try:
        return new.source.stat().st_size
    except OSError as exc:
        raise InputError(
            f"{new.source}: cannot read (for {new.path}): {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PreDeflated(Value):
    """A new member deflated ahead of :func:`write_wheel` by a :class:`Predeflater`."""

    member: NewMember
    deflated: Deflated
    compresslevel: int
    deflater: Deflater


class Predeflater:
    """Deflate new members before :func:`write_wheel` runs, as soon as each is ready
    (``repair`` deflates each grafted library as soon as its patchelf call ends, while
    the others are still being patched).

    The bytes are exactly those :func:`write_wheel` makes (the same pieces, assembled in
    the same order): :meth:`deflate` may be called from several threads at once; the
    pieces of every call go to one pool of ``workers`` threads, at most ``4 * workers``
    pieces ahead of the one being assembled, per call. Use as a context manager.
    """

    def __init__(
        self,
        spool_dir: Path,
        *,
        compresslevel: int = 6,
        workers: int | None = None,
        deflater: Deflater | None = None,
    ) -> None:
        if not 0 <= compresslevel <= 9:
            raise ValueError(f"compresslevel must be 0..9, not {compresslevel}")
        count = worker_count(workers)
        self._options = DeflateOptions(
            compresslevel=compresslevel,
            deflater=DEFLATER if deflater is None else deflater,
            spool_dir=Path(spool_dir),
        )
        self._cancel = threading.Event()
        self._window = 4 * count
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="predeflate")

    def deflate(self, new: NewMember) -> PreDeflated:
        """Deflate ``new`` now (blocking), its pieces in the shared pool."""
        size = content_size(new)
        count = chunk_count(size)
        options = self._options
        futures: list[Future[_Piece]] = []

        def submit(index: int) -> None:
            if index < count:
                futures.append(
                    self._pool.submit(
                        deflate_piece,
                        new,
                        index,
                        count=count,
                        size=size,
                        options=options,
                        cancel=self._cancel,
                    )
                )

        for index in range(min(count, self._window)):
            submit(index)

        def piece(index: int) -> Callable[[], object]:
            def result() -> object:
                submit(index + self._window)
                return futures[index].result()

            return result

        try:
            deflated = assemble(new, [piece(i) for i in range(count)], options)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return PreDeflated(new, deflated, options.compresslevel, options.deflater)

    def close(self, failed: bool = False) -> None:
        if failed:
            self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=failed)

    def __enter__(self) -> Predeflater:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(failed=exc_type is not None)
