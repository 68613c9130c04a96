"""The end-to-end check that runs *inside* a clean root, with the root's own python3.

Copied into the root by tests/e2e/run.py with a JSON spec next to it; it must run on every
root's interpreter (bullseye: Python 3.9), so it uses the standard library only.

``inroot_check.py session SPEC`` (the root's python3): makes a venv, installs the spec's
wheels with ``pip install --no-index`` (run.py gives the root no network at all), then runs
one ``probe`` per wheel in a fresh interpreter of that venv and prints one result line per
probe: ``E2E-RESULT {"name": ..., "ok": ..., "lines": [...]}``.

``inroot_check.py probe PROBE`` (the venv's python): for a repaired wheel, imports every
extension module of the wheel, exercises the library (yaml's C loader, an XSLT transform,
the demo's ``hello``), then compares ``/proc/self/maps`` with the map taken before the
imports: every library the wheel grafted must be mapped from the wheel's ``.libs``
directory in site-packages, and every other file newly mapped from outside site-packages
must be a library the policy allows, a module of Python's standard library, or a library
such a module needs. For an unrepaired wheel (the negative control), importing the main
extension module must fail because a library is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import subprocess
import sys
import sysconfig
import traceback
from collections.abc import Callable
from typing import Any

RESULT_PREFIX = "E2E-RESULT "
VENV = "/e2e/venv"


# --- session -----------------------------------------------------------------------------


def session(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    setup = _run([sys.executable, "-m", "venv", VENV])
    if setup.returncode == 0:
        setup = _run([f"{VENV}/bin/python", "-m", "pip", "install", "--no-index", *spec["wheels"]])
    for probe in spec["probes"]:
        if setup.returncode != 0:
            lines = ["setting up the venv failed:", *_tail(setup.stdout)]
            _emit({"name": probe["name"], "ok": False, "lines": lines})
            continue
        probe_path = f"/e2e/probe-{probe['name']}.json"
        with open(probe_path, "w", encoding="utf-8") as f:
            json.dump(probe, f)
        proc = _run([f"{VENV}/bin/python", os.path.abspath(__file__), "probe", probe_path])
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX) :])
        if result is None:
            result = {
                "name": probe["name"],
                "ok": False,
                "lines": [f"the probe died (exit {proc.returncode}):", *_tail(proc.stdout)],
            }
        _emit(result)
    return 0


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


def _tail(text: str, n: int = 15) -> list[str]:
    return ["  " + line for line in text.splitlines()[-n:]]


def _emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --- probe -------------------------------------------------------------------------------


def probe(probe_path: str) -> int:
    with open(probe_path, encoding="utf-8") as f:
        spec = json.load(f)
    lines: list[str] = []
    try:
        if spec["mode"] == "repaired":
            ok = _probe_repaired(spec, lines)
        else:
            ok = _probe_unrepaired(spec, lines)
    except Exception:
        ok = False
        lines += traceback.format_exc().splitlines()
    _emit({"name": spec["name"], "ok": ok, "lines": lines})
    return 0


def _probe_repaired(spec: dict[str, Any], lines: list[str]) -> bool:
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    before = mapped_libraries()
    for module in spec["modules"]:
        importlib.import_module(module)
    lines.append(f"imported {len(spec['modules'])} extension modules: {', '.join(spec['modules'])}")
    EXERCISES[spec["exercise"]](lines)
    after = mapped_libraries()
    ok = True

    for member in spec["grafted"]:
        path = os.path.realpath(os.path.join(site, member))
        if path not in after:
            ok = False
            lines.append(f"FAIL grafted {member} is not mapped from {path}")
    if ok:
        lines.append(f"{len(spec['grafted'])} grafted libraries mapped from site-packages")

    allowed = _policy_paths(spec["allowed_sonames"])
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
    new = sorted(after - before)
    stdlib_new = [p for p in new if p.startswith(stdlib)]
    stdlib_needs = _needed_closure(stdlib_new)
    outside = [p for p in new if not p.startswith(site + os.sep)]
    kinds: dict[str, list[str]] = {"policy": [], "stdlib": [], "stdlib dependency": []}
    for path in outside:
        if path in allowed:
            kinds["policy"].append(path)
        elif path.startswith(stdlib):
            kinds["stdlib"].append(path)
        elif path in stdlib_needs:
            kinds["stdlib dependency"].append(path)
        else:
            ok = False
            lines.append(f"FAIL loaded from outside the wheel, not allowed: {path}")
    for kind, paths in kinds.items():
        if paths:
            names = ", ".join(sorted(os.path.basename(p) for p in paths))
            lines.append(f"new from outside the wheel ({kind}): {names}")
    own = {os.path.realpath(os.path.join(site, m)) for m in spec["members"]}
    for path in new:
        if path.startswith(site + os.sep) and path not in own:
            ok = False
            lines.append(f"FAIL mapped from site-packages but not from this wheel: {path}")
    return ok


def _probe_unrepaired(spec: dict[str, Any], lines: list[str]) -> bool:
    ok = True
    for module in spec["modules"]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            lines.append(f"{module}: ImportError: {exc}")
            if module == spec["main_module"] and "cannot open shared object file" not in str(exc):
                ok = False
                lines.append(f"FAIL {module} failed for another reason than a missing library")
        else:
            lines.append(f"{module}: imported")
            if module == spec["main_module"]:
                ok = False
                lines.append(f"FAIL {module} imported without its libraries")
    return ok


def mapped_libraries() -> set[str]:
    """Real paths of the shared objects mapped into this process."""
    paths: set[str] = set()
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) < 6:
                continue
            path = fields[5].strip()
            if path.startswith("/") and ".so" in os.path.basename(path):
                paths.add(os.path.realpath(path))
    return paths


def _system_dirs() -> list[str]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = []
    for base in ("/lib", "/usr/lib"):
        if multiarch:
            dirs.append(f"{base}/{multiarch}")
        dirs.append(base)
    return [*dirs, "/lib64", "/usr/lib64"]


def _policy_paths(sonames: list[str]) -> set[str]:
    """Where this root's loader finds the libraries the policy allows."""
    found = set()
    for soname in sonames:
        for directory in _system_dirs():
            path = os.path.join(directory, soname)
            if os.path.exists(path):
                found.add(os.path.realpath(path))
    return found


