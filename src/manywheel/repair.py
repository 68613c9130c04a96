"""``manywheel repair``: report -> plan -> patch -> write -> verify, for one wheel at a time.

1. **Report.** :func:`~manywheel.audit.audit_wheel_detail` reads the wheel once (the
   archive reader refuses ``..``, absolute, symlinked and duplicate member names here,
   before anything is written) and resolves it in its install layout.
2. **Plan.** :func:`~manywheel.graft.plan_graft` (pure) says which libraries to graft,
   what to rewrite and the new tags; every reason the target tag cannot be reached is
   raised now, with the audit's evidence, still before anything is written.
3. **Patch.** In a private directory inside the output directory: name the grafted
   libraries from a hash of everything their shipped bytes are computed from, leaves
   first (docs/repair.md, "Names"), then write each with one patchelf call from the
   original (``strip``-ped first with ``--strip``), in parallel; extract, strip and patch
   the members to change. Every patched file is re-read and compared with the plan and
   with every dynamic symbol of the original (:func:`~manywheel.patch.verify_patch`).
4. **Write.** :func:`~manywheel.wheelwrite.write_wheel`: unchanged members are copied
   raw, their RECORD rows carried over from the input's RECORD when it gives sha256 and
   the right size (else hashed; ``--verify-record``: the digests the audit computed
   after hashing every member, :func:`~manywheel.repair_apply._record_digests`),
   grafted libraries written as deflated during step 3, the rest deflated, RECORD
   regenerated, timestamps from ``SOURCE_DATE_EPOCH`` or else the input's newest member
   (the fixed rule that makes output reproducible).
5. **Verify** (:mod:`manywheel.repair_verify`). The written wheel is audited again
   (reusing the input scan's facts and digests for members proven to be byte-identical
   raw copies, :func:`~manywheel.repair_verify.raw_copies`): it must satisfy every tag it
   claims and every grafted library must resolve from its new place; only then is it
   renamed into the output directory. On any failure the private directory is removed:
   nothing is left behind, and the input is never modified.

This module decides and checks (steps 1, 2 and 5: options, the flow and its refusals,
rendering); steps 3 and 4, which carry out what was decided, are
:func:`manywheel.repair_apply.apply`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manywheel.audit import (
    AuditOptions,
    ReuseMember,
    ScannedMember,
    audit_wheel_detail,
)
from manywheel.check import PlatSpec, parse_plat
from manywheel.errors import (
    EnvironmentProblem,
    InputError,
    RepairError,
    UsageError,
)
from manywheel.graft import (
    GraftPlan,
    plan_graft,
    plan_platform_tags,
    retag_filename,
)
from manywheel.linkgraph import ExternalRef
from manywheel.memberfacts import MemberFacts
from manywheel.patch import find_patchelf
from manywheel.policy import Policy, PolicySet, load_policies
from manywheel.render import evidence_lines
from manywheel.repair_apply import ApplyJob, GraftRecord, apply, remove_inputs
from manywheel.repair_verify import raw_copies, verify_output
from manywheel.report import PolicyVerdict, WheelReport
from manywheel.value import Value
from manywheel.wheel import MemberDigest
from manywheel.wheelwrite import epoch_from_environment
from manywheel.zipread import ZipArchive, ZipMember

__all__ = [
    "PLAT_VARIABLES",
    "GraftRecord",
    "RepairError",
    "RepairOptions",
    "RepairResult",
    "plat_setting",
    "render_results",
    "repair_wheel",
    "results_to_json",
]

REPAIR_SCHEMA_VERSION = 1

#: Where ``--plat`` comes from when not given: ours first, then the variable the
#: manylinux images set (so cibuildwheel's default repair command needs no change).
PLAT_VARIABLES = ("MANYWHEEL_PLAT", "AUDITWHEEL_PLAT")

_NOT_FOUND_HINT = (
    "add its directory to MANYWHEEL_LD_LIBRARY_PATH (searched like LD_LIBRARY_PATH), or "
    "give the whole system search list with --ldpaths"
)


@dataclass(frozen=True, eq=False, repr=False)
class RepairOptions(Value):
    """The options of ``manywheel repair`` (``plat`` None or ``"auto"``: the most
    compatible tag the wheel can reach)."""

    out_dir: str = "wheelhouse"
    plat: str | None = None
    only_plat: bool = False
    exclude: tuple[str, ...] = ()
    lib_sdir: str = ".libs"
    strip: bool = False
    compresslevel: int = 6
    update_tags: bool = True
    ldpaths: str | None = None
    sysroot: str | None = None
    policy_files: tuple[str, ...] = ()
    allow_pure: bool = False
    disable_isa_ext_check: bool = False
    environ: Mapping[str, str] | None = None
    #: Hash every member of the input against its RECORD and refuse a mismatch; without
    #: it, the RECORD digest of a raw-copied member is carried over from the input's
    #: RECORD when its row can be trusted (:func:`~manywheel.repair_apply._record_digests`).
    verify_record: bool = False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RepairResult(Value):
    """What ``repair`` did to one wheel (the ``--json`` record, schemas/repair.schema.json)."""

    input: str
    output: str
    size: int
    sha256: str
    policy: str | None
    platform_tags: tuple[str, ...]
    grafted: tuple[GraftRecord, ...]
    excluded: tuple[str, ...]
    removed_needed: tuple[tuple[str, str], ...]
    moved_scripts: tuple[tuple[str, str], ...]
    patched: tuple[str, ...]
    notes: tuple[str, ...]


# --------------------------------------------------------------------------- options


def plat_setting(value: str | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The ``--plat`` value to use and where it came from: the option, else
    ``MANYWHEEL_PLAT``, else ``AUDITWHEEL_PLAT``; ``None`` (or ``auto``) means auto."""
    if value is not None:
        return (None if value == "auto" else value), "--plat"
    for name in PLAT_VARIABLES:
        text = environ.get(name, "").strip()
        if text:
            return (None if text == "auto" else text), name
    return None, "auto"


