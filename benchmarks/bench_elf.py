"""Benchmark: manywheel's ELF facts against pyelftools, from a path and straight from a wheel.

(a) all facts of libtorch_cpu.so (434 MB) from a path: header, PT_INTERP, dynamic
    entries, version needs/defs, dynamic symbols with their versions, GNU property;
(b) the same facts of every ELF member of the torch CPU wheel, read from the zip
    (pyelftools the obvious way: ``zipfile.open(member).read()`` into ``BytesIO``);
(c) (b) for manywheel with each inflater it can use (isal, zlib-ng, the standard zlib).

Each (tool, task) runs in its own subprocess so that one tool's memory does not pollute
the other's: the first run measures the extra peak memory (``ru_maxrss`` delta, which
counts mapped file pages too, and the peak of anonymous memory sampled every
millisecond), then ``--repeat`` warm runs give the best time.

The wheel (191 MB) comes from PyTorch's CPU index::

    pip download --no-deps torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu -d DIR

(``pip download --no-deps torch==2.13.0 -d DIR`` from PyPI gives the CUDA-enabled
build: it works too, with other numbers). Run: ``python benchmarks/bench_elf.py``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import NoteSection, SymbolTableSection
from elftools.elf.segments import InterpSegment

from manywheel.elf import ElfFile
from manywheel.memberfacts import archive_facts
from manywheel.zipread import ZipArchive, streaming_inflater

DEFAULT_WHEEL = Path("/work/cache/torch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
DEFAULT_LIB = Path("/tmp/libtorch_cpu.so")
LIB_MEMBER = "torch/lib/libtorch_cpu.so"
INFLATER_MODULES = {"isal": "isal.isal_zlib", "zlib-ng": "zlib_ng.zlib_ng", "zlib": "zlib"}
TARGET_LIB_MS = 50.0
TARGET_LIB_MB = 50.0
TARGET_WHEEL_S = 2.0
MB = 1_000_000


# -- the work measured ------------------------------------------------------------------


def pyelftools_facts(stream: Any) -> tuple[Any, ...]:
    """The facts manywheel reads, the way a pyelftools user reads them (via sections)."""
    elf = ELFFile(stream)
    hdr = elf.header
    header = (elf.elfclass, elf.little_endian, hdr.e_machine, hdr.e_type, hdr.e_flags)
    interp = next(
        (s.get_interp_name() for s in elf.iter_segments() if isinstance(s, InterpSegment)), None
    )
    dynamic: dict[str, list[Any]] = {}
    section = elf.get_section_by_name(".dynamic")
    if isinstance(section, DynamicSection):
        for tag in section.iter_tags():
            kind = tag.entry.d_tag
            if kind in ("DT_NEEDED", "DT_SONAME", "DT_RPATH", "DT_RUNPATH"):
                # pyelftools names the string attribute after the tag: tag.needed...
                dynamic.setdefault(kind, []).append(getattr(tag, kind[3:].lower()))
            elif kind in ("DT_FLAGS", "DT_FLAGS_1"):
                dynamic[kind] = [tag.entry.d_val]
    names: dict[int, tuple[str, str | None]] = {}
    needs = []
    defs = []
    for sec in elf.iter_sections():
        if isinstance(sec, GNUVerNeedSection):
            for need, auxes in sec.iter_versions():
                versions = []
                for aux in auxes:
                    names[aux["vna_other"]] = (aux.name, need.name)
                    versions.append((aux.name, aux["vna_hash"], aux["vna_flags"]))
                needs.append((need.name, tuple(versions)))
        elif isinstance(sec, GNUVerDefSection):
            for vdef, auxes in sec.iter_versions():
                aux_names = tuple(aux.name for aux in auxes)
                names[vdef["vd_ndx"]] = (aux_names[0], None)
                defs.append((vdef["vd_ndx"], vdef["vd_flags"], vdef["vd_hash"], aux_names))
    versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
    dynsym = elf.get_section_by_name(".dynsym")
    symbols = []
    if isinstance(dynsym, SymbolTableSection):
        for i, sym in enumerate(dynsym.iter_symbols()):
            if i == 0:
                continue
            ndx = versym.get_symbol(i)["ndx"] if versym is not None else 0
            index = ndx if isinstance(ndx, int) else 0
            version = names.get(index & 0x7FFF)
            symbols.append(
                (
                    sym.name,
                    sym["st_shndx"] != "SHN_UNDEF",
                    sym["st_info"]["bind"],
                    sym["st_info"]["type"],
                    version,
                )
            )
    isa = None
    for sec in elf.iter_sections():
        if isinstance(sec, NoteSection):
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_PROPERTY_TYPE_0":
                    for prop in note["n_desc"]:
                        if prop.pr_type == "GNU_PROPERTY_X86_ISA_1_NEEDED":
                            isa = prop.pr_data
    return header, interp, dynamic, tuple(needs), tuple(defs), tuple(symbols), isa


def lib_task(tool: str, path: Path) -> Callable[[], int]:
    """(a): returns a callable that reads every fact of ``path`` (result: symbol count)."""
    if tool == "manywheel":

        def run() -> int:
            with ElfFile.open(path) as elf:
                return len(elf.facts().symbols)

        return run

    def run_pyelftools() -> int:
        with open(path, "rb") as stream:
            return len(pyelftools_facts(stream)[5])

    return run_pyelftools


def wheel_task(tool: str, wheel: Path, inflater: str | None) -> Callable[[], int]:
    """(b)/(c): reads every fact of every ELF member (result: number of ELF members)."""
    if tool == "manywheel":
        module = importlib.import_module(INFLATER_MODULES[inflater]) if inflater else None

        def run() -> int:
            # --inflater measures that streaming inflater alone (no libdeflate reads).
            with ZipArchive(wheel, inflater=module, whole_inflater=module is None) as archive:
                results = archive_facts(archive)
            bad = [r.error for r in results if r.error]
            if bad:
                raise SystemExit(f"manywheel could not read: {bad}")
            return len(results)

        return run

    def run_pyelftools() -> int:
        count = 0
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    if member.read(4) != b"\x7fELF":
                        continue
                with zf.open(info) as member:
                    pyelftools_facts(io.BytesIO(member.read()))
                count += 1
        return count

    return run_pyelftools


# -- measuring (in a child process) -----------------------------------------------------


@dataclass
class Measure:
    tool: str
    task: str
    best_s: float
    runs: int
    peak_rss_mb: float  # ru_maxrss delta: anonymous memory and touched mapped file pages
    peak_anon_mb: float  # peak RssAnon delta, sampled every millisecond
    result: int


def _anon_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


@contextmanager
def _anon_sampler() -> Iterator[list[int]]:
    peak = [_anon_kb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.001):
            peak[0] = max(peak[0], _anon_kb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _anon_kb())


def child(tool: str, task: str, target: Path, repeat: int, inflater: str | None) -> Measure:
    run = lib_task(tool, target) if task == "lib" else wheel_task(tool, target, inflater)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_anon = _anon_kb()
    with _anon_sampler() as peak:
        start = time.perf_counter()
        result = run()
        best = time.perf_counter() - start
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024 / MB
    anon = (peak[0] - base_anon) * 1024 / MB
    for _ in range(repeat - 1):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    label = task if inflater is None else f"{task}:{inflater}"
    return Measure(tool, label, best, repeat, rss, anon, result)


def measure(
    tool: str, task: str, target: Path, repeat: int, inflater: str | None = None
) -> Measure:
    cmd = [sys.executable, __file__, "--child", tool, task, str(target), str(repeat)]
    if inflater:
        cmd += ["--inflater", inflater]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tool} {task} failed:\n{done.stderr}")
    return Measure(**json.loads(done.stdout))


# -- rendering --------------------------------------------------------------------------


def _compare(
    label: str, ours: float, theirs: float, unit: str, *, digits: int, target: float | None = None
) -> str:
    """One aligned row: both figures, pyelftools/manywheel ratio, target and verdict."""
    ratio = theirs / ours if ours > 0 else float("inf")
    goal = f"<= {target:g} {unit}" if target is not None else ""
    verdict = "" if target is None else ("met" if ours <= target else "MISSED")
    return (
        f"  {label:<22}{ours:>10.{digits}f} {unit:<3}{theirs:>11.{digits}f} {unit:<3}"
        f"{ratio:>8.1f}x   {goal:<10} {verdict}".rstrip()
    )


def render(lib: Path, wheel: Path, results: dict[str, Measure], repeat: int) -> str:
    lines = [
        f"manywheel ELF benchmark: python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, default inflater {streaming_inflater().__name__}",
        "",
        f"{'':24}{'manywheel':>12}{'pyelftools':>15}{'ratio':>9}   target",
    ]
    ours, theirs = results.get("manywheel lib"), results.get("pyelftools lib")
    if ours and theirs:
        lines += [
            f"(a) all facts of {lib.name} ({lib.stat().st_size / MB:.0f} MB, {ours.result} "
            f"dynamic symbols) from a path; warm, best of {ours.runs} ({theirs.runs})",
            _compare(
                "time",
                ours.best_s * 1e3,
                theirs.best_s * 1e3,
                "ms",
                digits=1,
                target=TARGET_LIB_MS,
            ),
            _compare(
                "extra peak RSS",
                ours.peak_rss_mb,
                theirs.peak_rss_mb,
                "MB",
                digits=1,
                target=TARGET_LIB_MB,
            ),
            _compare("extra peak anon", ours.peak_anon_mb, theirs.peak_anon_mb, "MB", digits=1),
            "",
        ]
    ours, theirs = results.get("manywheel wheel"), results.get("pyelftools wheel")
    if ours and theirs:
        lines += [
            f"(b) all {ours.result} ELF members of {wheel.name} from the zip; "
            f"best of {ours.runs} ({theirs.runs})",
            _compare("time", ours.best_s, theirs.best_s, "s", digits=2, target=TARGET_WHEEL_S),
            _compare("extra peak RSS", ours.peak_rss_mb, theirs.peak_rss_mb, "MB", digits=0),
            _compare("extra peak anon", ours.peak_anon_mb, theirs.peak_anon_mb, "MB", digits=0),
            "  (RSS: every resident page, mapped files included; anon: heap and stacks)",
            "",
        ]
    inflaters = [m for key, m in results.items() if key.startswith("manywheel wheel:")]
    if inflaters:
        slowest = max(m.best_s for m in inflaters)
        lines.append(f"(c) (b) for manywheel with each inflater; best of {repeat}")
        for m in inflaters:
            lines.append(
                f"  {m.task.split(':', 1)[1]:<22}{m.best_s:>10.2f} s   "
                f"{slowest / m.best_s:.2f}x as fast as the slowest; "
                f"extra peak anon {m.peak_anon_mb:.0f} MB"
            )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------


@contextmanager
def library_path(explicit: Path | None, wheel: Path) -> Iterator[Path]:
    """The library to read in (a): --lib, /tmp/libtorch_cpu.so, or extracted from the wheel."""
    if explicit is not None:
        yield explicit
        return
    if DEFAULT_LIB.exists():
        yield DEFAULT_LIB
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(LIB_MEMBER).name
        with zipfile.ZipFile(wheel) as zf, zf.open(LIB_MEMBER) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL, help="the torch wheel")
    parser.add_argument("--lib", type=Path, help="library for (a) [/tmp/libtorch_cpu.so]")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs, best kept [5]")
    parser.add_argument(
        "--repeat-pyelftools", type=int, default=1, help="runs of pyelftools (slow) [1]"
    )
    parser.add_argument("--skip", choices=["a", "b", "c"], action="append", default=[])
    parser.add_argument("--json", action="store_true", help="print the measures as JSON")
    parser.add_argument(
        "--child", nargs=4, metavar=("TOOL", "TASK", "PATH", "N"), help=argparse.SUPPRESS
    )
    parser.add_argument("--inflater", choices=sorted(INFLATER_MODULES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tool, task, target, repeat = args.child
        found = child(tool, task, Path(target), int(repeat), args.inflater)
        print(json.dumps(asdict(found)))
        return 0
    if not args.wheel.exists():
        print(
            f"no wheel at {args.wheel}; get it with\n"
            "  pip download --no-deps torch==2.13.0 "
            "--index-url https://download.pytorch.org/whl/cpu -d DIR\n"
            "and pass --wheel DIR/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
            file=sys.stderr,
        )
        return 2
    results: dict[str, Measure] = {}
    with library_path(args.lib, args.wheel) as lib:
        if "a" not in args.skip:
            results["manywheel lib"] = measure("manywheel", "lib", lib, args.repeat)
            results["pyelftools lib"] = measure("pyelftools", "lib", lib, args.repeat_pyelftools)
        if "b" not in args.skip:
            results["manywheel wheel"] = measure("manywheel", "wheel", args.wheel, args.repeat)
            results["pyelftools wheel"] = measure(
                "pyelftools", "wheel", args.wheel, args.repeat_pyelftools
            )
        if "c" not in args.skip:
            for name, module in INFLATER_MODULES.items():
                try:
                    importlib.import_module(module)
                except ImportError:
                    continue
                key = f"manywheel wheel:{name}"
                results[key] = measure("manywheel", "wheel", args.wheel, args.repeat, name)
        if args.json:
            print(json.dumps({key: asdict(m) for key, m in results.items()}, indent=2))
        else:
            print(render(lib, args.wheel, results, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