def _needed_closure(paths: list[str]) -> set[str]:
    """Real paths of the libraries ``paths`` need, transitively, from the system dirs."""
    seen: set[str] = set()
    todo = list(paths)
    while todo:
        for name in dt_needed(todo.pop()):
            for directory in _system_dirs():
                candidate = os.path.join(directory, name)
                if os.path.exists(candidate):
                    real = os.path.realpath(candidate)
                    if real not in seen:
                        seen.add(real)
                        todo.append(real)
                    break
    return seen


def dt_needed(path: str) -> list[str]:
    """The DT_NEEDED names of a 64-bit little-endian ELF file ([] for anything else)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    dynamic = None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    needed: list[int] = []
    strtab = None
    for i in range(dynamic[1] // 16):
        tag, value = struct.unpack_from("<qQ", data, dynamic[0] + 16 * i)
        if tag == 0:
            break
        if tag == 1:
            needed.append(value)
        elif tag == 5:
            strtab = value
    if strtab is None:
        return []
    base = next((off + strtab - va for va, off, size in loads if va <= strtab < va + size), None)
    if base is None:
        return []
    return [data[base + n : data.index(b"\0", base + n)].decode() for n in needed]


# --- exercises: use each library for real ------------------------------------------------

YAML_DOC = "name: manywheel\nlist: [1, 2.5, true, null]\nnested: {a: [x, y]}\n"


def exercise_pyyaml(lines: list[str]) -> None:
    yaml = importlib.import_module("yaml")
    cyaml = importlib.import_module("yaml._yaml")

    assert yaml.__with_libyaml__, "yaml.__with_libyaml__ is False"
    loader = yaml.CSafeLoader(YAML_DOC)
    assert isinstance(loader, cyaml.CParser), type(loader).__mro__
    data = loader.get_single_data()
    loader.dispose()
    expected = {"name": "manywheel", "list": [1, 2.5, True, None], "nested": {"a": ["x", "y"]}}
    assert data == expected, data
    text = yaml.dump(data, Dumper=yaml.CSafeDumper)
    assert yaml.load(text, Loader=yaml.CSafeLoader) == expected, text
    lines.append(
        f"yaml: __with_libyaml__ True, CSafeLoader is a CParser, round-trip ok "
        f"(libyaml {cyaml.get_version_string()})"
    )


XSLT = """<xsl:stylesheet version="1.0"
  xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:math="http://exslt.org/math"
  extension-element-prefixes="math">
  <xsl:template match="/">
    <out max="{math:max(//n)}">
      <xsl:for-each select="//n"><xsl:sort data-type="number"/><v><xsl:value-of select="."/></v>
      </xsl:for-each>
    </out>
  </xsl:template>
</xsl:stylesheet>"""


def exercise_lxml(lines: list[str]) -> None:
    etree = importlib.import_module("lxml.etree")

    doc = etree.XML("<r><n>3</n><n>1</n><n>2</n></r>")
    result = etree.XSLT(etree.XML(XSLT))(doc)
    root = result.getroot()
    assert root.get("max") == "3", etree.tostring(result)
    assert [v.text for v in root.iter("v")] == ["1", "2", "3"], etree.tostring(result)
    utf16 = "<?xml version='1.0' encoding='UTF-16'?><t>\u00e9\u4e2d</t>".encode("utf-16")
    assert etree.XML(utf16).text == "\u00e9\u4e2d"
    lines.append(
        "lxml: XSLT transform with an EXSLT function ok, UTF-16 parse ok "
        f"(libxml2 {etree.LIBXML_VERSION}, libxslt {etree.LIBXSLT_VERSION})"
    )


def exercise_greet(lines: list[str]) -> None:
    text = importlib.import_module("_greet").hello("e2e")
    assert text == "hello, e2e, from libgreet", text
    lines.append(f"_greet.hello: {text!r}")


EXERCISES: dict[str, Callable[[list[str]], None]] = {
    "pyyaml": exercise_pyyaml,
    "lxml": exercise_lxml,
    "greet": exercise_greet,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("session", "probe"):
        print("usage: inroot_check.py session SPEC | probe PROBE", file=sys.stderr)
        return 2
    return session(argv[2]) if argv[1] == "session" else probe(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
