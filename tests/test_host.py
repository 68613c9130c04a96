"""Tests of manywheel.host: this machine's libc, arch and accepted platform tags.

The real host is checked against independent witnesses (``ldd --version``,
``os.confstr``, packaging.tags); the pure tag functions are driven with synthetic
inputs, real ``types.ModuleType`` override modules included; musl is checked with a
program compiled by musl-gcc and its real loader.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from manywheel import host
from manywheel.errors import EXIT_ENVIRONMENT, EnvironmentProblem
from manywheel.host import ArchInfo, ExecutableFacts, LibcInfo, PythonInfo

X86_LEGACY = ("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")


def _module(name: str = "_manylinux", **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def _confstr_glibc() -> tuple[int, int] | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        return None
    if not text or not text.startswith("glibc "):
        return None
    major, minor = text.split()[1].split(".")[:2]
    return int(major), int(minor)


HOST_GLIBC = _confstr_glibc()
needs_glibc_host = pytest.mark.skipif(
    sys.platform != "linux" or HOST_GLIBC is None, reason="this Python is not on glibc Linux"
)


@pytest.fixture(autouse=True)
def _fresh_packaging_override_cache() -> Iterator[None]:
    """packaging >= 26.3 caches its `_manylinux` import for the process (as pip would);
    the oracle tests swap the module per test, so the cache is cleared around each."""
    cached = getattr(_packaging_manylinux(), "_get_manylinux_module", None)
    clear = getattr(cached, "cache_clear", None)
    if clear is not None:
        clear()
    yield
    if clear is not None:
        clear()


def _same_tags(ours: Iterable[str], packaging_tags: Iterable[str]) -> bool:
    """Equal lists, except where the `linux_<arch>` tag stands: packaging <= 26.2 puts
    it last, 26.3 first (pip then prefers a locally built wheel); we keep it last."""
    mine, theirs = list(ours), list(packaging_tags)

    def portable(tags: list[str]) -> list[str]:
        return [t for t in tags if not t.startswith("linux_")]

    local = [t for t in theirs if t.startswith("linux_")]
    return portable(mine) == portable(theirs) and mine[-len(local) :] == local


def _packaging_manylinux() -> types.ModuleType | None:
    try:
        import packaging._manylinux as pm
    except ImportError:
        return None
    return pm


@pytest.fixture
def schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    text = resources.files("manywheel").joinpath("schemas/platform.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make sure no stray ``_manylinux`` module is importable."""
    monkeypatch.setitem(sys.modules, "_manylinux", None)  # None in sys.modules: ImportError
    yield


