#!/usr/bin/env python3
"""Compare manywheel's verdicts with auditwheel's on the real wheels of tools/real-wheels.txt.

    python tools/compare_auditwheel.py --setup       # auditwheel into its own venv
    python tools/compare_auditwheel.py --download    # fetch the missing wheels
    python tools/compare_auditwheel.py               # compare, update the doc's table
    python tools/compare_auditwheel.py --auditwheel-only   # auditwheel's side alone

For each wheel it runs ``auditwheel -v show WHEEL`` (its text report, debug log
discarded) and ``manywheel show --json WHEEL`` plus ``manywheel check WHEEL``, and puts
side by side:

- the most compatible tag the wheel is consistent with as it is (auditwheel's "is
  consistent with the following platform tag" line; manywheel's ``best_tag``);
- the most compatible tag a repair can reach (auditwheel: the tag its symbol versions
  constrain the wheel to, or the most compatible policy, less the policies it names
  black-listed symbols for; manywheel's ``repair_tag``);
- whether the wheel's own platform tags are honest (auditwheel has no such command:
  derived as "every claimed tag is at most as compatible as the consistent one";
  manywheel: the exit code of ``manywheel check``).

and the wall time of each of the three runs (``manywheel show --json``, ``manywheel
check``, ``auditwheel -v show``): the best of ``--repeat`` runs (default 2), fewer for
a tool whose runs on a wheel have already taken ``--budget`` seconds (default 10), with
the 1-minute load average of the host when the wheel's runs started. One untimed warm-up
run of each command on the smallest wheel comes first (page cache, bytecode).

The table goes to stdout and between the markers of docs/auditwheel-comparison.md,
with, for every disagreement, the evidence manywheel gives; the explanations of who is
right are written by hand under the table.

auditwheel is only a measuring stick: it lives in its own venv (``--setup``, default
/work/cache/auditwheel-venv), never in the project's environment, and nothing of it is
copied into this repository. benchmarks/bench_show.py imports the helpers of this file
(wheel list, cache, venv, measured subprocess runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib  # Python 3.11+, like the wheels the harness compares (PYTHON_VERSION)

REPO = Path(__file__).resolve().parents[1]
WHEEL_LIST = REPO / "tools" / "real-wheels.txt"
DEFAULT_CACHE = Path(os.environ.get("MANYWHEEL_WHEEL_CACHE", "/work/cache/wheels"))
DEFAULT_VENV = Path(os.environ.get("MANYWHEEL_AUDITWHEEL_VENV", "/work/cache/auditwheel-venv"))
# manywheel's own clean venv: this checkout on its path (a .pth), its runtime dependencies,
# nothing else, so that it starts like auditwheel does from its venv.
MANYWHEEL_VENV = Path(os.environ.get("MANYWHEEL_BENCH_VENV", "/work/cache/manywheel-venv"))
PYCACHE = Path(os.environ.get("MANYWHEEL_BENCH_PYCACHE", "/work/cache/pycache"))
AUDITWHEEL_PIN = "auditwheel==6.8.2"
DOC = REPO / "docs" / "auditwheel-comparison.md"
POLICY_DIR = REPO / "src" / "manywheel" / "policies"
PYTHON_VERSION = "3.11"
BEGIN_TABLE = "<!-- compare_auditwheel:begin (generated, do not edit by hand) -->"
END_TABLE = "<!-- compare_auditwheel:end -->"
LEGACY_ALIASES = {"manylinux1": "manylinux_2_5", "manylinux2010": "manylinux_2_12"}
LEGACY_ALIASES["manylinux2014"] = "manylinux_2_17"


class HarnessError(Exception):
    """An expected failure: reaches the user as one line on stderr, exit code 2."""


# --------------------------------------------------------------------------- wheel list


@dataclass(frozen=True)
class WheelEntry:
    """One pinned wheel of tools/real-wheels.txt."""

    label: str
    filename: str

    @property
    def name(self) -> str:
        return self.filename.split("-")[0]

    @property
    def version(self) -> str:
        return self.filename.split("-")[1]

    @property
    def platforms(self) -> list[str]:
        return self.filename[: -len(".whl")].split("-")[-1].split(".")

    @property
    def pip_platform(self) -> str:
        """One platform of the filename for ``pip download --platform`` (the newest style)."""
        return self.platforms[-1]


def load_wheel_list(path: Path = WHEEL_LIST, only: Sequence[str] = ()) -> list[WheelEntry]:
    """The entries of the list, in order; ``only`` keeps the given labels (in list order)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise HarnessError(f"cannot read the wheel list {path}: {err.strerror}") from None
    entries: list[WheelEntry] = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].endswith(".whl") or fields[1].count("-") < 4:
            raise HarnessError(f"{path}:{number}: expected 'LABEL FILENAME.whl', got {raw!r}")
        entries.append(WheelEntry(fields[0], fields[1]))
    if only:
        labels = {entry.label for entry in entries}
        unknown = [label for label in only if label not in labels]
        if unknown:
            raise HarnessError(
                f"unknown wheel label(s) {', '.join(unknown)}; known: {', '.join(sorted(labels))}"
            )
        entries = [entry for entry in entries if entry.label in only]
    return entries


