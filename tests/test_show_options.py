"""`show`/`check` options end to end: --exclude, --policy-file, --sysroot on built wheels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures import FixtureSet, compile_shared, find_toolchain, native_toolchain
from test_cli import manywheel
from wheelbuild import build_wheel

EXT = "demo/_alpha.cpython-311-x86_64-linux-gnu.so"


def show(*args: str | os.PathLike[str]) -> dict[str, Any]:
    result = manywheel("show", "--json", *args)
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)["reports"]
    return dict(report)


@pytest.fixture(scope="module")
def alpha_wheel(native_fixtures: FixtureSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An x86_64 wheel whose extension needs libalpha (-> libbeta -> libgamma) via RPATH."""
    tc = native_toolchain()
    if tc.arch != "x86_64":
        pytest.skip("the wheels of this module are x86_64 wheels")
    root = tmp_path_factory.mktemp("options")
    ext = compile_shared(
        tc,
        ["demo.c"],
        root / "ext.so",
        needed_libs=[native_fixtures.libalpha],
        rpath=str(native_fixtures.chain_dir),
        new_dtags=False,
        extra=["-DMANYWHEEL_NO_PYTHON_H"],
    )
    return build_wheel(root, {EXT: ext})


def test_without_options_the_chain_is_external(alpha_wheel: Path) -> None:
    report = show(alpha_wheel)
    assert report["best_tag"] == "linux_x86_64"
    external = {lib["soname"]: lib for lib in report["external"]}
    assert {"libalpha.so.1", "libbeta.so.1", "libgamma.so.1"} <= set(external)
    assert not any(lib["excluded"] for lib in external.values())


def test_exclude_by_soname(alpha_wheel: Path) -> None:
    """An excluded library stays external, is listed, and what only it pulls in is gone."""
    report = show("--exclude", "libalpha.so.*", alpha_wheel)
    external = {lib["soname"]: lib for lib in report["external"]}
    assert external["libalpha.so.1"]["excluded"] is True
    assert "libbeta.so.1" not in external
    assert report["best_tag"] == "manylinux_2_5_x86_64"


def test_exclude_by_resolved_path(alpha_wheel: Path, native_fixtures: FixtureSet) -> None:
    pattern = str(native_fixtures.chain_dir.resolve() / "libalpha*")
    report = show("--exclude", pattern, alpha_wheel)
    external = {lib["soname"]: lib for lib in report["external"]}
    assert external["libalpha.so.1"]["excluded"] is True
    assert report["best_tag"] == "manylinux_2_5_x86_64"


def test_exclude_that_matches_nothing_changes_nothing(alpha_wheel: Path) -> None:
    assert show("--exclude", "libnothing.so.*", alpha_wheel)["best_tag"] == "linux_x86_64"


def _inhouse_policy(tmp_path: Path) -> Path:
    """An in-house distribution newer than every built-in one that ships the chain."""
    path = tmp_path / "inhouse.json"
    policy = {
        "name": "manylinux_2_42",
        "extends": "manylinux_2_41",
        "version": [2, 42],
        "priority": 1,
        "arches": ["x86_64"],
        "libraries": {"*": ["libalpha.so.1", "libbeta.so.1", "libgamma.so.1"]},
    }
    path.write_text(json.dumps({"format": 1, "family": "manylinux", "policies": [policy]}))
    return path


