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
   after hashing every member, :func:`_record_digests`), grafted libraries written as
   deflated during step 3, the rest deflated, RECORD regenerated,
   timestamps from ``SOURCE_DATE_EPOCH`` or else the input's newest member (the fixed
   rule that makes output reproducible).
5. **Verify** (:mod:`manywheel.repair_verify`). The written wheel is audited again
   (reusing the input scan's facts and digests for members proven to be byte-identical
   raw copies, :func:`~manywheel.repair_verify.raw_copies`): it must satisfy every tag it
   claims and every grafted library must resolve from its new place; only then is it
   renamed into the output directory. On any failure the private directory is removed:
   nothing is left behind, and the input is never modified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from manywheel.audit import (
    AuditDetail,
    AuditOptions,
    ReuseMember,
    ScannedMember,
    audit_wheel_detail,
)
from manywheel.check import PlatSpec, parse_plat
from manywheel.deflate import NewMember, PreDeflated, Predeflater
from manywheel.elf import ElfFacts, read_facts
from manywheel.errors import (
    ElfError,
    EnvironmentProblem,
    InputError,
    RepairError,
    UsageError,
)
from manywheel.graft import (
    GraftPlan,
    graft_name,
    launcher_text,
    plan_graft,
    plan_platform_tags,
    retag_filename,
    retag_wheel_text,
)
from manywheel.ldfs import HostFilesystem
from manywheel.linkgraph import ExternalRef, LinkGraph
from manywheel.memberfacts import MemberFacts
from manywheel.patch import Patchelf, PatchOps, apply_patch, find_patchelf, strip_file, verify_patch
from manywheel.policy import Policy, PolicySet, load_policies
from manywheel.render import evidence_lines
from manywheel.repair_verify import raw_copies, verify_output
from manywheel.report import PolicyVerdict, WheelReport
from manywheel.value import Value
from manywheel.wheel import SIGNATURE_SUFFIXES, MemberDigest, WheelInfo
from manywheel.wheelwrite import epoch_from_environment, newest_member_time, write_wheel
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
    #: RECORD when its row can be trusted (:func:`_record_digests`).
    verify_record: bool = False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GraftRecord(Value):
    """One grafted library: where it was found, the names that loaded it, its new place."""

    source: str
    needed_as: tuple[str, ...]
    member: str
    soname: str


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
        # carried over from the input (_record_digests).
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
            applied = _apply(
                source,
                detail,
                plan=plan,
                options=options,
                patchelf=patchelf,
                work=work,
                staged=staged,
                tags=tags,
                arch=arch,
            )
            # The patched and grafted files are written into the wheel: remove them
            # while the output is audited (deleting 10^8 bytes waits on the file
            # system, not on a CPU).
            cleaner = threading.Thread(target=_remove_inputs, args=(work,), daemon=True)
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


def _remove_inputs(work: Path) -> None:
    """Remove the grafted and patched files of ``work`` (the staged wheel stays)."""
    for name in ("libs", "members"):
        shutil.rmtree(work / name, ignore_errors=True)


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


#: A sha256 digest as RECORD writes it: 32 bytes, urlsafe base64 without padding.
_SHA256_B64 = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _record_digests(
    info: WheelInfo, members: Mapping[str, ScannedMember]
) -> dict[str, MemberDigest]:
    """The input RECORD's digests that a raw copy may carry over unverified: rows that
    name their member once, with ``sha256`` and a well-formed digest, and the size the
    central directory gives. Any other row is known to be wrong or unusable without
    hashing (wrong size, missing, listed twice, weak or other algorithm): the writer
    hashes that member. What is trusted is only the digest of bytes repair does not
    change; their CRC-32 still guards them, and ``manywheel check`` hashes them."""
    counts = Counter(e.path for e in info.record)
    out: dict[str, MemberDigest] = {}
    for entry in info.record:
        scanned = members.get(entry.path)
        if (
            scanned is not None
            and counts[entry.path] == 1
            and entry.hash_algorithm == "sha256"
            and entry.hash_digest is not None
            and _SHA256_B64.fullmatch(entry.hash_digest)
            and entry.size == scanned.member.file_size
        ):
            out[entry.path] = MemberDigest(entry.hash_digest, entry.size)
    return out


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


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True, eq=False, repr=False)
class _Applied(Value):
    names: Mapping[str, str]  # grafted key -> new file name
    grafted: tuple[GraftRecord, ...]
    patched: tuple[str, ...]
    size: int
    sha256: str
    kept_digests: Mapping[str, MemberDigest]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _facts(graph: LinkGraph, key: str) -> ElfFacts:
    node = graph.nodes[key]
    if node.facts is None:  # needs_facts holds for every library a policy rejects
        raise RepairError(f"{key}: its ELF facts could not be read")
    return node.facts


