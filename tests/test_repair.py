"""`manywheel repair` end to end: wheels built at test time, repaired by the command line.

The main fixture (:func:`build_chain`) compiles, under a temporary prefix,

    prefix/a/libtop.so.1.2.3 (soname libtop.so.1, RUNPATH prefix/a) -> libmid.so.1
    prefix/a/libmid.so.1                                             -> libleaf.so.1
    prefix/b/libleaf.so.1     (found only through --ldpaths / MANYWHEEL_LD_LIBRARY_PATH)

and a wheel holding a real extension module (RUNPATH prefix/a: libtop is found through
the extension's own search path) and an ELF executable in ``demo-1.0.data/scripts/``
that uses libtop. The headline test repairs it, deletes the prefix, installs the output
into a fresh venv with pip and runs both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures import native_toolchain, run_tool
from manywheel.audit import AuditOptions, audit_wheel_detail
from manywheel.elf import read_facts
from manywheel.errors import InputError
from manywheel.patch import find_patchelf
from manywheel.repair_verify import raw_copies
from manywheel.wheelwrite import write_wheel
from manywheel.zipread import ZipArchive, ZipMember
from test_cli import manywheel
from wheelbuild import build_wheel

SCHEMA = Path(__file__).resolve().parent.parent / "src/manywheel/schemas/repair.schema.json"
EXT_SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))
PY = f"cp{sys.version_info[0]}{sys.version_info[1]}"
MULTIARCH = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib"

pytestmark = pytest.mark.skipif(
    native_toolchain().arch != "x86_64" or shutil.which("gcc") is None,
    reason="the repair end-to-end tests build x86_64 glibc wheels with gcc",
)

SOURCES = {
    "leaf.c": "int leaf_value(void) { return 7; }\n",
    "mid.c": "int leaf_value(void);\nint mid_value(void) { return leaf_value() * 6; }\n",
    "top.c": "int mid_value(void);\nint top_value(void) { return mid_value(); }\n",
    "ext.c": """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
