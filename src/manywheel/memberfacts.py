"""ELF facts of wheel members, read straight from the zip: no extraction, bounded memory.

A STORED member is read in place: :class:`StoredSource` reads ranges of the archive.

A DEFLATED member cannot be read at random, so it is inflated once from the start, in
chunks, keeping only the byte ranges the facts come from (:func:`member_facts`):

1. *Head window* — the first ``head_window`` bytes. It holds the ELF header, the program
   headers and, in every layout GNU ld, gold, lld and mold produce, the dynamic tables
   (.dynsym, .dynstr, .gnu.hash/.hash, .gnu.version, .gnu.version_d/_r): they come
   right after the headers, before any code. (libtorch_cpu.so: tables end at 7.7 MB.)
2. *Segments* — once the program headers are in, the file data of PT_INTERP, PT_NOTE,
   PT_GNU_PROPERTY and PT_DYNAMIC (gABI "Program Header"). PT_DYNAMIC sits in the RW
   segment near the end of the loaded part (libtorch_cpu.so: at 344 of 434 MB).
3. Inflating stops after the last wanted byte: the rest of the file (section headers,
   symbol tables for debuggers, debug info) is never inflated.

The facts are then parsed by :class:`manywheel.elf.ElfFile` over a :class:`SparseSource`
of the kept ranges, which raises :class:`MissingRange` for a byte that was not kept
(a table beyond the head window). Those ranges are kept in a targeted next pass, which
inflates only up to the last missing byte; the ranges of earlier passes stay kept.

Memory bound: per member, at most ``max_kept`` bytes are kept (64 MiB by default;
more is reported as an error for that member), plus one output chunk (``chunk_size``)
and one input slice while inflating. :func:`archive_facts` runs ``workers`` members at
once, so the whole scan holds at most about ``workers * (max_kept + 1.25 * chunk_size)``.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from manywheel.elf import (
    BufferSource,
    ElfError,
    ElfFacts,
    ElfFile,
    ProgramHeader,
    SymbolScope,
)
from manywheel.value import Value
from manywheel.zipread import DEFAULT_CHUNK, STORED, ZipArchive, ZipMember

__all__ = [
    "DEFAULT_HEAD_WINDOW",
    "DEFAULT_MAX_KEPT",
    "ELF_MAGIC",
    "ArchiveScan",
    "ContentHasher",
    "MemberFacts",
    "MissingRange",
    "PendingScan",
    "SparseSource",
    "StoredSource",
    "archive_facts",
    "member_facts",
    "scan_archive",
    "start_scan",
]

ELF_MAGIC: Final = b"\x7fELF"
DEFAULT_HEAD_WINDOW: Final = 16 * 1024 * 1024
DEFAULT_MAX_KEPT: Final = 64 * 1024 * 1024
MAX_PASSES: Final = 8
# A missing range is kept with this much slack after it, so that neighbouring reads of
# the next pass (the rest of a string table, the next hash chain slice) hit.
MISSING_SLACK: Final = 256 * 1024

# gABI program header types whose file data the facts are read from.
_PT_DYNAMIC: Final = 2
_PT_INTERP: Final = 3
_PT_NOTE: Final = 4
_PT_LOAD: Final = 1
_PT_GNU_PROPERTY: Final = 0x6474E553
_WANTED_SEGMENTS: Final = frozenset({_PT_DYNAMIC, _PT_INTERP, _PT_NOTE, _PT_GNU_PROPERTY})
_PF_X: Final = 0x1


class ContentHasher(Protocol):
    """Anything fed a member's content chunk by chunk (e.g. ``wheel.RecordHasher``)."""

    def update(self, data: bytes | bytearray) -> None: ...


_H = TypeVar("_H", bound=ContentHasher)


def _hash_content(
    archive: ZipArchive, member: ZipMember, chunk_size: int, hasher: ContentHasher
) -> None:
    for chunk in archive.iter_content(member, chunk_size):
        hasher.update(chunk)