def _full_facts(graph: LinkGraph, key: str, path: Path) -> ElfFacts:
    """Facts with every dynamic symbol of the file at ``path`` (``key``'s bytes, about to
    be patched): the graph's facts when they hold every symbol, else read from ``path``
    (members are audited with the ``"imports"`` scope only; a full read costs tens of
    milliseconds even for 10^5 symbols)."""
    facts = _facts(graph, key)
    if facts.symbol_scope == "all":
        return facts
    try:
        return read_facts(path)
    except ElfError as exc:
        raise RepairError(f"{key}: its ELF facts could not be read: {exc}") from None


def _graft_libraries(
    plan: GraftPlan,
    graph: LinkGraph,
    *,
    host: HostFilesystem,
    patchelf: Patchelf,
    options: RepairOptions,
    work: Path,
    arch: str,
    predeflate: Callable[[NewMember], PreDeflated],
) -> tuple[dict[str, str], dict[str, Path], dict[str, PreDeflated]]:
    """Name, patch and check every grafted library (docs/repair.md, "Names").

    1. The bytes to ship start from the library as found (or a stripped copy of it,
       ``--strip``); each is hashed (sha256), in parallel.
    2. Names, leaves first: a group (one library, or a dependency cycle) is named from
       one sha256 over everything its shipped bytes are computed from
       (:func:`_group_digest`), which needs only the original bytes' hashes and the
       names of dependencies already named -- no patched byte.
    3. One patchelf call per library writes the shipped file from the original (soname,
       DT_NEEDED, RUNPATH at once), checked against every symbol of the original
       (:func:`~manywheel.patch.verify_patch`). These calls are independent of each
       other, so they run in parallel, biggest first.
    4. Each patched library is deflated for the output as soon as its check passes
       (``predeflate``, pieces on every core), while the others are still patched: a
       pipeline, not a barrier before the write. Returns what was deflated, by member.
    """
    by_key = {g.key: g for g in plan.grafts}
    (work / "libs").mkdir()
    files = {g.key: work / "libs" / f"{index}-{g.file_name}" for index, g in enumerate(plan.grafts)}

    def prepare(key: str) -> tuple[Path, str]:
        source = Path(host.host_path(key) or key)
        if options.strip:
            try:
                shutil.copyfile(source, files[key])
            except OSError as exc:
                raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from None
            os.chmod(files[key], 0o755)
            strip_file(files[key], arch)
            source = files[key]
        try:
            return source, _sha256(source)
        except OSError as exc:
            raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from None

    biggest_first = sorted(by_key, key=lambda k: -_size(host.host_path(k) or k))
    prepared = dict(zip(biggest_first, _parallel(prepare, biggest_first), strict=True))
    names: dict[str, str] = {}
    for group in plan.groups:
        digest = _group_digest(group, by_key, {k: prepared[k][1] for k in group}, names, patchelf)
        for key in group:
            names[key] = graft_name(
                by_key[key].file_name,
                hashlib.sha256(f"{digest}:{by_key[key].file_name}".encode()).hexdigest(),
            )

    def patch(key: str) -> None:
        graft = by_key[key]
        source = prepared[key][0]
        before = _full_facts(graph, key, source)
        ops = PatchOps(
            set_soname=names[key],
            replace_needed={name: names[dep] for name, dep in graft.needs},
            set_rpath=graft.rpath,
            rpath_kind="runpath",
        )
        apply_patch(patchelf, files[key], ops, source=None if source == files[key] else source)
        verify_patch(files[key], ops, before)
        member = f"{plan.libs_dir}/{names[key]}"
        done = predeflate(NewMember(member, files[key]))
        with lock:
            ready.setdefault(member, []).append(done)

    lock = threading.Lock()
    ready: dict[str, list[PreDeflated]] = {}
    try:
        _parallel(patch, biggest_first)
    except BaseException:
        _close_all(d for found in ready.values() for d in found)
        raise
    # (Two keys under one member name, never expected: the writer deflates it itself.)
    unique = {m: found[0] for m, found in ready.items() if len(found) == 1}
    _close_all(d for m, found in ready.items() if m not in unique for d in found)
    return names, files, unique


