"""`manywheel show`, `check` and `policies`: renderings, the check judgment, the CLI.

Two layers:

* renderer and judgment tests on hand-built :class:`WheelReport` values (plain
  dataclasses: the contract of report.py), which pin the text layout exactly;
* end-to-end tests that compile extensions at test time, pack them into real wheels
  (``wheelbuild.py``) whose content forces one verdict each, and run the command line
  as a user would, asserting the exact evidence in text and JSON and validating the
  JSON against ``schemas/report.schema.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures import (
    CSRC,
    FixtureBuilder,
    FixtureSet,
    Toolchain,
    compile_shared,
    find_toolchain,
    musl_toolchain,
    native_toolchain,
)
from manywheel import check, render
from manywheel.errors import UsageError
from manywheel.policy import load_policies
from manywheel.report import (
    SCHEMA_VERSION,
    ElfMemberInfo,
    Evidence,
    ExternalLibrary,
    PolicyVerdict,
    WheelIdentity,
    WheelReport,
)
from test_cli import assert_one_line_error, manywheel
from wheelbuild import build_wheel, record_hash

SCHEMAS = Path(__file__).resolve().parent.parent / "src" / "manywheel" / "schemas"
EXT = "demo/_ext.cpython-311-x86_64-linux-gnu.so"


def validate(doc: dict[str, Any], schema_name: str = "report.schema.json") -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / schema_name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


# --------------------------------------------------------------------------- hand-built


def sym(file: str, symbol: str, version: str, library: str = "libc.so.6") -> Evidence:
    return Evidence(
        kind="symbol-version",
        file=file,
        text=f"{file} imports {symbol}@{version} from {library}",
        symbol=symbol,
        version=version,
        library=library,
    )


def ext_lib(file: str, soname: str, found_at: str) -> Evidence:
    return Evidence(
        kind="external-library",
        file=file,
        text=f"{file} needs {soname}, which is not part of the policy",
        library=soname,
        chain=(file, soname),
        found_at=found_at,
    )


def verdict(
    policy: str,
    ok: bool,
    evidence: tuple[Evidence, ...] = (),
    aliases: tuple[str, ...] = (),
    after: tuple[Evidence, ...] | None = None,
) -> PolicyVerdict:
    after_evidence = tuple(e for e in evidence if e.kind != "external-library")
    if after is not None:
        after_evidence = after
    return PolicyVerdict(
        policy=policy,
        aliases=aliases,
        tag=f"{policy}_x86_64",
        ok=ok,
        evidence=evidence,
        ok_after_repair=not after_evidence,
        evidence_after_repair=after_evidence,
    )


def make_report(
    *,
    platform_tags: tuple[str, ...] = ("linux_x86_64",),
    verdicts: tuple[PolicyVerdict, ...] = (),
    best: str | None = None,
    repair: str | None = None,
    external: tuple[ExternalLibrary, ...] = (),
    consistency: tuple[Evidence, ...] = (),
    problems: tuple[Evidence, ...] = (),
    notes: tuple[str, ...] = (),
) -> WheelReport:
    plat = ".".join(platform_tags)
    return WheelReport(
        schema_version=SCHEMA_VERSION,
        wheel=WheelIdentity(
            filename=f"demo-1.0-cp311-cp311-{plat}.whl",
            name="demo",
            version="1.0",
            build=None,
            filename_tags=tuple(f"cp311-cp311-{p}" for p in platform_tags),
            wheel_tags=tuple(f"cp311-cp311-{p}" for p in platform_tags),
            platform_tags=platform_tags,
            root_is_purelib=False,
            pure=False,
        ),
        libc="glibc",
        arch="x86_64",
        libc_arch_source="PT_INTERP",
        members=(
            ElfMemberInfo(
                path=EXT,
                arch="x86_64",
                is_extension=True,
                soname=None,
                needed=("libalpha.so.1", "libc.so.6"),
                internal_needed={},
                x86_isa_level=None,
                error=None,
            ),
        ),
        external=external,
        unreachable_libraries=(),
        verdicts=verdicts,
        best_tag=best,
        repair_tag=repair,
        consistency=consistency,
        problems=problems,
        notes=notes,
    )


ALPHA = ExternalLibrary(
    soname="libalpha.so.1",
    path="/opt/x/libalpha.so.1",
    realpath="/opt/x/libalpha.so.1",
    rule=f"rpath of {EXT}",
    chains=((EXT, "libalpha.so.1"),),
    tried=(),
    excluded=False,
    allowed_by=None,
)
LIBC = ExternalLibrary(
    soname="libc.so.6",
    path="/lib/x86_64-linux-gnu/libc.so.6",
    realpath="/lib/x86_64-linux-gnu/libc.so.6",
    rule="ld.so.cache",
    chains=((EXT, "libc.so.6"),),
    tried=(),
    excluded=False,
    allowed_by="manylinux_2_5",
)


def typical_report() -> WheelReport:
    """An extension needing libalpha (external) and memcpy@GLIBC_2.14 and a 2.17 symbol."""
    alpha = ext_lib(EXT, "libalpha.so.1", "/opt/x/libalpha.so.1")
    s14 = sym(EXT, "memcpy", "GLIBC_2.14")
    s17 = sym(EXT, "clock_gettime", "GLIBC_2.17")
    return make_report(
        platform_tags=("manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        verdicts=(
            verdict("manylinux_2_5", False, (alpha, s17, s14), aliases=("manylinux1",)),
            verdict("manylinux_2_12", False, (s17, alpha, s14), aliases=("manylinux2010",)),
            verdict("manylinux_2_17", False, (alpha,), aliases=("manylinux2014",)),
            verdict("manylinux_2_28", False, (alpha,)),
            verdict("linux", True),
        ),
        best="linux_x86_64",
        repair="manylinux_2_17_x86_64",
        external=(LIBC, ALPHA),
    )


def test_show_text_is_exact() -> None:
    text = render.render_show(typical_report())
    assert text == (
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl\n"
        "  content:   glibc x86_64 (from PT_INTERP), 1 ELF file, 1 extension module\n"
        "  claims:    manylinux_2_17_x86_64, manylinux2014_x86_64\n"
        "  satisfies: linux_x86_64\n"
        "  repair:    manylinux_2_17_x86_64 (alias manylinux2014_x86_64)\n"
        "  manylinux_2_28_x86_64 (next more compatible) is blocked by:\n"
        "    libraries from outside the wheel that the policy does not allow:\n"
        f"      {EXT} needs libalpha.so.1, which is not part of the policy\n"
        "        found at /opt/x/libalpha.so.1\n"
        "  after repair, manylinux_2_12_x86_64 is still blocked by:\n"
        "    symbol versions too new:\n"
        f"      {EXT} imports memcpy@GLIBC_2.14 from libc.so.6\n"
        f"      {EXT} imports clock_gettime@GLIBC_2.17 from libc.so.6\n"
        "  libraries from outside the wheel:\n"
        f"    libalpha.so.1: /opt/x/libalpha.so.1 (rpath of {EXT}); repair grafts it\n"
        f"      needed by {EXT}\n"
        "    allowed from manylinux_2_5 on: libc.so.6\n"
    )


def test_show_text_has_no_python_reprs() -> None:
    text = render.render_show(typical_report())
    for marker in ("(", "[", "{", "'", "None", "Evidence", "frozenset"):
        for line in text.splitlines():
            if marker in {"(", "["}:
                continue
            assert marker not in line, line
    assert "()" not in text and "[]" not in text and "{}" not in text


def test_symbols_one_file_imports_at_one_version_from_one_library_share_a_line() -> None:
    """The text groups what JSON lists one by one: a file's too-new symbols of one
    version from one library on one line, sorted; anything else keeps its own line."""
    items = [
        sym("a.so", "powf", "GLIBC_2.27", "libm.so.6"),
        sym("a.so", "expf", "GLIBC_2.27", "libm.so.6"),
        sym("a.so", "memcpy", "GLIBC_2.14"),
        sym("a.so", "logf", "GLIBC_2.27", "libm.so.6"),
        sym("b.so", "expf", "GLIBC_2.27", "libm.so.6"),
        sym("a.so", "expf", "GLIBC_2.29", "libm.so.6"),
        dataclasses.replace(
            sym("c.so", "x", "GLIBC_2.27", "libm.so.6"), found_at="/lib/libm.so.6 via z"
        ),
        dataclasses.replace(
            sym("c.so", "y", "GLIBC_2.27", "libm.so.6"), found_at="/lib/libm.so.6 via z"
        ),
    ]
    assert render.evidence_lines(items) == [
        "symbol versions too new:",
        "  a.so imports memcpy@GLIBC_2.14 from libc.so.6",
        "  a.so imports 3 symbols at GLIBC_2.27 from libm.so.6: expf, logf, powf",
        "  a.so imports expf@GLIBC_2.29 from libm.so.6",
        "  b.so imports expf@GLIBC_2.27 from libm.so.6",
        "  c.so imports x@GLIBC_2.27 from libm.so.6",
        "    found at /lib/libm.so.6 via z",
        "  c.so imports y@GLIBC_2.27 from libm.so.6",
        "    found at /lib/libm.so.6 via z",
    ]


def test_evidence_sorted_by_version_not_text_and_grouped_in_fixed_order() -> None:
    items = [
        sym("b.so", "x", "GLIBC_2.17"),
        Evidence(kind="isa-level", file="a.so", text="a.so needs x86-64-v3"),
        sym("b.so", "x", "GLIBC_2.9"),
        Evidence(kind="new-kind", file="a.so", text="something new"),
        ext_lib("a.so", "libq.so", "/q/libq.so"),
    ]
    assert render.evidence_lines(items) == [
        "libraries from outside the wheel that the policy does not allow:",
        "  a.so needs libq.so, which is not part of the policy",
        "    found at /q/libq.so",
        "symbol versions too new:",
        "  b.so imports x@GLIBC_2.9 from libc.so.6",
        "  b.so imports x@GLIBC_2.17 from libc.so.6",
        "instruction set above the architecture baseline:",
        "  a.so needs x86-64-v3",
        "new-kind:",
        "  something new",
    ]


def test_evidence_chain_and_tried_are_shown_once() -> None:
    chained = Evidence(
        kind="library-not-found",
        file="a.so",
        text="a.so needs libgone.so.2, not found",
        library="libgone.so.2",
        chain=("a.so", "libmid.so", "libgone.so.2"),
        tried=("/usr/lib/libgone.so.2", "/lib/libgone.so.2"),
    )
    assert render.evidence_lines([chained, chained], depth=1) == [
        "  libraries not found:",
        "    a.so needs libgone.so.2, not found",
        "      via a.so -> libmid.so -> libgone.so.2",
        "      tried /usr/lib/libgone.so.2, /lib/libgone.so.2",
    ]


def test_show_most_compatible_tag_reached() -> None:
    report = make_report(
        platform_tags=("manylinux_2_5_x86_64",),
        verdicts=(verdict("manylinux_2_5", True, aliases=("manylinux1",)), verdict("linux", True)),
        best="manylinux_2_5_x86_64",
        repair="manylinux_2_5_x86_64",
        notes=("RECORD uses sha256",),
    )
    text = render.render_show(report)
    assert "  satisfies: manylinux_2_5_x86_64 (alias manylinux1_x86_64)\n" in text
    assert "  repair:    manylinux_2_5_x86_64 (alias manylinux1_x86_64) (same as now)\n" in (text)
    assert "  no more compatible tag exists\n" in text
    assert text.endswith("  notes:\n    RECORD uses sha256\n")


def test_show_many_separates_blocks_with_one_blank_line() -> None:
    one = render.render_show(typical_report())
    assert render.render_show_many([typical_report(), typical_report()]) == one + "\n" + one


def test_json_document_shape_and_schema() -> None:
    report = typical_report()
    doc = render.document_to_json([report])
    validate(doc)
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["command"] == "show"
    assert "checks" not in doc
    [data] = doc["reports"]
    assert data == json.loads(json.dumps(dataclasses.asdict(report)))
    assert data["verdicts"][2]["evidence"][0]["chain"] == [EXT, "libalpha.so.1"]


def test_json_check_document_validates() -> None:
    policies = load_policies()
    report = typical_report()
    result = check.check_report(report, policies)
    doc = render.document_to_json([report], [result])
    validate(doc)
    assert doc["command"] == "check"
    assert doc["ok"] is False
    assert doc["checks"][0]["tags"][1] == {
        "tag": "manylinux2014_x86_64",
        "policy": "manylinux_2_17",
        "ok": False,
        "evidence": [json.loads(json.dumps(dataclasses.asdict(report.verdicts[2].evidence[0])))],
        "reason": None,
    }


def test_schema_rejects_check_members_in_show_documents() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = render.document_to_json([typical_report()])
    doc["ok"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


# --------------------------------------------------------------------------- judgment


def test_check_claimed_tags_and_aliases() -> None:
    policies = load_policies()
    result = check.check_report(typical_report(), policies)
    assert not result.ok
    assert [(c.tag, c.policy, c.ok) for c in result.tags] == [
        ("manylinux_2_17_x86_64", "manylinux_2_17", False),
        ("manylinux2014_x86_64", "manylinux_2_17", False),
    ]
    ok = check.check_report(typical_report(), policies, check.parse_plat("linux_x86_64", policies))
    assert ok.ok
    assert [(c.tag, c.ok) for c in ok.tags] == [("linux_x86_64", True)]


def test_check_text_lists_the_reasons() -> None:
    policies = load_policies()
    text = render.render_check([check.check_report(typical_report(), policies)])
    assert text == (
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl: failed "
        "(manylinux_2_17_x86_64, manylinux2014_x86_64)\n"
        "  manylinux_2_17_x86_64 is not satisfied:\n"
        "    libraries from outside the wheel that the policy does not allow:\n"
        f"      {EXT} needs libalpha.so.1, which is not part of the policy\n"
        "        found at /opt/x/libalpha.so.1\n"
        "  manylinux2014_x86_64 is not satisfied:\n"
        "    libraries from outside the wheel that the policy does not allow:\n"
        f"      {EXT} needs libalpha.so.1, which is not part of the policy\n"
        "        found at /opt/x/libalpha.so.1\n"
        "  the content satisfies linux_x86_64; 'manywheel repair' can reach "
        "manylinux_2_17_x86_64\n"
    )


def test_check_fails_on_consistency_and_problems_even_when_tags_pass() -> None:
    policies = load_policies()
    record = Evidence(kind="record", file="demo/x.py", text="demo/x.py: RECORD hash differs")
    report = make_report(
        verdicts=(verdict("linux", True),), best="linux_x86_64", consistency=(record,)
    )
    result = check.check_report(report, policies)
    assert not result.ok
    assert render.render_check([result]) == (
        "demo-1.0-cp311-cp311-linux_x86_64.whl: failed (linux_x86_64)\n"
        "  wheel consistency:\n"
        "    RECORD does not match the archive:\n"
        "      demo/x.py: RECORD hash differs\n"
    )


def test_check_leaves_claim_sentences_to_its_own_tag_checks() -> None:
    """The audit also files "the filename claims X" under consistency; with --plat the
    claims are not the question, and without it each tag is judged with its evidence."""
    policies = load_policies()
    claim = Evidence(
        kind="tag-mismatch",
        file="demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        text="the filename claims manylinux_2_17_x86_64, which the content does not satisfy",
        detail="content",
    )
    report = dataclasses.replace(typical_report(), consistency=(claim,))
    assert check.check_report(report, policies, check.parse_plat("linux_x86_64", policies)).ok
    result = check.check_report(report, policies)
    assert not result.ok and result.consistency == ()
    assert claim.text not in render.render_check([result])


def test_check_tag_of_another_arch_or_libc_says_why() -> None:
    policies = load_policies()
    report = make_report(
        platform_tags=("manylinux_2_17_aarch64", "musllinux_1_2_x86_64", "manylinux_9_9_x86_64"),
        verdicts=(verdict("linux", True),),
        best="linux_x86_64",
    )
    result = check.check_report(report, policies)
    assert [c.reason for c in result.tags] == [
        "manylinux_2_17_aarch64 is for aarch64, the wheel's ELF files are x86_64",
        "musllinux_1_2_x86_64 is a musl tag, the wheel's ELF files need glibc",
        "no known policy defines manylinux_9_9_x86_64",
    ]


@pytest.mark.parametrize(
    ("text", "policy", "arch"),
    [
        ("manylinux_2_17_x86_64", "manylinux_2_17", "x86_64"),
        ("manylinux2014_x86_64", "manylinux_2_17", "x86_64"),
        ("manylinux1_i686", "manylinux_2_5", "i686"),
        ("manylinux2014", "manylinux_2_17", None),
        ("musllinux_1_2_ppc64le", "musllinux_1_2", "ppc64le"),
        ("linux_armv7l", "linux", "armv7l"),
    ],
)
def test_parse_plat_accepts_canonical_alias_and_bare_names(
    text: str, policy: str, arch: str | None
) -> None:
    spec = check.parse_plat(text, load_policies())
    assert (spec.policy, spec.arch) == (policy, arch)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("manylinux_2_99_x86_64", "unknown platform tag 'manylinux_2_99_x86_64' (no policy"),
        ("bogus", "unknown platform tag 'bogus': run 'manywheel policies'"),
        ("manylinux1_aarch64", "manylinux_2_5 is defined for i686, x86_64 only"),
    ],
)
def test_parse_plat_rejects_unknown(text: str, message: str) -> None:
    with pytest.raises(UsageError, match="manywheel policies") as info:
        check.parse_plat(text, load_policies())
    assert message in str(info.value)


# --------------------------------------------------------------------------- policies


def test_policies_text_one_line_each() -> None:
    policies = load_policies()
    lines = render.render_policies(policies).splitlines()
    assert len(lines) == len(policies)
    by_name = {line.split()[0]: " ".join(line.split()) for line in lines}
    assert by_name["manylinux_2_17"] == (
        "manylinux_2_17 alias manylinux2014 glibc 2.17 aarch64 armv7l i686 ppc64 ppc64le "
        "s390x x86_64 GLIBC<=2.17 GLIBCXX<=3.4.19"
    )
    assert lines[-1].split()[0] == "linux"
    assert [line.split()[0] for line in lines[:3]] == [
        "manylinux_2_5",
        "manylinux_2_12",
        "manylinux_2_17",
    ]


def test_policies_json_is_complete() -> None:
    policies = load_policies()
    data = render.policies_to_json(policies)
    validate(data, "policies.schema.json")
    entry = next(p for p in data["policies"] if p["name"] == "manylinux_2_17")
    assert entry["aliases"] == ["manylinux2014"]
    assert entry["symbol_versions"]["GLIBC"]["x86_64"][-1] == "2.17"
    assert "_tr_init" in entry["blacklist"]["libz.so.1"]
    assert "libc.so.6" in entry["libraries"]["*"]


# --------------------------------------------------------------------------- end to end
#
# Every wheel below is built at test time from extensions compiled at test time; each
# one's content forces one verdict, and the tests assert that verdict's exact evidence.


SUFFIX = ".cpython-311-x86_64-linux-gnu.so"
NEWSYM = f"demo/_newsym{SUFFIX}"
ALPHA_EXT = f"demo/_demo{SUFFIX}"
BLK = f"demo/_blk{SUFFIX}"
ZVER = f"demo/_zver{SUFFIX}"
USESTUB = f"demo/_usestub{SUFFIX}"
PLAIN = f"demo/_plain{SUFFIX}"
FOREIGN = "demo/_plain.cpython-311-aarch64-linux-gnu.so"
PURELIB = f"demo-1.0.data/purelib/demo/_plain{SUFFIX}"
STUB_FLAGS = ("-DMANYWHEEL_NO_PYTHON_H",)


@dataclasses.dataclass(frozen=True)
class Built:
    """The extensions and stub libraries the end-to-end wheels are made of."""

    root: Path
    chain_dir: Path  # libalpha.so.1 -> libbeta.so.1 -> libgamma.so.1 (native fixtures)
    zlib_dir: Path  # the libz.so.1 stand-in
    newsym: Path
    alpha_ext: Path
    blk: Path
    zver: Path
    libpython_user: Path
    isa: Path
    plain: Path


@pytest.fixture(scope="module")
def built(native_fixtures: FixtureSet, tmp_path_factory: pytest.TempPathFactory) -> Built:
    tc: Toolchain = native_toolchain()
    if tc.arch != "x86_64":
        pytest.skip("the end-to-end wheels are x86_64 wheels")
    root = tmp_path_factory.mktemp("verdicts")
    zdir = root / "zlib"
    zlib = compile_shared(
        tc,
        ["verdict_zstub.c"],
        zdir / "libz.so.1",
        soname="libz.so.1",
        extra=[f"-Wl,--version-script={CSRC / 'verdict_zstub.map'}"],
    )
    pydir = root / "pylib"
    libpython = compile_shared(
        tc, ["verdict_stub.c"], pydir / "libpython3.11.so.1.0", soname="libpython3.11.so.1.0"
    )
    ext = root / "ext"
    return Built(
        root=root,
        chain_dir=native_fixtures.chain_dir,
        zlib_dir=zdir,
        newsym=compile_shared(tc, ["verdict_newsym.c"], ext / "newsym.so"),
        alpha_ext=compile_shared(
            tc,
            ["demo.c"],
            ext / "demo.so",
            needed_libs=[native_fixtures.libalpha],
            rpath=str(native_fixtures.chain_dir),
            new_dtags=False,
            extra=STUB_FLAGS,
        ),
        blk=compile_shared(
            tc, ["verdict_blacklist.c"], ext / "blk.so", needed_libs=[zlib], rpath=str(zdir)
        ),
        zver=compile_shared(
            tc, ["verdict_zver.c"], ext / "zver.so", needed_libs=[zlib], rpath=str(zdir)
        ),
        libpython_user=compile_shared(
            tc,
            ["verdict_usestub.c"],
            ext / "usestub.so",
            needed_libs=[libpython],
            rpath=str(pydir),
        ),
        isa=compile_shared(tc, ["verdict_plain.c"], ext / "isa.so", extra=["-Wl,-z,x86-64-v3"]),
        plain=compile_shared(tc, ["verdict_plain.c"], ext / "plain.so"),
    )


def show_json(*args: str | os.PathLike[str]) -> dict[str, Any]:
    """`show --json` of the given wheels, validated against the schema."""
    result = manywheel("show", "--json", *args)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    validate(doc)
    return doc


def show_text(*args: str | os.PathLike[str]) -> str:
    result = manywheel("show", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def verdict_json(report: dict[str, Any], policy: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in report["verdicts"] if v["policy"] == policy)
    return found


def evidence_json(kind: str, file: str, text: str, **fields: Any) -> dict[str, Any]:
    """An evidence object as the JSON carries it, defaults for the fields not given."""
    base: dict[str, Any] = {
        "kind": kind,
        "file": file,
        "text": text,
        "symbol": None,
        "version": None,
        "library": None,
        "chain": [],
        "found_at": None,
        "tried": [],
        "detail": None,
    }
    unknown = set(fields) - set(base)
    assert not unknown, unknown
    base.update(fields)
    return base


def only(items: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [i for i in items if all(i.get(k) == v for k, v in match.items())]


def test_too_new_glibc_symbol(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {NEWSYM: built.newsym, "demo/__init__.py": b""})
    [report] = show_json(wheel)["reports"]
    assert report["best_tag"] == "manylinux_2_36_x86_64"
    assert report["repair_tag"] == "manylinux_2_36_x86_64"
    blocked = verdict_json(report, "manylinux_2_35")
    text = f"{NEWSYM} imports arc4random@GLIBC_2.36 from libc.so.6"
    assert blocked["evidence"] == [
        evidence_json(
            "symbol-version",
            NEWSYM,
            text,
            symbol="arc4random",
            version="GLIBC_2.36",
            library="libc.so.6",
        )
    ]
    assert verdict_json(report, "manylinux_2_36")["ok"] is True
    out = show_text(wheel)
    assert (
        "  satisfies: manylinux_2_36_x86_64\n"
        "  repair:    manylinux_2_36_x86_64 (same as now)\n"
        "  manylinux_2_35_x86_64 (next more compatible) is blocked by:\n"
        "    symbol versions too new:\n"
        f"      {text}\n"
    ) in out


def test_too_new_version_node_of_a_policy_prefix(built: Built, tmp_path: Path) -> None:
    """A stub libz.so.1 defines ZLIB_1.2.9: the first policy listing it is the best tag."""
    policies = load_policies()
    allowing = [
        p
        for p in policies.for_arch("x86_64", "glibc")
        if p.portable and p.allows_symbol_version("ZLIB_1.2.9", "x86_64")
    ]
    best, before = allowing[0], policies.for_arch("x86_64", "glibc")
    blocked_policy = before[before.index(best) - 1]
    wheel = build_wheel(tmp_path, {ZVER: built.zver})
    [report] = show_json(wheel)["reports"]
    assert report["best_tag"] == best.tag("x86_64")
    text = f"{ZVER} imports zstub_new@ZLIB_1.2.9 from libz.so.1"
    assert verdict_json(report, blocked_policy.name)["evidence"] == [
        evidence_json(
            "symbol-version",
            ZVER,
            text,
            symbol="zstub_new",
            version="ZLIB_1.2.9",
            library="libz.so.1",
        )
    ]
    assert f"    symbol versions too new:\n      {text}\n" in show_text(wheel)


def test_external_library_found_through_rpath(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {ALPHA_EXT: built.alpha_ext})
    [report] = show_json(wheel)["reports"]
    assert report["best_tag"] == "linux_x86_64"
    assert report["repair_tag"] == "manylinux_2_5_x86_64"
    external = {lib["soname"]: lib for lib in report["external"]}
    alpha = external["libalpha.so.1"]
    assert alpha["path"] == str(built.chain_dir / "libalpha.so.1")
    assert alpha["chains"] == [[ALPHA_EXT, "libalpha.so.1"]]
    assert alpha["allowed_by"] == "linux"  # no portable policy lets it stay external
    assert external["libgamma.so.1"]["chains"] == [
        [ALPHA_EXT, "libalpha.so.1", "libbeta.so.1", "libgamma.so.1"]
    ]
    # The least compatible portable policy is the next one up from linux.
    next_up = report["verdicts"][-2]
    alpha_evidence = only(next_up["evidence"], kind="external-library", library="libalpha.so.1")
    assert len(alpha_evidence) == 1
    assert alpha_evidence[0]["file"] == ALPHA_EXT
    assert alpha_evidence[0]["found_at"] == str(built.chain_dir / "libalpha.so.1")
    assert next_up["ok_after_repair"] is True
    out = show_text(wheel)
    assert "  satisfies: linux_x86_64\n" in out
    assert "  repair:    manylinux_2_5_x86_64 (alias manylinux1_x86_64)\n" in out
    assert f"    libalpha.so.1: {built.chain_dir / 'libalpha.so.1'} (" in out
    assert alpha_evidence[0]["text"] in out


def test_blacklisted_symbol_counts_and_weak_one_does_not(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {BLK: built.blk})
    [report] = show_json(wheel)["reports"]
    assert report["best_tag"] == "linux_x86_64"
    assert report["repair_tag"] == "linux_x86_64"
    for v in report["verdicts"]:
        if v["policy"] == "linux":
            assert v["ok"]
            continue
        assert [(e["kind"], e["symbol"], e["library"]) for e in v["evidence"]] == [
            ("blacklisted-symbol", "_tr_init", "libz.so.1")
        ], v["policy"]
    assert "_tr_align" not in json.dumps(report)
    assert verdict_json(report, "manylinux_2_5")["evidence"][0]["text"] == (
        f"{BLK} imports _tr_init from libz.so.1, which manylinux_2_5 forbids"
    )
    text = f"{BLK} imports _tr_init from libz.so.1, which manylinux_2_41 forbids"
    assert report["verdicts"][-2]["evidence"][0]["text"] == text
    out = show_text(wheel)
    assert f"    symbols the policy forbids:\n      {text}\n" in out
    assert "_tr_align" not in out


def test_libpython_link_is_a_problem(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path, {USESTUB: built.libpython_user}, platform_tags=["manylinux_2_17_x86_64"]
    )
    [report] = show_json(wheel)["reports"]
    problems = only(report["problems"], kind="libpython")
    assert [(p["file"], p["library"]) for p in problems] == [(USESTUB, "libpython3.11.so.1.0")]
    assert f"  problems:\n    links against libpython:\n      {problems[0]['text']}\n" in (
        show_text(wheel)
    )
    result = manywheel("check", wheel)
    assert result.returncode == 1, result.stderr
    assert problems[0]["text"] in result.stdout


def test_x86_64_v3_property_note(built: Built, tmp_path: Path) -> None:
    member = f"demo/_isa{SUFFIX}"
    wheel = build_wheel(tmp_path, {member: built.isa})
    [report] = show_json(wheel)["reports"]
    [info] = report["members"]
    assert info["x86_isa_level"] == "v3"
    isa = [e for v in report["verdicts"] for e in v["evidence"] if e["kind"] == "isa-level"]
    assert isa and {e["file"] for e in isa} == {member}
    assert report["best_tag"] == "linux_x86_64"
    assert verdict_json(report, "manylinux_2_5")["evidence"] == [
        evidence_json(
            "isa-level",
            member,
            f"{member} needs x86-64-v3; manylinux_2_5 promises only the baseline",
            detail=verdict_json(report, "manylinux_2_5")["evidence"][0]["detail"],
        )
    ]
    assert (
        f"    instruction set above the architecture baseline:\n      {member} needs x86-64-v3;"
        in (show_text(wheel))
    )
    [relaxed] = show_json(wheel, "--disable-isa-ext-check")["reports"]
    assert relaxed["best_tag"] == "manylinux_2_5_x86_64"
    assert not [e for v in relaxed["verdicts"] for e in v["evidence"] if e["kind"] == "isa-level"]


def test_foreign_arch_member(built: Built, tmp_path: Path, fixture_builder: FixtureBuilder) -> None:
    aarch64 = fixture_builder(find_toolchain("aarch64")).toolchain
    foreign = compile_shared(aarch64, ["verdict_plain.c"], tmp_path / "a64" / "plain.so")
    wheel = build_wheel(tmp_path, {PLAIN: built.plain, FOREIGN: foreign})
    [report] = show_json(wheel)["reports"]
    assert report["arch"] == "x86_64"
    problems = only(report["problems"], kind="foreign-arch")
    assert [p["file"] for p in problems] == [FOREIGN]
    assert "aarch64" in problems[0]["text"]
    assert f"    ELF files for another architecture:\n      {problems[0]['text']}\n" in (
        show_text(wheel)
    )
    assert manywheel("check", wheel).returncode == 1


def test_elf_under_data_purelib(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {PURELIB: built.plain})
    [report] = show_json(wheel)["reports"]
    problems = only(report["problems"], kind="purelib-elf")
    assert [p["file"] for p in problems] == [PURELIB]
    assert f"    ELF files installed to purelib:\n      {problems[0]['text']}\n" in (
        show_text(wheel)
    )


def test_filename_and_wheel_tags_disagree(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        {PLAIN: built.plain},
        platform_tags=["manylinux_2_17_x86_64"],
        wheel_tags=["cp311-cp311-linux_x86_64"],
    )
    [report] = show_json(wheel)["reports"]
    mismatch = only(report["consistency"], kind="tag-mismatch")
    assert sorted(e["text"] for e in mismatch) == [
        "tags in demo-1.0.dist-info/WHEEL but not in the filename: cp311-cp311-linux_x86_64",
        "tags in the filename but not in demo-1.0.dist-info/WHEEL: "
        "cp311-cp311-manylinux_2_17_x86_64",
    ]
    result = manywheel("check", wheel)
    assert result.returncode == 1
    assert result.stdout == (
        f"{wheel.name}: failed (manylinux_2_17_x86_64)\n"
        "  wheel consistency:\n"
        "    claimed tags that do not hold:\n"
        + "".join(f"      {e['text']}\n" for e in sorted(mismatch, key=lambda e: e["text"]))
    )


def test_record_mismatches(built: Built, tmp_path: Path) -> None:
    data = b"print('hi')\n"
    wheel = build_wheel(
        tmp_path,
        {PLAIN: built.plain, "demo/a.py": data, "demo/b.py": b""},
        bad_hash=["demo/a.py"],
        omit_from_record=["demo/b.py"],
    )
    record = "demo-1.0.dist-info/RECORD"
    # show compares names and sizes by default (the hash is right-sized but wrong) ...
    [report] = show_json(wheel)["reports"]
    assert [e["text"] for e in only(report["consistency"], kind="record")] == [
        f"demo/b.py is not listed in {record}",
    ]
    # ... and hashes every member with --verify-record, as check always does.
    [report] = show_json("--verify-record", wheel)["reports"]
    actual = record_hash(data).removeprefix("sha256=")
    wrong = record_hash(data + b"corrupted").removeprefix("sha256=")
    assert sorted(e["text"] for e in only(report["consistency"], kind="record")) == [
        f"demo/a.py has sha256 {actual}, {record} says {wrong}",
        f"demo/b.py is not listed in {record}",
    ]
    result = manywheel("check", "--plat", "linux_x86_64", wheel)
    assert result.returncode == 1
    assert f"      demo/b.py is not listed in {record}\n" in result.stdout
    assert f"      demo/a.py has sha256 {actual}, {record} says {wrong}\n" in result.stdout


def test_musl_extension(musl_fixtures: FixtureSet, tmp_path: Path) -> None:
    musl = compile_shared(musl_toolchain(), ["verdict_plain.c"], tmp_path / "m" / "plain.so")
    member = "demo/_plain.cpython-311-x86_64-linux-musl.so"
    wheel = build_wheel(tmp_path, {member: musl}, platform_tags=["musllinux_1_2_x86_64"])
    [report] = show_json(wheel)["reports"]
    assert report["libc"] == "musl"
    assert {v["policy"] for v in report["verdicts"]} >= {"musllinux_1_1", "musllinux_1_2"}
    assert not [v for v in report["verdicts"] if v["policy"].startswith("manylinux")]
    assert report["best_tag"] == "musllinux_1_1_x86_64"
    result = manywheel("check", wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"{wheel.name}: ok (musllinux_1_2_x86_64)\n"
    assert "musl x86_64" in show_text(wheel)


# --------------------------------------------------------------------------- check codes


def test_check_exit_0_and_1(built: Built, tmp_path: Path) -> None:
    good = build_wheel(
        tmp_path / "good",
        {PLAIN: built.plain},
        platform_tags=["manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    )
    result = manywheel("check", good)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{good.name}: ok (manylinux_2_17_x86_64, manylinux2014_x86_64)\n"

    bad = build_wheel(
        tmp_path / "bad", {NEWSYM: built.newsym}, platform_tags=["manylinux_2_17_x86_64"]
    )
    result = manywheel("check", bad)
    assert result.returncode == 1
    text = f"{NEWSYM} imports arc4random@GLIBC_2.36 from libc.so.6"
    assert result.stdout == (
        f"{bad.name}: failed (manylinux_2_17_x86_64)\n"
        "  manylinux_2_17_x86_64 is not satisfied:\n"
        "    symbol versions too new:\n"
        f"      {text}\n"
        "  the content satisfies manylinux_2_36_x86_64; 'manywheel repair' can reach "
        "manylinux_2_36_x86_64\n"
    )
    for plat, code in [
        ("manylinux_2_36_x86_64", 0),
        ("manylinux_2_35", 1),
        ("manylinux2014_x86_64", 1),
        ("linux_x86_64", 0),
        ("manylinux_2_17_aarch64", 1),
    ]:
        assert manywheel("check", "--plat", plat, bad).returncode == code, plat

    # several wheels: one failure fails the run; JSON says which
    result = manywheel("check", "--json", good, bad)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["ok"] is False
    assert [c["ok"] for c in doc["checks"]] == [True, False]
    assert [r["wheel"]["filename"] for r in doc["reports"]] == [good.name, bad.name]


def test_check_usage_errors_exit_2(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {PLAIN: built.plain})
    result = manywheel("check", "--plat", "manylinux_2_99_x86_64", wheel)
    assert_one_line_error(result, 2, "manylinux_2_99_x86_64", "manywheel policies")
    result = manywheel("check", "--plat", "manylinux1_aarch64", wheel)
    assert_one_line_error(result, 2, "manylinux_2_5", "manywheel policies")
    result = manywheel(
        "check", "--plat", "linux_x86_64", "--policy-file", tmp_path / "nope.json", wheel
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = manywheel("check")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unreadable_input_exit_3(built: Built, tmp_path: Path) -> None:
    missing = tmp_path / "missing-1.0-py3-none-any.whl"
    assert_one_line_error(manywheel("check", missing), 3, str(missing.name))
    notzip = tmp_path / "notzip-1.0-cp311-cp311-linux_x86_64.whl"
    notzip.write_text("hello\n")
    assert_one_line_error(manywheel("show", notzip), 3, notzip.name)
    good = build_wheel(tmp_path / "src", {PLAIN: built.plain})
    corrupt = tmp_path / good.name
    corrupt.write_bytes(good.read_bytes()[:-40])
    assert_one_line_error(manywheel("check", corrupt), 3)
    assert_one_line_error(manywheel("show", "--json", corrupt), 3)
    # A malformed ELF member inside a readable wheel is part of the answer, not an
    # unreadable input: show reports it, check fails on it.
    bad_elf = build_wheel(tmp_path / "elf", {PLAIN: b"\x7fELF\x02\x01\x01" + b"\0" * 9})
    result = manywheel("check", bad_elf)
    assert (result.returncode, result.stderr) == (1, "")
    assert "  problems:\n    malformed ELF files:\n" in result.stdout
    assert f"{PLAIN}: truncated ELF header" in result.stdout
    [report] = show_json(bad_elf)["reports"]
    assert [p["kind"] for p in report["problems"]] == ["malformed-elf"]


def test_pure_wheel_needs_the_flag(tmp_path: Path) -> None:
    pure = build_wheel(
        tmp_path,
        {"demo/__init__.py": b""},
        python_tag="py3",
        abi_tag="none",
        platform_tags=["any"],
        root_is_purelib=True,
    )
    assert_one_line_error(manywheel("check", pure), 3, "--allow-pure-python-wheel")
    result = manywheel("check", "--allow-pure-python-wheel", pure)
    assert (result.returncode, result.stdout) == (0, f"{pure.name}: ok (any)\n")
    doc = show_json("--allow-pure-python-wheel", pure)
    assert doc["reports"][0]["wheel"]["pure"] is True
    assert "pure Python (no ELF files)" in show_text("--allow-pure-python-wheel", pure)


def test_bad_loader_options_and_environment(built: Built, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {PLAIN: built.plain})
    result = manywheel("show", "--sysroot", tmp_path / "nope", wheel)
    assert_one_line_error(result, 2, "not a directory")
    assert_one_line_error(manywheel("check", "--ldpaths", "", wheel), 2, "--ldpaths")
    # Odd but legal search paths: empty and relative entries are ignored, not fatal.
    result = manywheel("show", wheel, env={"MANYWHEEL_LD_LIBRARY_PATH": "::relative/dir;"})
    assert (result.returncode, result.stderr) == (0, "")


def test_show_several_wheels_text_blocks_in_order(built: Built, tmp_path: Path) -> None:
    one = build_wheel(tmp_path / "one", {PLAIN: built.plain})
    two = build_wheel(tmp_path / "two", {NEWSYM: built.newsym}, name="other")
    out = show_text(one, two)
    blocks = out.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [one.name, two.name]
    assert show_text(one) + "\n" + show_text(two) == out


def test_policies_command(tmp_path: Path) -> None:
    result = manywheel("policies")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("manylinux_2_5 ")
    result = manywheel("policies", "--json")
    assert result.returncode == 0
    validate(json.loads(result.stdout), "policies.schema.json")


def test_claim_evidence_is_told_by_its_detail() -> None:
    """check leaves out the audit's claimed-tag sentences (it judges each claimed tag
    itself) and keeps the filename-vs-WHEEL ones, whatever file they name."""
    from manywheel import check
    from manywheel.report import CLAIM_DETAILS

    for detail in CLAIM_DETAILS:
        claim = Evidence(kind="tag-mismatch", file="x.whl", text="claims", detail=detail)
        assert check.is_claim_evidence(claim)
    for detail in ("only-in-filename", "only-in-wheel"):
        for file in ("x.whl", "x-1.0.dist-info/WHEEL"):
            item = Evidence(kind="tag-mismatch", file=file, text="differ", detail=detail)
            assert not check.is_claim_evidence(item)
    assert not check.is_claim_evidence(
        Evidence(kind="record", file="x.whl", text="record", detail="content")
    )
