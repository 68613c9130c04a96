"""The command line as a user meets it: a real subprocess, real files, exit codes, stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import FixtureSet, find_toolchain
from manywheel import __version__

SCHEMAS = Path(__file__).resolve().parent.parent / "src" / "manywheel" / "schemas"


def manywheel(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m manywheel ARGS` the way a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("LD_LIBRARY_PATH")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "manywheel", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """An expected failure: the documented code and one line on stderr, no traceback."""
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("manywheel: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


def tree_json(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> dict:
    result = manywheel("lddtree", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    data: dict = json.loads(result.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / "lddtree.schema.json").read_text())
    jsonschema.validate(data, schema)
    return data


def flatten(nodes: list[dict]) -> dict[str, dict]:
    """Every node of a JSON tree by library name (the first occurrence, breadth-first)."""
    seen: dict[str, dict] = {}
    queue = list(nodes)
    while queue:
        node = queue.pop(0)
        seen.setdefault(node["name"], node)
        queue.extend(node["dependencies"])
    return seen


# --------------------------------------------------------------------------- basics


def test_version() -> None:
    result = manywheel("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"manywheel {__version__}"


def test_console_script_matches_module() -> None:
    exe = shutil.which("manywheel")
    if exe is None:
        pytest.skip("the console script is not on PATH (package not installed)")
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == f"manywheel {__version__}"


def test_no_command_is_a_usage_error() -> None:
    result = manywheel()
    assert result.returncode == 2
    assert "lddtree" in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = manywheel("lddtree", "--frobnicate", "x")
    assert result.returncode == 2
    assert "unrecognized arguments: --frobnicate" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_commands_and_exit_codes() -> None:
    result = manywheel("--help")
    assert result.returncode == 0
    for word in ("lddtree", "platform", "exit codes"):
        assert word in result.stdout


# --------------------------------------------------------------------------- lddtree errors


def test_lddtree_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(manywheel("lddtree", tmp_path / "nope.so"), 3, "nope.so", "no such file")


def test_lddtree_directory(tmp_path: Path) -> None:
    assert_one_line_error(manywheel("lddtree", tmp_path), 3, str(tmp_path))


def test_lddtree_not_elf(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just text\n")
    assert_one_line_error(manywheel("lddtree", text), 3, "notes.txt", "not an ELF file")


def test_lddtree_truncated_elf(tmp_path: Path, native_fixtures: FixtureSet) -> None:
    truncated = tmp_path / "libalpha-truncated.so"
    truncated.write_bytes(native_fixtures.libalpha.read_bytes()[:40])
    assert_one_line_error(manywheel("lddtree", truncated), 3, "libalpha-truncated.so")


def test_lddtree_sysroot_not_a_directory(tmp_path: Path, native_fixtures: FixtureSet) -> None:
    result = manywheel("lddtree", "--sysroot", tmp_path / "missing", native_fixtures.libalpha)
    assert_one_line_error(result, 2, "sysroot", "not a directory")


# --------------------------------------------------------------------------- lddtree trees


def test_lddtree_rpath_chain(native_fixtures: FixtureSet) -> None:
    """libalpha through the user's DT_RPATH; libbeta and libgamma through the inherited one."""
    data = tree_json(native_fixtures.rpath_user)
    nodes = flatten(data["dependencies"])
    chain = native_fixtures.chain_dir
    # "path" is the name as ld.so forms it ($ORIGIN/../chain), "realpath" the file.
    assert nodes["libalpha.so.1"]["path"].endswith("/lib/../chain/libalpha.so.1")
    assert nodes["libalpha.so.1"]["realpath"] == str(chain.resolve() / "libalpha.so.1")
    assert nodes["libalpha.so.1"]["rule"]["kind"] == "rpath"
    assert nodes["libalpha.so.1"]["rule"]["inherited"] is False
    for name in ("libbeta.so.1", "libgamma.so.1"):
        assert nodes[name]["status"] == "found"
        assert nodes[name]["realpath"] == str(chain.resolve() / name)
        assert nodes[name]["rule"]["kind"] == "rpath"
        assert nodes[name]["rule"]["inherited"] is True
    assert data["unresolved"] == []


def test_lddtree_runpath_is_not_inherited(native_fixtures: FixtureSet) -> None:
    """DT_RUNPATH serves only its own object: libbeta is not found, with every place tried."""
    data = tree_json(native_fixtures.runpath_user)
    nodes = flatten(data["dependencies"])
    assert nodes["libalpha.so.1"]["rule"]["kind"] == "runpath"
    beta = nodes["libbeta.so.1"]
    assert beta["status"] == "not-found"
    assert beta["tried"], "a missing library must list the places tried"
    assert data["unresolved"] == ["libbeta.so.1"]
    text = manywheel("lddtree", native_fixtures.runpath_user)
    assert text.returncode == 0
    assert "libbeta.so.1 => not found (tried: " in text.stdout