def locate(entries: Iterable[WheelEntry], cache: Path) -> list[tuple[WheelEntry, Path]]:
    """Each entry with its file in the cache; one error naming how to fill the cache."""
    found: list[tuple[WheelEntry, Path]] = []
    missing: list[str] = []
    for entry in entries:
        path = cache / entry.filename
        if path.is_file():
            found.append((entry, path))
        else:
            missing.append(entry.filename)
    if missing:
        raise HarnessError(
            f"{len(missing)} wheel(s) missing from {cache} (first: {missing[0]}); fetch them with "
            f"'python tools/compare_auditwheel.py --download --cache {cache}'"
        )
    return found


def download(entries: Iterable[WheelEntry], cache: Path) -> None:
    """Fetch every missing wheel of the list with pip into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = cache / entry.filename
        if target.is_file():
            continue
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            entry.pip_platform,
            "--python-version",
            PYTHON_VERSION,
            f"{entry.name}=={entry.version}",
            "-d",
            str(cache),
        ]
        print(f"fetching {entry.filename}", file=sys.stderr)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise HarnessError(f"pip could not fetch {entry.name}=={entry.version}: {last}")
        if not target.is_file():
            raise HarnessError(
                f"pip fetched {entry.name}=={entry.version} but not {entry.filename} "
                f"(see {cache}); fix the pin in {WHEEL_LIST.name}"
            )


# --------------------------------------------------------------------------- auditwheel


def auditwheel_exe(venv: Path) -> Path:
    exe = venv / "bin" / "auditwheel"
    if not exe.is_file():
        raise HarnessError(
            f"auditwheel is not installed in {venv}; create that venv with "
            f"'python tools/compare_auditwheel.py --setup --auditwheel-venv {venv}'"
        )
    return exe


def setup_auditwheel(venv: Path) -> None:
    """Create ``venv`` and install the pinned auditwheel into it (never into this env)."""
    if not (venv / "bin" / "python").is_file():
        print(f"creating {venv}", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise HarnessError(f"cannot create the venv {venv}: {done.stderr.strip()}")
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", AUDITWHEEL_PIN],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"cannot install {AUDITWHEEL_PIN} into {venv}: {last}")
    print(f"{venv}: auditwheel {auditwheel_version(venv)}", file=sys.stderr)


def auditwheel_version(venv: Path) -> str:
    done = subprocess.run(
        [str(auditwheel_exe(venv)), "--version"], capture_output=True, text=True, check=False
    )
    match = re.match(r"auditwheel (\S+)", done.stdout)
    if done.returncode != 0 or not match:
        raise HarnessError(f"'{auditwheel_exe(venv)} --version' failed: {done.stderr.strip()}")
    return match.group(1)


# --------------------------------------------------------------------------- manywheel


def manywheel_command(spec: str | None, venv: Path = MANYWHEEL_VENV) -> list[str]:
    """The command that runs manywheel: ``--manywheel``, else the console script of its
    own venv when ``--setup`` made it (started like auditwheel's, see
    :func:`write_console_script`), else ``-m manywheel`` with this Python."""
    if spec:
        return shlex.split(spec)
    script = venv / "bin" / "manywheel"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "manywheel"]


def manywheel_python(venv: Path = MANYWHEEL_VENV) -> str:
    """The Python that runs manywheel: its venv's when ``--setup`` made it, else this one."""
    python = venv / "bin" / "python"
    return str(python) if python.is_file() else sys.executable


def command_python(command: Sequence[str]) -> str | None:
    """The interpreter a manywheel command runs: ``PYTHON -m manywheel``, or a script's
    ``#!`` line; None when neither (then nothing is precompiled for it)."""
    if list(command[1:3]) == ["-m", "manywheel"]:
        return command[0]
    try:
        with open(command[0], "rb") as script:
            first = script.readline()
    except OSError:
        return None
    return first[2:].decode().strip() or None if first.startswith(b"#!") else None


