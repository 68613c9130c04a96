"""Benchmark: ``manywheel repair`` against ``auditwheel repair``, side by side, in one run.

Two cases:

``torch-retag``
    The torch CPU wheel retagged ``linux_x86_64``: nothing to graft, nothing to patch,
    every member can be copied as it is. Built once into the cache directory from
    ``/work/cache/torch/torch-*-manylinux_2_28_x86_64.whl`` with manywheel's own writer
    (``wheelwrite.write_wheel``, every member but WHEEL/RECORD kept raw; WHEEL's ``Tag:``
    lines and the filename say ``linux_x86_64``; RECORD regenerated). Both tools repair it
    to ``manylinux_2_28_x86_64``, both with ``--exclude`` for libc10.so, libtorch.so and
    libtorch_cpu.so: ``torch/bin/test_shim`` needs them without a RUNPATH that finds them
    (docs/auditwheel-comparison.md, torch), which stops auditwheel's repair ("could not be
    located"); manywheel counts them as shipped by the wheel, so the option changes nothing
    for it. Target: manywheel at least 25x faster.
``big-graft``
    A tiny extension built here with gcc that links Debian's ``libLLVM-15.so.1``
    (~117 MB; no policy allows it), packed as a ``linux_x86_64`` wheel by a minimal
    zipfile writer (WHEEL, METADATA, RECORD). Both tools graft and patch libLLVM and
    the libraries it needs that no policy allows either (libz3, libicu*, libxml2,
    libedit, libffi...). Target: manywheel at least 3x faster. When libLLVM-15 is
    absent, the largest ``libLLVM-*.so.*`` present is used (and named in the output);
    ``--big-library PATH`` picks another library. The target tag is the one manywheel's
    ``show`` gives as ``repair_tag`` (manylinux_2_36 with Debian 12's libraries).

    The extension is built with gcc's defaults (it exports the linker's ``_end``,
    ``_edata`` and ``__bss_start`` and ``bigdep_touch`` besides ``PyInit__ext``), as a
    plain ``setup.py`` build would be.

Each tool runs as its own subprocess, alternately, ``--repeat`` times per case (fewer
once a tool has spent ``--budget`` seconds on a case, at least once), into a fresh empty
output directory. Per run: wall time, CPU time (user + system of the child *and* the
processes it waited for: patchelf, strip) and peak RSS (``ru_maxrss`` from ``wait4``: the
largest of the child and its waited-for descendants). Every output is verified, untimed:
the directory holds exactly one wheel, its filename carries the target tag, and
``manywheel check`` on it exits 0 -- a fast failure cannot pass for a fast success.

The machine has 2 cores shared with other jobs: trust CPU time and the best run; the
median is printed too. Both tools run with the same compression level (6, both defaults)
and the same patchelf binary (manywheel's; put first on ``PATH`` for auditwheel).

First time (auditwheel into its own venv; manywheel's clean venv)::

    python tools/compare_auditwheel.py --setup

Run: ``python benchmarks/bench_repair.py [--only torch-retag] [--repeat 3] [--json F]
[--doc]``. Exit code 0 when every target is met, 1 when one is missed, 2 on a harness
error (missing input or venv, no gcc, a tool failing).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The shared helpers live in a sibling script, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from compare_auditwheel import (
    DEFAULT_VENV,
    REPO,
    HarnessError,
    auditwheel_exe,
    auditwheel_version,
    git_head,
    machine_line,
    manywheel_version,
    markdown_table,
    plain_table,
    update_doc,
)

TORCH_WHEEL = Path(
    os.environ.get(
        "MANYWHEEL_BENCH_TORCH",
        "/work/cache/torch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
    )
)
CACHE = Path(os.environ.get("MANYWHEEL_BENCH_REPAIR_CACHE", "/work/cache/bench-repair"))
MANYWHEEL_VENV = Path(os.environ.get("MANYWHEEL_BENCH_VENV", "/work/cache/manywheel-venv"))
PYCACHE = Path(os.environ.get("MANYWHEEL_BENCH_PYCACHE", "/work/cache/pycache"))
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
PREFERRED_BIG = LIBDIR / "libLLVM-15.so.1"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench_repair:begin (generated, do not edit by hand) -->"
END = "<!-- bench_repair:end -->"
DOC_SKELETON = f"""# Benchmarks

