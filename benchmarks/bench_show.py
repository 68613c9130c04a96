"""Benchmark: ``manywheel show`` against ``auditwheel show`` on real wheels.

For each wheel of tools/real-wheels.txt both tools run as subprocesses, alternately,
``--repeat`` times each (fewer once a tool has spent ``--budget`` seconds on a wheel,
at least once). The ratios compare the like-for-like commands: both print their text
report. ``manywheel show --json`` (the whole report, every piece of evidence for every
policy: 10 MB on torch) is timed alongside, in its own column, with its own ratio.
Wall time is measured around the child; peak memory is that child's own
``ru_maxrss`` from ``wait4`` (so the tools never pollute each other's number). The table
gives the best and median times, the ratio of auditwheel's best time to manywheel's
(also of the medians) and both peaks, with the targets next to them:

- manywheel at least 20x faster than auditwheel on numpy and scipy, 30x on torch;
- manywheel's peak memory on torch at most 150 MB.

Both run with this host's loader configuration; auditwheel comes from its own venv. Both
run from compiled bytecode, as after ``pip install`` (which compiles what it installs):
before timing, ``python -m compileall`` fills the bytecode cache both read
(``PYTHONPYCACHEPREFIX``, the same environment for both, see ``child_env`` in
tools/compare_auditwheel.py) with manywheel's package and auditwheel's site-packages.
First time::

    python tools/compare_auditwheel.py --setup --download --fetch-only

Run: ``python benchmarks/bench_show.py [--only numpy,torch] [--repeat 5]``. Exit code 0
when every target is met, 1 when one is missed, 2 on a harness error (missing wheels,
no auditwheel venv, ``manywheel show`` not working yet).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The shared helpers live in a sibling script, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from compare_auditwheel import (
    DEFAULT_CACHE,
    DEFAULT_VENV,
    DOC,
    WHEEL_LIST,
    HarnessError,
    Run,
    auditwheel_exe,
    auditwheel_version,
    command_python,
    git_head,
    load_wheel_list,
    locate,
    machine_line,
    manywheel_command,
    manywheel_version,
    markdown_table,
    plain_table,
    precompile,
    preflight_show,
    run_measured,
    site_packages,
    update_doc,
)

SPEEDUP_TARGETS = {"numpy": 20.0, "scipy": 20.0, "torch": 30.0}
MEMORY_TARGETS_MB = {"torch": 150.0}
BEGIN = "<!-- bench_show:begin (generated, do not edit by hand) -->"
END = "<!-- bench_show:end -->"


@dataclass
class ToolTimes:
    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    anon_mb: float | None = None  # peak anonymous memory of one extra, sampled run
    error: str | None = None

    @property
    def best(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    def add(self, run: Run) -> None:
        if run.returncode != 0:
            self.error = run.first_error_line()
            return
        self.seconds.append(run.seconds)
        self.peak_mb = max(self.peak_mb, run.peak_kb / 1024)


@dataclass
class Result:
    label: str
    filename: str
    size_mb: float
    manywheel: ToolTimes
    auditwheel: ToolTimes
    manywheel_json: ToolTimes
    speedup_target: float | None
    memory_target_mb: float | None

    @property
    def ratio(self) -> float:
        return self.auditwheel.best / self.manywheel.best

    @property
    def median_ratio(self) -> float:
        return self.auditwheel.median / self.manywheel.median

    @property
    def json_ratio(self) -> float:
        return self.auditwheel.best / self.manywheel_json.best

    def misses(self) -> list[str]:
        out = []
        if self.manywheel.error or self.auditwheel.error or self.manywheel_json.error:
            out.append(f"{self.label}: a tool failed")
        if self.speedup_target and not self.ratio >= self.speedup_target:
            out.append(f"{self.label}: {self.ratio:.1f}x < {self.speedup_target:.0f}x")
        peak = max(self.manywheel.peak_mb, self.manywheel_json.peak_mb)
        if self.memory_target_mb and not peak <= self.memory_target_mb:
            out.append(f"{self.label}: {peak:.0f} MB > {self.memory_target_mb:.0f} MB")
        return out


def bench_one(
    label: str,
    wheel: Path,
    manywheel: Sequence[str],
    auditwheel: Path,
    *,
    repeat: int,
    budget: float,
) -> Result:
    mw, aw, mw_json = ToolTimes(), ToolTimes(), ToolTimes()
    commands = [
        (mw, [*manywheel, "show", str(wheel)]),
        (aw, [str(auditwheel), "show", str(wheel)]),
        (mw_json, [*manywheel, "show", "--json", str(wheel)]),
    ]
    for _ in range(repeat):
        for times, command in commands:
            if times.error or (times.seconds and sum(times.seconds) >= budget):
                continue
            times.add(run_measured(command))
    if not mw.error:
        # Not timed: sampling /proc from this process would perturb the timings.
        for times, command in (commands[0], commands[2]):
            sampled = run_measured(command, sample_anon=True)
            times.anon_mb = (sampled.anon_peak_kb or 0) / 1024
    return Result(
        label=label,
        filename=wheel.name,
        size_mb=wheel.stat().st_size / 1e6,
        manywheel=mw,
        auditwheel=aw,
        manywheel_json=mw_json,
        speedup_target=SPEEDUP_TARGETS.get(label),
        memory_target_mb=MEMORY_TARGETS_MB.get(label),
    )


def precompile_both(manywheel: Sequence[str], auditwheel_venv: Path) -> None:
    """Both tools start from compiled bytecode, as after a pip install (see child_env):
    manywheel's package (with the interpreter its command runs) and auditwheel's venv."""
    python = command_python(manywheel)
    if python is not None:
        found = subprocess.run(
            [python, "-c", "import manywheel, os; print(os.path.dirname(manywheel.__file__))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            raise HarnessError(f"'{python}' cannot import manywheel: {found.stderr.strip()}")
        precompile(python, Path(found.stdout.strip()))
    aw_python = auditwheel_venv / "bin" / "python"
    precompile(aw_python, site_packages(aw_python))


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(results: Sequence[Result]) -> list[list[str]]:
    body = [
        [
            "wheel",
            "MB",
            "manywheel s best/med",
            "auditwheel s best/med",
            "ratio best/med",
            "target",
            "mw peak MB",
            "target",
            "mw anon MB",
            "aw peak MB",
            "--json s best",
            "--json ratio",
            "--json peak MB",
            "runs mw/aw/json",
        ]
    ]
    for r in results:
        mw, aw, mj = r.manywheel, r.auditwheel, r.manywheel_json
        target = ""
        if r.speedup_target:
            target = f">= {r.speedup_target:.0f}x " + (
                "ok" if r.ratio >= r.speedup_target else "MISS"
            )
        memory = ""
        if r.memory_target_mb:
            met = max(mw.peak_mb, mj.peak_mb) <= r.memory_target_mb
            memory = f"<= {r.memory_target_mb:.0f} " + ("ok" if met else "MISS")
        body.append(
            [
                r.label,
                f"{r.size_mb:.1f}",
                f"error: {mw.error}"
                if mw.error
                else f"{_seconds(mw.best)} / {_seconds(mw.median)}",
                f"error: {aw.error}"
                if aw.error
                else f"{_seconds(aw.best)} / {_seconds(aw.median)}",
                "—" if mw.error or aw.error else f"{r.ratio:.1f}x / {r.median_ratio:.1f}x",
                target,
                f"{mw.peak_mb:.0f}",
                memory,
                "—" if mw.anon_mb is None else f"{mw.anon_mb:.0f}",
                f"{aw.peak_mb:.0f}",
                f"error: {mj.error}" if mj.error else _seconds(mj.best),
                "—" if mj.error or aw.error else f"{r.json_ratio:.1f}x",
                f"{mj.peak_mb:.0f}",
                f"{len(mw.seconds)}/{len(aw.seconds)}/{len(mj.seconds)}",
            ]
        )
    return body


# Columns right-aligned in the terminal table (numbers).
RIGHT = (1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 13)


def markdown(body: Sequence[Sequence[str]], header: str) -> str:
    return f"{header}\n\n{markdown_table(body)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_show.py",
        description="Time 'manywheel show' against 'auditwheel show' on the pinned real "
        "wheels, and 'manywheel show --json' alongside (each tool in its own subprocess; "
        "best and median wall time, peak RSS).",
        epilog="Fill the cache and the auditwheel venv first: "
        "python tools/compare_auditwheel.py --setup --download --fetch-only. "
        "Exit codes: 0 every target met, 1 a target missed, 2 harness error.",
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="wheel directory (default: %(default)s)"
    )
    parser.add_argument(
        "--auditwheel-venv",
        type=Path,
        default=DEFAULT_VENV,
        help="venv holding auditwheel (default: %(default)s)",
    )
    parser.add_argument("--list", type=Path, default=WHEEL_LIST, help="the wheel list")
    parser.add_argument("--only", metavar="LABEL,...", help="only these wheels (list labels)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per tool and wheel (default: %(default)s)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop repeating a tool on a wheel once its runs took this many seconds "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--manywheel",
        metavar="CMD",
        help="command that runs manywheel (default: '-m manywheel' with the Python of "
        "manywheel's own venv when 'compare_auditwheel.py --setup' made it, else this Python)",
    )
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write results as JSON")
    parser.add_argument(
        "--doc",
        type=Path,
        nargs="?",
        const=DOC,
        help="update the generated benchmark section of this markdown file "
        f"(default when given without a value: {DOC.relative_to(DOC.parents[1])})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        print("bench_show: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    only = [label for label in (args.only or "").split(",") if label]
    try:
        wheels = locate(load_wheel_list(args.list, only), args.cache)
        auditwheel = auditwheel_exe(args.auditwheel_venv)
        aw_version = auditwheel_version(args.auditwheel_venv)
        manywheel = manywheel_command(args.manywheel)
        preflight_show(manywheel, min((path for _, path in wheels), key=lambda p: p.stat().st_size))
    except HarnessError as err:
        print(f"bench_show: error: {err}", file=sys.stderr)
        return 2
    smallest = min((path for _, path in wheels), key=lambda p: p.stat().st_size)
    try:
        precompile_both(manywheel, args.auditwheel_venv)
    except HarnessError as err:
        print(f"bench_show: error: {err}", file=sys.stderr)
        return 2
    # Warm-up, untimed: page cache, and any module the compile pass did not reach.
    run_measured([*manywheel, "show", str(smallest)])
    run_measured([str(auditwheel), "show", str(smallest)])
    started = time.time()
    results = []
    for entry, path in wheels:
        print(f"benchmarking {entry.label} ...", file=sys.stderr, flush=True)
        results.append(
            bench_one(
                entry.label,
                path,
                manywheel,
                auditwheel,
                repeat=args.repeat,
                budget=args.budget,
            )
        )
    versions = {
        "date": datetime.date.today().isoformat(),
        "manywheel": manywheel_version(manywheel),
        "commit": git_head(),
        "auditwheel": aw_version,
        "machine": machine_line(),
    }
    header = (
        f"Measured by `python benchmarks/bench_show.py --repeat {args.repeat} "
        f"--budget {args.budget:g}` on {versions['date']} ({time.time() - started:.0f} s): "
        f"manywheel {versions['manywheel']} (commit {versions['commit']}), auditwheel "
        f"{versions['auditwheel']}; host: {versions['machine']}. manywheel runs as "
        f"`{shlex.join(manywheel)}`, auditwheel as `{auditwheel} show`, both from bytecode "
        "compiled beforehand (as pip does at install time) under the same environment. "
        "Times in seconds. The ratios and targets compare `manywheel show` with "
        "`auditwheel show` (both print text); `--json` columns time `manywheel show --json` "
        "(the whole report) against the same auditwheel runs; the memory target holds "
        "for both."
    )
    body = table(results)
    print(header)
    sys.stdout.write(plain_table(body, RIGHT))
    misses = [miss for r in results for miss in r.misses()]
    print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    if args.doc:
        update_doc(args.doc, BEGIN, END, markdown(body, header))
        print(f"updated {args.doc}", file=sys.stderr)
    if args.json:
        payload: dict[str, Any] = {"versions": versions, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