class MissingRange(Exception):
    """Bytes of a streamed member that were not kept; the next pass will keep them.

    Deliberately not an :class:`ElfError`: the ELF reader lets it propagate untouched.
    """

    def __init__(self, offset: int, length: int) -> None:
        super().__init__(f"bytes {offset}..{offset + length} were not kept")
        self.offset = offset
        self.length = length


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MemberFacts(Value):
    """The outcome for one ELF member: its facts, or why they could not be read.

    ``passes`` counts the inflating passes (0 for a STORED member), ``inflated`` the
    bytes inflated over all passes and ``kept`` the bytes held to parse the facts.
    """

    name: str
    facts: ElfFacts | None
    error: str | None
    passes: int = 0
    inflated: int = 0
    kept: int = 0


class StoredSource:
    """A :class:`~manywheel.elf.ByteSource` over a STORED member: slices of the archive map."""

    def __init__(self, archive: ZipArchive, member: ZipMember) -> None:
        self._archive = archive
        self._member = member

    @property
    def size(self) -> int:
        return self._member.file_size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self._member.file_size:
            raise ElfError(f"{self._member.name}: range {offset}+{length} is outside the file")
        return self._archive.read_raw(self._member, offset, length)


class SparseSource:
    """A :class:`~manywheel.elf.ByteSource` over some ranges of a file: the kept ones.

    ``pieces`` are ``(offset, data)`` pairs that neither overlap nor touch (see
    :class:`_Pieces`); a read must fall inside one piece, else :class:`MissingRange`.
    """

    def __init__(self, size: int, pieces: Sequence[tuple[int, bytes | bytearray]]) -> None:
        self._size = size
        self._starts = [start for start, _ in pieces]
        self._data = [data for _, data in pieces]

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self._size:
            raise ElfError(f"range {offset}+{length} is outside the file ({self._size} bytes)")
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0:
            rel = offset - self._starts[i]
            data = self._data[i]
            if rel + length <= len(data):
                return bytes(memoryview(data)[rel : rel + length])
        raise MissingRange(offset, length)


