"""manywheel's end-to-end tier: real wheels, repaired, installed into clean Debian roots.

    python3 tests/e2e/run.py [--cache DIR] [--suite SUITE]... [--project NAME]...
                             [--mirror URL] [--rebuild] [--keep]

Run as root on a Debian-like machine with debootstrap, unshare and chroot (util-linux) and
manywheel importable by this interpreter. docs/e2e.md says what it proves; in short, per
Debian suite (bookworm: glibc 2.36, Python 3.11; bullseye: glibc 2.31, Python 3.9):

1. Roots, cached under ``CACHE/roots`` and rebuilt when missing or made from another spec:
   a *clean* root (``debootstrap --variant=minbase`` with only python3 and python3-venv)
   and a *build* root (the same plus the compiler and the -dev packages). The clean root
   is asserted to lack every library the wheels graft.
2. Wheels built inside the build root from PyPI sdists (PyYAML with libyaml forced on,
   lxml against the system's libxslt -> libxml2 -> ICU) and from the repo's demo
   extension (``_greet`` -> ``libgreet.so.1`` through an RPATH), so their Python and ABI
   tags match the clean root's interpreter.
3. ``manywheel repair --sysroot BUILD_ROOT`` on the host, for every wheel.
4. In a throw-away overlay of the clean root, without network: ``pip install --no-index``
   of the repaired wheels, then tests/e2e/inroot_check.py imports every extension module,
   exercises the library and checks ``/proc/self/maps``.
5. Negative control: the unrepaired wheels, installed the same way, must fail to import.

Each step prints its time; the last line is ``N passed, M failed``; exit 0 only if
nothing failed. Errors are one line; step logs are kept in ``CACHE/logs``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_CACHE = Path("/work/cache/e2e")
INROOT_CHECK = HERE / "inroot_check.py"
RESULT_PREFIX = "E2E-RESULT "

#: What the clean roots get on top of minbase, and the build roots on top of that.
CLEAN_PACKAGES = ("python3", "python3-venv")
BUILD_PACKAGES = (
    "ca-certificates",
    "build-essential",
    "python3-dev",
    "pkg-config",
    "libyaml-dev",
    "libxml2-dev",
    "libxslt1-dev",
)
#: File name prefixes the clean roots must not contain: what the wheels graft.
GRAFTED_PREFIXES = ("libyaml", "libxml2", "libxslt", "libexslt", "libicu", "libgreet")
#: Bump to rebuild every cached wheel (a change in how they are built).
WHEEL_RECIPE = 1


@dataclass(frozen=True)
class Suite:
    name: str
    #: Newest manylinux tag the repaired wheels may carry (glibc of the build root).
    max_glibc: tuple[int, int]


SUITES = {s.name: s for s in (Suite("bookworm", (2, 36)), Suite("bullseye", (2, 31)))}


@dataclass(frozen=True)
class Project:
    name: str
    #: The extension module whose import proves the libraries are there.
    main_module: str
    #: Prefixes of file names the repair must graft (the chain the tier exists to test).
    must_graft: tuple[str, ...]
    #: PyPI sdist ``name==version``, or None for the demo extension.
    requirement: str | None = None
    env: dict[str, str] = field(default_factory=dict)


PROJECTS = {
    p.name: p
    for p in (
        Project(
            "pyyaml",
            "yaml._yaml",
            ("libyaml-0",),
            "pyyaml==6.0.2",
            {"PYYAML_FORCE_LIBYAML": "1"},
        ),
        Project(
            "lxml",
            "lxml.etree",
            ("libxslt", "libexslt", "libxml2", "libicuuc", "libicudata"),
            "lxml==5.3.0",
            # Debian's libxml2/libxslt, not lxml's own static build; no debug info keeps
            # the wheel (and the compile) small.
            {"STATIC_DEPS": "false", "CFLAGS": "-g0"},
        ),
        Project("greet", "_greet", ("libgreet",)),
    )
}


class StepError(Exception):
    """A step failed; the message is one line, ``tail`` the end of the command's output."""

    def __init__(self, message: str, tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tail = list(tail)


# --- reporting ---------------------------------------------------------------------------


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    timings: list[tuple[str, float, str]] = field(default_factory=list)

    def record(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        status = "ok" if ok else "FAIL"
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)
        self.timings.append((name, seconds, status))
        print(f"{seconds:7.1f}s  {status:<4}  {name}{'  ' + note if note else ''}", flush=True)


def detail(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"{'':15}{line}", flush=True)


# --- running commands --------------------------------------------------------------------


class Runner:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        log_name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 3600,
    ) -> str:
        """Run ``argv``, append its output to a log; StepError (with the log's tail) if it fails."""
        log = self.logs / f"{log_name}.log"
        with log.open("a", encoding="utf-8") as f:
            f.write(f"$ {shlex.join(argv)}\n")
            f.flush()
            try:
                proc = subprocess.run(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=env,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StepError(f"{argv[0]} timed out after {timeout:.0f}s (log: {log})") from exc
            f.write(proc.stdout)
        if proc.returncode != 0:
            tail = proc.stdout.strip().splitlines()[-12:]
            raise StepError(f"{argv[0]} exited {proc.returncode} (log: {log})", tail)
        return proc.stdout


#: The environment of every command run inside a root: nothing of the host's leaks in
#: (no PIP_* settings, no LD_LIBRARY_PATH).
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def in_root(
    root: Path,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    network: bool,
    overlay: Path | None = None,
) -> list[str]:
    """The command that runs ``argv`` chrooted into ``root`` with its own /proc.

    Everything is mounted inside a private mount namespace (``unshare --mount``), so the
    mounts vanish with the command even if it is killed: nothing to unmount by hand.
    With ``overlay``, the root is the read-only lower layer of an overlayfs whose upper
    and work directories live in ``overlay`` (a throw-away copy that costs nothing).
    Without ``network`` the command gets a network namespace of its own (no interfaces).
    """
    mounts = []
    if overlay is not None:
        merged = overlay / "merged"
        options = f"lowerdir={root},upperdir={overlay / 'upper'},workdir={overlay / 'work'}"
        mounts.append(
            f"mount -t overlay overlay -o {shlex.quote(options)} {shlex.quote(str(merged))}"
        )
        root = merged
    mounts.append(f"mount -t proc proc {shlex.quote(str(root / 'proc'))}")
    variables = [f"{k}={v}" for k, v in {**ROOT_ENV, **(env or {})}.items()]
    chroot = ["chroot", str(root), "/usr/bin/env", "-i", *variables, *argv]
    script = " && ".join([*mounts, "exec " + shlex.join(chroot)])
    flags = ["--mount", "--pid", "--fork"] + ([] if network else ["--net"])
    return ["unshare", *flags, "--", "sh", "-c", script]


# --- roots -------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (the first ``.../debian`` source)."""
    candidates: list[str] = []
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("URIs:"):
                candidates += line.split()[1:]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt").glob("sources.list.d/*.list")]:
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", line)
                if m:
                    candidates.append(m.group(1))
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise StepError("no Debian mirror found in /etc/apt (give one with --mirror)")


#: Where Debian keeps releases that have left the mirrors (some months after their LTS).
ARCHIVE_MIRROR = "http://archive.debian.org/debian"


def mirror_has_suite(mirror: str, suite: str) -> bool | None:
    """Whether ``mirror`` carries ``suite``: True when its Release file answers, False on
    a 404, None when the mirror cannot be asked (network, DNS): unknown."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        return False if exc.code == 404 else None
    except OSError:
        return None


def mirror_for(
    suite: str,
    mirror: str,
    *,
    explicit: bool,
    has_suite: Callable[[str, str], bool | None] = mirror_has_suite,
) -> str:
    """The mirror to debootstrap ``suite`` from: apt's mirror unless it says it no longer
    carries the suite and Debian's archive says it does (bullseye's LTS ended in August
    2026; the mirrors drop a release some months later). A hiccup asking either keeps
    apt's mirror (debootstrap then says what went wrong); ``--mirror`` is always kept."""
    if explicit or has_suite(mirror, suite) is not False:
        return mirror
    return ARCHIVE_MIRROR if has_suite(ARCHIVE_MIRROR, suite) is True else mirror


def ensure_root(
    runner: Runner,
    roots: Path,
    name: str,
    *,
    suite: str,
    packages: Sequence[str],
    mirror: str,
    explicit_mirror: bool = False,
) -> tuple[Path, bool]:
    """The cached root ``roots/name``, made with debootstrap when missing or stale."""
    root = roots / name
    spec = {"suite": suite, "variant": "minbase", "include": sorted(packages)}
    stamp = roots / f"{name}.stamp"
    if root.is_dir() and stamp.is_file():
        try:
            if json.loads(stamp.read_text(encoding="utf-8"))["spec"] == spec:
                return root, True
        except (ValueError, KeyError, TypeError):
            pass
    partial = roots / f"{name}.partial"
    for stale in (root, partial):
        if stale.exists():
            shutil.rmtree(stale)
    stamp.unlink(missing_ok=True)
    roots.mkdir(parents=True, exist_ok=True)
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}"]
    source = mirror_for(suite, mirror, explicit=explicit_mirror)
    runner.run(f"debootstrap-{name}", [*argv, suite, str(partial), source])
    partial.rename(root)
    # "made" tells this root from an earlier one made from the same spec: wheels built in
    # the earlier one are stale (the demo's libgreet lives only in the root they were built in).
    stamp.write_text(json.dumps({"spec": spec, "made": time.time_ns()}), encoding="utf-8")
    return root, False


def find_grafted_libraries(root: Path) -> list[str]:
    """Files in ``root`` whose names start like a library the wheels graft."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d in ("proc", "e2e"))]
        found += [
            os.path.join(dirpath, n)
            for n in filenames
            if n.startswith(GRAFTED_PREFIXES) and ".so" in n
        ]
    return found


# --- wheels ------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(runner: Runner, cache: Path, requirement: str) -> Path:
    """The project's sdist from PyPI (pip download), cached in ``cache/sdists``."""
    name, version = requirement.split("==")
    sdists = cache / "sdists"
    for path in sdists.glob("*.tar.gz"):
        if path.name.lower().replace("_", "-") == f"{name}-{version}.tar.gz":
            return path
    sdists.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=sdists) as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        runner.run(f"sdist-{name}", [*argv, "--isolated", "-d", tmp, requirement])
        (got,) = Path(tmp).glob("*.tar.gz")
        return got.rename(sdists / got.name)


def greet_sources() -> dict[str, Path]:
    sources = {name: HERE / "greet" / name for name in ("setup.py", "pyproject.toml")}
    for name in ("_greet.c", "greet.c", "greet.h"):
        sources[f"src/{name}"] = REPO / "demo" / "src" / name
    return sources


def host_ca_bundle() -> Path | None:
    """The CA bundle pip uses on this machine, if it is a file."""
    for candidate in (os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_wheel(
    runner: Runner, cache: Path, build_root: Path, suite: str, project: Project
) -> tuple[Path, bool]:
    """Build ``project`` inside ``build_root``; cached by a key over every input."""
    key = hashlib.sha256()
    key.update(
        f"{WHEEL_RECIPE} {(build_root.parent / f'{build_root.name}.stamp').read_text()}".encode()
    )
    key.update(json.dumps(project.env, sort_keys=True).encode())
    sdist = None
    if project.requirement is not None:
        sdist = fetch_sdist(runner, cache, project.requirement)
        key.update(sdist.name.encode() + sha256_file(sdist).encode())
    else:
        for rel, path in sorted(greet_sources().items()):
            key.update(rel.encode() + sha256_file(path).encode())
    out = cache / "wheels" / suite / project.name
    stamp = out / "key"
    wheels = list(out.glob("*.whl"))
    if stamp.is_file() and stamp.read_text() == key.hexdigest() and len(wheels) == 1:
        return wheels[0], True

    if out.exists():
        shutil.rmtree(out)
    work = build_root / "e2e"
    if work.exists():
        shutil.rmtree(work)
    (work / "dist").mkdir(parents=True)
    shutil.copyfile("/etc/resolv.conf", build_root / "etc" / "resolv.conf")
    env = dict(project.env)
    ca_bundle = host_ca_bundle()
    if ca_bundle is not None:
        # pip in the build root trusts what pip here trusts (a proxy's CA, say).
        shutil.copyfile(ca_bundle, work / "ca.pem")
        env["PIP_CERT"] = "/e2e/ca.pem"
    log = f"build-{suite}-{project.name}"
    if not (build_root / "opt" / "e2e-venv" / "bin" / "pip").exists():
        runner.run(
            log, in_root(build_root, ["python3", "-m", "venv", "/opt/e2e-venv"], network=True)
        )
    pip_wheel = ["/opt/e2e-venv/bin/pip", "wheel", "--no-deps", "-w", "/e2e/dist"]
    if sdist is not None:
        shutil.copyfile(sdist, work / sdist.name)
        argv = [*pip_wheel, f"/e2e/{sdist.name}"]
        runner.run(log, in_root(build_root, argv, env=env, network=True))
    else:
        for rel, path in greet_sources().items():
            (work / "greet" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / "greet" / rel)
        script = (
            "mkdir -p /opt/greet/lib && gcc -shared -fPIC -O2 -Wl,-soname,libgreet.so.1"
            " -o /opt/greet/lib/libgreet.so.1 /e2e/greet/src/greet.c"
            " && ln -sf libgreet.so.1 /opt/greet/lib/libgreet.so"
            f" && GREET_PREFIX=/opt/greet {shlex.join(pip_wheel)} /e2e/greet"
        )
        runner.run(log, in_root(build_root, ["sh", "-c", script], env=env, network=True))
    (built,) = (work / "dist").glob("*.whl")
    out.mkdir(parents=True)
    wheel = Path(shutil.copyfile(built, out / built.name))
    stamp.write_text(key.hexdigest())
    return wheel, False


MANYLINUX_TAG = re.compile(r"manylinux_(\d+)_(\d+)_")


def repair(runner: Runner, wheel: Path, out: Path, build_root: Path, suite: Suite) -> Path:
    """``manywheel repair --sysroot`` on the host; the output wheel's path."""
    if out.exists():
        shutil.rmtree(out)
    argv = [sys.executable, "-m", "manywheel", "repair", str(wheel), "-w", str(out)]
    runner.run(f"repair-{suite.name}-{wheel.name}", [*argv, "--sysroot", str(build_root)])
    (repaired,) = out.glob("*.whl")
    versions = [(int(a), int(b)) for a, b in MANYLINUX_TAG.findall(repaired.name)]
    if not versions:
        raise StepError(f"{repaired.name}: no manylinux tag")
    if max(versions) > suite.max_glibc:
        limit = "manylinux_{}_{}".format(*suite.max_glibc)
        raise StepError(f"{repaired.name}: a tag newer than {limit}")
    return repaired


@dataclass
class WheelInfo:
    path: Path
    modules: list[str]
    members: list[str]
    grafted: list[str]
    target: str


def inspect_wheel(path: Path) -> WheelInfo:
    """Extension modules, members and grafted libraries of a wheel, from its zip."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    grafted = [n for n in names if re.fullmatch(r"[^/]+\.libs/[^/]+", n)]
    modules = []
    for name in names:
        top = name.split("/", 1)[0]
        if name in grafted or top.endswith((".data", ".dist-info")):
            continue
        if re.search(r"\.so$", name):
            parts = name.split("/")
            modules.append(".".join([*parts[:-1], parts[-1].split(".", 1)[0]]))
    versions = [(int(a), int(b)) for a, b in MANYLINUX_TAG.findall(path.name)]
    target = "manylinux_{}_{}".format(*max(versions)) if versions else "linux"
    return WheelInfo(path, sorted(modules), names, grafted, target)


def allowed_sonames(policy_name: str) -> list[str]:
    """The libraries policy ``policy_name`` lets a wheel take from the system (x86_64)."""
    out = subprocess.run(
        [sys.executable, "-m", "manywheel", "policies", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    for policy in json.loads(out)["policies"]:
        if policy["name"] == policy_name:
            libraries = policy["libraries"]
            return sorted({*libraries.get("*", []), *libraries.get("x86_64", [])})
    raise StepError(f"manywheel policies: no policy {policy_name}")


# --- checks in the clean root ------------------------------------------------------------


@contextmanager
def throwaway(cache: Path, keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="overlay-", dir=cache))
    try:
        for sub in ("upper/e2e", "work", "merged"):
            (tmp / sub).mkdir(parents=True)
        yield tmp
    finally:
        if keep:
            print(f"{'':15}kept {tmp}")
        else:
            shutil.rmtree(tmp)


def probe_spec(name: str, mode: str, info: WheelInfo, target: str) -> dict[str, Any]:
    """What inroot_check.py's probe needs to know about one installed wheel."""
    return {
        "name": name,
        "mode": mode,
        "modules": info.modules,
        "main_module": PROJECTS[name].main_module,
        "members": info.members,
        "grafted": info.grafted,
        "exercise": name,
        "allowed_sonames": allowed_sonames(target) if target != "linux" else [],
    }


def probe_in_root(
    runner: Runner,
    cache: Path,
    root: Path,
    *,
    log_name: str,
    wheels: Sequence[Path],
    probes: list[dict[str, Any]],
    keep: bool,
) -> dict[str, dict[str, Any]]:
    """Install ``wheels`` into an overlay of ``root`` and run ``probes``; results by name."""
    with throwaway(cache, keep) as tmp:
        e2e = tmp / "upper" / "e2e"
        shutil.copyfile(INROOT_CHECK, e2e / INROOT_CHECK.name)
        for wheel in wheels:
            shutil.copyfile(wheel, e2e / wheel.name)
        spec = {"wheels": [f"/e2e/{w.name}" for w in wheels], "probes": probes}
        (e2e / "spec.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        argv = ["python3", f"/e2e/{INROOT_CHECK.name}", "session", "/e2e/spec.json"]
        output = runner.run(log_name, in_root(root, argv, network=False, overlay=tmp), timeout=900)
    results = {}
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            results[result["name"]] = result
    return results


def control_verdict(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The maps check's own control passes when it caught every library to graft."""
    lines = [str(line) for line in result["lines"]]
    caught = [line for line in lines if "not allowed" in line]
    missed = [
        prefix
        for prefix in PROJECTS[name].must_graft
        if not any(os.path.basename(line).startswith(prefix) for line in caught)
    ]
    ok = not result["ok"] and not missed
    verdict = [f"caught: {line.split('not allowed: ')[1]}" for line in caught]
    if missed:
        verdict.append(f"FAIL not caught: {', '.join(missed)}")
    return {"name": name, "ok": ok, "lines": verdict}


# --- the tier ----------------------------------------------------------------------------


def timed(tally: Tally, name: str, fn: Callable[[], str | None]) -> bool:
    """Run one step: ok with an optional note, or failed with its one-line reason."""
    start = time.monotonic()
    try:
        note = fn()
    except StepError as exc:
        tally.record(name, False, time.monotonic() - start)
        detail([f"error: {exc}", *(f"  {line}" for line in exc.tail)])
        return False
    tally.record(name, True, time.monotonic() - start, note or "")
    return True


def run_suite(args: argparse.Namespace, runner: Runner, tally: Tally, suite: Suite) -> None:
    cache: Path = args.cache
    roots = cache / "roots"
    made: dict[str, Path] = {}

    def root_step(kind: str, packages: Sequence[str]) -> Callable[[], str]:
        def step() -> str:
            root, cached = ensure_root(
                runner,
                roots,
                f"{suite.name}-{kind}",
                suite=suite.name,
                packages=packages,
                mirror=args.mirror,
                explicit_mirror=args.explicit_mirror,
            )
            made[kind] = root
            return "(cached)" if cached else "(debootstrap)"

        return step

    ok_clean = timed(tally, f"{suite.name}: clean root", root_step("clean", CLEAN_PACKAGES))
    ok_build = timed(
        tally,
        f"{suite.name}: build root",
        root_step("build", (*CLEAN_PACKAGES, *BUILD_PACKAGES)),
    )
    if not (ok_clean and ok_build):
        return

    def lacks() -> str:
        found = find_grafted_libraries(made["clean"])
        if found:
            raise StepError(f"the clean root has {len(found)} of them, first {found[0]}")
        present = find_grafted_libraries(made["build"])
        if not present:
            raise StepError("the build root has none of them either: nothing would be grafted")
        return f"(none of {', '.join(p + '*' for p in GRAFTED_PREFIXES)})"

    if not timed(tally, f"{suite.name}: clean root lacks the grafted libraries", lacks):
        return

    raw: dict[str, WheelInfo] = {}
    repaired: dict[str, WheelInfo] = {}
    for name in args.project:
        project = PROJECTS[name]

        def build(project: Project = project) -> str:
            wheel, cached = build_wheel(runner, cache, made["build"], suite.name, project)
            raw[project.name] = inspect_wheel(wheel)
            return f"{wheel.name}{' (cached)' if cached else ''}"

        if not timed(tally, f"{suite.name}: build {name}", build):
            continue

        def do_repair(name: str = name) -> str:
            out = cache / "wheelhouse" / suite.name / name
            wheel = repair(runner, raw[name].path, out, made["build"], suite)
            info = inspect_wheel(wheel)
            names = [Path(g).name for g in info.grafted]
            missing = [
                p for p in PROJECTS[name].must_graft if not any(n.startswith(p) for n in names)
            ]
            if missing:
                raise StepError(f"{wheel.name} does not graft {', '.join(missing)}")
            repaired[name] = info
            detail([f"grafted: {', '.join(names)}"])
            return wheel.name

        timed(tally, f"{suite.name}: repair {name} --sysroot {suite.name}-build", do_repair)

    # (what, root, wheels, probes, how a result is judged)
    sessions = [
        (
            "repaired, clean root",
            made["clean"],
            [info.path for info in repaired.values()],
            [probe_spec(n, "repaired", info, info.target) for n, info in repaired.items()],
            "installed in the clean root",
        ),
        (
            "unrepaired, clean root",
            made["clean"],
            [info.path for info in raw.values()],
            [probe_spec(n, "unrepaired", info, "linux") for n, info in raw.items()],
            "negative control: unrepaired fails to import in the clean root",
        ),
        (
            "unrepaired, build root",
            made["build"],
            [info.path for n, info in raw.items() if n in repaired],
            [
                {**probe_spec(n, "repaired", info, repaired[n].target), "grafted": []}
                for n, info in raw.items()
                if n in repaired
            ],
            "control of the maps check: unrepaired in the build root is caught",
        ),
    ]
    for what, root, wheels, probes, label in sessions:
        if not probes:
            continue
        results: dict[str, dict[str, Any]] = {}

        def session(
            root: Path = root,
            what: str = what,
            wheels: list[Path] = wheels,
            probes: list[dict[str, Any]] = probes,
            results: dict[str, dict[str, Any]] = results,
        ) -> str:
            log_name = f"probe-{suite.name}-{what.replace(', ', '-').replace(' ', '-')}"
            results.update(
                probe_in_root(
                    runner,
                    cache,
                    root,
                    log_name=log_name,
                    wheels=wheels,
                    probes=probes,
                    keep=args.keep,
                )
            )
            return f"({len(wheels)} wheel(s), pip install --no-index, no network)"

        if not timed(tally, f"{suite.name}: session, {what}", session):
            continue
        for probe in probes:
            name = probe["name"]
            result = results.get(name, {"ok": False, "lines": ["no result from the probe"]})
            if root == made["build"]:
                result = control_verdict(name, result)
            tally.record(f"{suite.name}: {name} {label}", bool(result["ok"]), 0.0)
            detail([str(line) for line in result["lines"]])


def install_debootstrap() -> None:
    """The tier's only change to the host: Debian's debootstrap package."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"],
    ):
        proc = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            raise StepError(f"{shlex.join(argv)} exited {proc.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("MANYWHEEL_E2E_CACHE", DEFAULT_CACHE)),
        help="where roots, sdists, wheels and logs are kept (default %(default)s)",
    )
    parser.add_argument("--suite", action="append", choices=sorted(SUITES))
    parser.add_argument("--project", action="append", choices=sorted(PROJECTS))
    parser.add_argument("--mirror", help="Debian mirror for debootstrap (default: apt's)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild roots and wheels")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away overlays")
    args = parser.parse_args(argv)
    args.suite = args.suite or ["bookworm", "bullseye"]
    args.project = args.project or ["pyyaml", "lxml", "greet"]
    try:
        if os.geteuid() != 0:
            raise StepError("must run as root (debootstrap, chroot, mounts)")
        if shutil.which("debootstrap") is None and shutil.which("apt-get") is not None:
            install_debootstrap()
        for tool in ("debootstrap", "unshare", "chroot", "mount"):
            if shutil.which(tool) is None:
                raise StepError(f"{tool} not found (apt-get install debootstrap util-linux)")
        args.explicit_mirror = args.mirror is not None
        args.mirror = args.mirror or debian_mirror()
        args.cache = args.cache.resolve()
        if args.rebuild:
            for sub in ("roots", "wheels"):
                if (args.cache / sub).exists():
                    shutil.rmtree(args.cache / sub)
        args.cache.mkdir(parents=True, exist_ok=True)
    except StepError as exc:
        print(f"e2e: error: {exc}", file=sys.stderr)
        return 2
    logs = args.cache / "logs" / time.strftime("%Y%m%d-%H%M%S")
    runner = Runner(logs)
    tally = Tally()
    start = time.monotonic()
    print(f"e2e: cache {args.cache}, logs {logs}", flush=True)
    for name in args.suite:
        run_suite(args, runner, tally, SUITES[name])
    total = time.monotonic() - start
    print(f"{tally.passed} passed, {tally.failed} failed in {total:.0f}s", flush=True)
    return 0 if tally.failed == 0 and tally.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