def write_console_script(venv: Path, pyproject: Path = REPO / "pyproject.toml") -> Path:
    """``bin/manywheel`` in ``venv``, written from pyproject's ``[project.scripts]`` entry
    in the template pip uses for every console script (auditwheel's in its venv is the
    same), so that both tools start the same way: no ``runpy``, no ``-m``."""
    entry = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]["manywheel"]
    module, function = entry.split(":")
    script = venv / "bin" / "manywheel"
    script.write_text(
        f"#!{venv / 'bin' / 'python'}\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def manywheel_venv_packages(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """What a ``pip install manywheel[fast]`` brings: pyproject's ``dependencies`` and the
    ``fast`` extra, read from the file (the one source of truth), never copied here."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [*project.get("dependencies", []), *project.get("optional-dependencies", {})["fast"]]


def precompile(python: Path | str, *paths: Path) -> None:
    """Compile ``paths`` into the bytecode cache the measured runs read (``child_env``).

    pip compiles every module it installs; this checkout runs from source through a .pth,
    so without this the first run of each module would compile it. Both tools get it.
    """
    done = subprocess.run(
        [str(python), "-m", "compileall", "-q", *map(str, paths)],
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"cannot compile {', '.join(map(str, paths))}: {last}")


def site_packages(python: Path | str) -> Path:
    """The purelib directory of the environment of ``python``."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out)


def setup_manywheel_venv(venv: Path) -> None:
    """A venv that runs this checkout (``src/`` through a .pth file: nothing is built or
    written in the repository) with only manywheel's runtime dependencies."""
    python = venv / "bin" / "python"
    if not python.is_file():
        print(f"creating {venv}", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise HarnessError(f"cannot create the venv {venv}: {done.stderr.strip()}")
    packages = manywheel_venv_packages()
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"cannot install {packages} into {venv}: {last}")
    (site_packages(python) / "manywheel-checkout.pth").write_text(
        f"{REPO / 'src'}\n", encoding="utf-8"
    )
    write_console_script(venv)
    precompile(python, REPO / "src" / "manywheel")
    print(f"{venv}: runs manywheel from {REPO / 'src'} ({', '.join(packages)})", file=sys.stderr)


def require_subcommand(command: Sequence[str], name: str) -> None:
    """One clear error when this checkout's manywheel does not have ``name`` yet."""
    done = subprocess.run([*command, name, "--help"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(
            f"'manywheel {name}' is not available in this checkout yet "
            f"('{shlex.join([*command, name, '--help'])}' exited {done.returncode}); "
            "pull the commit that adds it and re-run"
        )


def preflight_show(command: Sequence[str], wheel: Path) -> None:
    """One clear error when ``manywheel show --json`` does not work yet (tried on ``wheel``)."""
    require_subcommand(command, "show")
    run = run_measured([*command, "show", "--json", str(wheel)])
    if run.returncode != 0:
        raise HarnessError(
            f"'manywheel show --json' does not work in this checkout yet: it exits "
            f"{run.returncode} on {wheel.name} ({run.first_error_line()})"
        )
    try:
        json.loads(run.stdout)
    except ValueError:
        raise HarnessError(
            f"'manywheel show --json' printed no JSON on {wheel.name}: {run.stdout[:60]!r}"
        ) from None


def manywheel_version(command: Sequence[str]) -> str:
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("manywheel ") or "?"


def git_head() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


def machine_line() -> str:
    """The host in one line: CPU model, cores, memory, libc, Python."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    libc = " ".join(platform.libc_ver())
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}, "
        f"{libc}, Python {platform.python_version()}"
    )


# --------------------------------------------------------------------------- measured runs


@dataclass
class Run:
    """One finished child process: wall time, its own peak RSS, exit code, output."""

    seconds: float
    peak_kb: int
    returncode: int
    stdout: str
    stderr: str
    anon_peak_kb: int | None = None

    def first_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


def child_env() -> dict[str, str]:
    """The environment both tools run in, the same for both: bytecode read from (and
    written to) ``PYCACHE``.

    This machine sets PYTHONDONTWRITEBYTECODE, which would make every run of manywheel
    (run from this checkout, never installed by pip) recompile its modules, while
    auditwheel's were compiled by pip at install time. A real ``pip install manywheel``
    ships compiled modules too; :func:`precompile` fills the cache for both tools.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def _anon_sampler(pid: int, peak: list[int], stop: threading.Event) -> None:
    """Keep in ``peak[0]`` the largest RssAnon of ``pid`` seen every 2 ms (kB)."""
    status = Path(f"/proc/{pid}/status")
    while not stop.wait(0.002):
        try:
            text = status.read_text()
        except OSError:
            return
        match = re.search(r"^RssAnon:\s+(\d+) kB", text, re.MULTILINE)
        if match:
            peak[0] = max(peak[0], int(match.group(1)))


def run_measured(command: Sequence[str], *, sample_anon: bool = False) -> Run:
    """Run ``command``; the child's peak RSS comes from ``wait4`` (its own rusage only).

    ``ru_maxrss`` counts file pages the child maps and touches too; ``sample_anon``
    also samples its anonymous memory (heap) from /proc, into ``anon_peak_kb``.
    Output goes to temporary files, not pipes, so a big JSON report cannot block the
    child while we wait for it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, env=child_env())
        peak = [0]
        stop = threading.Event()
        sampler = None
        if sample_anon:
            sampler = threading.Thread(target=_anon_sampler, args=(proc.pid, peak, stop))
            sampler.start()
        # wait4 on a child Popen has not reaped: the sampler only reads /proc meanwhile.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        stop.set()
        if sampler:
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            peak_kb=int(usage.ru_maxrss),
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            anon_peak_kb=peak[0] if sample_anon else None,
        )


@dataclass(frozen=True)
class Timing:
    """How many times a command runs on a wheel: up to ``repeat`` runs, no further run
    once the runs of that command on that wheel have taken ``budget`` seconds."""

    repeat: int = 2
    budget: float = 10.0


def best_of(command: Sequence[str], timing: Timing) -> tuple[Run, float, int]:
    """Run ``command`` as ``timing`` says: the first run (its output is the verdict, the
    same at every run), the best wall time, the number of runs."""
    first = run_measured(command)
    spent, best, count = first.seconds, first.seconds, 1
    while count < timing.repeat and spent < timing.budget:
        again = run_measured(command)
        spent, best, count = spent + again.seconds, min(best, again.seconds), count + 1
    return first, best, count


# --------------------------------------------------------------------------- tags


def canonical_tag(tag: str) -> str:
    """manylinux2014_x86_64 -> manylinux_2_17_x86_64; other tags unchanged."""
    for alias, name in LEGACY_ALIASES.items():
        if tag.startswith(alias + "_"):
            return name + tag[len(alias) :]
    return tag


def policy_names(libc: str, arch: str) -> list[str]:
    """The policies of this repository's data for ``arch``, most compatible first."""
    family = "musllinux" if libc == "musl" else "manylinux"
    data = json.loads((POLICY_DIR / f"{family}.json").read_text(encoding="utf-8"))
    policies = sorted(data["policies"], key=lambda p: -int(p["priority"]))
    return [f"{p['name']}_{arch}" for p in policies if arch in p["arches"]]


def tag_rank(tag: str, order: Sequence[str]) -> int:
    """Position in ``order`` (most compatible first); linux_* and unknown tags come last."""
    tag = canonical_tag(tag)
    return order.index(tag) if tag in order else len(order)


def libc_arch_of(entry: WheelEntry) -> tuple[str, str]:
    plat = entry.platforms[0]
    libc = "musl" if plat.startswith("musllinux") else "glibc"
    arch = re.sub(r"^(many|musl)linux(_\d+_\d+|1|2010|2014)_", "", plat)
    return libc, arch


# --------------------------------------------------------------------------- auditwheel's text


@dataclass
class AuditwheelShow:
    """What ``auditwheel show`` says, parsed from its text."""

    consistent: str | None = None  # "is consistent with the following platform tag"
    constrained_to: str | None = None  # "This constrains the platform tag to"
    versioned: dict[str, list[str]] = field(default_factory=dict)
    no_external: bool = False
    external: dict[str, str | None] = field(default_factory=dict)
    eliminate: dict[str, list[str]] = field(default_factory=dict)  # tag -> libraries
    blacklisted: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # pyfpe / ucs2 / unsupported ISA
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def parse_auditwheel_show(stdout: str) -> AuditwheelShow:
    """Parse the paragraphs of ``auditwheel show`` (each printed after an empty line)."""
    result = AuditwheelShow()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", stdout) if p.strip()]
    pending: tuple[str, str] | None = None  # ("eliminate" | "blacklist", tag)
    for text in paragraphs:
        if match := re.search(r'is consistent with the following platform tag: "([^"]+)"', text):
            result.consistent = match.group(1)
            pending = None
        elif match := re.match(r'This constrains the platform tag to "([^"]+)"', text):
            result.constrained_to = match.group(1)
            pending = None
        elif "versioned symbols in these system-provided shared libraries:" in text:
            for lib, versions in re.findall(r"(\S+) with versions \{([^}]*)\}", text):
                result.versioned[lib] = sorted(re.findall(r"'([^']+)'", versions))
            pending = None
        elif text.startswith("The wheel requires no external shared libraries"):
            result.no_external = True
            pending = None
        elif "external shared libraries are required by the wheel:" in text:
            raw = text.split("required by the wheel:", 1)[1].strip()
            try:
                result.external = json.loads(raw)
            except ValueError:
                result.warnings.append(f"unparsed external libraries: {raw[:80]}")
            pending = None
        elif match := re.match(r"In order to achieve the tag platform tag '([^']+)'", text):
            kind = "blacklist" if "black-listed symbol" in text else "eliminate"
            pending = (kind, match.group(1))
        elif pending and pending[0] == "eliminate":
            result.eliminate[pending[1]] = [lib.strip() for lib in text.split(",")]
            pending = None
        elif pending and pending[0] == "blacklist" and text.startswith("From "):
            lib, _, symbols = text[len("From ") :].partition(": ")
            table = result.blacklisted.setdefault(pending[1], {})
            table[lib] = [s.strip() for s in symbols.split(",")]
        elif "PyFPE_jbuf" in text or "narrow unicode" in text or "unsupported ISA" in text:
            result.flags.append(text)
    return result


def auditwheel_repair_tag(show: AuditwheelShow, order: Sequence[str], arch: str) -> str | None:
    """The most compatible tag auditwheel's report says a repair reaches, as it words it.

    The symbol-version policy (the "constrains" line, else the most compatible policy),
    less every policy it lists black-listed symbols for; pyfpe/ucs2/ISA: linux only.
    None when it cannot repair: an external library it did not find makes its repair
    stop with "could not be located".
    """
    if show.consistent is None or repair_blocker(show):
        return None
    if show.flags:
        return f"linux_{arch}"
    start = tag_rank(show.constrained_to, order) if show.constrained_to else 0
    for tag in order[start:]:
        if tag not in show.blacklisted:
            return tag
    return f"linux_{arch}"


def repair_blocker(show: AuditwheelShow) -> str | None:
    """Why ``auditwheel repair`` would refuse: external libraries it could not locate."""
    missing = sorted(lib for lib, path in show.external.items() if path is None)
    return f"not found: {', '.join(missing)}" if missing else None


def auditwheel_order(libc: str, show: AuditwheelShow, order: Sequence[str]) -> list[str]:
    """The policies auditwheel weighs: for musl only one, the running musl's (or, off
    musl, the newest it knows), so its musllinux verdict is never "more compatible"."""
    if libc != "musl":
        return list(order)
    consistent = canonical_tag(show.consistent or "")
    return [consistent] if consistent in order else list(order[-1:])


def run_auditwheel_show(
    venv: Path, wheel: Path, timing: Timing = Timing(repeat=1)
) -> tuple[AuditwheelShow, Run, float, int]:
    """``auditwheel -v show WHEEL``: -v so that it does not stop after the first limit.

    Run as ``timing`` says; also returns the best wall time and the number of runs."""
    run, best, count = best_of([str(auditwheel_exe(venv)), "-v", "show", str(wheel)], timing)
    show = parse_auditwheel_show(run.stdout)
    show.warnings.extend(
        line.split(":", 2)[-1].strip()
        for line in run.stderr.splitlines()
        if line.startswith(("WARNING:", "ERROR:", "CRITICAL:"))
    )
    if run.returncode != 0 or show.consistent is None:
        show.error = run.first_error_line()
    return show, run, best, count


# --------------------------------------------------------------------------- comparison


@dataclass
class Row:
    entry: WheelEntry
    size_mb: float
    claimed: list[str]
    aw: AuditwheelShow
    aw_repair: str | None
    aw_claims_ok: bool | None
    mw_best: str | None = None
    mw_repair: str | None = None
    mw_check: int | None = None
    mw_check_line: str = ""
    mw_error: str | None = None
    mw_report: dict[str, Any] | None = None
    disagreements: list[str] = field(default_factory=list)
    # Wall time, best of the runs made, and how many: "aw_show", "mw_show", "mw_check".
    seconds: dict[str, float] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    load: float | None = None  # 1-minute load average when this wheel's runs started


def claims_ok(claimed: Sequence[str], consistent: str | None, order: Sequence[str]) -> bool | None:
    """auditwheel's implied check: no claimed tag is more compatible than its verdict."""
    if consistent is None:
        return None
    limit = tag_rank(consistent, order)
    return all(tag_rank(tag, order) >= limit for tag in claimed)


def compare_one(
    entry: WheelEntry,
    wheel: Path,
    venv: Path,
    mw: Sequence[str] | None,
    timing: Timing = Timing(),
) -> Row:
    libc, arch = libc_arch_of(entry)
    order = policy_names(libc, arch)
    load = os.getloadavg()[0]
    aw, _, aw_seconds, aw_runs = run_auditwheel_show(venv, wheel, timing)
    claimed = [canonical_tag(tag) for tag in entry.platforms]
    row = Row(
        entry=entry,
        size_mb=wheel.stat().st_size / 1e6,
        claimed=claimed,
        aw=aw,
        aw_repair=auditwheel_repair_tag(aw, auditwheel_order(libc, aw, order), arch),
        aw_claims_ok=claims_ok(claimed, aw.consistent, order),
        seconds={"aw_show": aw_seconds},
        runs={"aw_show": aw_runs},
        load=load,
    )
    if mw is None:
        return row
    show, row.seconds["mw_show"], row.runs["mw_show"] = best_of(
        [*mw, "show", "--json", str(wheel)], timing
    )
    if show.returncode != 0:
        row.mw_error = show.first_error_line()
    else:
        try:
            report = json.loads(show.stdout)
        except ValueError as err:
            row.mw_error = f"'manywheel show --json' printed no JSON: {err}"
        else:
            # One document per run: {"schema_version", "command", "reports": [...]}.
            if isinstance(report, dict) and isinstance(report.get("reports"), list):
                report = report["reports"][0]
            row.mw_report = report
            row.mw_best = report.get("best_tag")
            row.mw_repair = report.get("repair_tag")
    check, row.seconds["mw_check"], row.runs["mw_check"] = best_of(
        [*mw, "check", str(wheel)], timing
    )
    row.mw_check = check.returncode
    lines = [ln for ln in (check.stdout + check.stderr).splitlines() if ln.strip()]
    row.mw_check_line = lines[0].strip() if lines else ""
    if row.mw_error:
        row.disagreements.append(f"manywheel failed: {row.mw_error}")
        return row
    if canonical_tag(row.mw_best or "none") != canonical_tag(aw.consistent or "none"):
        row.disagreements.append(f"best tag: manywheel {row.mw_best}, auditwheel {aw.consistent}")
    if canonical_tag(row.mw_repair or "none") != canonical_tag(row.aw_repair or "none"):
        aw_repair = row.aw_repair or f"none (its repair stops: {repair_blocker(row.aw)})"
        row.disagreements.append(f"repair tag: manywheel {row.mw_repair}, auditwheel {aw_repair}")
    mw_ok = row.mw_check == 0
    if row.aw_claims_ok is not None and mw_ok != row.aw_claims_ok:
        row.disagreements.append(
            f"own tags: manywheel check exit {row.mw_check}, auditwheel implies "
            f"{'ok' if row.aw_claims_ok else 'not ok'}"
        )
    return row


def _verdict(report: dict[str, Any], tag: str | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    for verdict in report.get("verdicts", []):
        names = {verdict.get("tag")} | {
            f"{alias}_{report.get('arch')}" for alias in verdict.get("aliases", [])
        }
        if canonical_tag(tag) in {canonical_tag(str(n)) for n in names}:
            found: dict[str, Any] = verdict
            return found
    return None


def evidence_lines(row: Row, limit: int = 6) -> list[str]:
    """manywheel's evidence bearing on each disagreement of ``row``, one fact per line."""
    report = row.mw_report
    if report is None:
        return []
    lines: list[str] = []

    def add(title: str, items: Sequence[dict[str, Any]]) -> None:
        if not items:
            return
        lines.append(title)
        for item in items[:limit]:
            lines.append(f"  - `{item.get('kind')}` {item.get('text')}")
        if len(items) > limit:
            lines.append(f"  - ... and {len(items) - limit} more")

    libc, arch = libc_arch_of(row.entry)
    order = policy_names(libc, arch)
    pairs = [(row.aw.consistent, row.mw_best, "ok"), (row.aw_repair, row.mw_repair, "repair")]
    seen: set[tuple[str, str]] = set()
    for aw_tag, mw_tag, what in pairs:
        if aw_tag is None or canonical_tag(aw_tag) == canonical_tag(mw_tag or "none"):
            continue
        # The more compatible of the two tags is the one the other tool refuses.
        tag = aw_tag if tag_rank(aw_tag, order) < tag_rank(mw_tag or "", order) else mw_tag
        if tag is None:
            continue
        verdict = _verdict(report, tag)
        if verdict is None or (tag, what) in seen:
            continue
        seen.add((tag, what))
        if what == "ok":
            add(f"manywheel on `{tag}` as the wheel is:", verdict.get("evidence", []))
        else:
            add(f"manywheel on `{tag}` after repair:", verdict.get("evidence_after_repair", []))
    add("manywheel problems:", report.get("problems", []))
    notes = [{"kind": "note", "text": text} for text in report.get("notes", [])]
    add("manywheel notes:", notes)
    add("manywheel consistency:", report.get("consistency", []))
    return lines


def blocker_summary(row: Row, limit: int = 2) -> str:
    """The first facts manywheel gives against the policy just more compatible than best."""
    report = row.mw_report
    if report is None:
        return "—"
    verdicts = report.get("verdicts", [])
    tags = [str(v.get("tag")) for v in verdicts]
    best = row.mw_best
    if best not in tags or tags.index(best) == 0:
        return "nothing: the most compatible policy is met"
    verdict = verdicts[tags.index(best) - 1]
    evidence = verdict.get("evidence", [])
    texts = [f"`{e.get('text')}`" for e in evidence[:limit]]
    more = f" (+{len(evidence) - limit} more)" if len(evidence) > limit else ""
    return f"not `{verdict.get('tag')}`: " + "; ".join(texts) + more


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


def _check_cell(row: Row) -> str:
    if row.mw_check is None:
        return "—"
    return "ok" if row.mw_check == 0 else f"fails (exit {row.mw_check})"


def _time_cell(row: Row, key: str, repeat: int) -> str:
    """Best wall time in seconds; the number of runs when fewer than ``repeat``."""
    if key not in row.seconds:
        return "—"
    value = row.seconds[key]
    text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    runs = row.runs.get(key, 1)
    return text if runs >= repeat else f"{text} ({runs} run{'s' if runs > 1 else ''})"


def table_rows(rows: Sequence[Row], repeat: int = 1) -> list[list[str]]:
    header = [
        "wheel",
        "MB",
        "auditwheel consistent",
        "manywheel best",
        "auditwheel repair",
        "manywheel repair",
        "own tags aw / mw",
        "agree",
        "mw show s",
        "mw check s",
        "aw show s",
        "load 1m",
    ]
    body = [header]
    for row in rows:
        aw_claims = {None: "—", True: "ok", False: "too new"}[row.aw_claims_ok]
        if row.mw_error:
            agree = "mw error"
        elif row.mw_check is None:
            agree = "—"
        else:
            agree = "yes" if not row.disagreements else "NO"
        body.append(
            [
                row.entry.label,
                f"{row.size_mb:.1f}",
                f"error: {row.aw.error}" if row.aw.error else _cell(row.aw.consistent),
                _cell(row.mw_best) if not row.mw_error else "error",
                _cell(row.aw_repair)
                if row.aw_repair or not repair_blocker(row.aw)
                else f"none ({repair_blocker(row.aw)})",
                _cell(row.mw_repair) if not row.mw_error else "error",
                f"{aw_claims} / {_check_cell(row)}",
                agree,
                _time_cell(row, "mw_show", repeat),
                _time_cell(row, "mw_check", repeat),
                _time_cell(row, "aw_show", repeat),
                "—" if row.load is None else f"{row.load:.2f}",
            ]
        )
    return body


def plain_table(body: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Aligned columns for a terminal; the columns numbered in ``right`` right-aligned."""
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    out = []
    for line in body:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def markdown_table(body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(body[0]) + " |", "|" + "---|" * len(body[0])]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in body[1:]
    ]
    return "\n".join(lines) + "\n"


def generated_section(
    rows: Sequence[Row], versions: dict[str, str], timing: Timing = Timing()
) -> str:
    out = [
        f"Generated by `python tools/compare_auditwheel.py` on {versions['date']}: "
        f"manywheel {versions['manywheel']} (commit {versions['commit']}), "
        f"auditwheel {versions['auditwheel']}; host: {versions['machine']}.",
        "",
        f"Times: wall seconds of `manywheel show --json`, `manywheel check` and "
        f"`auditwheel -v show`, each its own subprocess, best of {timing.repeat} runs "
        f"(fewer, as marked, once a command's runs on a wheel took {timing.budget:g} s), "
        "after one untimed warm-up run of each on the smallest wheel. Load average "
        f"(1, 5, 15 min) at the start {versions['load_start']}, at the end "
        f"{versions['load_end']}; column `load 1m`: the 1-minute load average when that "
        "wheel's runs started.",
        "",
        markdown_table(table_rows(rows, timing.repeat)),
        "Files (all from PyPI, see tools/real-wheels.txt):",
        "",
    ]
    out += [f"- {row.entry.label}: `{row.entry.filename}`" for row in rows]
    out.append("")
    out += [
        "",
        "What holds each wheel back (manywheel's evidence against the next more compatible "
        "policy, first facts):",
        "",
    ]
    for row in rows:
        out.append(f"- {row.entry.label}: {blocker_summary(row)}")
    out.append("")
    disagreeing = [row for row in rows if row.disagreements]
    out.append(f"Disagreements: {len(disagreeing)} of {len(rows)} wheels.")
    out.append("")
    for row in disagreeing:
        out.append(f"#### {row.entry.label}")
        out.append("")
        out += [f"- {text}" for text in row.disagreements]
        evidence = evidence_lines(row)
        if evidence:
            out.append("")
            out += [f"  {line}" for line in evidence]
        if row.aw.external:
            libs = ", ".join(f"`{k}` ({v or 'not found'})" for k, v in row.aw.external.items())
            out += ["", f"  auditwheel's external libraries: {libs}"]
        groups: dict[tuple[str, ...], list[str]] = {}
        for tag, eliminated in row.aw.eliminate.items():
            groups.setdefault(tuple(eliminated), []).append(tag)
        for libs_key, tags in groups.items():
            where = f"`{tags[0]}`" if len(tags) == 1 else f"any of {len(tags)} policies"
            out.append(f"  auditwheel, to reach {where}: eliminate {', '.join(libs_key)}")
        for tag, table in row.aw.blacklisted.items():
            for lib, symbols in table.items():
                out.append(f"  auditwheel, to reach `{tag}`: black-listed {lib}: {symbols}")
        if row.aw.warnings:
            out.append(f"  auditwheel warnings: {'; '.join(row.aw.warnings)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


DOC_SKELETON = f"""# manywheel and auditwheel on real wheels

## Results

{BEGIN_TABLE}
{END_TABLE}
"""


def update_doc(doc: Path, begin: str, end: str, body: str, skeleton: str = DOC_SKELETON) -> None:
    """Replace what is between ``begin`` and ``end`` in ``doc`` (created when missing)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else skeleton
    if begin not in text or end not in text:
        text = text.rstrip() + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{body.rstrip()}\n{end}{tail}", encoding="utf-8")


def row_json(row: Row) -> dict[str, Any]:
    return {
        "label": row.entry.label,
        "filename": row.entry.filename,
        "claimed": row.claimed,
        "auditwheel": {
            "consistent": row.aw.consistent,
            "constrained_to": row.aw.constrained_to,
            "repair": row.aw_repair,
            "claims_ok": row.aw_claims_ok,
            "external": row.aw.external,
            "eliminate": row.aw.eliminate,
            "blacklisted": row.aw.blacklisted,
            "warnings": row.aw.warnings,
            "error": row.aw.error,
        },
        "manywheel": {
            "best_tag": row.mw_best,
            "repair_tag": row.mw_repair,
            "check_exit": row.mw_check,
            "check_line": row.mw_check_line,
            "error": row.mw_error,
        },
        "disagreements": row.disagreements,
        "seconds": row.seconds,
        "runs": row.runs,
        "load_1m": row.load,
    }


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare_auditwheel.py",
        description="Compare manywheel's verdicts (show --json, check) with auditwheel show's "
        "on the pinned real wheels of tools/real-wheels.txt, print a table and update "
        "docs/auditwheel-comparison.md between its markers.",
        epilog="First time: --setup (auditwheel into its own venv) and --download (wheels "
        "into the cache). Exit codes: 0 done (disagreements included), 2 harness error.",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"directory of the wheels (default {DEFAULT_CACHE}, or $MANYWHEEL_WHEEL_CACHE)",
    )
    parser.add_argument(
        "--auditwheel-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"venv holding auditwheel (default {DEFAULT_VENV}, or $MANYWHEEL_AUDITWHEEL_VENV)",
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help=f"create the auditwheel venv with {AUDITWHEEL_PIN}, and manywheel's own clean "
        f"venv ({MANYWHEEL_VENV}: this checkout, its dependencies and the fast extra, "
        "from pyproject.toml), then go on",
    )
    parser.add_argument(
        "--download", action="store_true", help="fetch the missing wheels with pip, then go on"
    )
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="stop after --setup/--download (compare nothing)",
    )
    parser.add_argument(
        "--only", metavar="LABEL,...", help="only these wheels (labels of the wheel list)"
    )
    parser.add_argument(
        "--list", type=Path, default=WHEEL_LIST, help="the wheel list (default: %(default)s)"
    )
    parser.add_argument(
        "--manywheel",
        metavar="CMD",
        help="command that runs manywheel (default: the console script of "
        f"{MANYWHEEL_VENV} if --setup made it, else '-m manywheel' with this Python)",
    )
    parser.add_argument(
        "--auditwheel-only",
        action="store_true",
        help="run auditwheel alone (what it says, before manywheel show exists)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=DOC,
        help="markdown file whose generated section is updated (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="time each command up to N times per wheel, keep the best (default: %(default)s)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=10.0,
        help="no further run of a command on a wheel once its runs there took this many "
        "seconds (default: %(default)s)",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not touch the doc")
    parser.add_argument(
        "--json", metavar="FILE", type=Path, help="also write every row as JSON to FILE"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        print("compare_auditwheel: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    timing = Timing(args.repeat, args.budget)
    only = [label for label in (args.only or "").split(",") if label]
    try:
        entries = load_wheel_list(args.list, only)
        if args.setup:
            setup_auditwheel(args.auditwheel_venv)
            setup_manywheel_venv(MANYWHEEL_VENV)
        if args.download:
            download(entries, args.cache)
        if args.fetch_only:
            return 0
        wheels = locate(entries, args.cache)
        aw_version = auditwheel_version(args.auditwheel_venv)
        smallest = min((p for _, p in wheels), key=lambda p: p.stat().st_size)
        mw: list[str] | None = None
        if not args.auditwheel_only:
            mw = manywheel_command(args.manywheel)
            preflight_show(mw, smallest)  # also the untimed warm-up of show
            require_subcommand(mw, "check")
            run_measured([*mw, "check", str(smallest)])  # warm-up, untimed
        run_auditwheel_show(args.auditwheel_venv, smallest)  # warm-up, untimed
        load_start = os.getloadavg()
        rows = []
        for entry, path in wheels:
            print(f"comparing {entry.label} ...", file=sys.stderr, flush=True)
            rows.append(compare_one(entry, path, args.auditwheel_venv, mw, timing))
        load_end = os.getloadavg()
    except HarnessError as err:
        print(f"compare_auditwheel: error: {err}", file=sys.stderr)
        return 2
    versions = {
        "date": datetime.date.today().isoformat(),
        "manywheel": manywheel_version(mw) if mw else "(not run)",
        "commit": git_head(),
        "auditwheel": aw_version,
        "machine": machine_line(),
        "load_start": ", ".join(f"{x:.2f}" for x in load_start),
        "load_end": ", ".join(f"{x:.2f}" for x in load_end),
    }
    sys.stdout.write(plain_table(table_rows(rows, timing.repeat)))
    for row in rows:
        for text in row.disagreements:
            print(f"{row.entry.label}: {text}")
    if not args.no_doc:
        update_doc(args.doc, BEGIN_TABLE, END_TABLE, generated_section(rows, versions, timing))
        print(f"updated {args.doc}", file=sys.stderr)
    if args.json:
        payload = {"versions": versions, "rows": [row_json(row) for row in rows]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