@pytest.fixture
def override_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for a real ``_manylinux.py``; the module is forgotten after."""
    saved = sys.modules.pop("_manylinux", None)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.modules.pop("_manylinux", None)
        if saved is not None:
            sys.modules["_manylinux"] = saved


def _python() -> PythonInfo:
    return PythonInfo("/usr/bin/python3", "cpython", "3.12.1", "/lib64/ld-linux-x86-64.so.2")


def _arch(name: str, machine: str | None = None) -> ArchInfo:
    machine = machine or name
    return ArchInfo(name, machine, 64, "test", host.tag_archs(name, machine))


# --------------------------------------------------------------------------- the real host


@needs_glibc_host
def test_real_host_glibc_version_matches_confstr_and_ldd(no_override: None) -> None:
    report = host.probe_host()
    assert report.libc.family == "glibc"
    assert report.libc.version == HOST_GLIBC
    assert report.libc.source == "confstr(CS_GNU_LIBC_VERSION)"
    ldd = shutil.which("ldd")
    if ldd is not None:
        out = subprocess.run([ldd, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"(\d+)\.(\d+)\s*$", out.stdout.splitlines()[0])
        assert match is not None, out.stdout
        assert report.libc.version == (int(match.group(1)), int(match.group(2)))


@needs_glibc_host
def test_real_host_tags(no_override: None) -> None:
    if platform.machine() != "x86_64" or sys.maxsize <= 2**32:
        pytest.skip("expectations written for a 64-bit x86_64 Python")
    report = host.probe_host()
    assert HOST_GLIBC is not None
    major, minor = HOST_GLIBC
    assert report.arch.name == "x86_64"
    assert report.arch.elf_class == 64
    assert report.python.interpreter is not None
    assert report.tags[0] == f"manylinux_{major}_{minor}_x86_64"
    assert report.tags[-1] == "linux_x86_64"
    for tag in (*X86_LEGACY, "manylinux_2_5_x86_64", "manylinux_2_17_x86_64"):
        assert tag in report.tags
    assert "manylinux_2_4_x86_64" not in report.tags
    assert len(report.tags) == len(set(report.tags))
    assert report.override_module is None
    assert report.overrides == ()


def test_real_host_on_debian12() -> None:
    """The machine this project is developed on: Debian 12, glibc 2.36, x86_64."""
    if HOST_GLIBC != (2, 36) or platform.machine() != "x86_64":
        pytest.skip("not a Debian 12 x86_64 host")
    report = host.probe_host()
    assert report.libc.version == (2, 36)
    assert report.tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux2014_x86_64" in report.tags
    assert "manylinux1_x86_64" in report.tags
    assert report.tags[-1] == "linux_x86_64"


@needs_glibc_host
def test_real_host_agrees_with_packaging(no_override: None) -> None:
    """packaging.tags is what pip uses: on this host both must give the same list."""
    tags_mod = pytest.importorskip("packaging.tags")
    report = host.probe_host()
    assert _same_tags(report.tags, tags_mod.platform_tags())


@needs_glibc_host
def test_ctypes_fallback_agrees_with_confstr() -> None:
    text = host._ctypes_glibc_version()
    assert text is not None
    assert host.parse_libc_version(text) == HOST_GLIBC
    info = host.glibc_from_process(confstr=lambda name: None)
    assert info == LibcInfo("glibc", HOST_GLIBC, "gnu_get_libc_version() of the running process")


@needs_glibc_host
def test_real_host_with_override_module_file(override_dir: Path) -> None:
    """A real _manylinux.py on sys.path is imported like pip would, and pip agrees."""
    (override_dir / "_manylinux.py").write_text(
        "def manylinux_compatible(major, minor, arch):\n"
        "    if (major, minor) == (2, 17):\n"
        "        return False\n"
        "    return None\n"
    )
    report = host.probe_host()
    arch = report.arch.name
    assert f"manylinux_2_17_{arch}" not in report.tags
    assert f"manylinux2014_{arch}" not in report.tags
    assert f"manylinux_2_18_{arch}" in report.tags or HOST_GLIBC == (2, 17)
    assert report.override_module == str(override_dir / "_manylinux.py")
    assert report.override_attributes == ("manylinux_compatible",)
    assert [note.asked for note in report.overrides] == [f"manylinux_compatible(2, 17, {arch!r})"]
    tags_mod = pytest.importorskip("packaging.tags")
    assert _same_tags(report.tags, tags_mod.platform_tags())


def test_override_module_that_fails_to_import(override_dir: Path) -> None:
    (override_dir / "_manylinux.py").write_text("raise RuntimeError('half-installed')\n")
    with pytest.raises(EnvironmentProblem) as info:
        host.load_manylinux_override()
    assert "RuntimeError: half-installed" in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == EXIT_ENVIRONMENT


def test_no_override_module(no_override: None) -> None:
    assert host.load_manylinux_override() is None


# --------------------------------------------------------------------------- pure tags


def test_x86_64_glibc_order_and_aliases() -> None:
    tags = host.manylinux_tags("x86_64", (2, 18)).tags
    assert tags == (
        "manylinux_2_18_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        *(f"manylinux_2_{m}_x86_64" for m in range(16, 12, -1)),
        "manylinux_2_12_x86_64",
        "manylinux2010_x86_64",
        *(f"manylinux_2_{m}_x86_64" for m in range(11, 5, -1)),
        "manylinux_2_5_x86_64",
        "manylinux1_x86_64",
    )


def test_aarch64_glibc_2_17_has_no_manylinux1_or_2010() -> None:
    result = host.platform_tags(LibcInfo("glibc", (2, 17), "test"), "aarch64")
    assert result.tags == ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64")


@pytest.mark.parametrize("arch", ["riscv64", "loongarch64"])
def test_new_arches_start_at_2_17_without_a_legacy_alias(arch: str) -> None:
    """PEP 600's alias table defines manylinux2014 only for the PEP 599 arches."""
    tags = host.manylinux_tags(arch, (2, 20)).tags
    assert tags == tuple(f"manylinux_2_{m}_{arch}" for m in range(20, 16, -1))