def test_lddtree_extra_paths_from_environment(native_fixtures: FixtureSet) -> None:
    """AUDITWHEEL_LD_LIBRARY_PATH (what build scripts set) finds what RUNPATH cannot."""
    chain = str(native_fixtures.chain_dir)
    for variable in ("MANYWHEEL_LD_LIBRARY_PATH", "AUDITWHEEL_LD_LIBRARY_PATH"):
        data = tree_json(native_fixtures.runpath_user, env={variable: chain})
        assert data["unresolved"] == []
        beta = flatten(data["dependencies"])["libbeta.so.1"]
        assert beta["realpath"] == str(native_fixtures.chain_dir.resolve() / "libbeta.so.1")


def test_lddtree_ldpaths(native_fixtures: FixtureSet) -> None:
    data = tree_json("--ldpaths", native_fixtures.chain_dir, native_fixtures.runpath_user)
    assert data["unresolved"] == []
    assert data["loader"]["ldpaths"] == [str(native_fixtures.chain_dir)]


def test_lddtree_system_python_matches_ldd() -> None:
    """The tree of the real interpreter agrees with glibc's own answer (ldd as the oracle)."""
    python = os.path.realpath(sys.executable)
    ldd = subprocess.run(["ldd", python], capture_output=True, text=True, check=True).stdout
    expected: dict[str, str] = {}
    for line in ldd.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            expected[parts[0]] = os.path.realpath(parts[2])
    data = tree_json(python)
    nodes = flatten(data["dependencies"])
    got = {name: node["realpath"] for name, node in nodes.items() if node["status"] == "found"}
    assert expected, ldd
    for name, realpath in expected.items():
        assert got.get(name) == realpath, name


def test_lddtree_cross_fixture_with_sysroot(native_fixtures: FixtureSet, fixture_builder) -> None:
    """An aarch64 executable resolved from this host inside Debian's cross root."""
    sysroot = Path("/usr/aarch64-linux-gnu")
    if not sysroot.is_dir():
        pytest.skip("Debian's aarch64 cross libraries are not installed (libc6-dev-arm64-cross)")
    fixtures: FixtureSet = fixture_builder(find_toolchain("aarch64"))
    data = tree_json("--sysroot", sysroot, fixtures.hello_pie)
    assert data["root"]["arch"] == "aarch64"
    nodes = flatten(data["dependencies"])
    assert nodes["libalpha.so.1"]["realpath"] == str(fixtures.chain_dir.resolve() / "libalpha.so.1")
    libc = nodes["libc.so.6"]
    assert libc["status"] == "found"
    assert Path(libc["object"]["host_path"]).resolve() == (sysroot / "lib" / "libc.so.6").resolve()
    assert data["unresolved"] == []
    # Without the sysroot, this host's x86-64 libc must be skipped, never taken.
    plain = tree_json(fixtures.hello_pie)
    assert "libc.so.6" in plain["unresolved"]


def test_lddtree_text_has_no_python_reprs(native_fixtures: FixtureSet) -> None:
    result = manywheel("lddtree", native_fixtures.ext)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(native_fixtures.ext))
    assert any("libalpha.so.1 => " in line and "[rpath of " in line for line in lines)
    for marker in ("{'", "['", "None", "PosixPath("):
        assert marker not in result.stdout


# --------------------------------------------------------------------------- platform


def test_platform_json_matches_schema_and_host() -> None:
    result = manywheel("platform", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads((SCHEMAS / "platform.schema.json").read_text()))
    tags = data["tags"] if isinstance(data["tags"], list) else data["tags"]["tags"]
    assert tags[-1].startswith("linux_")
    gnu = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    if gnu:
        major, minor = gnu.split()[1].split(".")[:2]
        assert tags[0].startswith(f"manylinux_{major}_{minor}_")


def test_platform_bad_override_is_one_line(tmp_path: Path) -> None:
    """A `_manylinux` module that raises is an environment problem (exit 4), not a traceback."""
    (tmp_path / "_manylinux.py").write_text(
        "def manylinux_compatible(major, minor, arch):\n    raise RuntimeError('boom')\n"
    )
    result = manywheel("platform", env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(result, 4, "_manylinux")


@pytest.mark.parametrize("command", ["lddtree", "platform", "show", "check", "repair", "policies"])
def test_help_is_wrapped_and_ends_with_exit_codes(command: str) -> None:
    result = manywheel(command, "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    assert "exit codes: 0 success" in result.stdout
