"""Renderings of audit reports: the text of ``show`` and ``check``, and their JSON form.

The report (:mod:`manywheel.report`) is the data; everything here is a pure function
from it to text or to JSON-ready values, so the two renderings cannot disagree. Text
is written for a maintainer who has ten seconds: the tag the wheel satisfies now, the
tag ``repair`` can reach, and, for the next more compatible tag, exactly what stands in
the way -- evidence grouped by kind, sorted, one sentence per fact, no Python reprs.

JSON follows ``schemas/report.schema.json``: one document per command run,
``{"schema_version": 1, "reports": [...]}`` (plus ``"checks"`` for ``check``), whatever
the number of wheels, so a script never branches on how many it passed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from manywheel.policy import Policy, PolicySet, SymbolVersion
from manywheel.report import SCHEMA_VERSION, Evidence, PolicyVerdict, WheelReport, verdict_tags

if TYPE_CHECKING:  # `show` renders no check: manywheel.check is not imported for it
    from manywheel.check import CheckResult, TagCheck

_escape = json.encoder.encode_basestring_ascii  # json's own (C) string escaper

__all__ = [
    "KIND_TITLES",
    "check_to_json",
    "document_json_text",
    "document_to_json",
    "evidence_lines",
    "policies_to_json",
    "render_check",
    "render_policies",
    "render_show",
    "report_to_json",
]

#: Evidence kinds in the order they are shown, with the heading of their group.
KIND_TITLES: Mapping[str, str] = {
    "malformed-elf": "malformed ELF files",
    "foreign-arch": "ELF files for another architecture",
    "purelib-elf": "ELF files installed to purelib",
    "libpython": "links against libpython",
    "python-abi": "Python ABI symbols",
    "library-not-found": "libraries not found",
    "external-library": "libraries from outside the wheel that the policy does not allow",
    "symbol-version": "symbol versions too new",
    "blacklisted-symbol": "symbols the policy forbids",
    "isa-level": "instruction set above the architecture baseline",
    "tag-mismatch": "claimed tags that do not hold",
    "record": "RECORD does not match the archive",
}

INDENT = "  "


# --------------------------------------------------------------------------- evidence


def _version_key(version: str | None) -> tuple[str, str, tuple[int, ...]]:
    parsed = SymbolVersion.parse(version) if version else None
    return parsed.sort_key if parsed is not None else (version or "", "", ())


def _evidence_key(item: Evidence) -> tuple[Any, ...]:
    return (
        item.file,
        item.library or "",
        _version_key(item.version),
        item.symbol or "",
        item.text,
    )


def _detail_lines(item: Evidence) -> list[str]:
    """What the sentence does not already say: the chain, where found, where tried."""
    lines: list[str] = []
    if len(item.chain) > 2:
        chain = " -> ".join(item.chain)
        if chain not in item.text:
            lines.append(f"via {chain}")
    if item.found_at and item.found_at not in item.text:
        lines.append(f"found at {item.found_at}")
    if item.tried and not item.found_at:
        lines.append("tried " + ", ".join(item.tried))
    return lines


def evidence_lines(evidence: Iterable[Evidence], depth: int = 0) -> list[str]:
    """Evidence as indented lines: one heading per kind (fixed order), facts sorted.

    Identical sentences are shown once (the same fact can reach a verdict twice, e.g.
    through two chains that end in the same library).
    """
    groups: dict[str, list[Evidence]] = {}
    for item in evidence:
        groups.setdefault(item.kind, []).append(item)
    known = [kind for kind in KIND_TITLES if kind in groups]
    order = known + sorted(kind for kind in groups if kind not in KIND_TITLES)
    pad = INDENT * depth
    lines: list[str] = []
    for kind in order:
        lines.append(f"{pad}{KIND_TITLES.get(kind, kind)}:")
        seen: set[str] = set()
        unique = []
        for item in sorted(groups[kind], key=_evidence_key):
            if item.text not in seen:
                seen.add(item.text)
                unique.append(item)
        for first, items in _same_import(unique):
            if len(items) > 1:
                symbols = ", ".join(item.symbol or "" for item in items)
                lines.append(
                    f"{pad}{INDENT}{first.file} imports {len(items)} symbols at "
                    f"{first.version} from {first.library}: {symbols}"
                )
                continue
            lines.append(f"{pad}{INDENT}{first.text}")
            lines.extend(f"{pad}{INDENT * 2}{detail}" for detail in _detail_lines(first))
    return lines


def _same_import(items: Sequence[Evidence]) -> list[tuple[Evidence, list[Evidence]]]:
    """Runs of sorted items that say "FILE imports SYMBOL@VERSION from LIBRARY" for one
    file, version and library (numpy: 23 lines of GLIBC_2.27 in libm become 6), each
    with its first item; any other item is a run of its own."""
    runs: list[tuple[Evidence, list[Evidence]]] = []
    last: tuple[str, str, str] | None = None  # the key of the open run, if groupable
    for item in items:
        key = _import_key(item)
        if key is not None and key == last:
            runs[-1][1].append(item)
            continue
        runs.append((item, [item]))
        last = key
    return runs


def _import_key(item: Evidence) -> tuple[str, str, str] | None:
    """(file, version, library) of a plain too-new-symbol item, else None."""
    if item.kind != "symbol-version" or _detail_lines(item):
        return None
    if not (item.file and item.symbol and item.version and item.library):
        return None
    if item.text != f"{item.file} imports {item.symbol}@{item.version} from {item.library}":
        return None
    return item.file, item.version, item.library


# --------------------------------------------------------------------------- show


def _with_aliases(verdict: PolicyVerdict) -> str:
    canonical, *aliases = verdict_tags(verdict)
    return f"{canonical} (alias {', '.join(aliases)})" if aliases else canonical


def _find_verdict(report: WheelReport, tag: str | None) -> int | None:
    if tag is None:
        return None
    for index, verdict in enumerate(report.verdicts):
        if tag in verdict_tags(verdict):
            return index
    return None


def _tag_line(report: WheelReport, tag: str | None) -> str:
    index = _find_verdict(report, tag)
    if index is not None:
        return _with_aliases(report.verdicts[index])
    return tag or "none"


def next_blocked(report: WheelReport) -> PolicyVerdict | None:
    """The verdict just more compatible than ``best_tag`` (verdicts: most compatible first).

    With no tag satisfied at all, the least compatible verdict: what blocks even it.
    ``None`` when the best tag is already the most compatible one.
    """
    if not report.verdicts:
        return None
    index = _find_verdict(report, report.best_tag)
    if index is None:
        return report.verdicts[-1]
    return report.verdicts[index - 1] if index > 0 else None


def next_blocked_after_repair(report: WheelReport) -> PolicyVerdict | None:
    """The verdict just more compatible than ``repair_tag``, if any."""
    index = _find_verdict(report, report.repair_tag)
    if index is None or index == 0:
        return None
    return report.verdicts[index - 1]


def _content_line(report: WheelReport) -> str:
    if report.wheel.pure:
        return "pure Python (no ELF files)"
    parts = [p for p in (report.libc, report.arch) if p] or ["unknown libc and arch"]
    text = " ".join(parts) + f" (from {report.libc_arch_source})"
    n_elf = len(report.members)
    n_ext = sum(1 for m in report.members if m.is_extension)
    text += f", {n_elf} ELF file{'s' if n_elf != 1 else ''}"
    text += f", {n_ext} extension module{'s' if n_ext != 1 else ''}"
    return text


def _external_lines(report: WheelReport) -> list[str]:
    """Libraries repair must graft (or cannot find) in detail; allowed ones in one line each
    policy, since a maintainer acts on the former and only glances at the latter."""
    lines: list[str] = []
    allowed: dict[str, list[str]] = {}
    for lib in sorted(report.external, key=lambda lib: lib.soname):
        where = lib.path or "not found"
        if lib.path and lib.rule:
            where += f" ({lib.rule})"
        if lib.excluded:
            status = "excluded (--exclude): stays external"
        elif lib.path is None:
            status = "repair cannot graft it"
        elif lib.allowed_by is None or lib.allowed_by == "linux":
            status = "repair grafts it"
        else:
            allowed.setdefault(lib.allowed_by, []).append(lib.soname)
            continue
        lines.append(f"{INDENT * 2}{lib.soname}: {where}; {status}")
        for chain in sorted(lib.chains):
            if len(chain) > 2:
                lines.append(f"{INDENT * 3}via {' -> '.join(chain)}")
        needed_by = sorted({chain[0] for chain in lib.chains if len(chain) == 2})
        if needed_by:
            lines.append(f"{INDENT * 3}needed by {', '.join(needed_by)}")
        if lib.path is None and lib.tried:
            lines.append(f"{INDENT * 3}tried {', '.join(lib.tried)}")
    order = {verdict.policy: index for index, verdict in enumerate(report.verdicts)}
    for policy in sorted(allowed, key=lambda name: (order.get(name, len(order)), name)):
        lines.append(f"{INDENT * 2}allowed from {policy} on: {', '.join(allowed[policy])}")
    return lines


def render_show(report: WheelReport) -> str:
    """The text block of ``show`` for one wheel (ends with a newline)."""
    wheel = report.wheel
    lines = [wheel.filename, f"{INDENT}content:   {_content_line(report)}"]
    lines.append(f"{INDENT}claims:    {', '.join(wheel.platform_tags) or 'no platform tag'}")
    if report.verdicts:
        lines.append(f"{INDENT}satisfies: {_tag_line(report, report.best_tag)}")
        repair = _tag_line(report, report.repair_tag)
        if report.repair_tag is None:
            repair = "no tag (see what blocks it below)"
        elif report.repair_tag == report.best_tag:
            repair += " (same as now)"
        lines.append(f"{INDENT}repair:    {repair}")

        blocked = next_blocked(report)
        if blocked is None:
            lines.append(f"{INDENT}no more compatible tag exists")
        elif not blocked.ok:
            lines.append(f"{INDENT}{blocked.tag} (next more compatible) is blocked by:")
            lines.extend(evidence_lines(blocked.evidence, depth=2))
        after = next_blocked_after_repair(report)
        if after is not None and report.repair_tag != report.best_tag:
            lines.append(f"{INDENT}after repair, {after.tag} is still blocked by:")
            lines.extend(evidence_lines(after.evidence_after_repair, depth=2))

    if report.problems:
        lines.append(f"{INDENT}problems:")
        lines.extend(evidence_lines(report.problems, depth=2))
    if report.external:
        lines.append(f"{INDENT}libraries from outside the wheel:")
        lines.extend(_external_lines(report))
    if report.unreachable_libraries:
        lines.append(f"{INDENT}libraries in the wheel that nothing loads:")
        lines.extend(f"{INDENT * 2}{path}" for path in sorted(report.unreachable_libraries))
    if report.consistency:
        lines.append(f"{INDENT}wheel consistency:")
        lines.extend(evidence_lines(report.consistency, depth=2))
    if report.notes:
        lines.append(f"{INDENT}notes:")
        lines.extend(f"{INDENT * 2}{note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def render_show_many(reports: Sequence[WheelReport]) -> str:
    """Blocks of several wheels, separated by one blank line."""
    return "\n".join(render_show(report) for report in reports)


# --------------------------------------------------------------------------- check


def _tag_failure_lines(check: TagCheck) -> list[str]:
    if check.ok:
        return []
    lines = [f"{INDENT}{check.tag} is not satisfied:"]
    if check.reason:
        lines.append(f"{INDENT * 2}{check.reason}")
    lines.extend(evidence_lines(check.evidence, depth=2))
    return lines


def render_check(results: Sequence[CheckResult]) -> str:
    """``check`` text: one ``ok`` line per passing wheel, the reasons for each failure."""
    lines: list[str] = []
    for result in results:
        tags = ", ".join(c.tag for c in result.tags) or "no platform tag"
        if result.ok:
            lines.append(f"{result.wheel}: ok ({tags})")
            continue
        lines.append(f"{result.wheel}: failed ({tags})")
        for check in result.tags:
            lines.extend(_tag_failure_lines(check))
        if result.problems:
            lines.append(f"{INDENT}problems:")
            lines.extend(evidence_lines(result.problems, depth=2))
        if result.consistency:
            lines.append(f"{INDENT}wheel consistency:")
            lines.extend(evidence_lines(result.consistency, depth=2))
        if any(c.policy is not None and not c.ok for c in result.tags):
            now = result.best_tag or "no tag"
            lines.append(
                f"{INDENT}the content satisfies {now}; "
                f"'manywheel repair' can reach {result.repair_tag or 'no tag'}"
            )
    return "\n".join(lines) + "\n" if lines else ""


# --------------------------------------------------------------------------- JSON


_FIELDS: dict[type, tuple[str, ...] | None] = {}
_LEAVES = (str, int, float, bool, type(None))


def _field_names(kind: type) -> tuple[str, ...] | None:
    """The field names of a dataclass type, in order; ``None`` for other types (cached)."""
    try:
        return _FIELDS[kind]
    except KeyError:
        pass
    names = None
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))
    _FIELDS[kind] = names
    return names


def _jsonable(value: Any) -> Any:
    """Dataclasses to objects (field order kept), tuples to lists, mappings to objects."""
    if type(value) in _LEAVES:
        return value
    names = _field_names(type(value))
    if names is not None:
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _encode(value: Any, out: list[str], level: int) -> None:
    """Append ``json.dumps(_jsonable(value), indent=2)`` to ``out``, in one walk.

    The report of a big wheel is ~100,000 values: converting it to dicts and lists and
    then running :mod:`json`'s pure-Python indenting encoder over them took 0.3 s on
    torch; this walk writes the same text straight from the dataclasses (strings through
    json's C escaper, scalars inline). Anything else goes through :func:`json.dumps`.
    """
    kind = type(value)
    if kind is str:
        out.append(_escape(value))
        return
    if value is None:
        out.append("null")
        return
    if kind is bool:
        out.append("true" if value else "false")
        return
    if kind is int:
        out.append(int.__repr__(value))
        return
    names = _field_names(kind)
    if names is not None:
        if names:
            _encode_fields(value, names, out, level)
            return
        items: Iterable[tuple[str, Any]] = ()
        is_object = True
    elif isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
        is_object = True
    elif isinstance(value, (list, tuple)):
        items = value
        is_object = False
        if value and all(type(item) is str for item in value):
            # Lists of names and paths (chains, places tried): most of a big report.
            deeper = level + 1
            inner = _NEWLINES[deeper] if deeper < len(_NEWLINES) else "\n" + "  " * deeper
            outer = _NEWLINES[level] if level < len(_NEWLINES) else "\n" + "  " * level
            out.append("[" + inner + ("," + inner).join(map(_escape, value)) + outer + "]")
            return
    else:
        # Floats, str and int subclasses: json's own text (anything else: its TypeError).
        out.append(json.dumps(value))
        return
    if not items:
        out.append("{}" if is_object else "[]")
        return
    deeper = level + 1
    inner = _NEWLINES[deeper] if deeper < len(_NEWLINES) else "\n" + "  " * deeper
    write = out.append
    write("{" if is_object else "[")
    separator = inner
    for entry in items:
        write(separator)
        separator = "," + inner
        if is_object:
            key, item = entry
            write(_escape(key))
            write(": ")
        else:
            item = entry
        kind = type(item)
        if kind is str:
            write(_escape(item))
        elif item is None:
            write("null")
        elif kind is bool:
            write("true" if item else "false")
        elif kind is int:
            write(int.__repr__(item))
        else:
            _encode(item, out, deeper)
    write(_NEWLINES[level] if level < len(_NEWLINES) else "\n" + "  " * level)
    write("}" if is_object else "]")


def _encode_fields(value: Any, names: tuple[str, ...], out: list[str], level: int) -> None:
    """A dataclass with fields as a JSON object (the common case of :func:`_encode`)."""
    key = (type(value), level)
    prefixes = _PREFIXES.get(key)
    if prefixes is None:
        deeper = level + 1
        inner = _NEWLINES[deeper] if deeper < len(_NEWLINES) else "\n" + "  " * deeper
        prefixes = _PREFIXES[key] = tuple(
            ("{" if i == 0 else ",") + inner + _escape(name) + ": " for i, name in enumerate(names)
        )
    write = out.append
    for prefix, name in zip(prefixes, names, strict=True):
        write(prefix)
        item = getattr(value, name)
        kind = type(item)
        if kind is str:
            write(_escape(item))
        elif item is None:
            write("null")
        elif kind is bool:
            write("true" if item else "false")
        elif kind is int:
            write(int.__repr__(item))
        else:
            _encode(item, out, level + 1)
    write(_NEWLINES[level] if level < len(_NEWLINES) else "\n" + "  " * level)
    write("}")


#: Per (dataclass type, depth): the text before each field's value.
_PREFIXES: dict[tuple[type, int], tuple[str, ...]] = {}
_NEWLINES = tuple("\n" + "  " * depth for depth in range(32))


def _json_text(value: Any) -> str:
    """``json.dumps(_jsonable(value), indent=2)``, without building the dicts first."""
    out: list[str] = []
    _encode(value, out, 0)
    return "".join(out)


def report_to_json(report: WheelReport) -> dict[str, Any]:
    """One report as JSON data (``$defs/report`` of schemas/report.schema.json)."""
    data: dict[str, Any] = _jsonable(report)
    return data


def check_to_json(result: CheckResult) -> dict[str, Any]:
    """One check result as JSON data (``$defs/check`` of schemas/report.schema.json)."""
    data: dict[str, Any] = _jsonable(result)
    return data


def document_to_json(
    reports: Sequence[WheelReport], checks: Sequence[CheckResult] | None = None
) -> dict[str, Any]:
    """The whole ``--json`` document of ``show`` (``checks`` None) or ``check``."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": "show" if checks is None else "check",
        "reports": [report_to_json(r) for r in reports],
    }
    if checks is not None:
        doc["ok"] = all(c.ok for c in checks)
        doc["checks"] = [check_to_json(c) for c in checks]
    return doc