int top_value(void);
static PyObject *value(PyObject *self, PyObject *args) { return PyLong_FromLong(top_value()); }
static PyMethodDef methods[] = {{"value", value, METH_NOARGS, "top"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_chain", NULL, -1, methods};
PyMODINIT_FUNC PyInit__chain(void) { return PyModule_Create(&module); }
""",
    "plain.c": """\
#include <Python.h>
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_plain", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__plain(void) { return PyModule_Create(&module); }
""",
    "tool.c": "#include <stdio.h>\nint top_value(void);\n"
    'int main(void) { printf("top=%d\\n", top_value()); return 0; }\n',
    "pylib.c": "int fake_python(void) { return 1; }\n",
    "cyca.c": "int cyc_b(void);\nint cyc_a(int n) { return n ? cyc_b() : 5; }\n",
    "cycb.c": "int cyc_a(int);\nint cyc_b(void) { return cyc_a(0) + 1; }\n",
    "cycext.c": """\
#include <Python.h>
int cyc_a(int);
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cyc", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__cyc(void) { return cyc_a(1) ? PyModule_Create(&module) : 0; }
""",
}


def cc(*args: str | Path) -> None:
    include = sysconfig.get_paths()["include"]
    run_tool(["gcc", "-O2", "-fPIC", f"-I{include}", *args])


@dataclass(frozen=True)
class Chain:
    root: Path
    prefix: Path
    wheel: Path

    @property
    def ldpaths(self) -> str:
        return f"{self.prefix}/b:{MULTIARCH}"


def build_chain(root: Path, *, rpath_tag: str = "-Wl,--enable-new-dtags", **wheel_kw: Any) -> Chain:
    """Compile the chain under ``root/prefix`` and pack the wheel into ``root/in``."""
    src = root / "src"
    src.mkdir(parents=True)
    for name, text in SOURCES.items():
        (src / name).write_text(text)
    a, b = root / "prefix/a", root / "prefix/b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    cc("-shared", src / "leaf.c", "-Wl,-soname,libleaf.so.1", "-o", b / "libleaf.so.1")
    cc("-shared", src / "mid.c", "-Wl,-soname,libmid.so.1", f"-L{b}", "-l:libleaf.so.1",
       "-o", a / "libmid.so.1")  # fmt: skip
    cc("-shared", src / "top.c", "-Wl,-soname,libtop.so.1", f"-L{a}", "-l:libmid.so.1",
       f"-Wl,-rpath-link,{b}", f"-Wl,-rpath,{a}", "-Wl,--enable-new-dtags",
       "-o", a / "libtop.so.1.2.3")  # fmt: skip
    (a / "libtop.so.1").symlink_to("libtop.so.1.2.3")
    link = [f"-L{a}", "-l:libtop.so.1", f"-Wl,-rpath-link,{a}:{b}", f"-Wl,-rpath,{a}", rpath_tag]
    cc("-shared", src / "ext.c", *link, "-o", root / "ext.so")
    run_tool(["gcc", "-O2", src / "tool.c", *link, "-o", root / "chaintool"])
    members: dict[str, bytes | Path] = {
        "demo/__init__.py": b"from demo._chain import value\n",
        f"demo/_chain{EXT_SUFFIX}": root / "ext.so",
        "demo-1.0.data/scripts/chaintool": root / "chaintool",
    }
    wheel = build_wheel(root / "in", members, python_tag=PY, abi_tag=PY, **wheel_kw)
    return Chain(root, root / "prefix", wheel)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return build_chain(tmp_path_factory.mktemp("chain"))


def repair(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return manywheel("repair", *args, env=env)


def repair_json(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = repair("--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)
    return doc


def assert_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """One error line (evidence may follow, indented), the code, no traceback, no stdout."""
    assert result.returncode == code, result.stderr
    first, *rest = result.stderr.splitlines()
    assert first.startswith("manywheel: error: "), result.stderr
    assert all(line.startswith("  ") for line in rest), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr
    assert result.stdout == ""


def extract(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    return dest


def wheel_tags(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        text = zf.read(name).decode()
    return [line[5:].strip() for line in text.splitlines() if line.startswith("Tag:")]


# --------------------------------------------------------------------------- headline


def install_and_import(wheel: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """pip-install ``wheel`` offline into a fresh venv, import ``demo`` and call it (it
    must print 42); returns the venv and the environment used (no LD_LIBRARY_PATH)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
    python = venv / "bin/python"
    env = {k: v for k, v in os.environ.items() if "LD_LIBRARY_PATH" not in k}
    pip: list[str | Path] = [python, "-m", "pip", "install", "-q", "--no-index", wheel]
    subprocess.run(pip, check=True, capture_output=True, env=env)
    call: list[str | Path] = [python, "-c", "import demo; print(demo.value())"]
    run = subprocess.run(call, check=True, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.stdout == "42\n"
    return venv, env


def test_repaired_wheel_installs_and_runs_without_the_prefix(tmp_path: Path) -> None:
    built = build_chain(tmp_path / "build")
    out = tmp_path / "wheelhouse"
    doc = repair_json(built.wheel, "-w", out, "--ldpaths", built.ldpaths)
    (record,) = doc["repairs"]
    assert record["platform_tags"] == ["manylinux_2_34_x86_64"]
    grafted = {g["needed_as"][0]: g["member"] for g in record["grafted"]}
    assert sorted(grafted) == ["libleaf.so.1", "libmid.so.1", "libtop.so.1"]
    assert grafted["libtop.so.1"].startswith("demo.libs/libtop-")
    assert grafted["libtop.so.1"].endswith(".so.1.2.3")
    assert record["moved_scripts"] == [
        {"from": "demo-1.0.data/scripts/chaintool", "to": "demo.scripts/chaintool"}
    ]
    assert sorted(os.listdir(out)) == [Path(record["output"]).name]

    shutil.rmtree(built.prefix)
    venv, env = install_and_import(Path(record["output"]), tmp_path)
    tool = subprocess.run(
        [venv / "bin/chaintool"], check=True, capture_output=True, text=True, env=env
    )
    assert tool.stdout == "top=42\n"


EXPORTING_EXT = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
int top_value(void);
/* Exported on purpose (a default build: no version script, default visibility), so the
   dynamic symbol table holds more than PyInit_* and what the file imports. */
int exported_counter = 3;
int exported_helper(void) { return top_value() + exported_counter - 3; }
static PyObject *value(PyObject *self, PyObject *args) {
    return PyLong_FromLong(exported_helper());
}
static PyMethodDef methods[] = {{"value", value, METH_NOARGS, "top"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_exp", NULL, -1, methods};
PyMODINIT_FUNC PyInit__exp(void) { return PyModule_Create(&module); }
"""


def test_extension_exporting_other_symbols_is_repaired(chain: Chain, tmp_path: Path) -> None:
    """Regression: the audit keeps only the imports and ``PyInit_*`` of wheel members, and
    the patch check compared the re-read file's every symbol against that slim set
    ("dynamic symbols changed"). An extension exporting anything else must repair, keep
    every exported symbol, and import."""
    src = tmp_path / "exp.c"
    src.write_text(EXPORTING_EXT)
    a = chain.prefix / "a"
    ext = tmp_path / "exp.so"
    cc("-shared", src, f"-L{a}", "-l:libtop.so.1", f"-Wl,-rpath-link,{chain.prefix}/b",
       f"-Wl,-rpath,{a}", "-o", ext)  # fmt: skip
    exported = {s.name for s in read_facts(ext).symbols if s.defined}
    assert {"PyInit__exp", "exported_helper", "exported_counter"} <= exported
    members: dict[str, bytes | Path] = {
        "demo/__init__.py": b"from demo._exp import value\n",
        f"demo/_exp{EXT_SUFFIX}": ext,
    }
    wheel = build_wheel(tmp_path / "in", members, python_tag=PY, abi_tag=PY)
    doc = repair_json(wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths)
    (record,) = doc["repairs"]
    assert len(record["grafted"]) == 3
    tree = extract(Path(record["output"]), tmp_path / "x")
    after = read_facts(tree / f"demo/_exp{EXT_SUFFIX}")
    assert [s for s in after.symbols if s.defined] == [
        s for s in read_facts(ext).symbols if s.defined
    ]

    install_and_import(Path(record["output"]), tmp_path)


# --------------------------------------------------------------------------- the plan


def test_runpath_everywhere_and_names_follow_the_shipped_bytes(
    chain: Chain, tmp_path: Path
) -> None:
    doc = repair_json(chain.wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths)
    tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / "x")
    libs = {p.name.split("-")[0]: p for p in (tree / "demo.libs").iterdir()}
    ext = read_facts(tree / f"demo/_chain{EXT_SUFFIX}").dynamic
    assert ext is not None
    assert (ext.runpath, ext.rpath) == ("$ORIGIN/../demo.libs", None)
    assert ext.needed == (libs["libtop"].name,)
    for name, runpath in [("libtop", "$ORIGIN"), ("libmid", "$ORIGIN"), ("libleaf", None)]:
        dyn = read_facts(libs[name]).dynamic
        assert dyn is not None
        # DT_RUNPATH is not inherited: a grafted library needing another has its own entry.
        assert (dyn.runpath, dyn.rpath, dyn.soname) == (runpath, None, libs[name].name)
    # The name hashes everything the shipped bytes are computed from (docs/repair.md,
    # "Names"): the patchelf version, the file name, the original bytes, the new RUNPATH
    # and the names written for the dependencies, which are named first (leaves first).
    version = find_patchelf().version_text
    expected: dict[str, str] = {}
    for name, file_name, folder, runpath, dep in [
        ("libleaf", "libleaf.so.1", "b", None, None),
        ("libmid", "libmid.so.1", "a", "$ORIGIN", ("libleaf.so.1", "libleaf")),
        ("libtop", "libtop.so.1.2.3", "a", "$ORIGIN", ("libmid.so.1", "libmid")),
    ]:
        content = hashlib.sha256((chain.prefix / folder / file_name).read_bytes()).hexdigest()
        text = f"manywheel graft names 2\npatchelf {version}\n{file_name}\n{content}\n{runpath}\n"
        if dep is not None:
            text += f"{dep[0]}->{expected[dep[1]]}\n"
        group = hashlib.sha256(text.encode()).hexdigest()
        short = hashlib.sha256(f"{group}:{file_name}".encode()).hexdigest()[:8]
        stem, _, suffix = file_name.partition(".so")
        expected[name] = f"{stem}-{short}.so{suffix}"
    assert {name: lib.name for name, lib in libs.items()} == expected
    tool = read_facts(tree / "demo.scripts/chaintool").dynamic
    assert tool is not None and tool.runpath == "$ORIGIN/../demo.libs"
    launcher = (tree / "demo-1.0.data/scripts/chaintool").read_text()
    assert launcher.startswith("#!python\n")


def test_runpath_is_not_inherited(chain: Chain, tmp_path: Path) -> None:
    """Without its own RUNPATH, a grafted library cannot find the grafted library it needs
    even though the extension's RUNPATH names their directory (gABI: DT_RUNPATH applies
    to the object's own DT_NEEDED entries only) -- why every one gets ``$ORIGIN``."""
    doc = repair_json(chain.wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths)
    tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / "x")
    ext = tree / f"demo/_chain{EXT_SUFFIX}"
    load = [sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(ext)!r})"]
    env = {k: v for k, v in os.environ.items() if "LD_LIBRARY_PATH" not in k}
    assert subprocess.run(load, check=False, capture_output=True, env=env).returncode == 0
    (mid,) = (tree / "demo.libs").glob("libmid-*")
    run_tool(["patchelf", "--remove-rpath", mid])
    broken = subprocess.run(load, check=False, capture_output=True, text=True, env=env)
    assert broken.returncode != 0
    assert "libleaf-" in broken.stderr


def test_dt_rpath_is_kept_as_dt_rpath(tmp_path: Path) -> None:
    built = build_chain(tmp_path / "b", rpath_tag="-Wl,--disable-new-dtags")
    doc = repair_json(built.wheel, "-w", tmp_path / "out", "--ldpaths", built.ldpaths)
    tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / "x")
    ext = read_facts(tree / f"demo/_chain{EXT_SUFFIX}").dynamic
    assert ext is not None
    assert (ext.rpath, ext.runpath) == ("$ORIGIN/../demo.libs", None)


def test_library_found_through_manywheel_ld_library_path(chain: Chain, tmp_path: Path) -> None:
    env = {"MANYWHEEL_LD_LIBRARY_PATH": str(chain.prefix / "b")}
    doc = repair_json(chain.wheel, "-w", tmp_path / "out", env=env)
    assert len(doc["repairs"][0]["grafted"]) == 3


def test_exclude_leaves_the_library_external(chain: Chain, tmp_path: Path) -> None:
    doc = repair_json(chain.wheel, "-w", tmp_path / "out", "--exclude", "libleaf.so.1")
    (record,) = doc["repairs"]
    assert record["excluded"] == ["libleaf.so.1"]
    assert sorted(g["needed_as"][0] for g in record["grafted"]) == ["libmid.so.1", "libtop.so.1"]
    tree = extract(Path(record["output"]), tmp_path / "x")
    (mid,) = (tree / "demo.libs").glob("libmid-*")
    dyn = read_facts(mid).dynamic
    assert dyn is not None and dyn.needed == ("libleaf.so.1",)
    assert record["platform_tags"] == ["manylinux_2_34_x86_64"]


def test_plat_above_reachable_fails_with_the_evidence(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = repair(
        chain.wheel, "-w", out, "--ldpaths", chain.ldpaths, "--plat", "manylinux2014_x86_64"
    )
    assert_error(
        result, 1, "manylinux_2_17_x86_64 cannot be reached", "manylinux_2_34_x86_64",
        "demo-1.0.data/scripts/chaintool imports __libc_start_main@GLIBC_2.34 from libc.so.6",
    )  # fmt: skip
    assert not out.exists()


def test_plat_below_reachable_adds_the_more_compatible_tags(chain: Chain, tmp_path: Path) -> None:
    args = (chain.wheel, "--ldpaths", chain.ldpaths, "--plat", "manylinux_2_35_x86_64")
    doc = repair_json(*args, "-w", tmp_path / "a")
    tags = ["manylinux_2_34_x86_64", "manylinux_2_35_x86_64"]
    assert doc["repairs"][0]["platform_tags"] == tags
    output = Path(doc["repairs"][0]["output"])
    assert output.name == f"demo-1.0-{PY}-{PY}-manylinux_2_34_x86_64.manylinux_2_35_x86_64.whl"
    assert wheel_tags(output) == [f"{PY}-{PY}-{tag}" for tag in tags]
    only = repair_json(*args, "--only-plat", "-w", tmp_path / "b")
    assert only["repairs"][0]["platform_tags"] == ["manylinux_2_35_x86_64"]


def test_plat_from_auditwheel_plat_and_manywheel_plat(chain: Chain, tmp_path: Path) -> None:
    args = (chain.wheel, "--ldpaths", chain.ldpaths, "--only-plat")
    env = {"AUDITWHEEL_PLAT": "manylinux_2_36_x86_64"}
    doc = repair_json(*args, "-w", tmp_path / "a", env=env)
    assert doc["repairs"][0]["platform_tags"] == ["manylinux_2_36_x86_64"]
    env["MANYWHEEL_PLAT"] = "manylinux_2_35_x86_64"
    doc = repair_json(*args, "-w", tmp_path / "b", env=env)
    assert doc["repairs"][0]["platform_tags"] == ["manylinux_2_35_x86_64"]
    bad = repair(*args, "-w", tmp_path / "c", env={"AUDITWHEEL_PLAT": "manylinux_9_x86_64"})
    assert_error(bad, 2, "AUDITWHEEL_PLAT=manylinux_9_x86_64")


def test_lib_sdir(chain: Chain, tmp_path: Path) -> None:
    doc = repair_json(
        chain.wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths, "-L", "_vendor"
    )
    members = [g["member"] for g in doc["repairs"][0]["grafted"]]
    assert all(m.startswith("demo_vendor/") for m in members)
    tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / "x")
    ext = read_facts(tree / f"demo/_chain{EXT_SUFFIX}").dynamic
    assert ext is not None and ext.runpath == "$ORIGIN/../demo_vendor"
    assert_error(repair(chain.wheel, "-w", tmp_path / "o2", "-L", "a/b"), 2, "-L")


def test_strip_runs_before_patching(chain: Chain, tmp_path: Path) -> None:
    plain = repair_json(chain.wheel, "-w", tmp_path / "a", "--ldpaths", chain.ldpaths)
    stripped = repair_json(chain.wheel, "-w", tmp_path / "b", "--ldpaths", chain.ldpaths, "--strip")
    for doc, has_symtab in [(plain, True), (stripped, False)]:
        tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / f"x{has_symtab}")
        for lib in (tree / "demo.libs").iterdir():
            sections = subprocess.run(
                ["readelf", "-S", "-W", lib], capture_output=True, text=True, check=True
            ).stdout
            assert (".symtab" in sections) == has_symtab
    # Other bytes, other names.
    names = [{g["member"] for g in d["repairs"][0]["grafted"]} for d in (plain, stripped)]
    assert not names[0] & names[1]


def test_no_update_tags_keeps_name_and_tags(chain: Chain, tmp_path: Path) -> None:
    doc = repair_json(
        chain.wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths, "--no-update-tags"
    )
    output = Path(doc["repairs"][0]["output"])
    assert output.name == chain.wheel.name
    assert wheel_tags(output) == [f"{PY}-{PY}-linux_x86_64"]
    assert len(doc["repairs"][0]["grafted"]) == 3
    same = repair(
        chain.wheel, "-w", chain.wheel.parent, "--ldpaths", chain.ldpaths, "--no-update-tags"
    )
    assert_error(same, 2, "would replace the input")


def test_reproducible(chain: Chain, tmp_path: Path) -> None:
    args = (chain.wheel, "--ldpaths", chain.ldpaths)
    first = repair_json(*args, "-w", tmp_path / "a")["repairs"][0]
    second = repair_json(*args, "-w", tmp_path / "b")["repairs"][0]
    assert Path(first["output"]).read_bytes() == Path(second["output"]).read_bytes()
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    third = repair_json(*args, "-w", tmp_path / "c", env=env)["repairs"][0]
    fourth = repair_json(*args, "-w", tmp_path / "d", env=env)["repairs"][0]
    assert Path(third["output"]).read_bytes() == Path(fourth["output"]).read_bytes()
    assert third["sha256"] != first["sha256"]
    with zipfile.ZipFile(third["output"]) as zf:
        assert {info.date_time for info in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_malformed_source_date_epoch_creates_nothing(chain: Chain, tmp_path: Path) -> None:
    """A bad SOURCE_DATE_EPOCH is a usage error before -w DIR is created."""
    out = tmp_path / "not-made"
    env = {"SOURCE_DATE_EPOCH": "yesterday"}
    bad = repair(chain.wheel, "--ldpaths", chain.ldpaths, "-w", out, env=env)
    assert_error(bad, 2, "SOURCE_DATE_EPOCH='yesterday' is not valid")
    assert not out.exists()


def test_dependency_cycle(tmp_path: Path) -> None:
    src, lib = tmp_path / "src", tmp_path / "lib"
    src.mkdir()
    lib.mkdir()
    for name in ("cyca.c", "cycb.c", "cycext.c"):
        (src / name).write_text(SOURCES[name])
    cc("-shared", src / "cycb.c", "-Wl,-soname,libcycb.so.1", "-o", lib / "libcycb.so.1")
    cc("-shared", src / "cyca.c", "-Wl,-soname,libcyca.so.1", f"-L{lib}", "-l:libcycb.so.1",
       "-o", lib / "libcyca.so.1")  # fmt: skip
    cc("-shared", src / "cycb.c", "-Wl,-soname,libcycb.so.1", f"-L{lib}", "-l:libcyca.so.1",
       "-o", lib / "libcycb.so.1")  # fmt: skip
    cc("-shared", src / "cycext.c", f"-L{lib}", "-l:libcyca.so.1", f"-Wl,-rpath,{lib}",
       "-o", tmp_path / "cyc.so")  # fmt: skip
    wheel = build_wheel(tmp_path / "in", {f"demo/_cyc{EXT_SUFFIX}": tmp_path / "cyc.so"})
    env = {"MANYWHEEL_LD_LIBRARY_PATH": str(lib)}
    doc = repair_json(wheel, "-w", tmp_path / "out", env=env)
    members = {g["needed_as"][0]: g["member"].split("/")[1] for g in doc["repairs"][0]["grafted"]}
    tree = extract(Path(doc["repairs"][0]["output"]), tmp_path / "x")
    a = read_facts(tree / "demo.libs" / members["libcyca.so.1"]).dynamic
    b = read_facts(tree / "demo.libs" / members["libcycb.so.1"]).dynamic
    assert a is not None and b is not None
    assert members["libcycb.so.1"] in a.needed and members["libcyca.so.1"] in b.needed
    assert (a.runpath, b.runpath) == ("$ORIGIN", "$ORIGIN")
    again = repair_json(wheel, "-w", tmp_path / "out2", env=env)
    assert again["repairs"][0]["sha256"] == doc["repairs"][0]["sha256"]


def test_libpython_needed_is_removed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pylib.c").write_text(SOURCES["pylib.c"])
    (src / "plain.c").write_text(SOURCES["plain.c"])
    fake = tmp_path / "lib" / "libpython3.99.so.1.0"
    fake.parent.mkdir()
    cc("-shared", src / "pylib.c", "-Wl,-soname,libpython3.99.so.1.0", "-o", fake)
    cc("-shared", src / "plain.c", "-Wl,--no-as-needed", f"-L{fake.parent}", f"-l:{fake.name}",
       "-o", tmp_path / "plain.so")  # fmt: skip
    wheel = build_wheel(tmp_path / "in", {f"demo/_plain{EXT_SUFFIX}": tmp_path / "plain.so"})
    doc = repair_json(wheel, "-w", tmp_path / "out")
    (record,) = doc["repairs"]
    assert record["removed_needed"] == [
        {"file": f"demo/_plain{EXT_SUFFIX}", "library": "libpython3.99.so.1.0"}
    ]
    assert record["grafted"] == []
    tree = extract(Path(record["output"]), tmp_path / "x")
    dyn = read_facts(tree / f"demo/_plain{EXT_SUFFIX}").dynamic
    assert dyn is not None and not any(n.startswith("libpython") for n in dyn.needed)


# --------------------------------------------------------------------------- compliant


def raw_members(path: Path) -> dict[str, tuple[int, bytes]]:
    """Each member's CRC and compressed bytes, read through zipfile's directory."""
    out: dict[str, tuple[int, bytes]] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        for info in zf.infolist():
            f.seek(info.header_offset)
            header = f.read(30)
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            f.seek(info.header_offset + 30 + name_len + extra_len)
            out[info.filename] = (info.CRC, f.read(info.compress_size))
    return out


def test_compliant_wheel_changes_tags_only(tmp_path: Path) -> None:
    src = tmp_path / "plain.c"
    src.write_text(SOURCES["plain.c"])
    cc("-shared", src, "-o", tmp_path / "plain.so")
    members: dict[str, bytes | Path] = {
        "demo/__init__.py": b"",
        "demo/data.txt": b"hello " * 1000,
        f"demo/_plain{EXT_SUFFIX}": tmp_path / "plain.so",
    }
    wheel = build_wheel(tmp_path / "in", members)
    # No patchelf is needed to relabel: a broken override would fail any patchelf use.
    env = {"MANYWHEEL_PATCHELF": str(tmp_path / "no-such-patchelf")}
    doc = repair_json(wheel, "-w", tmp_path / "out", env=env)
    (record,) = doc["repairs"]
    assert record["grafted"] == [] and record["patched"] == []
    assert record["platform_tags"][:2] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    before, after = raw_members(wheel), raw_members(Path(record["output"]))
    changed = {n for n in before if n.endswith(("/WHEEL", "/RECORD"))}
    for name in set(before) - changed:
        assert after[name] == before[name], name
    with zipfile.ZipFile(record["output"]) as zf:
        rows = zf.read("demo-1.0.dist-info/RECORD").decode().splitlines()
        for row in rows:
            path, digest, _size = row.rsplit(",", 2)
            if digest:
                raw = hashlib.sha256(zf.read(path)).digest()
                assert digest == "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --------------------------------------------------------------------------- errors


def test_library_not_found(chain: Chain, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = repair(chain.wheel, "-w", out)
    assert_error(
        result, 1, "cannot graft libleaf.so.1", "not found", "--ldpaths",
        "MANYWHEEL_LD_LIBRARY_PATH", "libleaf.so.1 tried:", "/usr/lib/libleaf.so.1",
    )  # fmt: skip
    assert not out.exists()


def test_untrusted_member_names(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("../evil.so", b"\x7fELF")
        zf.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    out = tmp_path / "out"
    assert_error(repair(wheel, "-w", out), 3, "..")
    assert not out.exists()


def test_pure_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "in", {"demo/__init__.py": b""}, platform_tags=("any",),
                        python_tag="py3", abi_tag="none", root_is_purelib=True)  # fmt: skip
    out = tmp_path / "out"
    assert_error(repair(wheel, "-w", out), 3, "pure Python wheel")
    assert not out.exists()
    doc = repair_json(wheel, "-w", out, "--allow-pure-python-wheel")
    assert Path(doc["repairs"][0]["output"]).read_bytes() == wheel.read_bytes()


def test_architecture_differs_from_plat(chain: Chain, tmp_path: Path) -> None:
    result = repair(chain.wheel, "-w", tmp_path / "out", "--plat", "manylinux_2_17_aarch64")
    assert_error(result, 1, "x86_64", "aarch64")
    assert not (tmp_path / "out").exists()


def test_patchelf_too_old(chain: Chain, tmp_path: Path) -> None:
    fake = tmp_path / "patchelf"
    fake.write_text("#!/bin/sh\necho 'patchelf 0.13'\n")
    fake.chmod(0o755)
    result = repair(
        chain.wheel, "-w", tmp_path / "out", "--ldpaths", chain.ldpaths,
        env={"MANYWHEEL_PATCHELF": str(fake)},
    )  # fmt: skip
    assert_error(result, 4, "too old")
    assert not (tmp_path / "out").exists()


def test_unwritable_dir(chain: Chain, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = repair(chain.wheel, "-w", blocker / "sub", "--ldpaths", chain.ldpaths)
    assert_error(result, 4, str(blocker / "sub"))


def test_nothing_left_behind_when_verification_fails(
    chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from manywheel import repair as repair_module
    from manywheel.errors import ManywheelError
    from manywheel.repair import RepairOptions, repair_wheel

    def failing(*args: object, **kwargs: object) -> None:
        raise repair_module.RepairError("verification failed")

    monkeypatch.setattr(repair_module, "verify_output", failing)
    out = tmp_path / "out"
    options = RepairOptions(out_dir=str(out), ldpaths=chain.ldpaths, environ={})
    with pytest.raises(ManywheelError):
        repair_wheel(chain.wheel, options)
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- reuse


def test_verification_reuses_only_members_with_identical_bytes(
    chain: Chain, tmp_path: Path
) -> None:
    """The output audit takes facts and digests from the input scan for raw copies (same
    entry and the same compressed bytes) and reads everything else; a raw copy whose
    bytes differ is read, and its corruption found."""

    options = AuditOptions(ldpaths=chain.ldpaths, verify_hashes=True)
    detail = audit_wheel_detail(chain.wheel, options)
    out = tmp_path / chain.wheel.name
    with ZipArchive(chain.wheel) as source:
        info = detail.info
        keep = [m for m in info.members if m not in (info.record_path, info.wheel_path)]
        wheel_text = source.read(source.member(info.wheel_path)).decode()
        write_wheel(
            source,
            out,
            keep=keep,
            wheel_file=(info.wheel_path, wheel_text),
            record_path=info.record_path,
            epoch=1_700_000_000,
            known_digests={n: m.digest for n, m in detail.members.items()},
        )
        reused: list[str] = []
        inner = raw_copies(source, detail.members)

        def counting(archive: ZipArchive, member: ZipMember) -> Any:
            known = inner(archive, member)
            if known is not None:
                reused.append(member.name)
            return known

        plain = audit_wheel_detail(out, options)
        again = audit_wheel_detail(out, options, reuse=counting)
        # (WHEEL too, when its new deflated bytes happen to equal the old ones.)
        assert set(keep) <= set(reused) <= {*keep, info.wheel_path}
        assert info.record_path not in reused
        assert again.report == plain.report
        assert {n: m.digest for n, m in again.members.items()} == {
            n: m.digest for n, m in plain.members.items()
        }

        # Same entry (name, CRC, sizes), other bytes: not reused, read, and caught.
        ext = f"demo/_chain{EXT_SUFFIX}"
        with ZipArchive(out) as written:
            member = written.member(ext)
        data = bytearray(out.read_bytes())
        data[member.data_offset + member.compress_size // 2] ^= 0xFF
        out.write_bytes(bytes(data))
        reused.clear()
        with pytest.raises(InputError):
            audit_wheel_detail(out, options, reuse=counting)
        assert ext not in reused


# --------------------------------------------------------------------------- RECORD trust


def record_rows(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = zf.read(name).decode().splitlines()
    return {row.rsplit(",", 2)[0]: row for row in rows}


def true_row(wheel: Path, path: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(path)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def test_record_of_raw_copies_is_carried_over_or_verified(tmp_path: Path) -> None:
    """Default: a raw-copied member's RECORD hash is taken from the input RECORD (trusted,
    not re-hashed) when its row names sha256 and the central directory's size; a row that
    is known wrong cheaply (wrong size, missing, weak algorithm) is recomputed. With
    --verify-record every member is hashed and a wrong hash is an error, nothing written."""
    src = tmp_path / "plain.c"
    src.write_text(SOURCES["plain.c"])
    cc("-shared", src, "-o", tmp_path / "plain.so")
    members: dict[str, bytes | Path] = {
        "demo/__init__.py": b"",
        "demo/hashed.txt": b"wrong hash " * 100,
        "demo/sized.txt": b"wrong size " * 100,
        "demo/missing.txt": b"no row " * 100,
        f"demo/_plain{EXT_SUFFIX}": tmp_path / "plain.so",
    }
    wheel = build_wheel(
        tmp_path / "in",
        members,
        bad_hash=["demo/hashed.txt"],
        bad_size=["demo/sized.txt"],
        omit_from_record=["demo/missing.txt"],
    )
    before = record_rows(wheel)

    doc = repair_json(wheel, "-w", tmp_path / "out")
    out = Path(doc["repairs"][0]["output"])
    after = record_rows(out)
    # Trusted: the input's (wrong) hash is carried over, as `check` then reports.
    assert after["demo/hashed.txt"] == before["demo/hashed.txt"] != true_row(out, "demo/hashed.txt")
    for path in (
        "demo/sized.txt",
        "demo/missing.txt",
        "demo/__init__.py",
        f"demo/_plain{EXT_SUFFIX}",
    ):
        assert after[path] == true_row(out, path), path
    result = manywheel("check", out)
    assert result.returncode == 1 and "demo/hashed.txt" in result.stdout + result.stderr

    strict = tmp_path / "strict"
    result = repair(wheel, "-w", strict, "--verify-record")
    assert_error(result, 1, "RECORD", "demo/hashed.txt", "--verify-record")
    assert not strict.exists() or list(strict.iterdir()) == []

    # A correct input: both modes write the same bytes, every row true.
    good = build_wheel(tmp_path / "good", members)
    one = Path(repair_json(good, "-w", tmp_path / "o1")["repairs"][0]["output"])
    two = Path(repair_json(good, "-w", tmp_path / "o2", "--verify-record")["repairs"][0]["output"])
    assert one.read_bytes() == two.read_bytes()
    assert all(
        row == true_row(one, p) for p, row in record_rows(one).items() if not p.endswith("RECORD")
    )
