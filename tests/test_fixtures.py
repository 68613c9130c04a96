"""The fixture builder itself: each fixture has the shape the other tests rely on.

Checked with binutils' readelf (independent of manywheel and of pyelftools), so a
fixture that silently lost its point (no RPATH, no second version...) fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import FixtureSet


def readelf(*args: object) -> str:
    env = {**os.environ, "LC_ALL": "C"}
    return subprocess.run(
        ["readelf", "-W", *map(str, args)], capture_output=True, text=True, check=True, env=env
    ).stdout


def run(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )


def needed(path: object) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", readelf("-d", path))


def test_chain_and_paths(any_fixtures: FixtureSet) -> None:
    fx = any_fixtures
    assert "libgamma.so.1" in needed(fx.libbeta)
    assert "libbeta.so.1" in needed(fx.libalpha)
    assert "Library soname: [libalpha.so.1]" in readelf("-d", fx.libalpha)
    assert fx.libalpha.parent == fx.libbeta.parent == fx.libgamma.parent == fx.chain_dir
    rpath = readelf("-d", fx.rpath_user)
    assert "(RPATH)" in rpath and "(RUNPATH)" not in rpath and "$ORIGIN/../chain" in rpath
    runpath = readelf("-d", fx.runpath_user)
    assert "(RUNPATH)" in runpath and "(RPATH)" not in runpath
    assert needed(fx.rpath_user)[0] == needed(fx.runpath_user)[0] == "libalpha.so.1"


def test_versions_and_weak(any_fixtures: FixtureSet) -> None:
    fx = any_fixtures
    versions = readelf("-V", fx.libversioned)
    assert "Name: VERS_2.0" in versions and "Parent 1: VERS_1.0" in versions
    dynsyms = readelf("--dyn-syms", fx.libversioned)
    assert "vers_func@@VERS_2.0" in dynsyms and "vers_func@VERS_1.0" in dynsyms
    need = readelf("-V", fx.libuseversioned)
    assert "File: libversioned.so.1" in need and "Name: VERS_2.0" in need
    assert re.search(r"WEAK\s+DEFAULT\s+UND maybe_there", readelf("--dyn-syms", fx.libweak))


def test_executables_and_mangled(any_fixtures: FixtureSet) -> None:
    fx = any_fixtures
    assert "Type:                              DYN" in readelf("-h", fx.hello_pie)
    assert "Type:                              EXEC" in readelf("-h", fx.hello_nopie)
    assert "PyInit__demo" in readelf("--dyn-syms", fx.ext)
    assert fx.ext.name.startswith("_demo.cpython-") and fx.ext.name.endswith(".so")
    assert ".symtab" not in readelf("-S", fx.stripped)
    assert ".symtab" in readelf("-S", fx.libversioned)
    for mangled in (fx.noshdr, fx.noshdr_versioned):
        assert "There are no sections in this file." in readelf("-S", mangled)
        assert "(SONAME)" in readelf("-d", mangled)  # still found through PT_DYNAMIC
    if fx.static_exe is not None:
        headers = readelf("-l", fx.static_exe)
        assert "INTERP" not in headers and "DYNAMIC" not in headers


def test_isa_level(native_fixtures: FixtureSet) -> None:
    assert native_fixtures.libisa is not None
    assert "x86 ISA needed: x86-64-v3" in readelf("-n", native_fixtures.libisa)


def test_native_binaries_run(native_fixtures: FixtureSet) -> None:
    fx = native_fixtures
    for exe in (fx.hello_pie, fx.hello_nopie):
        assert run(exe).stdout == "7\n"
    assert fx.static_exe is not None
    assert run(fx.static_exe).stdout == "static\n"
    assert fx.ext_is_real
    code = "import _demo; print(_demo.alpha())"
    out = run(sys.executable, "-c", code, cwd=fx.ext.parent)
    assert out.stdout == "7\n", out.stderr


@pytest.mark.skipif(shutil.which("musl-gcc") is None, reason="musl-gcc not installed")
def test_musl_binary_runs(musl_fixtures: FixtureSet) -> None:
    # Runs under /lib/ld-musl-x86_64.so.1 (the interpreter musl-gcc records).
    out = run(musl_fixtures.hello_pie)
    assert out.stdout == "7\n", out.stderr