def document_json_text(
    reports: Sequence[WheelReport], checks: Sequence[CheckResult] | None = None
) -> str:
    """``json.dumps(document_to_json(reports, checks), indent=2)``, 4-6x faster.

    The same document, byte for byte (tests/test_render_json.py holds them equal), written
    in one walk over the report objects; ``--json`` of ``show`` and ``check`` prints it.
    """
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": "show" if checks is None else "check",
        "reports": reports,
    }
    if checks is not None:
        doc["ok"] = all(c.ok for c in checks)
        doc["checks"] = checks
    return _json_text(doc)


# --------------------------------------------------------------------------- policies

SUMMARY_PREFIXES = ("GLIBC", "GLIBCXX")


def _family_order(policy: Policy) -> tuple[int, int]:
    families = {"manylinux": 0, "musllinux": 1}
    return (families.get(policy.family, 2), -policy.priority)


def _max_summary(policy: Policy, prefix: str) -> str | None:
    """``GLIBC<=2.36 (2.37 on armv7l, i686)``: the usual maximum, exceptions by arch."""
    by_version: dict[str, list[str]] = {}
    for arch in sorted(policy.arches):
        version = policy.max_version(prefix, arch)
        if version is not None:
            by_version.setdefault(version, []).append(arch)
    if not by_version:
        return None
    ranked = sorted(by_version.items(), key=lambda kv: (-len(kv[1]), _version_key("X_" + kv[0])))
    (common, _), rest = ranked[0], ranked[1:]
    text = f"{prefix}<={common}"
    if rest:
        text += " (" + "; ".join(f"{v} on {', '.join(arches)}" for v, arches in rest) + ")"
    return text