## Repair benchmark

{BEGIN}
{END}
"""
CASES = ("torch-retag", "big-graft")
SPEEDUP_TARGETS = {"torch-retag": 25.0, "big-graft": 3.0}
TORCH_PLAT = "manylinux_2_28_x86_64"
TORCH_EXCLUDES = [f"--exclude={lib}" for lib in ("libc10.so", "libtorch.so", "libtorch_cpu.so")]
COMPRESSION = "6"


# --------------------------------------------------------------------------- measured runs


@dataclass
class Run:
    """One finished child: wall and CPU seconds, peak RSS, exit code, last stderr line."""

    wall: float
    cpu: float
    peak_kb: int
    returncode: int
    error_line: str


def child_env(path_prefix: Path | None) -> dict[str, str]:
    """The environment both tools run in: bytecode cached under ``PYCACHE`` for both (this
    machine sets PYTHONDONTWRITEBYTECODE), ``path_prefix`` first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_measured(command: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``command``; its rusage (with its waited-for descendants) comes from ``wait4``,
    so nothing this script or the other tool does counts."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=out, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = [ln for ln in out.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_kb=int(usage.ru_maxrss),
        returncode=proc.returncode,
        error_line=lines[-1].strip() if lines else f"exit code {proc.returncode}",
    )


# --------------------------------------------------------------------------- manywheel


