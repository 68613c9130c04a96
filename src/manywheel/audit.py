"""The audit: one wheel in, one :class:`~manywheel.report.WheelReport` out.

The flow is one direction (docs: DESIGN "facts once, judgments after"):

1. :func:`~manywheel.wheel.read_wheel` -- filename, WHEEL, RECORD (PEP 427);
2. :func:`~manywheel.memberfacts.scan_archive` -- one inflate per member, on every core:
   ELF facts of the ELF members and the RECORD hash of every member;
3. :mod:`manywheel.platform_detect` -- libc and architecture of the wheel;
4. :func:`~manywheel.linkgraph.build_graph` -- the loader model run in the wheel overlay
   (:mod:`manywheel.wheelfs`) from every root, folded into one graph;
5. :func:`~manywheel.verdict.evaluate_all` -- every policy of that libc and arch judged
   over the graph, most compatible first; policy-independent problems aside.

Only steps 1, 2 and 4 read anything; every judgment after is a pure function.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from manywheel import problems as _problems
from manywheel.elf import ElfFacts
from manywheel.errors import InputError
from manywheel.exclude import ExcludeMatcher
from manywheel.ld import LoaderSession
from manywheel.ldconfig import config_from_options
from manywheel.ldfs import HostFilesystem
from manywheel.linkgraph import LinkGraph, build_graph
from manywheel.memberfacts import MemberFacts, PendingScan, cpus, scan_archive, start_scan
from manywheel.platform_detect import Libc, Platform, detect_platform
from manywheel.policy import Policy, load_policies
from manywheel.report import (
    SCHEMA_VERSION,
    ElfMemberInfo,
    Evidence,
    ExternalLibrary,
    PolicyVerdict,
    WheelReport,
)
from manywheel.scanahead import ScanAhead
from manywheel.value import Value
from manywheel.verdict import best_tags, evaluate_all
from manywheel.wheel import (
    MemberDigest,
    RecordHasher,
    WheelInfo,
    member_digests,
    read_wheel,
    record_algorithms,
)
from manywheel.wheelfs import WheelFilesystem
from manywheel.zipread import ZipArchive, ZipMember

__all__ = [
    "AuditDetail",
    "AuditOptions",
    "ReuseMember",
    "ScannedMember",
    "audit_wheel",
    "audit_wheel_detail",
]


@dataclass(frozen=True, eq=False, repr=False)
class AuditOptions(Value):
    """What the audit looks at and how (the options of ``show`` and ``check``).

    ``exclude``: globs on a library's soname or on its resolved path (see
    :mod:`manywheel.exclude`); ``ldpaths``/``sysroot``/``environ``: the loader model's
    configuration (:func:`~manywheel.ldconfig.config_from_options`); ``policy_files``:
    extra policies; ``allow_pure``: accept a wheel without ELF files.
    """

    exclude: tuple[str, ...] = ()
    disable_isa_ext_check: bool = False
    ldpaths: str | None = None
    sysroot: str | None = None
    policy_files: tuple[str, ...] = ()
    allow_pure: bool = False
    environ: Mapping[str, str] | None = None
    #: Hash every member to check RECORD (sha256, PEP 427), in the pass that reads the
    #: ELF facts. False: RECORD sizes are checked against the central directory only,
    #: and non-ELF members are not inflated at all (about 30% less CPU on big wheels).
    verify_hashes: bool = True


def _is_extension(facts: ElfFacts) -> bool:
    """A CPython extension module exports ``PyInit_<name>`` (PEP 489 / the C API docs)."""
    return any(
        defined and name[:7] == "PyInit_" and bind in ("GLOBAL", "WEAK")
        for name, defined, bind, *_ in facts.symbols
    )


def _is_executable(facts: ElfFacts) -> bool:
    """An executable asks for a program interpreter (PT_INTERP) or is ET_EXEC."""
    return facts.interpreter is not None or facts.header.elf_type == 2


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ScannedMember(Value):
    """What the audit's one pass learnt of one file member: its central directory entry,
    its facts (None when it is not ELF) and its digest (``sha256`` None when the audit
    did not hash contents, ``verify_hashes=False``)."""

    member: ZipMember
    facts: MemberFacts | None
    digest: MemberDigest


#: ``reuse(archive, member)``: the facts and digest of a member of ``archive`` known
#: without reading it (see :func:`audit_wheel_detail`), or None to read it.
ReuseMember = Callable[[ZipArchive, ZipMember], "tuple[MemberFacts | None, MemberDigest] | None"]


class _Known:
    """A digest known beforehand, standing where a hasher fed the content would."""

    __slots__ = ("digest",)

    def __init__(self, digest: MemberDigest) -> None:
        self.digest = digest

    def update(self, data: bytes | bytearray | memoryview) -> None:  # pragma: no cover
        raise AssertionError("a known digest is not fed content")

    def result(self) -> MemberDigest:
        return self.digest


@dataclass(frozen=True, eq=False, repr=False)
class _Scan(Value):
    elf: tuple[MemberFacts, ...]
    digests: dict[str, MemberDigest]
    members: dict[str, ScannedMember]


def _scan(
    path: str,
    filename: str,
    verify_hashes: bool,
    reuse: ReuseMember | None = None,
    opened: ZipArchive | None = None,
    *,
    ahead: ScanAhead | None = None,
) -> tuple[WheelInfo, _Scan]:
    """Read the wheel's metadata, then every member once (facts and RECORD hashes).

    The members' facts hold only the symbols some judgment looks at (the ``"imports"``
    scope of :data:`~manywheel.elf.SymbolScope`): the imports for symbol versions,
    blacklists and the Python ABI checks, the ``PyInit_*`` exports for
    :func:`_is_extension`. A big library's 10^5 defined names are never decoded.
    """
    if ahead is not None:
        return _scanned_ahead(ahead, filename)
    with contextlib.nullcontext(opened) if opened is not None else ZipArchive(path) as archive:
        if not verify_hashes:
            info, facts = _metadata_beside_scan(archive, filename)
            digests = member_digests(archive, hash_contents=False)
            return info, _Scan(facts, digests, _scanned(archive, facts, digests))
        info = read_wheel(archive, filename)
        algorithms = record_algorithms(info.record)
        adapter = None if reuse is None else _reuse_adapter(reuse, algorithms)
        scan = scan_archive(
            archive, lambda: RecordHasher(algorithms), symbols="imports", reuse=adapter
        )
        digests = {name: hasher.result() for name, hasher in scan.hashes.items()}
        return info, _Scan(scan.facts, digests, _scanned(archive, scan.facts, digests))


def _scanned_ahead(ahead: ScanAhead, filename: str) -> tuple[WheelInfo, _Scan]:
    """:func:`_scan` without hashing, over a scan the caller started early; faults come
    in the same order (opening, then the metadata, then the members)."""
    with ahead.open() as archive:
        try:
            info = read_wheel(archive, filename)
        except BaseException:
            ahead.cancel()  # nothing may read the archive once it is closed
            raise
        facts = ahead.facts()
        digests = member_digests(archive, hash_contents=False)
        return info, _Scan(facts, digests, _scanned(archive, facts, digests))


def _metadata_beside_scan(
    archive: ZipArchive, filename: str
) -> tuple[WheelInfo, tuple[MemberFacts, ...]]:
    """:func:`read_wheel` on a thread of its own while the scan runs, which then starts
    at once with its biggest member (the critical path of a big wheel: libtorch_cpu.so
    alone inflates for longer than everything else together). Only without hashing:
    the hashes to compute come from RECORD. A fault in the metadata is reported before
    one in the members, as when the two ran one after the other."""
    outcome: list[WheelInfo] = []
    failure: list[BaseException] = []
    pending: PendingScan[RecordHasher] = start_scan(archive, symbols="imports", threads=cpus() - 1)

    def metadata() -> None:
        try:
            outcome.append(read_wheel(archive, filename))
        except BaseException as exc:  # re-raised below, on the calling thread
            failure.append(exc)
            pending.stop()  # the members are not wanted any more

    reader = threading.Thread(target=metadata, name="manywheel-metadata", daemon=True)
    reader.start()
    try:
        facts = pending.result().facts
    except BaseException:
        reader.join()
        if failure:
            raise failure[0] from None
        raise
    reader.join()
    if failure:
        raise failure[0]
    return outcome[0], facts


def _reuse_adapter(
    reuse: ReuseMember, algorithms: frozenset[str]
) -> Callable[[ZipArchive, ZipMember], tuple[MemberFacts | None, RecordHasher | _Known] | None]:
    """``reuse`` in the shape :func:`scan_archive` asks for; a digest lacking an algorithm
    RECORD uses is not reused."""

    def adapted(
        archive: ZipArchive, member: ZipMember
    ) -> tuple[MemberFacts | None, RecordHasher | _Known] | None:
        known = reuse(archive, member)
        if known is None:
            return None
        facts, digest = known
        if digest.sha256 is None or any(
            digest.digest(a) is None for a in algorithms if a != "sha256"
        ):
            return None
        return facts, _Known(digest)

    return adapted


def _scanned(
    archive: ZipArchive, facts: Sequence[MemberFacts], digests: Mapping[str, MemberDigest]
) -> dict[str, ScannedMember]:
    by_name = {f.name: f for f in facts}
    return {
        m.name: ScannedMember(m, by_name.get(m.name), digests[m.name])
        for m in archive.members
        if m.name in digests
    }


@dataclass(frozen=True, eq=False, repr=False)
class AuditDetail(Value):
    """The report plus what it was judged from, for ``repair`` (which plans over the
    link graph rather than re-reading anything): the wheel's layout (``info``) and the
    :class:`~manywheel.linkgraph.LinkGraph` (None when no policy applied: a pure wheel
    or an unknown architecture)."""

    report: WheelReport
    info: WheelInfo
    graph: LinkGraph | None
    #: Every file member as the scan saw it (for ``repair``: the digests RECORD needs,
    #: and what a later audit of a raw copy may reuse).
    members: Mapping[str, ScannedMember] = field(default_factory=dict)


def audit_wheel(
    path: str | os.PathLike[str], options: AuditOptions, *, ahead: ScanAhead | None = None
) -> WheelReport:
    """Audit the wheel at ``path``. Raises :class:`~manywheel.errors.ManywheelError`
    subclasses (one line each) for anything unreadable, and InputError for a pure
    Python wheel unless ``options.allow_pure``. ``ahead``: see :func:`audit_wheel_detail`."""
    return audit_wheel_detail(path, options, ahead=ahead).report


def audit_wheel_detail(
    path: str | os.PathLike[str],
    options: AuditOptions,
    *,
    reuse: ReuseMember | None = None,
    archive: ZipArchive | None = None,
    ahead: ScanAhead | None = None,
) -> AuditDetail:
    """:func:`audit_wheel`, also returning the wheel layout, the link graph and what the
    scan learnt of every member.

    ``reuse`` (with ``verify_hashes``): asked for each file member before it is read; the
    facts and digest it returns are used as if read (``repair`` passes those of members
    it copied raw from the input, once it has compared their bytes). Everything else --
    reading the archive's structure, RECORD, the loader model, every verdict -- runs as
    without it. ``archive``: ``path`` already opened (``repair`` reads its input once);
    it is left open. ``ahead``: the scan of ``path`` already started
    (:class:`~manywheel.scanahead.ScanAhead`, without hashing only); the audit takes
    its archive over and closes it.
    """
    path = os.fspath(path)
    if ahead is not None and (
        ahead.path != path or options.verify_hashes or reuse is not None or archive is not None
    ):
        raise ValueError("a scan started ahead serves one path, without hashing or reuse")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a wheel")
    info, scan = _scan(
        path, os.path.basename(path), options.verify_hashes, reuse, archive, ahead=ahead
    )
    info = info.with_pure(not scan.elf)
    consistency = [*info.tag_evidence(), *info.record_evidence(scan.digests)]
    if not scan.elf:
        if not options.allow_pure:
            raise InputError(
                f"{info.filename}: is a pure Python wheel (no ELF files); nothing to audit "
                "(--allow-pure-python-wheel accepts it)"
            )
        return AuditDetail(_pure_report(info, tuple(consistency)), info, None, scan.members)
    platform = detect_platform(info.identity, scan.elf)
    found = _problems.member_problems(scan.elf, platform.arch, info)
    consistency.extend(platform.evidence)
    if platform.arch is None:
        report = _unknown_arch_report(info, platform, scan.elf, found.evidence, consistency)
        return AuditDetail(report, info, None, scan.members)
    arch = platform.arch
    policies = load_policies(options.policy_files).for_arch(arch, platform.libc)
    audited = {
        m.name: m.facts for m in scan.elf if m.facts is not None and m.name not in found.skipped
    }
    graph = _resolve(
        info, scan.elf, audited, libc=platform.libc, arch=arch, policies=policies, options=options
    )
    verdicts = evaluate_all(graph, policies, arch, check_isa=not options.disable_isa_ext_check)
    problems = found.evidence
    best, repair = best_tags(verdicts, blocked=bool(problems))
    consistency.extend(_problems.claims_vs_content(info.identity, verdicts, arch))
    report = WheelReport(
        schema_version=SCHEMA_VERSION,
        wheel=info.identity,
        libc=platform.libc,
        arch=platform.arch,
        libc_arch_source=platform.source,
        members=_member_infos(scan.elf, graph),
        external=_externals(graph, verdicts, policies),
        unreachable_libraries=graph.unreachable,
        verdicts=verdicts,
        best_tag=best,
        repair_tag=repair,
        consistency=tuple(consistency),
        problems=problems,
        notes=(*info.notes, *platform.notes, *graph.notes, *_sysroot_notes(options)),
    )
    return AuditDetail(report, info, graph, scan.members)


def _sysroot_notes(options: AuditOptions) -> tuple[str, ...]:
    """With --sysroot, library paths are the loader's view inside the root: say so once,
    so that "found at /usr/lib/x.so" is not read as this machine's /usr/lib."""
    if not options.sysroot:
        return ()
    root = options.sysroot.rstrip("/") or "/"
    return (
        f"library paths are inside --sysroot {root}: "
        f"/usr/lib/x.so means {root}/usr/lib/x.so on this machine",
    )