def _plat_spec(options: RepairOptions, policies: PolicySet) -> PlatSpec | None:
    environ = os.environ if options.environ is None else options.environ
    text, source = plat_setting(options.plat, environ)
    if text is None:
        return None
    try:
        return parse_plat(text, policies)
    except UsageError as err:
        if source == "--plat":
            raise
        raise UsageError(f"{source}={text}: {err}") from None


def check_lib_sdir(value: str) -> str:
    """``-L`` is appended to the distribution name: one path component, not ``.``/``..``."""
    if not value or "/" in value or "\0" in value or value.strip(".") == "":
        raise UsageError(
            f"-L {value!r}: the library directory suffix must be a single name such as .libs"
        )
    return value


# --------------------------------------------------------------------------- the flow


def repair_wheel(path: str | os.PathLike[str], options: RepairOptions) -> RepairResult:
    """Repair one wheel into ``options.out_dir`` (module docstring); raises a one-line
    :class:`~manywheel.errors.ManywheelError` subclass and writes nothing on failure."""
    path = os.fspath(path)
    lib_sdir = check_lib_sdir(options.lib_sdir)
    # A malformed SOURCE_DATE_EPOCH is a usage error before anything is read or created
    # (the output directory included); the value itself is taken when writing.
    epoch_from_environment(os.environ if options.environ is None else options.environ, 0)
    policies = load_policies(options.policy_files)
    spec = _plat_spec(options, policies)
    # The input is opened (its directory read strictly) once, for the audit and the copy.
    with contextlib.ExitStack() as stack:
        opened = None if os.path.isdir(path) else stack.enter_context(ZipArchive(path))
        return _repair(
            path, options, lib_sdir=lib_sdir, policies=policies, spec=spec, opened=opened
        )