def test_glibc_older_than_any_tag_gives_only_linux() -> None:
    assert host.platform_tags(LibcInfo("glibc", (2, 4), "t"), "x86_64").tags == ("linux_x86_64",)
    assert host.platform_tags(LibcInfo("glibc", (2, 16), "t"), "s390x").tags == ("linux_s390x",)


def test_unknown_arch_gets_no_manylinux_tag() -> None:
    assert host.platform_tags(LibcInfo("glibc", (2, 36), "t"), "mips64").tags == ("linux_mips64",)


def test_unknown_glibc_version_gives_only_linux() -> None:
    libc = LibcInfo("glibc", None, "t", "unparsable")
    assert host.platform_tags(libc, "x86_64").tags == ("linux_x86_64",)


def test_glibc_major_3_continues_through_2() -> None:
    """PEP 600: (sys_major, sys_minor) >= (tag_major, tag_minor), across majors."""
    tags = host.manylinux_tags("aarch64", (3, 1)).tags
    assert tags[:3] == ("manylinux_3_1_aarch64", "manylinux_3_0_aarch64", "manylinux_2_50_aarch64")
    assert tags[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")


def test_armv8l_userland_accepts_armv8l_then_armv7l() -> None:
    result = host.platform_tags(LibcInfo("glibc", (2, 17), "t"), ("armv8l", "armv7l"))
    assert result.tags == (
        "manylinux_2_17_armv8l",
        "manylinux_2_17_armv7l",
        "manylinux2014_armv7l",
        "linux_armv8l",
        "linux_armv7l",
    )


# ------------------------------------------------------------------ _manylinux override


def test_override_false_for_2_28_removes_only_2_28() -> None:
    """PEP 600 asks the module about each tag separately: older tags stay."""
    calls: list[tuple[int, int, str]] = []

    def manylinux_compatible(major: int, minor: int, arch: str) -> bool | None:
        calls.append((major, minor, arch))
        return False if (major, minor) == (2, 28) else None

    module = _module(manylinux_compatible=manylinux_compatible)
    result = host.manylinux_tags("x86_64", (2, 36), module)
    baseline = host.manylinux_tags("x86_64", (2, 36)).tags
    assert "manylinux_2_28_x86_64" not in result.tags
    assert set(baseline) - set(result.tags) == {"manylinux_2_28_x86_64"}
    assert "manylinux_2_27_x86_64" in result.tags
    assert "manylinux_2_29_x86_64" in result.tags
    # asked once per perennial version, never about versions newer than the system's
    assert calls == [(2, m, "x86_64") for m in range(36, 4, -1)]
    assert result.notes == (
        host.OverrideNote(
            ("manylinux_2_28_x86_64",), "manylinux_compatible(2, 28, 'x86_64')", "False", False
        ),
    )


def test_override_cannot_add_tags_newer_than_glibc() -> None:
    module = _module(manylinux_compatible=lambda major, minor, arch: True)
    tags = host.manylinux_tags("x86_64", (2, 17), module).tags
    assert tags[0] == "manylinux_2_17_x86_64"
    assert tags == host.manylinux_tags("x86_64", (2, 17)).tags


def test_legacy_manylinux1_compatible_false() -> None:
    """PEP 513's attribute decides manylinux1 == manylinux_2_5 (PEP 600), nothing else."""
    result = host.manylinux_tags("x86_64", (2, 36), _module(manylinux1_compatible=False))
    assert "manylinux1_x86_64" not in result.tags
    assert "manylinux_2_5_x86_64" not in result.tags
    assert "manylinux_2_6_x86_64" in result.tags
    assert "manylinux2010_x86_64" in result.tags
    assert result.notes == (
        host.OverrideNote(
            ("manylinux_2_5_x86_64", "manylinux1_x86_64"), "manylinux1_compatible", "False", False
        ),
    )


@pytest.mark.parametrize(
    ("attribute", "version", "alias"),
    [
        ("manylinux2010_compatible", (2, 12), "manylinux2010_x86_64"),
        ("manylinux2014_compatible", (2, 17), "manylinux2014_x86_64"),
    ],
)
def test_legacy_2010_and_2014_attributes(
    attribute: str, version: tuple[int, int], alias: str
) -> None:
    tags = host.manylinux_tags("x86_64", (2, 36), _module(**{attribute: False})).tags
    assert alias not in tags
    assert f"manylinux_{version[0]}_{version[1]}_x86_64" not in tags
    assert len(tags) == len(host.manylinux_tags("x86_64", (2, 36)).tags) - 2


def test_manylinux_compatible_takes_precedence_over_legacy_attributes() -> None:
    """PEP 600: "If both the new and old attributes are defined, then
    manylinux_compatible takes precedence" -- even when it answers None."""
    module = _module(
        manylinux_compatible=lambda major, minor, arch: None, manylinux1_compatible=False
    )
    result = host.manylinux_tags("x86_64", (2, 36), module)
    assert result.tags == host.manylinux_tags("x86_64", (2, 36)).tags
    assert result.notes == ()
    report = host.build_report(_python(), _arch("x86_64"), LibcInfo("glibc", (2, 36), "t"), module)
    assert "manylinux1_compatible ignored" in host.render_report(report)


def test_override_sees_each_arch() -> None:
    module = _module(manylinux_compatible=lambda major, minor, arch: arch != "armv8l")
    tags = host.manylinux_tags(("armv8l", "armv7l"), (2, 17), module).tags
    assert tags == ("manylinux_2_17_armv7l", "manylinux2014_armv7l")


def test_non_bool_answer_counts_by_truth_value_and_is_noted() -> None:
    """PEP 600's reference code: ``if result is not None: return bool(result)``."""
    module = _module(manylinux_compatible=lambda major, minor, arch: 0 if minor == 20 else "yes")
    result = host.manylinux_tags("aarch64", (2, 20), module)
    assert result.tags == (
        "manylinux_2_19_aarch64",
        "manylinux_2_18_aarch64",
        "manylinux_2_17_aarch64",
        "manylinux2014_aarch64",
    )
    assert [(n.returned, n.accepted) for n in result.notes] == [
        ("0", False),
        ("'yes'", True),
        ("'yes'", True),
        ("'yes'", True),
    ]


def test_override_that_raises_is_one_clear_line() -> None:
    def manylinux_compatible(major: int, minor: int, arch: str) -> bool:
        raise KeyError("no table for " + arch)

    with pytest.raises(EnvironmentProblem) as info:
        host.manylinux_tags("x86_64", (2, 36), _module(manylinux_compatible=manylinux_compatible))
    message = str(info.value)
    assert "manylinux_compatible(2, 36, 'x86_64') raised KeyError" in message
    assert "\n" not in message
    assert info.value.exit_code == EXIT_ENVIRONMENT


def test_override_answer_whose_truth_value_raises() -> None:
    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("truth value is ambiguous")

    module = _module(manylinux_compatible=lambda major, minor, arch: Ambiguous())
    with pytest.raises(EnvironmentProblem, match="ValueError: truth value is ambiguous"):
        host.manylinux_tags("x86_64", (2, 36), module)


def test_override_not_callable() -> None:
    with pytest.raises(EnvironmentProblem, match="not a function"):
        host.manylinux_tags("x86_64", (2, 36), _module(manylinux_compatible=True))


def test_override_is_not_consulted_for_musl() -> None:
    def boom(major: int, minor: int, arch: str) -> bool:
        raise AssertionError("asked")

    libc = LibcInfo("musl", (1, 2), "t")
    result = host.platform_tags(libc, "x86_64", _module(manylinux_compatible=boom))
    assert result.tags[0] == "musllinux_1_2_x86_64"


# ------------------------------------------------------------- oracle: packaging.tags


@pytest.mark.parametrize("glibc", [(2, 5), (2, 17), (2, 28), (2, 36), (3, 2)])
@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "ppc64le", "s390x"])
@pytest.mark.parametrize(
    "override",
    [
        None,
        {"manylinux_compatible": lambda major, minor, arch: minor % 3 != 0 or None},
        {"manylinux1_compatible": False, "manylinux2014_compatible": 0},
    ],
    ids=["none", "function", "legacy"],
)
def test_manylinux_tags_agree_with_packaging(
    monkeypatch: pytest.MonkeyPatch,
    glibc: tuple[int, int],
    arch: str,
    override: dict[str, Any] | None,
) -> None:
    """packaging._manylinux.platform_tags with the glibc version and module swapped in."""
    pm = pytest.importorskip("packaging._manylinux")
    module = None if override is None else _module(**override)
    monkeypatch.setitem(sys.modules, "_manylinux", module)
    monkeypatch.setattr(pm, "_get_glibc_version", lambda: pm._GLibCVersion(*glibc))
    expected = list(pm.platform_tags([arch]))
    assert list(host.manylinux_tags(arch, glibc, module).tags) == expected