def _close_all(items: Iterable[PreDeflated]) -> None:
    for item in items:
        item.deflated.data.close()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel(job: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``job`` over ``items`` on up to one thread per CPU (the work is in subprocesses
    and in hashing, which release the GIL); results in ``items`` order; the first
    failure, in ``items`` order, is raised once every started job has ended."""
    count = min(len(items), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if count <= 1:
        return [job(item) for item in items]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="manywheel-graft") as pool:
        futures = [pool.submit(job, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


#: Names the rule below; a change of the rule changes every name.
_NAME_SCHEME = "manywheel graft names 2"


def _group_digest(
    group: Sequence[str],
    by_key: Mapping[str, Any],
    content: Mapping[str, str],
    names: Mapping[str, str],
    patchelf: Patchelf,
) -> str:
    """The name hash of a group of grafted libraries (one library, or a dependency
    cycle): one sha256 over everything the group's shipped bytes are computed from --
    each library's file name, the sha256 of its bytes before patching (after
    ``--strip``), its new search path, the names written for its dependencies (those in
    the group by file name: their names derive from this hash), and the patchelf
    version and this naming rule. The soname written is a function of the hash, so the
    same inputs give the same shipped bytes and the same names, and different shipped
    bytes imply different inputs, hence (barring a sha256 collision) different names."""
    digest = hashlib.sha256(f"{_NAME_SCHEME}\npatchelf {patchelf.version_text}\n".encode())
    for key in sorted(group, key=lambda k: (by_key[k].file_name, k)):
        graft = by_key[key]
        digest.update(f"{graft.file_name}\n{content[key]}\n{graft.rpath}\n".encode())
        for name, dep in graft.needs:
            digest.update(
                f"{name}->{names.get(dep, '(group) ' + by_key[dep].file_name)}\n".encode()
            )
    return digest.hexdigest()


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


def _apply(
    archive: ZipArchive,
    detail: AuditDetail,
    *,
    plan: GraftPlan,
    options: RepairOptions,
    patchelf: Patchelf | None,
    work: Path,
    staged: Path,
    tags: Sequence[str],
    arch: str,
) -> _Applied:
    graph = detail.graph
    assert graph is not None
    names: dict[str, str] = {}
    files: dict[str, Path] = {}
    predeflated: dict[str, PreDeflated] = {}
    with contextlib.ExitStack() as stack:
        if plan.grafts:
            assert patchelf is not None
            host = stack.enter_context(HostFilesystem(options.sysroot))
            deflater = stack.enter_context(Predeflater(work, compresslevel=options.compresslevel))
            names, files, predeflated = _graft_libraries(
                plan,
                graph,
                host=host,
                patchelf=patchelf,
                options=options,
                work=work,
                arch=arch,
                predeflate=deflater.deflate,
            )
    try:
        return _write_applied(
            archive,
            detail,
            plan=plan,
            options=options,
            patchelf=patchelf,
            work=work,
            staged=staged,
            tags=tags,
            arch=arch,
            names=names,
            files=files,
            predeflated=predeflated,
        )
    finally:
        _close_all(predeflated.values())  # (closing twice is harmless)


def _write_applied(
    archive: ZipArchive,
    detail: AuditDetail,
    *,
    plan: GraftPlan,
    options: RepairOptions,
    patchelf: Patchelf | None,
    work: Path,
    staged: Path,
    tags: Sequence[str],
    arch: str,
    names: Mapping[str, str],
    files: Mapping[str, Path],
    predeflated: Mapping[str, PreDeflated],
) -> _Applied:
    graph = detail.graph
    info = detail.info
    assert graph is not None
    dests: dict[str, Path] = {}
    for key, name in names.items():
        dests.setdefault(f"{plan.libs_dir}/{name}", files[key])
    clash = sorted(set(dests) & set(info.members))
    if clash:
        raise RepairError(f"{info.filename}: {clash[0]} is already a member of the wheel")
    grafted = tuple(
        GraftRecord(
            source=g.key,
            needed_as=g.needed_as,
            member=f"{plan.libs_dir}/{names[g.key]}",
            soname=names[g.key],
        )
        for g in plan.grafts
    )
    (work / "members").mkdir()
    replace: dict[str, NewMember] = {}
    add: list[NewMember] = [NewMember(dest, src) for dest, src in sorted(dests.items())]
    patches = {p.path: p for p in plan.patches}
    to_extract = sorted(
        {*patches, *(m for m in graph.members if options.strip and graph.nodes[m].facts)}
    )
    for index, member in enumerate(to_extract):
        copy = work / "members" / f"{index}-{member.rpartition('/')[2]}"
        copy.write_bytes(archive.read(archive.member(member)))
        os.chmod(copy, 0o755)
        if options.strip:
            strip_file(copy, arch)
        patch = patches.get(member)
        if patch is not None:
            assert patchelf is not None
            ops = PatchOps(
                replace_needed={name: names[key] for name, key in patch.replace},
                remove_needed=patch.remove,
                set_rpath=patch.rpath,
                rpath_kind=patch.rpath_kind,
            )
            # The audit read members with the "imports" symbol scope; the proof
            # that patching kept every symbol needs them all (patch.verify_patch).
            before = _full_facts(graph, member, copy)
            apply_patch(patchelf, copy, ops)
            verify_patch(copy, ops, before)
        if patch is not None and patch.dest != member:
            add.append(NewMember(patch.dest, copy, executable=True))
        else:
            replace[member] = NewMember(member, copy)
    for launcher in plan.launchers:
        text = launcher_text(launcher, info.identity.name)
        replace[launcher.path] = NewMember(launcher.path, text.encode(), executable=True)
    wheel_text = archive.read(archive.member(info.wheel_path)).decode("utf-8")
    if options.update_tags:
        wheel_text = retag_wheel_text(wheel_text, staged.name, tags)
    environ = os.environ if options.environ is None else options.environ
    epoch = epoch_from_environment(environ, newest_member_time(archive))
    # RECORD and WHEEL are rewritten; a signature of the old RECORD would be false.
    dropped = {info.record_path, info.wheel_path}
    keep = [
        m
        for m in info.members
        if m not in replace and m not in dropped and not _is_signature(m, info.record_path)
    ]
    written = write_wheel(
        archive,
        staged,
        keep=keep,
        replace=replace,
        add=tuple(add),
        wheel_file=(info.wheel_path, wheel_text),
        record_path=info.record_path,
        epoch=epoch,
        compresslevel=options.compresslevel,
        predeflated={
            m.path: predeflated[m.path]
            for m in add
            if m.path in predeflated and predeflated[m.path].member == m
        },
        known_digests=(
            {name: m.digest for name, m in detail.members.items() if m.digest.sha256}
            if options.verify_record
            else _record_digests(info, detail.members)
        ),
    )
    return _Applied(
        names=names,
        grafted=grafted,
        patched=tuple(sorted({*patches, *(m for m in to_extract)})),
        size=written.size,
        sha256=written.sha256,
        kept_digests=written.kept_digests,
    )


def _is_signature(member: str, record_path: str) -> bool:
    """``RECORD.jws`` / ``RECORD.p7s`` (PEP 427 "Signed wheel files")."""
    return any(member == record_path + suffix for suffix in SIGNATURE_SUFFIXES)


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
