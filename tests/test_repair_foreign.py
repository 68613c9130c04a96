"""`manywheel repair` of wheels the host cannot load natively: aarch64 (with --sysroot) and musl.

Each test builds, with a toolchain from ``fixtures.py``, the libalpha -> libbeta ->
libgamma chain into a prefix, an executable ``hello`` (prints ``alpha_value()``, 7) and an
extension-shaped library, both needing libalpha through a DT_RPATH naming the prefix,
packs them into a ``linux_*`` wheel (``hello`` in ``demo-1.0.data/scripts/``), repairs it
with the command line, **deletes the prefix**, extracts the output as an installer lays
out site-packages and runs the moved executable (``demo.scripts/hello``, reaching
``demo.libs/`` through ``$ORIGIN/../demo.libs``). A negative control shows the unrepaired
executable ran before and fails once the prefix is gone, so the 7 comes from the grafted
libraries and nowhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fixtures import (
    Toolchain,
    compile_chain,
    compile_exe,
    compile_shared,
    find_toolchain,
    musl_toolchain,
)
from test_cli import manywheel
from wheelbuild import build_wheel, data_dir

CROSS_ROOT = Path("/usr/aarch64-linux-gnu")
MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
CHAIN = ("libalpha.so.1", "libbeta.so.1", "libgamma.so.1")
SCRIPT = f"{data_dir('demo', '1.0')}/scripts/hello"


def require(toolchain: Toolchain) -> None:
    missing = toolchain.missing
    if missing is not None:
        pytest.skip(missing)


def build_chain(tc: Toolchain, prefix: Path, rpath: str, build: Path) -> tuple[Path, Path]:
    """The chain into ``prefix``; ``hello`` and the extension into ``build``, DT_RPATH ``rpath``."""
    alpha, _, _ = compile_chain(tc, prefix)
    hello = compile_exe(
        tc, ["hello.c"], build / "hello", needed_libs=[alpha], rpath=rpath, new_dtags=False
    )
    ext = compile_shared(
        tc,
        ["demo.c"],
        build / "ext.so",
        needed_libs=[alpha],
        rpath=rpath,
        new_dtags=False,
        extra=["-DMANYWHEEL_NO_PYTHON_H"],
    )
    return hello, ext


def pack(tc: Toolchain, hello: Path, ext: Path, outdir: Path, plat: str) -> Path:
    members: dict[str, bytes | Path] = {
        "demo/__init__.py": b"",
        f"demo/_demo{tc.ext_suffix}": ext,
        SCRIPT: hello,
    }
    return build_wheel(outdir, members, platform_tags=(plat,))


def json_of(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = manywheel(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def repair_and_check_plan(wheel: Path, out: Path, *extra: str | Path) -> tuple[dict[str, Any], str]:
    """Repair; return the repair record and the tag `show` (same options) said repair reaches."""
    (report,) = json_of("show", wheel, *extra)["reports"]
    expected_tag = report["repair_tag"]
    (record,) = json_of("repair", wheel, "-w", out, *extra)["repairs"]
    assert record["platform_tags"][0] == expected_tag
    grafted = {g["needed_as"][0]: g["member"] for g in record["grafted"]}
    assert sorted(grafted) == list(CHAIN)
    assert all(member.startswith("demo.libs/") for member in grafted.values())
    assert record["moved_scripts"] == [{"from": SCRIPT, "to": "demo.scripts/hello"}]
    return record, expected_tag


def install_layout(wheel: Path, site: Path) -> Path:
    """Extract like an installer (modes kept); return the moved executable."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, site))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)
    launcher = (site / SCRIPT).read_text()
    assert launcher.startswith("#!python\n")
    moved = site / "demo.scripts/hello"
    assert moved.stat().st_mode & stat.S_IXUSR
    return moved


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("LD_LIBRARY_PATH")}
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_aarch64_repair_with_sysroot_runs_under_qemu(tmp_path: Path) -> None:
    """aarch64 wheel repaired on this host with ``--sysroot``, then run under qemu-user.

    With ``--sysroot DIR`` every directory the loader model searches -- DT_RPATH,
    ``MANYWHEEL_LD_LIBRARY_PATH``, ``--ldpaths`` and the defaults -- is looked up inside
    DIR (docs/loader.md, Sysroot), as the target machine would see it. So what a user
    does is install the cross-built dependencies into the sysroot (the target's view of
    the build), not point ``--ldpaths`` at a host directory: ``--ldpaths /tmp/prefix``
    with ``--sysroot /usr/aarch64-linux-gnu`` looks in ``/usr/aarch64-linux-gnu/tmp/prefix``.
    To leave the system's ``/usr/aarch64-linux-gnu`` untouched, the test copies its
    ``lib/`` into a private sysroot and installs the chain at ``/opt/chain`` inside it;
    ``hello`` and the extension carry ``DT_RPATH /opt/chain``. No extra flag is needed.
    """
    tc = find_toolchain("aarch64")
    require(tc)
    if not (CROSS_ROOT / "lib/libc.so.6").is_file():
        pytest.skip(f"{CROSS_ROOT}/lib/libc.so.6 missing (libc6-dev-arm64-cross)")
    sysroot = tmp_path / "sysroot"
    shutil.copytree(CROSS_ROOT / "lib", sysroot / "lib", symlinks=True)
    prefix = sysroot / "opt/chain"
    hello, ext = build_chain(tc, prefix, "/opt/chain", tmp_path / "build")
    wheel = pack(tc, hello, ext, tmp_path / "in", "linux_aarch64")

    record, tag = repair_and_check_plan(wheel, tmp_path / "out", "--sysroot", sysroot)
    assert tag.startswith("manylinux_") and tag.endswith("_aarch64"), tag
    output = Path(record["output"])
    assert output.name == f"demo-1.0-cp311-cp311-{'.'.join(record['platform_tags'])}.whl"
    check = manywheel("check", output)
    assert check.returncode == 0, check.stdout + check.stderr

    qemu = shutil.which("qemu-aarch64")
    if qemu is not None:
        # Control: the unrepaired executable runs while the prefix exists...
        before = run(qemu, "-L", sysroot, hello)
        assert (before.returncode, before.stdout) == (0, "7\n"), before.stderr
    shutil.rmtree(prefix)
    moved = install_layout(output, tmp_path / "site")
    if qemu is None:
        pytest.skip("qemu-aarch64 not found (apt-get install qemu-user): repaired, not run")
    # ...and fails once it is gone; the repaired one runs against the system's cross root.
    after = run(qemu, "-L", sysroot, hello)
    assert after.returncode != 0 and "libalpha.so.1" in after.stderr, after
    repaired = run(qemu, "-L", CROSS_ROOT, moved)
    assert (repaired.returncode, repaired.stdout) == (0, "7\n"), repaired.stderr