def test_riscv64_differs_from_packaging_only_by_undefined_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """packaging also yields manylinux2014_riscv64, which PEP 600 does not define."""
    pm = pytest.importorskip("packaging._manylinux")
    monkeypatch.setitem(sys.modules, "_manylinux", None)
    monkeypatch.setattr(pm, "_get_glibc_version", lambda: pm._GLibCVersion(2, 31))
    expected = [t for t in pm.platform_tags(["riscv64"]) if t != "manylinux2014_riscv64"]
    assert list(host.manylinux_tags("riscv64", (2, 31)).tags) == expected


# --------------------------------------------------------------------------- musl


def test_musllinux_tags() -> None:
    assert host.musllinux_tags("x86_64", (1, 2)) == (
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    )
    assert host.musllinux_tags(("armv8l", "armv7l"), (1, 1)) == (
        "musllinux_1_1_armv8l",
        "musllinux_1_0_armv8l",
        "musllinux_1_1_armv7l",
        "musllinux_1_0_armv7l",
    )


@pytest.fixture(scope="module")
def musl_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures import compile_exe, musl_toolchain

    toolchain = musl_toolchain()
    if toolchain.missing is not None:
        pytest.skip(toolchain.missing)
    out = tmp_path_factory.mktemp("musl")
    source = out / "tiny.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("tiny"); return 0; }\n')
    return compile_exe(toolchain, [source], out / "tiny")


