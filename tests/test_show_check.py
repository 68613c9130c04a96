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
from pathlib import Path
from typing import Any

import pytest

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
        "    libc.so.6: /lib/x86_64-linux-gnu/libc.so.6 (ld.so.cache); "
        "allowed by manylinux_2_5\n"
        f"      needed by {EXT}\n"
    )


def test_show_text_has_no_python_reprs() -> None:
    text = render.render_show(typical_report())
    for marker in ("(", "[", "{", "'", "None", "Evidence", "frozenset"):
        for line in text.splitlines():
            if marker in {"(", "["}:
                continue
            assert marker not in line, line
    assert "()" not in text and "[]" not in text and "{}" not in text


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
    assert (
        "  repair:    manylinux_2_5_x86_64 (alias manylinux1_x86_64) (nothing more to gain)\n"
        in (text)
    )
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
