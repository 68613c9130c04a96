"""Verify a repaired wheel before it is renamed into place: it passes its own check and
every grafted link resolves; its re-audit reuses the input's facts for proven raw copies.
"""

from __future__ import annotations

from collections.abc import Mapping

from manywheel.audit import AuditDetail, ReuseMember, ScannedMember
from manywheel.check import check_report
from manywheel.errors import RepairError
from manywheel.graft import GraftPlan
from manywheel.memberfacts import MemberFacts
from manywheel.policy import PolicySet
from manywheel.render import evidence_lines
from manywheel.report import Evidence
from manywheel.wheel import MemberDigest
from manywheel.zipread import ZipArchive, ZipMember

__all__ = ["raw_copies", "verify_output"]


def verify_output(
    out: AuditDetail, policies: PolicySet, plan: GraftPlan, names: Mapping[str, str]
) -> None:
    """The written wheel satisfies every tag it claims, its RECORD matches, and every
    link to a grafted library resolves, under the loader model, to the grafted member."""
    report = out.report
    result = check_report(report, policies)
    if not result.ok:
        evidence: list[Evidence] = [*result.consistency, *result.problems]
        for tag in result.tags:
            evidence.extend(tag.evidence)
        reasons = [t.reason for t in result.tags if t.reason]
        raise RepairError(
            f"{report.wheel.filename}: the repaired wheel fails its own check "
            f"(a manywheel bug; nothing was written):\n"
            + "\n".join([*evidence_lines(evidence, 1), *(f"  {r}" for r in reasons)])
        )
    graph = out.graph
    assert graph is not None
    grafted = {name: f"{plan.libs_dir}/{name}" for name in names.values()}
    for key in graph.members:
        for link in graph.nodes[key].links:
            where = grafted.get(link.name)
            if where is None:
                continue
            if not link.internal or link.target != where or not link.searched_out:
                raise RepairError(
                    f"{report.wheel.filename}: {key} does not load {link.name} from {where} "
                    "after repair (a manywheel bug; nothing was written)"
                )


def raw_copies(source: ZipArchive, members: Mapping[str, ScannedMember]) -> ReuseMember:
    """Reuse for the verification audit of the output: a member of the output that is a
    raw copy of an input member has that member's facts and digest.

    Proof of identity, per member: same name, same method, CRC-32 and both sizes in the
    output's (strictly read, local-header-checked) directory as in the input's, and the
    same compressed bytes, compared in full. Same compressed bytes under the same method
    inflate to the same content, which the input's scan inflated, CRC-checked, hashed
    and parsed. Comparing costs two reads of the compressed bytes (page cache), no
    inflate; a member that differs in anything is read as usual.
    """

    def reuse(
        archive: ZipArchive, member: ZipMember
    ) -> tuple[MemberFacts | None, MemberDigest] | None:
        known = members.get(member.name)
        if known is None or known.digest.sha256 is None:
            return None
        old = known.member
        if (old.method, old.crc32, old.compress_size, old.file_size) != (
            member.method,
            member.crc32,
            member.compress_size,
            member.file_size,
        ):
            return None
        for a, b in zip(
            source.iter_raw(old, _COMPARE_CHUNK),
            archive.iter_raw(member, _COMPARE_CHUNK),
            strict=True,
        ):
            if a != b:
                return None
        return known.facts, known.digest

    return reuse


_COMPARE_CHUNK = 1 << 20
