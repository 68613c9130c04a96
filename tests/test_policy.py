"""Tests of the policy data and its loader (manywheel.policy, tools/derive_policies.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from manywheel.errors import UsageError
from manywheel.policy import PolicySet, SymbolVersion, load_policies, version_tuple

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ROOT / "src" / "manywheel" / "policies"


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies()


def _derive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "derive_policies", ROOT / "tools" / "derive_policies.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_derivation_reproduces_committed_json_byte_for_byte() -> None:
    built = _derive_module().build()
    assert sorted(built) == ["manylinux.json", "musllinux.json"]
    for name, text in built.items():
        assert (BUILTIN / name).read_text(encoding="utf-8") == text, name


def test_all_families_and_names(policies: PolicySet) -> None:
    assert [p.name for p in policies.family("manylinux")] == [
        "manylinux_2_5",
        "manylinux_2_12",
        "manylinux_2_17",
        "manylinux_2_24",
        "manylinux_2_26",
        "manylinux_2_27",
        "manylinux_2_28",
        "manylinux_2_31",
        "manylinux_2_34",
        "manylinux_2_35",
        "manylinux_2_36",
        "manylinux_2_37",
        "manylinux_2_38",
        "manylinux_2_39",
        "manylinux_2_40",
        "manylinux_2_41",
    ]
    assert [p.name for p in policies.family("musllinux")] == ["musllinux_1_1", "musllinux_1_2"]


def test_aliases_and_linux(policies: PolicySet) -> None:
    assert policies.get("manylinux1").name == "manylinux_2_5"
    assert policies.get("manylinux2010").name == "manylinux_2_12"
    assert policies.get("manylinux2014").name == "manylinux_2_17"
    linux = policies.get("linux")
    assert not linux.portable
    assert linux.priority == 0
    assert min(p.priority for p in policies) == 0
    assert list(policies)[-1] is linux
    assert "manylinux2014" in policies
    assert "manylinux2099" not in policies
    with pytest.raises(UsageError, match=r"^unknown policy 'manylinux2099' \(known: "):
        policies.get("manylinux2099")


def test_glibc_versions_follow_the_release(policies: PolicySet) -> None:
    m2010, m2014 = policies.get("manylinux2010"), policies.get("manylinux2014")
    assert not m2010.allows_symbol_version("GLIBC_2.14", "x86_64")
    assert m2014.allows_symbol_version("GLIBC_2.14", "x86_64")
    assert not m2014.allows_symbol_version("GLIBC_2.18", "x86_64")
    assert m2014.max_version("GLIBC", "x86_64") == "2.17"
    # x86_64's baseline is GLIBC_2.2.5: there is no GLIBC_2.0/2.1 node on it.
    assert not m2014.allows_symbol_version("GLIBC_2.1", "x86_64")
    assert m2014.allows_symbol_version("GLIBC_2.1", "i686")
    # aarch64 starts at 2.17; GLIBC_PRIVATE is never allowed.
    assert sorted(m2014.allowed_versions("GLIBC", "aarch64") or ()) == ["2.17"]
    assert not policies.get("manylinux_2_41").allows_symbol_version("GLIBC_PRIVATE", "x86_64")
    # glibc 2.37 added no node on x86_64, 2.36 added GLIBC_ABI_DT_RELR.
    m237 = policies.get("manylinux_2_37")
    assert m237.max_version("GLIBC", "x86_64") == "2.36"
    assert m237.allows_symbol_version("GLIBC_ABI_DT_RELR", "x86_64")
    assert not policies.get("manylinux_2_35").allows_symbol_version("GLIBC_ABI_DT_RELR", "x86_64")


def test_toolchain_versions_match_the_peps(policies: PolicySet) -> None:
    m1, m2010, m2014 = (policies.get(n) for n in ("manylinux1", "manylinux2010", "manylinux2014"))
    # PEP 513: GLIBCXX_3.4.9, CXXABI_1.3.1, GCC_4.2.0.
    assert m1.max_version("GLIBCXX", "x86_64") == "3.4.9"
    assert m1.max_version("CXXABI", "x86_64") == "1.3.1"
    assert m1.max_version("GCC", "i686") == "4.2.0"
    # PEP 571: GLIBCXX_3.4.13, CXXABI_1.3.3, GCC_4.5.0 (i686 has 4.4.0/4.5.0 nodes).
    assert m2010.max_version("GLIBCXX", "x86_64") == "3.4.13"
    assert m2010.max_version("CXXABI", "x86_64") == "1.3.3"
    assert m2010.max_version("GCC", "i686") == "4.5.0"
    assert m2010.max_version("GCC", "x86_64") == "4.3.0"
    # PEP 599: GLIBCXX_3.4.19, CXXABI_1.3.7 and CXXABI_TM_1, GCC_4.8.0.
    assert m2014.max_version("GLIBCXX", "x86_64") == "3.4.19"
    assert m2014.allows_symbol_version("CXXABI_TM_1", "x86_64")
    assert not m2014.allows_symbol_version("CXXABI_1.3.8", "x86_64")
    assert m2014.max_version("GCC", "x86_64") == "4.8.0"
    assert not m2014.allows_symbol_version("CXXABI_FLOAT128", "x86_64")
    assert m2014.allows_symbol_version("GLIBCXX_LDBL_3.4.10", "ppc64le")
    assert not m2014.allows_symbol_version("GLIBCXX_LDBL_3.4.10", "x86_64")


def test_newer_reference_with_older_toolchain_lowers_older_policy(policies: PolicySet) -> None:
    # Debian 9 (2.24) ships zlib 1.2.8 but Amazon Linux 2 (2.26) only 1.2.7: ZLIB_1.2.7.1
    # must wait until manylinux_2_27.
    assert not policies.get("manylinux_2_24").allows_symbol_version("ZLIB_1.2.7.1", "x86_64")
    assert policies.get("manylinux_2_27").allows_symbol_version("ZLIB_1.2.7.1", "x86_64")


def test_unknown_prefixes_do_not_constrain(policies: PolicySet) -> None:
    m1 = policies.get("manylinux1")
    assert m1.allows_symbol_version("OPENSSL_3.0.0", "x86_64")
    assert m1.allowed_versions("OPENSSL", "x86_64") is None
    assert m1.allows_symbol_version("unversioned", "x86_64")


def test_libraries(policies: PolicySet) -> None:
    m1, m2010 = policies.get("manylinux1"), policies.get("manylinux2010")
    assert m1.allows_library("libc.so.6", "x86_64")
    assert m1.allows_library("ld-linux-x86-64.so.2", "x86_64")
    assert not m1.allows_library("ld-linux-x86-64.so.2", "i686")
    assert not m1.allows_library("libexpat.so.1", "x86_64")
    assert m2010.allows_library("libexpat.so.1", "x86_64")
    assert not policies.get("manylinux_2_17").allows_library("libmvec.so.1", "x86_64")
    assert policies.get("manylinux_2_24").allows_library("libmvec.so.1", "x86_64")
    assert not m1.allows_library("libcrypt.so.1", "x86_64")
    assert not m1.allows_library("libc.so.6", "aarch64")  # no manylinux1 for aarch64
    assert policies.linux.allows_library("libanything.so", "x86_64")


def test_arches(policies: PolicySet) -> None:
    assert policies.get("manylinux1").arches == {"x86_64", "i686"}
    assert policies.get("manylinux2014").arches == {
        "x86_64",
        "i686",
        "aarch64",
        "armv7l",
        "ppc64",
        "ppc64le",
        "s390x",
    }
    assert "riscv64" not in policies.get("manylinux_2_26").arches
    assert "riscv64" in policies.get("manylinux_2_27").arches
    assert "loongarch64" not in policies.get("manylinux_2_35").arches
    assert "loongarch64" in policies.get("manylinux_2_36").arches
    assert policies.get("manylinux_2_17").tag("aarch64") == "manylinux_2_17_aarch64"
    assert [p.name for p in policies.for_arch("riscv64", "glibc")][:2] == [
        "manylinux_2_27",
        "manylinux_2_28",
    ]


def test_blacklists(policies: PolicySet) -> None:
    m2014, m224 = policies.get("manylinux2014"), policies.get("manylinux_2_24")
    assert "__cxa_thread_atexit_impl" in m2014.blacklisted("libc.so.6")
    assert m224.blacklisted("libc.so.6") == frozenset()
    assert "_tr_init" in policies.get("manylinux_2_41").blacklisted("libz.so.1")
    assert "uncompress2" in m224.blacklisted("libz.so.1")
    assert "uncompress2" not in policies.get("manylinux_2_27").blacklisted("libz.so.1")


def test_musllinux(policies: PolicySet) -> None:
    m11, m12 = policies.get("musllinux_1_1"), policies.get("musllinux_1_2")
    assert m11.libc == m12.libc == "musl"
    assert m11.allows_library("libc.musl-x86_64.so.1", "x86_64")
    assert m11.allows_library("libc.musl-x86.so.1", "i686")
    assert m11.allows_library("libc.musl-armv7.so.1", "armv7l")
    assert m11.allows_library("libpthread.so.0", "x86_64")  # satisfied by musl itself
    assert not m11.allows_library("libstdc++.so.6", "x86_64")
    assert not m11.allows_library("libgcc_s.so.1", "x86_64")
    assert m11.interpreters["aarch64"] == "/lib/ld-musl-aarch64.so.1"
    assert "riscv64" not in m11.arches
    assert {"riscv64", "loongarch64"} <= m12.arches
    assert policies.for_arch("x86_64", "musl")[0] is m11


@pytest.mark.parametrize(
    ("name", "prefix", "version", "flavour", "numbers"),
    [
        ("GLIBC_2.17", "GLIBC", "2.17", "", (2, 17)),
        ("GLIBC_2.2.5", "GLIBC", "2.2.5", "", (2, 2, 5)),
        ("GLIBCXX_LDBL_3.4.21", "GLIBCXX", "LDBL_3.4.21", "LDBL", (3, 4, 21)),
        ("CXXABI_TM_1", "CXXABI", "TM_1", "TM", (1,)),
        ("CXXABI_FLOAT128", "CXXABI", "FLOAT128", "FLOAT128", ()),
        ("GLIBC_ABI_DT_RELR", "GLIBC", "ABI_DT_RELR", "ABI_DT_RELR", ()),
    ],
)
def test_symbol_version_parse(
    name: str, prefix: str, version: str, flavour: str, numbers: tuple[int, ...]
) -> None:
    parsed = SymbolVersion.parse(name)
    assert parsed is not None
    assert (parsed.prefix, parsed.version, parsed.flavour, parsed.numbers) == (
        prefix,
        version,
        flavour,
        numbers,
    )


def test_symbol_versions_compare_as_tuples() -> None:
    a, b = SymbolVersion.parse("GLIBC_2.9"), SymbolVersion.parse("GLIBC_2.17")
    assert a is not None and b is not None
    assert a.sort_key < b.sort_key
    assert version_tuple("2.9") < version_tuple("2.17")
    assert SymbolVersion.parse("nounderscore") is None
    with pytest.raises(ValueError, match="not a dotted version"):
        version_tuple("2.x")


# ------------------------------------------------------------------ user policy files


def _user_file(tmp_path: Path, policy: dict[str, object], family: str = "manylinux") -> Path:
    path = tmp_path / "inhouse.json"
    path.write_text(
        json.dumps({"format": 1, "family": family, "policies": [policy]}), encoding="utf-8"
    )
    return path


def test_user_policy_missing_field_is_one_exact_line(tmp_path: Path) -> None:
    path = _user_file(tmp_path, {"name": "manylinux_2_42", "version": [2, 42], "priority": 10})
    with pytest.raises(UsageError) as err:
        load_policies([path])
    assert str(err.value) == f"{path}: policy 'manylinux_2_42': missing field 'arches'"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"name": "manylinux_2_42", "version": [2, 41], "priority": 10, "arches": ["x86_64"]},
            "policy 'manylinux_2_42': field 'version': [2, 41] does not match the name",
        ),
        (
            {"name": "manylinux_2_42", "version": [2, 42], "priority": 10, "arches": ["vax"]},
            "policy 'manylinux_2_42': field 'arches': unknown architecture 'vax'",
        ),
        (
            {
                "name": "manylinux_2_42",
                "version": [2, 42],
                "priority": "10",
                "arches": ["x86_64"],
            },
            "policy 'manylinux_2_42': field 'priority' must be an integer",
        ),
        (
            {
                "name": "manylinux_2_42",
                "version": [2, 42],
                "priority": 10,
                "arches": ["x86_64"],
                "colour": "blue",
            },
            "policy 'manylinux_2_42': unknown field 'colour'",
        ),
        (
            {
                "name": "manylinux_2_42",
                "extends": "manylinux_2_99",
                "version": [2, 42],
                "priority": 10,
                "arches": ["x86_64"],
            },
            "policy 'manylinux_2_42': field 'extends': unknown policy 'manylinux_2_99'",
        ),
    ],
)
def test_user_policy_field_errors(tmp_path: Path, policy: dict[str, object], message: str) -> None:
    path = _user_file(tmp_path, policy)
    with pytest.raises(UsageError) as err:
        load_policies([path])
    assert str(err.value) == f"{path}: {message}"


def test_user_file_level_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match=r"bad\.json: not valid JSON: .* \(line 1\)$"):
        load_policies([bad])
    with pytest.raises(UsageError, match=r"missing\.json: cannot read policy file: "):
        load_policies([tmp_path / "missing.json"])
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": 1, "family": "bsd", "policies": []}), "utf-8")
    with pytest.raises(UsageError) as err:
        load_policies([wrong])
    assert str(err.value) == f"{wrong}: field 'family': unknown family 'bsd'"


def test_user_policy_extending_the_newest_is_accepted(tmp_path: Path) -> None:
    path = _user_file(
        tmp_path,
        {
            "name": "manylinux_2_42",
            "extends": "manylinux_2_41",
            "version": [2, 42],
            "priority": 10,
            "arches": ["x86_64", "aarch64"],
            "libraries": {"*": ["libinhouse.so.3"]},
            "symbol_versions": {"GLIBC": {"x86_64": ["2.42"]}},
        },
    )
    policies = load_policies([path])
    new = policies.get("manylinux_2_42")
    assert new.source == str(path)
    assert new.allows_library("libinhouse.so.3", "x86_64")
    assert new.allows_library("libc.so.6", "aarch64")
    assert new.allows_symbol_version("GLIBC_2.42", "x86_64")
    assert new.allows_symbol_version("GLIBC_2.41", "aarch64")
    assert not new.allows_symbol_version("GLIBC_2.42", "aarch64")
    assert new.arches == {"x86_64", "aarch64"}


def test_monotonicity_violation_is_detected(tmp_path: Path) -> None:
    # An in-house override of manylinux_2_28 that admits a library manylinux_2_31 does not.
    builtin = load_policies().get("manylinux_2_28")
    path = _user_file(
        tmp_path,
        {
            "name": "manylinux_2_28",
            "extends": "manylinux_2_27",
            "version": [2, 28],
            "priority": builtin.priority,
            "arches": sorted(builtin.arches),
            "libraries": {"*": ["libinhouse.so.3"]},
            "symbol_versions": {
                p: {a: sorted(v) for a, v in per.items()}
                for p, per in builtin.symbol_versions.items()
            },
        },
    )
    with pytest.raises(UsageError) as err:
        load_policies([path])
    assert str(err.value) == (
        "<builtin>/manylinux.json: policy 'manylinux_2_31': field 'libraries': aarch64: "
        "drops libinhouse.so.3 that older 'manylinux_2_28' allows"
    )


def test_monotonicity_of_symbol_versions_is_detected(tmp_path: Path) -> None:
    newest = load_policies().get("manylinux_2_41")
    versions = {p: {"x86_64": sorted(per["x86_64"])} for p, per in newest.symbol_versions.items()}
    versions["GLIBC"]["x86_64"] = ["2.2.5"]
    path = _user_file(
        tmp_path,
        {
            "name": "manylinux_2_42",
            "version": [2, 42],
            "priority": 10,
            "arches": ["x86_64"],
            "libraries": {"*": sorted(newest.libraries_for("x86_64"))},
            "symbol_versions": versions,
        },
    )
    with pytest.raises(UsageError) as err:
        load_policies([path])
    assert str(err.value) == (
        f"{path}: policy 'manylinux_2_42': field 'symbol_versions': x86_64: "
        "drops GLIBC_2.2.6 that older 'manylinux_2_41' allows"
    )


def test_alias_clash_is_detected(tmp_path: Path) -> None:
    path = _user_file(
        tmp_path,
        {
            "name": "manylinux_2_42",
            "extends": "manylinux_2_41",
            "aliases": ["manylinux2014"],
            "version": [2, 42],
            "priority": 10,
            "arches": sorted(load_policies().get("manylinux_2_41").arches),
        },
    )
    with pytest.raises(UsageError, match=r"'manylinux2014' is already used by 'manylinux_2_17'"):
        load_policies([path])


# ------------------------------------------------------------- against a real system

_GLIBC_LIBS = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libnsl.so.1",
    "libmvec.so.1",
    "ld-linux-x86-64.so.2",
)


def _defined_versions(path: Path) -> set[str]:
    out = subprocess.run(
        ["readelf", "--version-info", "--wide", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    section = out.split("Version definition section", 1)[-1].split("Version needs section")[0]
    names = set(re.findall(r"Name: (\S+)", section))
    names.discard(path.name)  # the BASE definition is the file's own soname
    return names


def test_manylinux_2_36_matches_this_debian_12_glibc(policies: PolicySet) -> None:
    libdir = Path("/lib/x86_64-linux-gnu")
    libc = libdir / "libc.so.6"
    if shutil.which("readelf") is None or not libc.exists():
        pytest.skip("needs readelf and an x86_64 glibc in /lib/x86_64-linux-gnu")
    defined: set[str] = set()
    for name in _GLIBC_LIBS:
        if (libdir / name).exists():
            defined |= _defined_versions(libdir / name)
    real = {v.removeprefix("GLIBC_") for v in defined if v.startswith("GLIBC_")}
    real.discard("PRIVATE")
    newest = max((v for v in real if re.fullmatch(r"\d+\.\d+", v)), key=version_tuple)
    if newest != "2.36":
        pytest.skip(f"this glibc defines up to GLIBC_{newest}, not 2.36")
    policy = policies.get("manylinux_2_36")
    assert set(policy.allowed_versions("GLIBC", "x86_64") or ()) == real
    # Debian 12 is the reference of manylinux_2_36: its gcc 12 runtime and zlib too.
    for soname, prefixes in (
        ("libstdc++.so.6", ("GLIBCXX", "CXXABI")),
        ("libgcc_s.so.1", ("GCC",)),
        ("libz.so.1", ("ZLIB",)),
    ):
        if not (libdir / soname).exists():
            continue
        versions = _defined_versions(libdir / soname)
        for prefix in prefixes:
            mine = {v.removeprefix(prefix + "_") for v in versions if v.startswith(prefix + "_")}
            assert set(policy.allowed_versions(prefix, "x86_64") or ()) == mine, soname


def test_extra_files_do_not_leak_into_the_cached_builtins(tmp_path: Path) -> None:
    builtin = load_policies().get("manylinux_2_41")
    path = _user_file(
        tmp_path,
        {
            "name": "manylinux_2_42",
            "extends": "manylinux_2_41",
            "version": [2, 42],
            "priority": 10,
            "arches": ["x86_64"],
        },
    )
    assert "manylinux_2_42" in load_policies([path])
    again = load_policies()
    assert "manylinux_2_42" not in again
    assert again.get("manylinux_2_41") is builtin  # parsed once per process