def _resolve(
    info: WheelInfo,
    elf: Sequence[MemberFacts],
    audited: Mapping[str, ElfFacts],
    *,
    libc: Libc,
    arch: str,
    policies: Sequence[Policy],
    options: AuditOptions,
) -> LinkGraph:
    """Run the loader model from every root in the wheel overlay (the only I/O after the
    scan: host libraries, ld.so.cache)."""
    config = config_from_options(
        ldpaths=options.ldpaths,
        sysroot=options.sysroot,
        environ=options.environ,
        libc=libc,
    )
    roots = [n for n, f in audited.items() if _is_executable(f) or _is_extension(f)]
    libraries = [n for n in audited if n not in set(roots)]
    portable = [p for p in policies if p.portable]
    with HostFilesystem(config.sysroot) as host:
        fs = WheelFilesystem(
            host,
            {m.name: m.facts for m in elf},
            others=info.members,
            errors={m.name: m.error for m in elf if m.error is not None},
        )
        matcher = ExcludeMatcher(options.exclude, fs)
        return build_graph(
            LoaderSession(config, fs),
            fs,
            audited,
            roots,
            libraries,
            exclude=matcher.excluded,
            needs_facts=lambda name: not all(p.allows_library(name, arch) for p in portable),
        )


def _member_infos(elf: Sequence[MemberFacts], graph: LinkGraph) -> tuple[ElfMemberInfo, ...]:
    infos = []
    for member in elf:
        facts = member.facts
        node = graph.nodes.get(member.name)
        internal = {
            link.name: link.target
            for link in (node.links if node is not None else ())
            if link.internal and link.target is not None
        }
        infos.append(
            ElfMemberInfo(
                path=member.name,
                arch=facts.header.arch if facts else None,
                is_extension=bool(facts and not _is_executable(facts) and _is_extension(facts)),
                soname=facts.dynamic.soname if facts and facts.dynamic else None,
                needed=facts.dynamic.needed if facts and facts.dynamic else (),
                internal_needed=internal,
                x86_isa_level=facts.x86_isa_level if facts else None,
                error=member.error,
            )
        )
    return tuple(infos)


