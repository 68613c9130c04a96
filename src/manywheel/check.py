"""The judgment of ``manywheel check``: does a wheel's content satisfy the tags it claims?

Pure functions over a :class:`~manywheel.report.WheelReport` (the audit has already done
all the reading). A wheel passes when

* every platform tag of its filename (or the one ``--plat`` tag asked for) has a policy
  verdict that is ``ok``,
* its filename and ``WHEEL`` agree and its ``RECORD`` matches its members (no
  ``consistency`` evidence): a CI gate must not wave through a wheel pip would reject
  or install under tags it does not mean, and
* no policy-independent problem stands (a foreign-architecture member, an ELF file under
  purelib, a libpython link...).

``--plat`` accepts a policy's canonical tag (``manylinux_2_17_x86_64``), a legacy alias
tag (``manylinux2014_x86_64``) or a bare policy name (``manylinux2014``: the wheel's own
architecture is used). :func:`parse_plat` validates it against the known policies before
any wheel is read, so a typo is a usage error, not a failed check.
"""

from __future__ import annotations

from dataclasses import dataclass

from manywheel.errors import UsageError
from manywheel.policy import KNOWN_ARCHES, Policy, PolicySet
from manywheel.report import CLAIM_DETAILS, Evidence, PolicyVerdict, WheelReport, verdict_tags
from manywheel.value import Value

__all__ = [
    "CheckResult",
    "PlatSpec",
    "TagCheck",
    "check_report",
    "is_claim_evidence",
    "parse_plat",
    "verdict_for",
]

POLICIES_HINT = "run 'manywheel policies' to list the known ones"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PlatSpec(Value):
    """A validated ``--plat`` value: the policy it names and the arch, if it gave one."""

    text: str
    policy: str  # canonical policy name
    arch: str | None  # None: the wheel's own architecture


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TagCheck(Value):
    """The answer for one platform tag.

    ``reason`` explains a failure that no policy verdict covers (the tag is for another
    architecture or libc than the content, or no known policy defines it).
    """

    tag: str
    policy: str | None
    ok: bool
    evidence: tuple[Evidence, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CheckResult(Value):
    """The verdict of ``check`` for one wheel; ``ok`` decides the exit code."""

    wheel: str
    ok: bool
    tags: tuple[TagCheck, ...]
    consistency: tuple[Evidence, ...]
    problems: tuple[Evidence, ...]
    best_tag: str | None
    repair_tag: str | None


def _split_tag(text: str) -> tuple[str, str | None]:
    """``manylinux2014_x86_64`` -> (``manylinux2014``, ``x86_64``); no arch -> (text, None)."""
    # Longest arch first: "ppc64le" must not be read as "...le" + nothing.
    for arch in sorted(KNOWN_ARCHES, key=len, reverse=True):
        suffix = "_" + arch
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)], arch
    return text, None


def parse_plat(text: str, policies: PolicySet) -> PlatSpec:
    """Validate a ``--plat`` value; raises a one-line :class:`UsageError` when unknown."""
    name, arch = _split_tag(text)
    policy = policies.find(name)
    if policy is None and arch is None:
        raise UsageError(f"unknown platform tag '{text}': {POLICIES_HINT}")
    if policy is None:
        raise UsageError(f"unknown platform tag '{text}' (no policy '{name}'): {POLICIES_HINT}")
    if arch is not None and not policy.applies_to(arch):
        arches = ", ".join(sorted(policy.arches))
        raise UsageError(
            f"platform tag '{text}' does not exist: {policy.name} is defined for {arches} "
            f"only ({POLICIES_HINT})"
        )
    return PlatSpec(text=text, policy=policy.name, arch=arch)


def verdict_for(report: WheelReport, tag: str) -> PolicyVerdict | None:
    """The verdict whose canonical or alias tag is ``tag``, if the audit judged it."""
    for verdict in report.verdicts:
        if tag in verdict_tags(verdict):
            return verdict
    return None


def _why_not_judged(report: WheelReport, tag: str, policies: PolicySet) -> str:
    """Why no verdict covers ``tag``: another arch or libc than the content, or unknown."""
    name, arch = _split_tag(tag)
    policy: Policy | None = policies.find(name)
    content = " ".join(part for part in (report.libc, report.arch) if part) or "no ELF"
    if policy is None:
        return f"no known policy defines {tag}"
    if arch is not None and report.arch is not None and arch != report.arch:
        return f"{tag} is for {arch}, the wheel's ELF files are {report.arch}"
    if policy.portable and report.libc is not None and policy.libc != report.libc:
        return f"{tag} is a {policy.libc} tag, the wheel's ELF files need {report.libc}"
    if arch is not None and not policy.applies_to(arch):
        return f"{policy.name} is not defined for {arch}"
    return f"{tag} was not judged for this wheel ({content})"


def _check_tag(report: WheelReport, tag: str, policies: PolicySet) -> TagCheck:
    if report.wheel.pure and (tag == "any" or not report.verdicts):
        # Nothing binary to constrain: any tag is as good as its Python parts.
        return TagCheck(tag=tag, policy=None, ok=True, evidence=())
    verdict = verdict_for(report, tag)
    if verdict is None:
        reason = _why_not_judged(report, tag, policies)
        return TagCheck(tag=tag, policy=None, ok=False, evidence=(), reason=reason)
    return TagCheck(tag=tag, policy=verdict.policy, ok=verdict.ok, evidence=verdict.evidence)


def is_claim_evidence(item: Evidence) -> bool:
    """Whether ``item`` is the audit's "the filename claims X" sentence.

    The audit files those under ``consistency`` (kind ``tag-mismatch``, about the wheel
    file itself); ``check`` judges every claimed tag itself, with the verdict's evidence,
    and with ``--plat`` the claims are not the question, so it leaves them out.
    """
    return item.kind == "tag-mismatch" and item.detail in CLAIM_DETAILS


def check_report(
    report: WheelReport, policies: PolicySet, plat: PlatSpec | None = None
) -> CheckResult:
    """Judge ``report``: its claimed platform tags, or ``plat`` when given."""
    if plat is not None:
        arch = plat.arch or report.arch
        policy = policies.get(plat.policy)
        tags: tuple[str, ...] = (policy.tag(arch) if arch else plat.text,)
    else:
        tags = report.wheel.platform_tags
    checks = tuple(_check_tag(report, tag, policies) for tag in tags)
    consistency = tuple(e for e in report.consistency if not is_claim_evidence(e))
    ok = all(c.ok for c in checks) and not consistency and not report.problems
    return CheckResult(
        wheel=report.wheel.filename,
        ok=ok,
        tags=checks,
        consistency=consistency,
        problems=report.problems,
        best_tag=report.best_tag,
        repair_tag=report.repair_tag,
    )
