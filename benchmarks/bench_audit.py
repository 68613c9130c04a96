"""Benchmark: the phases of ``audit_wheel`` on one wheel, with and without RECORD hashing.

Phases: scan (read WHEEL/RECORD, one inflate per member: ELF facts and hashes), resolve
(the loader model from every root in the wheel overlay), verdicts (every policy), and
the whole audit. Wall and CPU time are both printed: on a shared machine the wall time
of a two-thread scan depends on whether the second core is free, the CPU time does not.
Each configuration runs in a fresh subprocess (``--repeat`` times, best kept) of the
Python and environment bench_show.py measures (manywheel's clean venv, compiled bytecode); for the
first run it reports the peak resident set (``ru_maxrss``: anonymous and file-backed
pages together), the peaks of each kind sampled every 2 ms, and the anonymous memory
left at the end. (The archive's contents are read with ``pread``, not through a map, so
file-backed pages stay few: the interpreter's code and the central directory's map.)

Run: ``python benchmarks/bench_audit.py [WHEEL]`` (default: the torch CPU wheel, see
bench_elf.py for where it comes from).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# The shared helpers live in a sibling script, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from compare_auditwheel import child_env, manywheel_python

DEFAULT = Path("/work/cache/torch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")

CHILD = r"""
import json, resource, sys, threading, time
peak = {"anon": 0, "file": 0}
def sample():
    while True:
        status = open("/proc/self/status").read()
        for kind, key in (("anon", "RssAnon:"), ("file", "RssFile:")):
            peak[kind] = max(peak[kind], int(status.split(key)[1].split()[0]) // 1024)
        time.sleep(0.002)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter(); c0 = time.process_time()
import manywheel.audit as A
phases = {"import": (time.perf_counter() - t0, time.process_time() - c0)}
def timed(name, f):
    def g(*a, **k):
        t, c = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            phases[name] = (time.perf_counter() - t, time.process_time() - c)
    return g
A._scan = timed("scan", A._scan)
A._resolve = timed("resolve", A._resolve)
A.evaluate_all = timed("verdicts", A.evaluate_all)
t, c = time.perf_counter(), time.process_time()
report = A.audit_wheel(sys.argv[1], A.AuditOptions(verify_hashes=sys.argv[2] == "1"))
phases["audit"] = (time.perf_counter() - t, time.process_time() - c)
status = open("/proc/self/status").read()
anon = int(status.split("RssAnon:")[1].split()[0]) // 1024
print(json.dumps({"phases": phases, "best": report.best_tag,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "peak_anon_mb": peak["anon"], "peak_file_mb": peak["file"],
                  "anon_end_mb": anon}))
"""


def run(wheel: Path, hashing: bool) -> dict[str, object]:
    # The interpreter and environment bench_show.py measures: manywheel's clean venv when
    # `compare_auditwheel.py --setup` made it (else this Python), compiled bytecode.
    python = manywheel_python()
    out = subprocess.run(
        [python, "-c", CHILD, str(wheel), "1" if hashing else "0"],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.wheel.is_file():
        sys.exit(f"{args.wheel}: not found")
    for hashing in (True, False):
        runs = [run(args.wheel, hashing) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["phases"]["audit"][0])  # type: ignore[index]
        print(
            f"hashing={hashing} best={best['best']} maxrss={runs[0]['maxrss_mb']} MB "
            f"(peaks: anon {runs[0]['peak_anon_mb']} MB, file {runs[0]['peak_file_mb']} MB) "
            f"anon at end={runs[0]['anon_end_mb']} MB"
        )
        for name, (wall, cpu) in best["phases"].items():  # type: ignore[attr-defined]
            print(f"  {name:9} wall {wall:6.3f} s  cpu {cpu:6.3f} s")


if __name__ == "__main__":
    main()