def test_musl_program_loader_and_version(musl_program: Path, schema_validator: Any) -> None:
    exe = host.read_executable(str(musl_program))
    assert exe.interpreter is not None
    assert os.path.basename(exe.interpreter).startswith("ld-musl-")
    assert exe.arch == "x86_64"
    if not os.path.exists(exe.interpreter):
        pytest.skip(f"{exe.interpreter} is not installed (musl-gcc without the runtime)")

    # independent witness: the loader's own banner, read here without our parser
    banner = subprocess.run([exe.interpreter], capture_output=True, text=True, check=False)
    match = re.search(r"^Version (\d+)\.(\d+)", banner.stderr, re.MULTILINE)
    assert match is not None, banner.stderr
    expected = (int(match.group(1)), int(match.group(2)))

    libc = host.detect_libc(exe, glibc=lambda: None)
    assert libc == LibcInfo("musl", expected, f"musl loader {exe.interpreter}")
    assert expected >= (1, 1)  # Debian 12 ships musl 1.2.3

    arch = host.detect_arch(exe, "x86_64")
    python = PythonInfo(str(musl_program), "cpython", "3.12.1", exe.interpreter)
    report = host.build_report(python, arch, libc)
    major, minor = expected
    assert report.tags == (
        *(f"musllinux_{major}_{m}_x86_64" for m in range(minor, -1, -1)),
        "linux_x86_64",
    )
    assert "musllinux_1_2_x86_64" in report.tags or expected < (1, 2)
    assert "musllinux_1_1_x86_64" in report.tags
    assert not any(tag.startswith("manylinux") for tag in report.tags)
    schema_validator.validate(host.report_to_json(report))
    assert "musl 1." in host.render_report(report).splitlines()[0]