def test_policy_file_admits_an_inhouse_library(alpha_wheel: Path, tmp_path: Path) -> None:
    policy_file = _inhouse_policy(tmp_path)
    report = show("--policy-file", policy_file, alpha_wheel)
    assert report["best_tag"] == "manylinux_2_42_x86_64"
    verdicts = {v["policy"]: v for v in report["verdicts"]}
    assert verdicts["manylinux_2_42"]["ok"] is True
    assert verdicts["manylinux_2_41"]["ok"] is False
    result = manywheel(
        "check", "--policy-file", policy_file, "--plat", "manylinux_2_42_x86_64", alpha_wheel
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert manywheel("check", "--plat", "manylinux_2_41_x86_64", alpha_wheel).returncode == 1


def test_bad_policy_file_is_a_usage_error(alpha_wheel: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "family": "manylinux", "policies": [{"name": "x"}]}')
    result = manywheel("show", "--policy-file", bad, alpha_wheel)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bad.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_sysroot_resolves_a_foreign_wheel(tmp_path: Path) -> None:
    """An aarch64 wheel audited from this host: its libc is found only inside the root."""
    sysroot = Path("/usr/aarch64-linux-gnu")
    toolchain = find_toolchain("aarch64")
    if toolchain.missing is not None or not sysroot.is_dir():
        pytest.skip(toolchain.missing or "Debian's aarch64 cross libraries are not installed")
    # arc4random: libc.so.6, GLIBC_2.36 (the cross glibc of Debian 12 is 2.36).
    ext = compile_shared(toolchain, ["verdict_newsym.c"], tmp_path / "build" / "newsym.so")
    member = "demo/_newsym.cpython-311-aarch64-linux-gnu.so"
    wheel = build_wheel(tmp_path, {member: ext}, platform_tags=["linux_aarch64"])
    plain = show(wheel)
    assert plain["arch"] == "aarch64"
    libc = next(lib for lib in plain["external"] if lib["soname"] == "libc.so.6")
    assert libc["path"] is None  # this host's x86-64 libc is skipped, never taken
    assert libc["tried"]
    rooted = show("--sysroot", sysroot, wheel)
    libc = next(lib for lib in rooted["external"] if lib["soname"] == "libc.so.6")
    assert libc["path"] is not None
    assert Path(libc["realpath"]).name.startswith("libc")
    assert rooted["best_tag"] == "manylinux_2_36_aarch64"
    # The paths are the loader's view inside the root; the report says so once.
    note = (
        f"library paths are inside --sysroot {sysroot}: "
        f"/usr/lib/x.so means {sysroot}/usr/lib/x.so on this machine"
    )
    assert note in rooted["notes"]
    assert not any("--sysroot" in n for n in plain["notes"])


def test_dependencies_of_a_library_the_loader_misses_are_still_followed(
    native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    """A shipped library counted as internal although the RPATH misses it (it loads only
    with LD_LIBRARY_PATH) still has its own needs audited: libalpha has no search path of
    its own, so libbeta is not found and no portable tag is reachable."""
    tc = native_toolchain()
    ext = compile_shared(
        tc,
        ["demo.c"],
        tmp_path / "build" / "ext.so",
        needed_libs=[native_fixtures.libalpha],
        rpath="$ORIGIN/nowhere",
        extra=["-DMANYWHEEL_NO_PYTHON_H"],
    )
    wheel = build_wheel(tmp_path, {EXT: ext, "demo/libs/libalpha.so.1": native_fixtures.libalpha})
    report = show(wheel)
    assert any("counted as internal" in note for note in report["notes"])
    external = {lib["soname"]: lib for lib in report["external"]}
    assert external["libbeta.so.1"]["path"] is None
    assert external["libbeta.so.1"]["tried"]
    assert report["best_tag"] == "linux_x86_64"
    assert report["repair_tag"] in (None, "linux_x86_64")


def test_musl_verdicts_say_what_they_rest_on(tmp_path: Path) -> None:
    """musl has no symbol versions: the report says its verdicts rest on library names."""
    from fixtures import musl_toolchain

    toolchain = musl_toolchain()
    if toolchain.missing is not None:
        pytest.skip(toolchain.missing)
    ext = compile_shared(toolchain, ["verdict_plain.c"], tmp_path / "build" / "plain.so")
    member = "demo/_plain.cpython-311-x86_64-linux-musl.so"
    wheel = build_wheel(tmp_path, {member: ext}, platform_tags=["musllinux_1_2_x86_64"])
    report = show(wheel)
    assert report["libc"] == "musl"
    assert any(note.startswith("musl does not version its symbols") for note in report["notes"])
    text = manywheel("show", wheel).stdout
    assert "musl does not version its symbols" in text
    # A glibc wheel gets no such note.
    plain = compile_shared(native_toolchain(), ["verdict_plain.c"], tmp_path / "g" / "plain.so")
    glibc = show(build_wheel(tmp_path / "g", {EXT: plain}))
    assert glibc["libc"] == "glibc"
    assert not any("does not version its symbols" in note for note in glibc["notes"])