def _repair(
    path: str,
    options: RepairOptions,
    *,
    lib_sdir: str,
    policies: PolicySet,
    spec: PlatSpec | None,
    opened: ZipArchive | None,
) -> RepairResult:
    audit_options = AuditOptions(
        exclude=options.exclude,
        disable_isa_ext_check=options.disable_isa_ext_check,
        ldpaths=options.ldpaths,
        sysroot=options.sysroot,
        policy_files=options.policy_files,
        allow_pure=True,
        environ=os.environ if options.environ is None else options.environ,
        # --verify-record: every member is hashed in the pass that reads the facts (the
        # writer takes these digests for the raw copies). Otherwise only the ELF members
        # are inflated, as far as their facts need; RECORD rows of raw copies are
        # carried over from the input (repair_apply._record_digests).
        verify_hashes=options.verify_record,
    )
    detail = audit_wheel_detail(path, audit_options, archive=opened)
    assert opened is not None  # the audit refuses a directory
    report = detail.report
    if options.verify_record:
        _refuse_record(report)
    if report.wheel.pure:
        if not options.allow_pure:
            raise InputError(
                f"{report.wheel.filename}: is a pure Python wheel (no ELF files); nothing to "
                "repair (--allow-pure-python-wheel copies it unchanged)"
            )
        return _copy_pure(path, report, options.out_dir)
    libpython = sorted({e.library for e in report.problems if e.kind == "libpython" and e.library})
    _refuse_problems(report)
    if libpython:
        # Removed, not grafted: audit again as if they were absent (excluded leaves).
        audit_options = dataclasses.replace(audit_options, exclude=(*options.exclude, *libpython))
        detail = audit_wheel_detail(
            path, audit_options, reuse=_same_entry(detail.members), archive=opened
        )
        report = detail.report
    graph, arch, libc = detail.graph, report.arch, report.libc
    assert graph is not None and arch is not None
    arch_policies = policies.for_arch(arch, libc)
    target = _target_policy(report, spec, policies)
    plan = plan_graft(graph, target, arch, detail.info, lib_sdir=lib_sdir)
    _refuse_plan(report, plan, target)
    if options.update_tags:
        tags = plan_platform_tags(
            graph, report.verdicts, arch_policies, target, arch, only_plat=options.only_plat
        )
        out_name = retag_filename(report.wheel.filename, tags)
    else:
        tags, out_name = report.wheel.platform_tags, report.wheel.filename
    needs_patchelf = bool(plan.grafts or plan.patches)
    patchelf = find_patchelf(options.environ) if needs_patchelf else None
    out_dir = _prepare_out_dir(options.out_dir, path, out_name)
    final = os.path.join(out_dir, out_name)
    try:
        work = Path(tempfile.mkdtemp(prefix=".manywheel-repair-", dir=out_dir))
    except OSError as exc:
        raise EnvironmentProblem(f"{out_dir}: cannot write there: {exc.strerror or exc}") from None
    cleaner: threading.Thread | None = None
    try:
        staged = work / out_name
        with contextlib.nullcontext(opened) as source:
            applied = apply(
                ApplyJob(source, detail, plan, options, patchelf, work, staged, tuple(tags), arch)
            )
            # The patched and grafted files are written into the wheel: remove them
            # while the output is audited (deleting 10^8 bytes waits on the file
            # system, not on a CPU).
            cleaner = threading.Thread(target=remove_inputs, args=(work,), daemon=True)
            cleaner.start()
            # Raw copies reuse the input's facts and the digest written for them.
            written = {
                name: dataclasses.replace(scanned, digest=applied.kept_digests[name])
                for name, scanned in detail.members.items()
                if name in applied.kept_digests
            }
            out = audit_wheel_detail(
                staged,
                dataclasses.replace(audit_options, allow_pure=False, verify_hashes=True),
                reuse=raw_copies(source, written),
            )
        verify_output(out, policies, plan, applied.names)
        os.replace(staged, final)
    finally:
        if cleaner is not None:
            cleaner.join()
        shutil.rmtree(work, ignore_errors=True)
    return RepairResult(
        input=path,
        output=final,
        size=applied.size,
        sha256=applied.sha256,
        policy=target.name,
        platform_tags=tuple(tags),
        grafted=applied.grafted,
        excluded=tuple(n for n in plan.excluded if n not in libpython),
        removed_needed=plan.removed,
        moved_scripts=tuple((la.path, la.target) for la in plan.launchers),
        patched=applied.patched,
        notes=(
            *(f"{m}: {lib} removed from DT_NEEDED (PEP 513)" for m, lib in plan.removed),
            *plan.notes,
        ),
    )