def test_musl_version_agrees_with_packaging(musl_program: Path) -> None:
    pm = pytest.importorskip("packaging._musllinux")
    exe = host.read_executable(str(musl_program))
    assert exe.interpreter is not None
    if not os.path.exists(exe.interpreter):
        pytest.skip(f"{exe.interpreter} is not installed")
    version, problem = host.musl_version_from_loader(exe.interpreter)
    assert problem is None
    assert version == tuple(pm._get_musl_version(str(musl_program)))


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_musl_loader_that_hangs_is_bounded(tmp_path: Path) -> None:
    loader = _script(tmp_path / "ld-musl-x86_64.so.1", "exec sleep 30\n")
    version, problem = host.musl_version_from_loader(loader, timeout=0.3)
    assert version is None
    assert problem is not None
    assert "did not answer within 0.3 s" in problem


def test_musl_loader_with_unexpected_banner(tmp_path: Path) -> None:
    loader = _script(tmp_path / "ld-musl-x86_64.so.1", "echo 'not musl' >&2; exit 1\n")
    version, problem = host.musl_version_from_loader(loader)
    assert version is None
    assert problem is not None
    assert "'not musl'" in problem


def test_musl_loader_missing(tmp_path: Path) -> None:
    version, problem = host.musl_version_from_loader(str(tmp_path / "ld-musl-none.so.1"))
    assert version is None
    assert problem is not None
    assert "cannot run" in problem


def test_musl_without_version_gives_only_linux(schema_validator: Any) -> None:
    exe = ExecutableFacts("/usr/bin/python3", "/lib/ld-musl-x86_64.so.1", 64, "x86_64")
    libc = host.detect_libc(exe, glibc=lambda: None, musl_version=lambda p: (None, "timed out"))
    assert libc.family == "musl"
    assert libc.problem == "timed out"
    report = host.build_report(_python(), host.detect_arch(exe, "x86_64"), libc)
    assert report.tags == ("linux_x86_64",)
    schema_validator.validate(host.report_to_json(report))


# --------------------------------------------------------------------------- libc probe


def test_glibc_from_process_prefers_confstr() -> None:
    def fail() -> str | None:
        raise AssertionError("ctypes must not be used when confstr answers")

    info = host.glibc_from_process(confstr=lambda name: "glibc 2.28", ctypes_version=fail)
    assert info == LibcInfo("glibc", (2, 28), "confstr(CS_GNU_LIBC_VERSION)")


def test_glibc_from_process_ctypes_fallback_with_vendor_suffix() -> None:
    info = host.glibc_from_process(confstr=lambda name: None, ctypes_version=lambda: "2.20-2014.11")
    assert info is not None
    assert info.version == (2, 20)
    assert info.source == "gnu_get_libc_version() of the running process"


def test_glibc_from_process_unparsable_and_absent() -> None:
    info = host.glibc_from_process(confstr=lambda name: "glibc ?", ctypes_version=lambda: "??")
    assert info is not None
    assert info.version is None
    assert info.problem is not None
    assert host.glibc_from_process(confstr=lambda n: None, ctypes_version=lambda: None) is None


def test_static_or_foreign_interpreter_is_unknown(schema_validator: Any) -> None:
    static = ExecutableFacts("/opt/python", None, 64, "x86_64")
    libc = host.detect_libc(static, glibc=lambda: None)
    assert libc.family == "unknown"
    assert libc.version is None
    foreign = ExecutableFacts("/opt/python", "/system/bin/linker64", 64, "aarch64")
    assert host.detect_libc(foreign, glibc=lambda: None).family == "unknown"
    report = host.build_report(_python(), host.detect_arch(static, "x86_64"), libc)
    assert report.tags == ("linux_x86_64",)
    schema_validator.validate(host.report_to_json(report))


# --------------------------------------------------------------------------- arch


def test_i686_python_on_x86_64_kernel() -> None:
    exe = ExecutableFacts("/usr/bin/python3", "/lib/ld-linux.so.2", 32, "i686")
    arch = host.detect_arch(exe, "x86_64")
    assert (arch.name, arch.elf_class, arch.tag_archs) == ("i686", 32, ("i686",))
    assert "'x86_64'" in arch.source
    tags = host.platform_tags(LibcInfo("glibc", (2, 17), "t"), arch.tag_archs).tags
    assert tags[0] == "manylinux_2_17_i686"
    assert "manylinux1_i686" in tags
    assert tags[-1] == "linux_i686"