class _Pieces:
    """Kept bytes as sorted, disjoint, non-adjacent ``(offset, bytearray)`` pieces."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytearray]] = []

    @property
    def total(self) -> int:
        return sum(len(data) for _, data in self.items)

    def covers(self, start: int, end: int) -> bool:
        i = bisect.bisect_right([s for s, _ in self.items], start) - 1
        return i >= 0 and self.items[i][0] + len(self.items[i][1]) >= end

    def add(self, start: int, data: bytes | memoryview) -> None:
        """Keep ``data`` at ``start``, merging with the pieces it overlaps or touches."""
        end = start + len(data)
        merged_start, merged_end = start, end
        keep: list[tuple[int, bytearray]] = []
        touching: list[tuple[int, bytearray]] = []
        for item in self.items:
            s, d = item
            if s <= end and s + len(d) >= start:
                touching.append(item)
                merged_start = min(merged_start, s)
                merged_end = max(merged_end, s + len(d))
            else:
                keep.append(item)
        if len(touching) == 1 and touching[0][0] == merged_start and start >= merged_start:
            # The common case while streaming: extend the piece being filled in place.
            s, buf = touching[0]
            overlap_end = s + len(buf)
            if end > overlap_end:
                buf += data[overlap_end - start :]
            return
        buf = bytearray(merged_end - merged_start)
        for s, d in touching:
            buf[s - merged_start : s - merged_start + len(d)] = d
        buf[start - merged_start : end - merged_start] = data
        keep.append((merged_start, buf))
        keep.sort(key=lambda item: item[0])
        self.items = keep


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of half-open ``(start, end)`` ranges; empty ranges dropped."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _segment_ranges(phdrs: Sequence[ProgramHeader], size: int) -> list[tuple[int, int]]:
    """The file data of the segments the facts read (clipped to the file)."""
    return [
        (min(ph.offset, size), min(ph.offset + ph.filesz, size))
        for ph in phdrs
        if ph.type in _WANTED_SEGMENTS
    ]


def _tables_may_follow(phdrs: Sequence[ProgramHeader], size: int) -> int | None:
    """Where to look for dynamic tables ahead (the end of PT_DYNAMIC) when a PT_LOAD
    starts after it, as patchelf's appended segments do; None otherwise (the linker puts
    them before PT_DYNAMIC: nothing to find ahead, no probe)."""
    dynamic = [ph for ph in phdrs if ph.type == _PT_DYNAMIC]
    if not dynamic:
        return None
    end = min(size, max(ph.offset + ph.filesz for ph in dynamic))
    if any(ph.type == _PT_LOAD and ph.offset >= end and ph.filesz for ph in phdrs):
        return end
    return None


def _head_end(phdrs: Sequence[ProgramHeader], head: int) -> int:
    """Shrink the head window to the first PT_LOAD when it holds no code.

    With ``-z separate-code`` (GNU ld's default on x86-64 since 2.31) the first PT_LOAD is
    read-only and holds the headers and the dynamic tables, and code starts in the next
    one: nothing the facts need lies between its end and PT_DYNAMIC.
    """
    loads = sorted((ph for ph in phdrs if ph.type == _PT_LOAD), key=lambda ph: ph.offset)
    if loads and loads[0].offset == 0 and not loads[0].flags & _PF_X:
        return min(head, loads[0].filesz)
    return head


class _KeepLimit(Exception):
    """The wanted ranges add up to more than ``max_kept`` bytes."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need


class _Stream:
    """Inflating passes over one DEFLATED member, keeping the wanted ranges."""

    def __init__(
        self,
        archive: ZipArchive,
        member: ZipMember,
        chunk_size: int,
        max_kept: int,
        hasher: ContentHasher | None = None,
        *,
        symbols: SymbolScope | None = None,
    ) -> None:
        self.archive = archive
        self.member = member
        # With a scope: look ahead in the first pass (see :meth:`_ahead`).
        self.symbols = symbols
        self.chunk_size = chunk_size
        self.max_kept = max_kept
        self.inflated = 0
        # Fed every byte of the first pass, which then runs to the end of the member.
        self.hasher = hasher
        self.hashed = False  # True once the hasher has seen the whole content

    def run(
        self,
        pieces: _Pieces,
        wanted: list[tuple[int, int]],
        discover: bool,
    ) -> list[tuple[int, int]]:
        """Inflate from the start until the last wanted byte, keeping the wanted bytes.

        With ``discover``, the segment ranges are added to ``wanted`` as soon as the
        program headers can be parsed from what was kept. Returns the final ``wanted``.
        A pass that reaches the end of the member also checks its size and CRC-32.
        Raises :class:`_KeepLimit` before keeping more than ``max_kept`` bytes in all.
        With a hasher (first pass only), the pass feeds it every chunk and runs to the
        end of the member, so the content is inflated once for both.
        """
        hasher, self.hasher = self.hasher, None
        if not wanted and hasher is None:
            return wanted
        size = self.member.file_size
        self._check_limit(pieces, wanted)
        pos = 0
        look_at: int | None = None  # probe for the tables ahead once pos gets here
        chunks = self.archive.iter_content(self.member, self.chunk_size)
        for chunk in chunks:
            if hasher is not None:
                hasher.update(chunk)
            end = pos + len(chunk)
            for start, stop in wanted:
                if start < end and stop > pos:
                    lo, hi = max(start, pos), min(stop, end)
                    pieces.add(lo, memoryview(chunk)[lo - pos : hi - pos])
            if look_at is not None and end >= look_at:
                # Missing ranges from this chunk's start on can still be kept.
                ahead = self._ahead(pieces, pos)
                look_at = None
                if ahead:
                    more = _merge([*wanted, *ahead])
                    try:
                        self._check_limit(pieces, [(max(a, end), b) for a, b in more])
                    except _KeepLimit:
                        pass  # a later pass reports it, as without looking ahead
                    else:
                        wanted, look_at = more, max(b for _, b in ahead)
                        for start, stop in ahead:
                            if start < end and stop > pos:
                                lo, hi = max(start, pos), min(stop, end)
                                pieces.add(lo, memoryview(chunk)[lo - pos : hi - pos])
            pos = end
            self.inflated += len(chunk)
            if discover:
                try:
                    phdrs = self._program_headers(pieces)
                except ElfError:
                    # not parsable: the parse after this pass reports why
                    if hasher is None:
                        break
                    discover, phdrs = False, None
                if phdrs is not None:
                    discover = False
                    head = (0, _head_end(phdrs, wanted[0][1]))
                    wanted = _merge([head, *wanted[1:], *_segment_ranges(phdrs, size)])
                    self._check_limit(pieces, [(max(start, pos), stop) for start, stop in wanted])
                    look_at = _tables_may_follow(phdrs, size) if self.symbols else None
            if hasher is None and pos >= wanted[-1][1] and pos < size:
                break  # an unfinished generator checks nothing: no CRC for a partial read
        chunks.close()
        self.hashed = hasher is not None and pos == size
        return wanted

    def _ahead(self, pieces: _Pieces, pos: int) -> list[tuple[int, int]]:
        """The ranges the facts still miss that lie ahead of ``pos`` (not yet inflated).

        patchelf moves grown tables (``.dynstr``, ``.dynsym``) into new segments at the
        end of the file, after PT_DYNAMIC: the ranges they need are known only once the
        dynamic section is kept, too late for the segment ranges but not for this pass.
        Keeping them now saves a second pass over the whole member (libLLVM: 119 MB).
        The facts are parsed from the kept bytes as before; only fewer passes differ.
        """
        assert self.symbols is not None
        size = self.member.file_size
        try:
            elf = ElfFile(SparseSource(size, pieces.items), self.member.name)
            missing = _probe(elf, self.symbols)
        except ElfError:
            return []  # the parse after this pass reports why
        return _merge(
            (m.offset, min(size, m.offset + m.length + MISSING_SLACK))
            for m in missing
            if m.offset >= pos
        )

    def _check_limit(self, pieces: _Pieces, wanted: Sequence[tuple[int, int]]) -> None:
        need = pieces.total + sum(max(0, stop - start) for start, stop in wanted)
        if need > self.max_kept:
            raise _KeepLimit(need)

    def _program_headers(self, pieces: _Pieces) -> tuple[ProgramHeader, ...] | None:
        """The program headers when the kept bytes hold them, else None (try later)."""
        try:
            elf = ElfFile(SparseSource(self.member.file_size, pieces.items), self.member.name)
            return elf.program_headers
        except MissingRange:
            return None


def _probe(elf: ElfFile, symbols: SymbolScope) -> list[MissingRange]:
    """Touch every fact once; collect the ranges that were not kept (ElfError propagates).

    Each property is tried separately so that one pass learns every missing range it can.
    """
    missing: list[MissingRange] = []
    for read in (
        lambda: elf.header,
        lambda: elf.program_headers,
        lambda: elf.interpreter,
        lambda: elf.dynamic,
        lambda: elf.version_needs,
        lambda: elf.version_defs,
        (lambda: elf.symbols) if symbols == "all" else (lambda: elf.imports),
        lambda: elf.x86_isa_needed,
    ):
        try:
            read()
        except MissingRange as exc:
            missing.append(exc)
    return missing


def _deflated_facts(
    archive: ZipArchive,
    member: ZipMember,
    head_window: int,
    max_kept: int,
    chunk_size: int,
    *,
    hasher: ContentHasher | None = None,
    symbols: SymbolScope = "all",
) -> tuple[MemberFacts, bool]:
    """Stream the member (see the module docstring), then parse; extra passes on demand.

    With ``hasher``, the first pass feeds it the whole content (see :meth:`_Stream.run`);
    Returns the facts and whether the hasher saw the whole content (when that pass
    stopped early, on an error, the caller hashes the member with a fresh hasher).
    """
    stream = _Stream(archive, member, chunk_size, max_kept, hasher, symbols=symbols)
    return _stream_facts(stream, head_window, max_kept, symbols), stream.hashed


def _stream_facts(
    stream: _Stream, head_window: int, max_kept: int, symbols: SymbolScope
) -> MemberFacts:
    member = stream.member
    size = member.file_size
    pieces = _Pieces()
    passes = 1

    def outcome(facts: ElfFacts | None, error: str | None) -> MemberFacts:
        return MemberFacts(member.name, facts, error, passes, stream.inflated, pieces.total)

    try:
        stream.run(pieces, [(0, min(head_window, size))], discover=True)
        while True:
            elf = ElfFile(SparseSource(size, pieces.items), member.name)
            missing = _probe(elf, symbols)
            if not missing:
                return outcome(elf.facts(symbols), None)
            if passes == MAX_PASSES:
                return outcome(None, f"{member.name}: ELF facts incomplete after {passes} passes")
            wanted = _merge(
                (m.offset, min(size, m.offset + m.length + MISSING_SLACK))
                for m in missing
                if not pieces.covers(m.offset, m.offset + m.length)
            )
            passes += 1
            stream.run(pieces, wanted, discover=False)
    except ElfError as exc:
        return outcome(None, str(exc))
    except _KeepLimit as exc:
        return outcome(
            None,
            f"{member.name}: reading its ELF facts would keep {exc.need} bytes in memory, "
            f"more than the limit of {max_kept}",
        )


def member_facts(
    archive: ZipArchive,
    member: ZipMember,
    *,
    head_window: int = DEFAULT_HEAD_WINDOW,
    max_kept: int = DEFAULT_MAX_KEPT,
    chunk_size: int = DEFAULT_CHUNK,
    symbols: SymbolScope = "all",
) -> MemberFacts | None:
    """The ELF facts of one member, or None when it does not start with the ELF magic.

    A malformed ELF member gives a :class:`MemberFacts` with ``error`` set; a corrupt
    archive (bad deflate data, CRC mismatch) raises
    :class:`~manywheel.zipread.ArchiveError`. ``symbols`` says which dynamic symbols
    the facts hold (:data:`~manywheel.elf.SymbolScope`).
    """
    _check_options(head_window, max_kept, chunk_size)
    if not _is_elf(archive, member):
        return None
    return _elf_member_facts(archive, member, head_window, max_kept, chunk_size, symbols=symbols)


def _check_options(head_window: int, max_kept: int, chunk_size: int) -> None:
    if not 0 < head_window <= max_kept or chunk_size <= 0:
        raise ValueError(
            f"need 0 < head_window ({head_window}) <= max_kept ({max_kept}) "
            f"and chunk_size ({chunk_size}) > 0"
        )


def _is_elf(archive: ZipArchive, member: ZipMember) -> bool:
    """Whether the member starts with the ELF magic (gABI e_ident[EI_MAG0..3])."""
    return (
        not member.is_dir
        and member.file_size >= len(ELF_MAGIC)
        and archive.read_prefix(member, len(ELF_MAGIC)) == ELF_MAGIC
    )


def _elf_member_facts(
    archive: ZipArchive,
    member: ZipMember,
    head_window: int,
    max_kept: int,
    chunk_size: int,
    *,
    symbols: SymbolScope = "all",
) -> MemberFacts:
    if member.method == STORED:
        try:
            facts = ElfFile(StoredSource(archive, member), member.name).facts(symbols)
        except ElfError as exc:
            return MemberFacts(member.name, None, str(exc))
        return MemberFacts(member.name, facts, None)
    return _deflated_facts(archive, member, head_window, max_kept, chunk_size, symbols=symbols)[0]


def archive_facts(
    archive: ZipArchive,
    members: Sequence[ZipMember] | None = None,
    *,
    workers: int | None = None,
    head_window: int = DEFAULT_HEAD_WINDOW,
    max_kept: int = DEFAULT_MAX_KEPT,
    chunk_size: int = DEFAULT_CHUNK,
    symbols: SymbolScope = "all",
) -> tuple[MemberFacts, ...]:
    """The facts of every ELF member (of ``members``, default all), in archive order.

    Members are sniffed for the ELF magic first (a few bytes inflated each); the ELF
    ones are then read by a pool of ``workers`` threads (default :func:`cpus`),
    biggest first so that the longest one starts at once. The inflaters release the
    GIL, so the threads inflate in parallel. The result does not depend on scheduling.
    """
    _check_options(head_window, max_kept, chunk_size)
    chosen = archive.members if members is None else members
    elf_members = [m for m in chosen if _is_elf(archive, m)]

    def one(member: ZipMember) -> MemberFacts:
        return _elf_member_facts(
            archive, member, head_window, max_kept, chunk_size, symbols=symbols
        )

    results: list[MemberFacts | None] = [None] * len(elf_members)

    def run(i: int) -> None:
        results[i] = one(elf_members[i])

    order = sorted(range(len(elf_members)), key=lambda i: -elf_members[i].compress_size)
    _run_parallel(order, run, workers or cpus())
    return tuple(r for r in results if r is not None)


_T = TypeVar("_T")


def _run_parallel(tasks: Sequence[_T], run: Callable[[_T], None], count: int) -> None:
    """``run(task)`` for every task, in order of ``tasks``, on ``count`` threads (this
    one among them); the first exception stops handing out tasks and is re-raised once
    every thread has stopped."""
    if count <= 1 or len(tasks) <= 1:
        for task in tasks:
            run(task)
        return
    pool = _Pool(tasks, run)
    pool.start(min(count, len(tasks)) - 1)
    pool.finish()


class _Pool(Generic[_T]):
    """Threads taking tasks from one list, in order, until it is empty; any thread may
    join in (:meth:`work`), and :meth:`finish` makes the caller work, then waits.

    Plain threads rather than :mod:`concurrent.futures`: the work is a fixed list, and
    importing the futures machinery (and :mod:`logging` with it) costs more than a
    small wheel's whole scan. The first exception stops handing out tasks; :meth:`finish`
    re-raises it once every thread has stopped.
    """

    def __init__(self, tasks: Sequence[_T], run: Callable[[_T], None]) -> None:
        self._pending: Iterator[_T] = iter(tasks)
        self._run = run
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a task ends
        self._running = 0
        self._failures: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def start(self, threads: int) -> None:
        """Start ``threads`` worker threads."""
        for _ in range(threads):
            thread = threading.Thread(
                target=self.work, name=f"manywheel-scan-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def work(self) -> None:
        """Run tasks on this thread until none is left (or one has failed, or the pool
        was stopped). An exception, KeyboardInterrupt included, is kept for
        :meth:`finish` and stops handing out tasks."""
        while self._work_one():
            pass

    def _work_one(self) -> bool:
        counted = False
        try:
            with self._lock:
                if self._failures:
                    return False
                try:
                    task = next(self._pending)
                except StopIteration:
                    return False
                self._running += 1
                counted = True
            self._run(task)
            return True
        except BaseException as exc:
            with self._lock:
                self._failures.append(exc)
            return False
        finally:
            if counted:
                with self._lock:
                    self._running -= 1
                    self._idle.notify_all()

    def stop(self) -> None:
        """Hand out no more tasks (the running ones finish); any thread may call it."""
        with self._lock:
            self._pending = iter(())

    def cancel(self) -> None:
        """:meth:`stop`, then wait for the running tasks and the pool's threads."""
        self.stop()
        self._wait()

    def finish(self) -> None:
        """Work until the list is empty, wait for every thread, re-raise a failure."""
        try:
            self.work()
        finally:
            self.stop()  # an interrupt here: hand out nothing more
            self._wait()
        if self._failures:
            raise self._failures[0]

    def _wait(self) -> None:
        """Until no task runs (those of threads that joined in too) and every thread
        of the pool has ended; the threads are joined even if the wait is interrupted,
        so nothing reads the archive once this returns or raises."""
        try:
            with self._lock:
                while self._running:
                    self._idle.wait()
        finally:
            for thread in self._threads:
                thread.join()


def cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and
    ``taskset`` narrow), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Budget:
    """Bytes the scan's whole-member reads may hold at once, over all its threads: on a
    machine with many cores, 32 MiB members read whole on every core at once would
    otherwise hold gigabytes. One read alone is always let through."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def hold(self, size: int) -> Iterator[None]:
        with self._free:
            while self._held and self._held + size > self._limit:
                self._free.wait()
            self._held += size
        try:
            yield
        finally:
            with self._free:
                self._held -= size
                self._free.notify_all()


#: What whole-member reads may hold at once in one scan (compressed and inflated bytes).
WHOLE_BUDGET: Final = 160 * 1024 * 1024


# ---------------------------------------------------------------------------
# One pass over the whole archive: ELF facts and content hashes together


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ArchiveScan(Value, Generic[_H]):
    """What one pass over an archive learnt: ELF facts and, if asked, every member's hasher.

    ``facts`` in archive order; ``hashes`` maps every file member (directories excluded),
    in archive order, to the hasher that was fed its whole content (empty when no
    hasher factory was given).
    """

    facts: tuple[MemberFacts, ...]
    hashes: Mapping[str, _H]


#: Members up to this size are read whole in one call when hashing (no streaming).
_SMALL_MEMBER: Final = 256 * 1024

#: Members at least this big (compressed) are tasks of their own; smaller ones are read
#: in batches of about :data:`_BATCH_BYTES`: one task per member would cost more in
#: scheduling than the work itself on wheels with 10^4 small files.
_ALONE_BYTES: Final = 256 * 1024
_BATCH_BYTES: Final = 1024 * 1024
#: What a member costs beyond its bytes (sniffing, bookkeeping), in compressed bytes.
_MEMBER_COST: Final = 512


def _tasks(members: Sequence[ZipMember]) -> list[list[int]]:
    """Indices of ``members`` grouped into tasks, the heaviest first (longest processing
    time first: the threads end close together, and the biggest member, often alone the
    longest piece of work, starts at once)."""
    tasks: list[tuple[int, list[int]]] = []
    batch: list[int] = []
    weight = 0
    for i, member in enumerate(members):
        cost = member.compress_size + _MEMBER_COST
        if member.compress_size >= _ALONE_BYTES:
            tasks.append((cost, [i]))
            continue
        batch.append(i)
        weight += cost
        if weight >= _BATCH_BYTES:
            tasks.append((weight, batch))
            batch, weight = [], 0
    if batch:
        tasks.append((weight, batch))
    tasks.sort(key=lambda task: -task[0])
    return [indices for _, indices in tasks]


def _scan_member(
    archive: ZipArchive,
    member: ZipMember,
    new_hasher: Callable[[], _H] | None,
    options: tuple[int, int, int, SymbolScope],
    budget: _Budget | None = None,
) -> tuple[MemberFacts | None, _H | None]:
    """Facts (when ELF) and hash (with a hasher factory) of one member, inflated once;
    ``budget`` bounds what whole-member reads hold at once."""
    head_window, max_kept, chunk_size, symbols = options
    if new_hasher is not None and member.file_size <= _SMALL_MEMBER:
        return _scan_small(archive, member, new_hasher(), symbols)
    facts: MemberFacts | None = None
    hashed: _H | None = None
    if _is_elf(archive, member):
        if _read_whole(archive, member, max_kept):
            held = member.compress_size + member.file_size
            with budget.hold(held) if budget is not None else contextlib.nullcontext():
                data = archive.read_whole(member)
                if new_hasher is not None:
                    hashed = new_hasher()
                    hashed.update(data)
                return _buffer_facts(member.name, data, symbols), hashed
        if member.method == STORED or new_hasher is None:
            facts = _elf_member_facts(
                archive, member, head_window, max_kept, chunk_size, symbols=symbols
            )
        else:
            hasher = new_hasher()
            facts, complete = _deflated_facts(
                archive, member, head_window, max_kept, chunk_size, hasher=hasher, symbols=symbols
            )
            hashed = hasher if complete else None
    if new_hasher is not None and hashed is None:
        hashed = new_hasher()
        _hash_content(archive, member, chunk_size, hashed)
    return facts, hashed


def _scan_small(
    archive: ZipArchive, member: ZipMember, hasher: _H, symbols: SymbolScope
) -> tuple[MemberFacts | None, _H]:
    """A small member read whole (CRC-checked): hashed, and parsed when it is ELF."""
    data = archive.read_whole(member)
    hasher.update(data)
    if member.is_dir or data[: len(ELF_MAGIC)] != ELF_MAGIC:
        return None, hasher
    return _buffer_facts(member.name, data, symbols), hasher


def _read_whole(archive: ZipArchive, member: ZipMember, max_kept: int) -> bool:
    """Whether to inflate an ELF member whole in one call rather than stream it.

    When the archive can (:meth:`~manywheel.zipread.ZipArchive.can_read_whole`) and the
    member fits ``max_kept``:
    inflating all of it that way costs less than streaming the part the facts need
    (numpy's OpenBLAS: the tables patchelf moved sit at its end anyway).
    """
    return archive.can_read_whole(member) and member.file_size <= max_kept


def _buffer_facts(name: str, data: bytes | bytearray, symbols: SymbolScope) -> MemberFacts:
    """The facts of a member held whole in memory (inflated in one pass)."""
    try:
        facts = ElfFile(BufferSource(data, name), name).facts(symbols)
    except ElfError as exc:
        return MemberFacts(name, None, str(exc), 1, len(data), len(data))
    return MemberFacts(name, facts, None, 1, len(data), len(data))


def scan_archive(
    archive: ZipArchive,
    hasher: Callable[[], _H] | None = None,
    *,
    workers: int | None = None,
    head_window: int = DEFAULT_HEAD_WINDOW,
    max_kept: int = DEFAULT_MAX_KEPT,
    chunk_size: int = DEFAULT_CHUNK,
    symbols: SymbolScope = "all",
    reuse: Callable[[ZipArchive, ZipMember], tuple[MemberFacts | None, _H] | None] | None = None,
) -> ArchiveScan[_H]:
    """The ELF facts of every ELF member and, with a ``hasher`` factory, every member's
    content fed to a fresh hasher (RECORD checking, PEP 376 / PEP 427).

    ``reuse(archive, member)``, when given, is asked first for every file member (in the
    worker threads): a ``(facts, hasher)`` pair it returns stands for what reading the
    member would give, None means read it. ``repair`` uses it for members copied raw
    from the wheel it scanned before, after proving their bytes identical.

    One inflate per member serves both: an ELF member's first pass feeds the hasher all
    of it and keeps the ranges its facts come from (later passes, rare, inflate again
    without hashing). Each member's size and CRC-32 are checked when it is read to the
    end (:meth:`~manywheel.zipread.ZipArchive.iter_content`); a corrupt member raises
    :class:`~manywheel.zipread.ArchiveError`. Work runs on ``workers`` threads
    (default :func:`cpus`, this one among them): big members alone and biggest
    first, small ones in batches. The result does not depend on scheduling. ``symbols``
    says which dynamic symbols the facts hold (:data:`~manywheel.elf.SymbolScope`; the
    audit needs only ``"imports"``).
    """
    count = workers or cpus()
    pending = start_scan(
        archive,
        hasher,
        threads=count - 1,
        head_window=head_window,
        max_kept=max_kept,
        chunk_size=chunk_size,
        symbols=symbols,
        reuse=reuse,
    )
    return pending.result()


class PendingScan(Generic[_H]):
    """A scan started by :func:`start_scan`: threads may :meth:`help` with it, and
    :meth:`result` makes the caller help, then waits for the others."""

    def __init__(
        self,
        files: Sequence[ZipMember],
        results: list[tuple[MemberFacts | None, _H | None]],
        pool: _Pool[list[int]],
    ) -> None:
        self._files = files
        self._results = results
        self._pool = pool

    def help(self) -> None:
        """Scan members on this thread until none is left to start."""
        self._pool.work()

    def stop(self) -> None:
        """Start no more members (any thread may call it: the scan is not wanted)."""
        self._pool.stop()

    def cancel(self) -> None:
        """:meth:`stop`, then wait until no thread reads the archive any more."""
        self._pool.cancel()

    def result(self) -> ArchiveScan[_H]:
        """Help until every member is started, wait for all, then the scan (or the first
        error a member raised)."""
        self._pool.finish()
        hashes: dict[str, _H] = {}
        for member, (_, digest) in zip(self._files, self._results, strict=True):
            if digest is not None:
                hashes[member.name] = digest
        return ArchiveScan(
            facts=tuple(f for f, _ in self._results if f is not None),
            hashes=hashes,
        )


def start_scan(
    archive: ZipArchive,
    hasher: Callable[[], _H] | None = None,
    *,
    threads: int,
    head_window: int = DEFAULT_HEAD_WINDOW,
    max_kept: int = DEFAULT_MAX_KEPT,
    chunk_size: int = DEFAULT_CHUNK,
    symbols: SymbolScope = "all",
    reuse: Callable[[ZipArchive, ZipMember], tuple[MemberFacts | None, _H] | None] | None = None,
) -> PendingScan[_H]:
    """:func:`scan_archive` on ``threads`` new threads (0: none yet), returned at once;
    other threads join in with :meth:`PendingScan.help` or :meth:`PendingScan.result`.

    For a caller with other work first (``show`` imports its modules meanwhile): it
    joins once free, so no more threads compete for the cores than there are.
    """
    _check_options(head_window, max_kept, chunk_size)
    files = [m for m in archive.members if not m.is_dir]
    options = (head_window, max_kept, chunk_size, symbols)
    results: list[tuple[MemberFacts | None, _H | None]] = [(None, None)] * len(files)
    budget = _Budget(WHOLE_BUDGET)

    def run(task: list[int]) -> None:
        for i in task:
            known = reuse(archive, files[i]) if reuse is not None else None
            if known is not None:
                results[i] = known
            else:
                results[i] = _scan_member(archive, files[i], hasher, options, budget)

    tasks = _tasks(files)
    pool: _Pool[list[int]] = _Pool(tasks, run)
    pool.start(max(0, min(threads, len(tasks) - 1)))
    return PendingScan(files, results, pool)