def render_policies(policies: PolicySet) -> str:
    """One line per policy: name, aliases, libc version, arches, newest GLIBC/GLIBCXX."""
    rows: list[list[str]] = []
    for policy in sorted(policies, key=_family_order):
        aliases = f"alias {', '.join(policy.aliases)}" if policy.aliases else ""
        if policy.portable:
            libc = f"{policy.libc} {'.'.join(map(str, policy.version))}"
            arches = " ".join(sorted(policy.arches))
        else:
            libc, arches = "any libc", "any arch (not portable)"
        maxima = [m for m in (_max_summary(policy, p) for p in SUMMARY_PREFIXES) if m]
        rows.append([policy.name, aliases, libc, arches, "  ".join(maxima)])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines) + "\n"


def _sorted_versions(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda v: _version_key("X_" + v))


def policies_to_json(policies: PolicySet) -> dict[str, Any]:
    """Every policy in full (schemas/policies.schema.json)."""
    out = []
    for policy in sorted(policies, key=_family_order):
        out.append(
            {
                "name": policy.name,
                "family": policy.family,
                "libc": policy.libc,
                "version": ".".join(map(str, policy.version)) or None,
                "priority": policy.priority,
                "aliases": list(policy.aliases),
                "arches": sorted(policy.arches),
                "standard": policy.standard,
                "reference": policy.reference,
                "source": policy.source,
                "libraries": {a: sorted(libs) for a, libs in sorted(policy.libraries.items())},
                "library_prefixes": list(policy.library_prefixes),
                "symbol_versions": {
                    prefix: {a: _sorted_versions(v) for a, v in sorted(per_arch.items())}
                    for prefix, per_arch in sorted(policy.symbol_versions.items())
                },
                "blacklist": {lib: sorted(s) for lib, s in sorted(policy.blacklist.items())},
                "interpreters": dict(sorted(policy.interpreters.items())),
            }
        )
    return {"schema_version": SCHEMA_VERSION, "policies": out}