def manywheel_python(spec: str | None) -> list[str]:
    """The command that runs manywheel: ``--manywheel``, else ``-m manywheel`` with the
    Python of manywheel's clean venv when it has every runtime dependency repair uses
    (zlib-ng, patchelf), else with this Python (the project's environment)."""
    if spec:
        return shlex.split(spec)
    python = MANYWHEEL_VENV / "bin" / "python"
    if python.is_file() and (MANYWHEEL_VENV / "bin" / "patchelf").is_file():
        probe = subprocess.run(
            [str(python), "-c", "import zlib_ng.zlib_ng"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [str(python), "-m", "manywheel"]
    print(
        f"bench_repair: note: {MANYWHEEL_VENV} lacks zlib-ng or patchelf (runtime dependencies "
        f"of repair); running manywheel with {sys.executable}",
        file=sys.stderr,
    )
    return [sys.executable, "-m", "manywheel"]


def manywheel_facts(command: Sequence[str]) -> dict[str, str]:
    """Deflater and patchelf manywheel's repair would use (asked of that interpreter)."""
    python = command[0] if command[1:2] == ["-m"] else sys.executable
    code = (
        "from manywheel.wheelwrite import DEFLATER; from manywheel.patch import find_patchelf;"
        "p = find_patchelf(); print(DEFLATER.identity); print(p.path)"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) < 2:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"cannot ask manywheel for its deflater and patchelf: {last}")
    version = subprocess.run([lines[1], "--version"], capture_output=True, text=True, check=False)
    return {"deflater": lines[0], "patchelf": lines[1], "patchelf_version": version.stdout.strip()}


def require_repair(command: Sequence[str]) -> None:
    done = subprocess.run([*command, "repair", "--help"], capture_output=True, check=False)
    if done.returncode != 0:
        raise HarnessError(
            f"'{shlex.join([*command, 'repair', '--help'])}' exited {done.returncode}: "
            "this checkout has no working 'manywheel repair'"
        )


# --------------------------------------------------------------------------- inputs


def build_torch_retag(source: Path, cache: Path) -> Path:
    """The torch wheel tagged ``linux_x86_64`` (built once; rebuilt when the source is
    newer). Every member but WHEEL and RECORD is copied raw by manywheel's writer."""
    if not source.is_file():
        raise HarnessError(
            f"the torch wheel {source} is missing; fetch it with 'pip download --no-deps "
            "--only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 "
            "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu -d "
            f"{source.parent}' (or set MANYWHEEL_BENCH_TORCH)"
        )
    stem = source.name[: -len(".whl")].split("-")
    target = cache / ("-".join([*stem[:-1], "linux_x86_64"]) + ".whl")
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    from manywheel.wheelwrite import newest_member_time, write_wheel  # noqa: PLC0415
    from manywheel.zipread import ZipArchive  # noqa: PLC0415

    cache.mkdir(parents=True, exist_ok=True)
    print(f"building {target.name} (once) ...", file=sys.stderr, flush=True)
    with ZipArchive(source) as archive:
        names = [m.name for m in archive.members]
        wheel_path = next(n for n in names if re.fullmatch(r"[^/]+\.dist-info/WHEEL", n))
        record_path = wheel_path[: -len("WHEEL")] + "RECORD"
        text = archive.read(archive.member(wheel_path)).decode("utf-8")
        # The Tag: lines replaced where they are (a header block ends at an empty line).
        lines: list[str] = []
        for line in text.splitlines():
            if not line.startswith("Tag:"):
                lines.append(line)
            elif not any(ln.startswith("Tag:") for ln in lines):
                lines.append(f"Tag: {stem[-3]}-{stem[-2]}-linux_x86_64")
        wheel_text = "\n".join(lines) + "\n"
        write_wheel(
            archive,
            target,
            keep=[n for n in names if n not in (wheel_path, record_path)],
            wheel_file=(wheel_path, wheel_text),
            record_path=record_path,
            epoch=newest_member_time(archive),
        )
    return target


def find_big_library(explicit: Path | None) -> Path:
    """libLLVM-15.so.1, else the largest libLLVM present, else ``--big-library``."""
    if explicit is not None:
        if not explicit.is_file():
            raise HarnessError(f"--big-library {explicit}: no such file")
        return explicit
    if PREFERRED_BIG.is_file():
        return PREFERRED_BIG
    found = [Path(p) for p in glob.glob(str(LIBDIR / "libLLVM-*.so.*"))]
    if not found:
        raise HarnessError(
            f"no libLLVM-*.so.* in {LIBDIR} (Debian: 'apt-get install libllvm15'); or name "
            "another large library that no manylinux policy allows with --big-library PATH"
        )
    return max(found, key=lambda p: p.stat().st_size)


def _record_row(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_big_wheel(library: Path, directory: Path) -> Path:
    """A ``linux_x86_64`` wheel whose one extension links ``library`` (built with gcc)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise HarnessError("gcc not found on PATH; it builds the big-graft extension")
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    source = directory / "ext.c"
    # Calls into the library so the link is real; the module is never imported.
    source.write_text(
        "extern void *LLVMContextCreate(void);\n"
        "void *bigdep_touch(void) { return LLVMContextCreate(); }\n"
        "void *PyInit__ext(void) { return 0; }\n",
        encoding="ascii",
    )
    ext = directory / "_ext.so"
    command = [
        gcc,
        "-shared",
        "-fPIC",
        "-O1",
        "-o",
        str(ext),
        str(source),
        "-Wl,--no-as-needed",
        f"-L{library.parent}",
        f"-l:{library.name}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"gcc could not build the extension: {done.stderr.strip()[:300]}")
    dist = "bigdep-1.0.dist-info"
    members = {
        "bigdep/__init__.py": b"",
        f"bigdep/_ext.cpython-{tag[2:]}-x86_64-linux-gnu.so": ext.read_bytes(),
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: bigdep\nVersion: 1.0\n",
        f"{dist}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: bench_repair\nRoot-Is-Purelib: false\n"
            f"Tag: {tag}-{tag}-linux_x86_64\n"
        ).encode(),
    }
    record = "".join(_record_row(n, d) + "\n" for n, d in members.items())
    record += f"{dist}/RECORD,,\n"
    wheel = directory / f"bigdep-1.0-{tag}-{tag}-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*members.items(), (f"{dist}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if name.endswith(".so") else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


def pick_big_plat(manywheel: Sequence[str], wheel: Path) -> str:
    """The tag a repair of the big-graft wheel reaches (manywheel's ``repair_tag``)."""
    done = subprocess.run(
        [*manywheel, "show", "--json", str(wheel)], capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise HarnessError(
            f"'manywheel show --json' printed no JSON on {wheel.name}: {done.stderr.strip()}"
        ) from None
    reports = report.get("reports") if isinstance(report, dict) else None
    tag = reports[0].get("repair_tag") if reports else None
    if not isinstance(tag, str) or tag.startswith("linux"):
        raise HarnessError(f"no manylinux tag is reachable for {wheel.name} (repair_tag {tag})")
    return tag


# --------------------------------------------------------------------------- the benchmark


@dataclass
class ToolTimes:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    output: str | None = None
    error: str | None = None

    def best(self, values: list[float]) -> float:
        return min(values) if values else float("nan")

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


@dataclass
class Result:
    label: str
    input: str
    input_mb: float
    plat: str
    manywheel: ToolTimes
    auditwheel: ToolTimes
    speedup_target: float
    note: str = ""

    def ratio(self, pick: Callable[[ToolTimes], float]) -> float:
        return pick(self.auditwheel) / pick(self.manywheel)

    @property
    def wall_ratio(self) -> float:
        return self.ratio(lambda t: t.best(t.wall))

    @property
    def failed(self) -> bool:
        return bool(self.manywheel.error or self.auditwheel.error)

    def misses(self) -> list[str]:
        if self.failed:
            return [f"{self.label}: a tool failed"]
        if not self.wall_ratio >= self.speedup_target:
            return [f"{self.label}: {self.wall_ratio:.1f}x < {self.speedup_target:.0f}x"]
        return []


def verify_output(out: Path, plat: str, manywheel: Sequence[str], env: dict[str, str]) -> str:
    """The one wheel in ``out``, checked: the target tag in its name, ``manywheel check``
    exit 0. Raises HarnessError otherwise."""
    wheels = sorted(out.glob("*.whl"))
    others = [p.name for p in out.iterdir() if p.suffix != ".whl"]
    if len(wheels) != 1 or others:
        found = [p.name for p in out.iterdir()]
        raise HarnessError(f"expected one wheel in the output, found {found}")
    name = wheels[0].name
    if plat not in name[: -len(".whl")].split("-")[-1].split("."):
        raise HarnessError(f"output {name} does not carry the tag {plat}")
    check = run_measured([*manywheel, "check", str(wheels[0])], env)
    if check.returncode != 0:
        raise HarnessError(f"'manywheel check {name}' exited {check.returncode}")
    return name


def bench_case(
    label: str,
    wheel: Path,
    *,
    plat: str,
    commands: dict[str, list[str]],
    checker: Sequence[str],
    env: dict[str, str],
    repeat: int,
    budget: float,
    workdir: Path,
    extra: Sequence[str] = (),
    note: str = "",
) -> Result:
    times = {tool: ToolTimes() for tool in commands}
    for _ in range(repeat):
        for tool, command in commands.items():
            t = times[tool]
            if t.error or (t.wall and sum(t.wall) >= budget):
                continue
            out = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=workdir))
            try:
                run = run_measured(
                    [*command, *extra, "--plat", plat, "-w", str(out), str(wheel)], env
                )
                if run.returncode != 0:
                    t.error = f"exit {run.returncode}: {run.error_line}"
                    continue
                try:
                    t.output = verify_output(out, plat, checker, env)
                except HarnessError as err:
                    t.error = f"bad output: {err}"
                    continue
                t.wall.append(run.wall)
                t.cpu.append(run.cpu)
                t.peak_mb = max(t.peak_mb, run.peak_kb / 1024)
                print(
                    f"  {label} {tool}: {run.wall:.2f} s wall, {run.cpu:.2f} s cpu, "
                    f"{run.peak_kb / 1024:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                shutil.rmtree(out, ignore_errors=True)
    return Result(
        label=label,
        input=wheel.name,
        input_mb=wheel.stat().st_size / 1e6,
        plat=plat,
        manywheel=times["manywheel"],
        auditwheel=times["auditwheel"],
        speedup_target=SPEEDUP_TARGETS[label],
        note=note,
    )


# --------------------------------------------------------------------------- output


def _s(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def table(results: Sequence[Result]) -> list[list[str]]:
    body = [
        [
            "case",
            "input MB",
            "tool",
            "wall s best/med",
            "cpu s best/med",
            "peak MB",
            "runs",
            "speedup wall best/med",
            "cpu ratio",
            "target",
        ]
    ]
    for r in results:
        for tool, t in (("manywheel", r.manywheel), ("auditwheel", r.auditwheel)):
            first = tool == "manywheel"
            size = f"{r.input_mb:.1f}" if r.input_mb >= 0.1 else f"{r.input_mb:.3f}"
            cells = [r.label if first else "", size if first else "", tool]
            if t.error:
                cells += [f"error: {t.error}", "", "", ""]
            else:
                cells += [
                    f"{_s(t.best(t.wall))} / {_s(t.median(t.wall))}",
                    f"{_s(t.best(t.cpu))} / {_s(t.median(t.cpu))}",
                    f"{t.peak_mb:.0f}",
                    str(len(t.wall)),
                ]
            if first and not r.failed:
                wall_med = r.ratio(lambda t: t.median(t.wall))
                cpu = r.ratio(lambda t: t.best(t.cpu))
                met = "ok" if r.wall_ratio >= r.speedup_target else "MISS"
                cells += [
                    f"{r.wall_ratio:.1f}x / {wall_med:.1f}x",
                    f"{cpu:.1f}x",
                    f">= {r.speedup_target:.0f}x {met}",
                ]
            elif first:
                cells += ["—", "—", f">= {r.speedup_target:.0f}x MISS"]
            else:
                cells += ["", "", ""]
            body.append(cells)
    return body


# Columns right-aligned in the terminal table (numbers).
RIGHT = (1, 3, 4, 5, 6, 7, 8)


def markdown(body: Sequence[Sequence[str]], header: str, notes: Sequence[str]) -> str:
    tail = "\n" + "\n".join(notes) + "\n" if notes else ""
    return f"{header}\n\n{markdown_table(body)}{tail}"


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_repair.py",
        description="Time 'manywheel repair' against 'auditwheel repair' on the torch CPU wheel "
        "retagged linux_x86_64 (nothing to graft) and on a wheel whose extension links "
        "libLLVM (graft and patch ~117 MB). Each tool in its own subprocess; best and median "
        "wall and CPU time, peak RSS; every output verified with 'manywheel check'.",
        epilog="Set up auditwheel's venv first: python tools/compare_auditwheel.py --setup. "
        "Exit codes: 0 every target met, 1 a target missed, 2 harness error.",
    )
    parser.add_argument("--only", metavar="CASE,...", help=f"only these cases ({', '.join(CASES)})")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per tool and case (default: %(default)s)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="stop repeating a tool on a case once its runs took this many seconds "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--torch", type=Path, default=TORCH_WHEEL, help="the torch CPU wheel (%(default)s)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="where the retagged torch wheel is built once, and outputs go (%(default)s)",
    )
    parser.add_argument(
        "--big-library",
        type=Path,
        metavar="PATH",
        help=f"the library the big-graft extension links (default: {PREFERRED_BIG}, else the "
        "largest libLLVM present)",
    )
    parser.add_argument(
        "--auditwheel-venv",
        type=Path,
        default=DEFAULT_VENV,
        help="venv holding auditwheel (default: %(default)s)",
    )
    parser.add_argument(
        "--manywheel",
        metavar="CMD",
        help="command that runs manywheel (default: '-m manywheel' with the Python of "
        f"{MANYWHEEL_VENV} when it has zlib-ng and patchelf, else this Python)",
    )
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write results as JSON")
    parser.add_argument(
        "--doc",
        type=Path,
        nargs="?",
        const=DOC,
        help="update the generated section of this markdown file "
        f"(default when given without a value: {DOC.relative_to(REPO)})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        print("bench_repair: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    only = [c for c in (args.only or "").split(",") if c] or list(CASES)
    unknown = [c for c in only if c not in CASES]
    if unknown:
        print(
            f"bench_repair: error: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}",
            file=sys.stderr,
        )
        return 2
    started = time.time()
    try:
        auditwheel = auditwheel_exe(args.auditwheel_venv)
        aw_version = auditwheel_version(args.auditwheel_venv)
        manywheel = manywheel_python(args.manywheel)
        require_repair(manywheel)
        facts = manywheel_facts(manywheel)
        args.cache.mkdir(parents=True, exist_ok=True)
        # Both tools use manywheel's patchelf: a private directory first on PATH.
        bindir = Path(tempfile.mkdtemp(prefix="bin-", dir=args.cache))
        (bindir / "patchelf").symlink_to(facts["patchelf"])
        env = child_env(bindir)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.cache))
        inputs: list[tuple[str, Path, str, list[str], str]] = []
        if "torch-retag" in only:
            retag = build_torch_retag(args.torch, args.cache)
            inputs.append(("torch-retag", retag, TORCH_PLAT, TORCH_EXCLUDES, ""))
        if "big-graft" in only:
            library = find_big_library(args.big_library)
            big = build_big_wheel(library, workdir)
            plat = pick_big_plat(manywheel, big)
            note = f"big-graft links {library} ({library.stat().st_size / 1e6:.0f} MB)"
            inputs.append(("big-graft", big, plat, [], note))
    except HarnessError as err:
        print(f"bench_repair: error: {err}", file=sys.stderr)
        return 2
    commands = {
        "manywheel": [*manywheel, "repair", "-z", COMPRESSION],
        "auditwheel": [str(auditwheel), "repair", "-z", COMPRESSION],
    }
    results = []
    try:
        for label, wheel, plat, extra, note in inputs:
            print(f"benchmarking {label} ({wheel.name} -> {plat}) ...", file=sys.stderr)
            results.append(
                bench_case(
                    label,
                    wheel,
                    plat=plat,
                    commands=commands,
                    checker=manywheel,
                    env=env,
                    repeat=args.repeat,
                    budget=args.budget,
                    workdir=workdir,
                    extra=extra,
                    note=note,
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(bindir, ignore_errors=True)
    versions = {
        "date": datetime.date.today().isoformat(),
        "manywheel": manywheel_version(manywheel),
        "commit": git_head(),
        "auditwheel": aw_version,
        "deflater": facts["deflater"],
        "patchelf": facts["patchelf_version"],
        "machine": machine_line(),
    }
    header = (
        f"Measured by `python benchmarks/bench_repair.py --repeat {args.repeat} --budget "
        f"{args.budget:g}` on {versions['date']} ({time.time() - started:.0f} s): manywheel "
        f"{versions['manywheel']} (commit {versions['commit']}, deflater "
        f"{versions['deflater']}), auditwheel {versions['auditwheel']}, both with "
        f"{versions['patchelf']} and `-z {COMPRESSION}`; host: {versions['machine']}. "
        f"manywheel runs as `{shlex.join(manywheel)}`. Target tags: {TORCH_PLAT} for "
        f"torch-retag (both with `{' '.join(TORCH_EXCLUDES)}`)"
        + "".join(f", {r.plat} for {r.label}" for r in results if r.label != "torch-retag")
        + ". Speedup = auditwheel time / manywheel time."
    )
    notes = [r.note for r in results if r.note]
    body = table(results)
    print(header)
    sys.stdout.write(plain_table(body, RIGHT))
    for line in notes:
        print(line)
    errors = [
        f"{r.label} {tool}: {t.error}"
        for r in results
        for tool, t in (("manywheel", r.manywheel), ("auditwheel", r.auditwheel))
        if t.error
    ]
    misses = [miss for r in results for miss in r.misses()]
    print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    if args.doc:
        update_doc(args.doc, BEGIN, END, markdown(body, header, notes), DOC_SKELETON)
        print(f"updated {args.doc}", file=sys.stderr)
    if args.json:
        payload: dict[str, Any] = {"versions": versions, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if errors:
        for line in errors:
            print(f"bench_repair: error: {line}", file=sys.stderr)
        return 2
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