def test_musl_repair_runs_natively(tmp_path: Path) -> None:
    """musl wheel tagged ``linux_x86_64`` (the libc is read from PT_INTERP): repaired
    to musllinux, run with musl's own loader after the prefix is deleted.

    Without a sysroot, the DT_RPATH naming the prefix is all repair needs to find the
    chain (MANYWHEEL_LD_LIBRARY_PATH would do for a library with no search path)."""
    tc = musl_toolchain()
    require(tc)
    if not MUSL_LOADER.exists():
        pytest.skip(f"{MUSL_LOADER} missing (musl-tools): musl executables cannot run")
    prefix = tmp_path / "prefix"
    hello, ext = build_chain(tc, prefix, str(prefix), tmp_path / "build")
    wheel = pack(tc, hello, ext, tmp_path / "in", "linux_x86_64")

    record, tag = repair_and_check_plan(wheel, tmp_path / "out")
    assert tag.startswith("musllinux_1_") and tag.endswith("_x86_64"), tag
    output = Path(record["output"])
    check = manywheel("check", output)
    assert check.returncode == 0, check.stdout + check.stderr

    before = run(hello)
    assert (before.returncode, before.stdout) == (0, "7\n"), before.stderr
    shutil.rmtree(prefix)
    after = run(hello)
    assert after.returncode != 0 and "libalpha.so.1" in after.stderr, after

    moved = install_layout(output, tmp_path / "site")
    repaired = run(moved)
    assert (repaired.returncode, repaired.stdout) == (0, "7\n"), repaired.stderr