def _copy_pure(path: str, report: WheelReport, out_dir: str) -> RepairResult:
    """A pure wheel accepted with --allow-pure-python-wheel: copied unchanged."""
    out_dir = _prepare_out_dir(out_dir, path, report.wheel.filename)
    final = os.path.join(out_dir, report.wheel.filename)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".manywheel-", suffix=".tmp", dir=out_dir)
        os.close(fd)
    except OSError as exc:
        raise EnvironmentProblem(f"{out_dir}: cannot write there: {exc.strerror or exc}") from None
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, final)
    finally:
        Path(tmp).unlink(missing_ok=True)
    data = Path(final).read_bytes()
    return RepairResult(
        input=path,
        output=final,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        policy=None,
        platform_tags=report.wheel.platform_tags,
        grafted=(),
        excluded=(),
        removed_needed=(),
        moved_scripts=(),
        patched=(),
        notes=("pure Python wheel: copied unchanged",),
    )


def _prepare_out_dir(out_dir: str, source: str, out_name: str) -> str:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"{out_dir}: cannot create it: {exc.strerror or exc}") from None
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"{out_dir}: not a writable directory (-w DIR)")
    final = os.path.join(out_dir, out_name)
    if os.path.exists(final) and os.path.samefile(final, source):
        raise UsageError(
            f"{final}: the output would replace the input wheel; choose another -w DIR"
        )
    return out_dir


def _refuse_record(report: WheelReport) -> None:
    """--verify-record: RECORD must match the input's members (every one hashed)."""
    wrong = [e for e in report.consistency if e.kind == "record"]
    if wrong:
        raise RepairError(
            f"{report.wheel.filename}: RECORD does not match the wheel's members "
            "(--verify-record; nothing was written):\n" + "\n".join(evidence_lines(wrong, 1))
        )


def _refuse_problems(report: WheelReport) -> None:
    """Problems no repair fixes (every one but libpython, which repair removes)."""
    blocking = [e for e in report.problems if e.kind != "libpython"]
    if blocking:
        lines = evidence_lines(blocking, 1)
        raise RepairError(
            f"{report.wheel.filename}: cannot be repaired (no tag fixes these):\n"
            + "\n".join(lines)
        )


def _target_policy(report: WheelReport, spec: PlatSpec | None, policies: PolicySet) -> Policy:
    arch = report.arch
    if spec is None:
        # auto: the most compatible tag repair reaches; when that is only the catch-all
        # linux tag, the least demanding portable policy, so that what stands in its way
        # (a library not found, a symbol too new) is the error.
        reachable = [v for v in report.verdicts if v.ok_after_repair]
        portable = [v for v in report.verdicts if policies.get(v.policy).portable]
        chosen = next((v for v in reachable if v in portable), portable[-1] if portable else None)
        if chosen is None:
            raise RepairError(f"{report.wheel.filename}: no portable policy for {arch}")
        return policies.get(chosen.policy)
    if spec.arch is not None and spec.arch != arch:
        raise RepairError(
            f"{report.wheel.filename}: the wheel's ELF files are for {arch}, "
            f"--plat {spec.text} is for {spec.arch}"
        )
    policy = policies.get(spec.policy)
    if not any(v.policy == policy.name for v in report.verdicts):
        raise RepairError(
            f"{report.wheel.filename}: {spec.text} does not apply to this wheel "
            f"({report.libc} {arch}): {policy.name} is a {policy.libc} policy"
        )
    return policy


