"""Benchmark: the deflaters the wheel writer could use, and the writer itself.

(a) Deflating one big shared library (default: the biggest ``libLLVM-*.so`` in
    /usr/lib/x86_64-linux-gnu, ~110 MB) as the writer does (raw deflate, 1 MiB pieces)
    with the standard zlib, zlib-ng and isal at their levels: wall and CPU seconds,
    compressed size. CPU time is the number to trust on a busy machine.
(b) ``write_wheel`` on a wheel holding that library: raw copy of everything (nothing
    to deflate), and the library added as a new member with 1 and 2 workers.

Run: ``python benchmarks/bench_wheelwrite.py [--file PATH]``; numbers are quoted in
docs/reproducibility.md.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from manywheel.wheelwrite import CHUNK, NewMember, available_deflaters, write_wheel
from manywheel.zipread import ZipArchive


def _deflaters() -> list[tuple[str, ModuleType, int]]:
    found: list[tuple[str, ModuleType, int]] = [("zlib", zlib, level) for level in (1, 6, 9)]
    for name, deflater in available_deflaters().items():
        if name == "zlib-ng":
            found += [("zlib-ng", deflater.module, level) for level in (1, 6, 9)]
    try:
        isal_zlib = importlib.import_module("isal.isal_zlib")
    except ImportError:
        pass
    else:
        found += [("isal", isal_zlib, level) for level in (0, 1, 2, 3)]
    return found


def _timed(work: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bench_deflaters(data: bytes) -> None:
    print(f"(a) deflating {len(data) / 1e6:.1f} MB in {CHUNK}-byte pieces")
    for name, module, level in _deflaters():

        def run(module: ModuleType = module, level: int = level) -> int:
            compressor = module.compressobj(level, zlib.DEFLATED, -15, 8)
            size = 0
            for pos in range(0, len(data), CHUNK):
                size += len(compressor.compress(data[pos : pos + CHUNK]))
            return size + len(compressor.flush())

        wall, cpu, size = _timed(run)
        assert isinstance(size, int)
        print(
            f"  {name:8} level {level}: wall {wall:5.2f} s  cpu {cpu:5.2f} s  "
            f"{size / 1e6:6.2f} MB ({size / len(data):.3f})"
        )


def bench_writer(library: Path) -> None:
    print("(b) write_wheel")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(tmp) / "big-1.0-cp311-cp311-linux_x86_64.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(library, "big/lib.so")
            zf.writestr("big-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
            zf.writestr("big-1.0.dist-info/RECORD", "")
        wheel_file = ("big-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        record = "big-1.0.dist-info/RECORD"
        with ZipArchive(wheel) as archive:
            cases: list[tuple[str, list[str], list[NewMember], int]] = [
                ("keep everything (raw copy, hash)", ["big/lib.so"], [], 2),
                ("add the library, 1 worker", [], [NewMember("big/lib.so", library)], 1),
                ("add the library, 2 workers", [], [NewMember("big/lib.so", library)], 2),
            ]
            for label, keep, add, workers in cases:
                out = Path(tmp) / "out" / label.replace(" ", "_").replace(",", "")
                out.mkdir(parents=True)

                def run(
                    keep: list[str] = keep,
                    add: list[NewMember] = add,
                    w: int = workers,
                    out: Path = out,
                ) -> object:
                    return write_wheel(
                        archive,
                        out / wheel.name,
                        keep=keep,
                        add=add,
                        wheel_file=wheel_file,
                        record_path=record,
                        epoch=315532800,
                        workers=w,
                    )

                wall, cpu, _ = _timed(run)
                print(f"  {label:34} wall {wall:5.2f} s  cpu {cpu:5.2f} s")


def main() -> None:
    candidates = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libLLVM-*.so*"), key=os.path.getsize)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=Path(candidates[-1]) if candidates else None)
    args = parser.parse_args()
    if args.file is None:
        parser.error("no libLLVM found: give --file PATH (a big binary, ~100 MB)")
    bench_deflaters(args.file.read_bytes())
    bench_writer(args.file)


if __name__ == "__main__":
    main()