def test_armhf_python_on_aarch64_kernel() -> None:
    exe = ExecutableFacts("/usr/bin/python3", "/lib/ld-linux-armhf.so.3", 32, "armv7l")
    arch = host.detect_arch(exe, "aarch64")
    assert arch.name == "armv7l"
    assert arch.tag_archs == ("armv8l", "armv7l")
    assert host.detect_arch(exe, "armv7l").tag_archs == ("armv7l",)


def test_unreadable_header_falls_back_to_uname_and_pointer_size() -> None:
    exe = ExecutableFacts("", None, None, None, "sys.executable is empty")
    assert host.detect_arch(exe, "x86_64").name == "x86_64"
    assert host.detect_arch(exe, "x86_64", maxsize=2**31 - 1).name == "i686"
    armhf = host.detect_arch(exe, "aarch64", maxsize=2**31 - 1)
    assert (armhf.name, armhf.tag_archs) == ("armv7l", ("armv8l", "armv7l"))
    assert host.detect_arch(exe, "AMD64").name == "x86_64"


def test_arm_soft_float_gets_no_manylinux_tags(schema_validator: Any) -> None:
    problem = "ARM soft-float ABI (e_flags 0x5000200) is not supported"
    exe = ExecutableFacts("/usr/bin/python3", "/lib/ld-linux.so.3", 32, None, problem)
    arch = host.detect_arch(exe, "armv7l")
    assert arch.name == "armv7l"
    assert arch.problem == problem
    assert host.detect_arch(exe, "aarch64").name == "armv7l"  # the 32-bit class decides
    report = host.build_report(_python(), arch, LibcInfo("glibc", (2, 31), "t"))
    assert report.tags == ("linux_armv7l",)
    assert "no manylinux tags" in host.render_report(report)
    schema_validator.validate(host.report_to_json(report))


def test_read_executable_of_a_non_elf_file(tmp_path: Path) -> None:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n")
    exe = host.read_executable(str(path))
    assert exe.elf_class is None
    assert exe.problem is not None
    assert "not an ELF file" in exe.problem


# --------------------------------------------------------------------------- output


def test_render_and_json_with_override(schema_validator: Any) -> None:
    module = _module(manylinux_compatible=lambda major, minor, arch: False if minor == 28 else None)
    module.__file__ = "/usr/lib/python3.12/_manylinux.py"
    report = host.build_report(_python(), _arch("x86_64"), LibcInfo("glibc", (2, 36), "t"), module)
    text = host.render_report(report)
    lines = text.splitlines()
    assert lines[0].startswith("libc:") and "glibc 2.36" in lines[0]
    assert lines[1].startswith("arch:") and "x86_64" in lines[1]
    assert "removed manylinux_2_28_x86_64" in text
    assert "/usr/lib/python3.12/_manylinux.py" in text
    header = next(i for i, line in enumerate(lines) if line.startswith("accepts "))
    assert lines[header] == f"accepts {len(report.tags)} platform tags, most specific first:"
    assert tuple(line.strip() for line in lines[header + 1 :]) == report.tags
    assert "{" not in text and "frozenset" not in text

    data = host.report_to_json(report)
    schema_validator.validate(data)
    assert data["schema_version"] == 1
    assert data["libc"] == {"family": "glibc", "version": "2.36", "source": "t", "problem": None}
    assert data["override"]["module"] == "/usr/lib/python3.12/_manylinux.py"
    assert data["override"]["notes"] == [
        {
            "tags": ["manylinux_2_28_x86_64"],
            "asked": "manylinux_compatible(2, 28, 'x86_64')",
            "returned": "False",
            "accepted": False,
        }
    ]
    assert json.loads(json.dumps(data)) == data


@needs_glibc_host
def test_real_host_json_validates(schema_validator: Any, no_override: None) -> None:
    data = host.report_to_json(host.probe_host())
    schema_validator.validate(data)
    assert data["tags"][-1].startswith("linux_")


def test_schema_rejects_a_wrong_document(schema_validator: Any) -> None:
    report = host.build_report(_python(), _arch("x86_64"), LibcInfo("glibc", (2, 36), "t"))
    data = host.report_to_json(report)
    data["libc"]["family"] = "bionic"
    assert not schema_validator.is_valid(data)
    data = host.report_to_json(report)
    data["schema_version"] = 2
    assert not schema_validator.is_valid(data)