def _externals(
    graph: LinkGraph, verdicts: Sequence[PolicyVerdict], policies: Sequence[Policy]
) -> tuple[ExternalLibrary, ...]:
    by_name = {p.name: p for p in policies}
    arch_of = {v.policy: v.tag[len(v.policy) + 1 :] for v in verdicts}
    out = []
    for ref in graph.externals.values():
        allowed_by = next(
            (
                v.policy
                for v in verdicts
                if by_name[v.policy].allows_library(ref.name, arch_of[v.policy])
            ),
            None,
        )
        out.append(
            ExternalLibrary(
                soname=ref.name,
                path=ref.path,
                realpath=ref.realpath,
                rule=ref.rule,
                chains=ref.chains,
                tried=ref.tried,
                excluded=ref.excluded,
                allowed_by=allowed_by,
            )
        )
    return tuple(sorted(out, key=lambda lib: lib.soname))


def _pure_report(info: WheelInfo, consistency: tuple[Evidence, ...]) -> WheelReport:
    return WheelReport(
        schema_version=SCHEMA_VERSION,
        wheel=info.identity,
        libc=None,
        arch=None,
        libc_arch_source="none: pure Python wheel",
        members=(),
        external=(),
        unreachable_libraries=(),
        verdicts=(),
        best_tag=None,
        repair_tag=None,
        consistency=consistency,
        problems=(),
        notes=(*info.notes, "pure Python wheel (no ELF files): nothing to audit"),
    )


def _unknown_arch_report(
    info: WheelInfo,
    platform: Platform,
    elf: Sequence[MemberFacts],
    problems: tuple[Evidence, ...],
    consistency: list[Evidence],
) -> WheelReport:
    """No tag names the arch and no ELF member has a readable, supported one: no policy
    can be chosen; the problems say why."""
    return WheelReport(
        schema_version=SCHEMA_VERSION,
        wheel=info.identity,
        libc=platform.libc,
        arch=None,
        libc_arch_source=platform.source,
        members=tuple(ElfMemberInfo(m.name, None, False, None, (), {}, None, m.error) for m in elf),
        external=(),
        unreachable_libraries=(),
        verdicts=(),
        best_tag=None,
        repair_tag=None,
        consistency=tuple(consistency),
        problems=problems,
        notes=(*info.notes, *platform.notes, "the architecture is unknown: no policy applies"),
    )
