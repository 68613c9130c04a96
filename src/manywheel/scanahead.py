"""Start reading a wheel before the rest of manywheel is imported.

``manywheel show`` spends about 35 ms importing the loader model, the policies and the
renderers, on one core, while reading a wheel is mostly inflating, which runs with the
GIL released (numpy's wheel: ~45 ms of scan, ~35 of them in libdeflate). So the command
line starts the scan of its first wheel on a thread, importing only what the scan
needs (this module, :mod:`~manywheel.zipread`, :mod:`~manywheel.memberfacts`,
:mod:`~manywheel.elf`), then imports the rest while it runs, and the audit takes the
scan over (:func:`manywheel.audit.audit_wheel_detail`, ``ahead=``).

Nothing a user sees depends on it: the archive is opened and scanned exactly as the
audit would (no hashing: ``show`` without ``--verify-record``), and each error is
re-raised where the audit would have raised it: opening errors when the audit opens
the archive, member errors once the wheel's metadata has been read.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from manywheel.memberfacts import MemberFacts, PendingScan, cpus, start_scan
from manywheel.zipread import ZipArchive

__all__ = ["ScanAhead"]


class ScanAhead:
    """The scan of the wheel at ``path``, started on a thread at construction.

    That thread opens the archive and scans with ``cpus() - 1`` threads in all
    (itself among them): the caller is busy importing meanwhile, and joins in when it
    asks for :meth:`facts`, so no more threads compete for the cores than there are
    (on two cores, the biggest member keeps one to itself while the imports run).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._opened = threading.Event()
        self._archive: ZipArchive | None = None
        self._open_error: BaseException | None = None
        self._pending: PendingScan[Any] | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, name="manywheel-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._archive = ZipArchive(self.path)
            threads = max(0, cpus() - 2)
            self._pending = start_scan(self._archive, symbols="imports", threads=threads)
        except BaseException as exc:  # re-raised by open(), on the auditing thread
            self._open_error = exc
            return
        finally:
            self._opened.set()
        self._pending.help()  # a member's error is kept by the scan for facts()

    def open(self) -> ZipArchive:
        """The opened archive (the caller closes it, after :meth:`wait`), or the error
        opening it raised."""
        self._opened.wait()
        if self._open_error is not None:
            raise self._open_error
        assert self._archive is not None
        self._taken = True
        return self._archive

    def facts(self) -> tuple[MemberFacts, ...]:
        """The scan's facts, the calling thread helping until it is done, or the error
        a member raised."""
        self._opened.wait()
        assert self._pending is not None
        try:
            return self._pending.result().facts
        finally:
            self._thread.join()

    def cancel(self) -> None:
        """Start no more members and wait until nothing reads the archive any more (an
        audit that fails, or stops, before it needs the facts)."""
        self._opened.wait()
        if self._pending is not None:
            self._pending.cancel()
        self._thread.join()

    def close(self) -> None:
        """Stop caring: :meth:`cancel` (a scan already done has nothing left to stop),
        and close the archive unless :meth:`open` handed it over."""
        self.cancel()
        if self._archive is not None and not self._taken:
            self._archive.close()