def _refuse_plan(report: WheelReport, plan: GraftPlan, target: Policy) -> None:
    name = report.wheel.filename
    if plan.missing:
        raise RepairError("\n".join(_missing_lines(name, plan.missing)))
    verdict: PolicyVerdict = next(v for v in report.verdicts if v.policy == target.name)
    if not verdict.ok_after_repair:
        best = f"the most compatible reachable tag is {report.repair_tag}"
        raise RepairError(
            f"{name}: {verdict.tag} cannot be reached ({best}); after grafting:\n"
            + "\n".join(evidence_lines(verdict.evidence_after_repair, 1))
        )
    if plan.unreachable:
        raise RepairError(
            f"{name}: {', '.join(plan.unreachable)} installs outside site-packages, where "
            "no $ORIGIN-relative path can reach the grafted libraries"
        )


def _missing_lines(name: str, missing: Sequence[ExternalRef]) -> list[str]:
    first = missing[0]
    chain = " -> ".join(first.chains[0]) if first.chains else first.name
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    lines = [f"{name}: cannot graft {first.name}{more}: not found ({chain}); {_NOT_FOUND_HINT}"]
    for ref in missing:
        lines.append(f"  {ref.name} tried:")
        lines.extend(f"    {place}" for place in ref.tried or ("(nowhere: no search path)",))
    return lines


def _same_entry(members: Mapping[str, ScannedMember]) -> ReuseMember:
    """Reuse for a second audit of the *same* input file: a member whose central
    directory entry is unchanged (name, method, CRC, sizes, offsets) was read already."""

    def reuse(
        archive: ZipArchive, member: ZipMember
    ) -> tuple[MemberFacts | None, MemberDigest] | None:
        known = members.get(member.name)
        if known is None or known.member != member:
            return None
        return known.facts, known.digest

    return reuse


# --------------------------------------------------------------------------- rendering


def render_results(results: Sequence[RepairResult]) -> str:
    """The text of ``repair``: per wheel, the output, its tags and what was done."""
    lines: list[str] = []
    for result in results:
        lines.append(f"{os.path.basename(result.input)} -> {result.output}")
        lines.append(f"  tags: {', '.join(result.platform_tags)}")
        if result.grafted:
            lines.append("  grafted:")
            for g in result.grafted:
                lines.append(f"    {g.source} -> {g.member} (was {', '.join(g.needed_as)})")
        if result.excluded:
            lines.append(f"  excluded, left external: {', '.join(result.excluded)}")
        for src, dest in result.moved_scripts:
            lines.append(f"  moved {src} -> {dest} (a launcher takes its place)")
        lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines) + ("\n" if lines else "")


def results_to_json(results: Sequence[RepairResult]) -> dict[str, Any]:
    """The ``--json`` document (schemas/repair.schema.json)."""
    return {
        "schema_version": REPAIR_SCHEMA_VERSION,
        "command": "repair",
        "repairs": [
            {
                "input": r.input,
                "output": r.output,
                "size": r.size,
                "sha256": r.sha256,
                "policy": r.policy,
                "platform_tags": list(r.platform_tags),
                "grafted": [
                    {
                        "source": g.source,
                        "needed_as": list(g.needed_as),
                        "member": g.member,
                        "soname": g.soname,
                    }
                    for g in r.grafted
                ],
                "excluded": list(r.excluded),
                "removed_needed": [{"file": f, "library": lib} for f, lib in r.removed_needed],
                "moved_scripts": [{"from": a, "to": b} for a, b in r.moved_scripts],
                "patched": list(r.patched),
                "notes": list(r.notes),
            }
            for r in results
        ],
    }
