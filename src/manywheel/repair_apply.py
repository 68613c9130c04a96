"""The applying step of ``manywheel repair``: carry out the plan :mod:`manywheel.repair`
decided on, and write the output wheel (its module docstring, steps 3 and 4).

:func:`apply` names, strips, patches and checks the grafted libraries (in parallel, each
deflated as soon as its check passes), extracts, strips and patches the members to
change, and writes the wheel with :func:`~manywheel.wheelwrite.write_wheel` (RECORD
digests of raw copies carried over from the input or taken from the audit). Doing is a
second idea next to deciding, so it has its own module: :mod:`manywheel.repair` keeps
the options, the audit, the refusals, the plan and the verification of the written
wheel. This module does not import it (what it reads of the options: :class:`ApplyOptions`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from manywheel.audit import AuditDetail, ScannedMember
from manywheel.deflate import NewMember, PreDeflated, Predeflater
from manywheel.elf import ElfFacts, read_facts
from manywheel.errors import ElfError, InputError, RepairError
from manywheel.graft import GraftPlan, graft_name, launcher_text, retag_wheel_text
from manywheel.ldfs import HostFilesystem
from manywheel.linkgraph import LinkGraph
from manywheel.patch import Patchelf, PatchOps, apply_patch, strip_file, verify_patch
from manywheel.value import Value
from manywheel.wheel import SIGNATURE_SUFFIXES, MemberDigest, WheelInfo
from manywheel.wheelwrite import epoch_from_environment, newest_member_time, write_wheel
from manywheel.zipread import ZipArchive

__all__ = ["ApplyJob", "ApplyOptions", "GraftRecord", "apply", "remove_inputs"]


class ApplyOptions(Protocol):
    """What applying reads of :class:`manywheel.repair.RepairOptions` (declared here so
    that this module does not import :mod:`manywheel.repair`)."""

    @property
    def strip(self) -> bool: ...
    @property
    def compresslevel(self) -> int: ...
    @property
    def update_tags(self) -> bool: ...
    @property
    def sysroot(self) -> str | None: ...
    @property
    def environ(self) -> Mapping[str, str] | None: ...
    @property
    def verify_record(self) -> bool: ...


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GraftRecord(Value):
    """One grafted library: where it was found, the names that loaded it, its new place."""

    source: str
    needed_as: tuple[str, ...]
    member: str
    soname: str


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
    options: ApplyOptions,
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


@dataclass(frozen=True, eq=False, repr=False)
class ApplyJob(Value):
    """One repair to apply: the input archive, its audit and graft plan, the options
    applying reads, the patcher, the work directory, where to write the wheel
    (``staged``), its platform ``tags`` and the wheel's ``arch``."""

    archive: ZipArchive
    detail: AuditDetail
    plan: GraftPlan
    options: ApplyOptions
    patchelf: Patchelf | None
    work: Path
    staged: Path
    tags: tuple[str, ...]
    arch: str


def apply(job: ApplyJob) -> _Applied:
    """Graft, patch and write: the grafted libraries named, patched and checked, the
    members to change extracted, stripped and patched, and the wheel written to
    ``job.staged`` (module docstring of :mod:`manywheel.repair`, steps 3 and 4)."""
    graph = job.detail.graph
    assert graph is not None
    names: dict[str, str] = {}
    files: dict[str, Path] = {}
    predeflated: dict[str, PreDeflated] = {}
    options = job.options
    with contextlib.ExitStack() as stack:
        if job.plan.grafts:
            assert job.patchelf is not None
            host = stack.enter_context(HostFilesystem(options.sysroot))
            deflater = stack.enter_context(
                Predeflater(job.work, compresslevel=options.compresslevel)
            )
            names, files, predeflated = _graft_libraries(
                job.plan,
                graph,
                host=host,
                patchelf=job.patchelf,
                options=options,
                work=job.work,
                arch=job.arch,
                predeflate=deflater.deflate,
            )
    try:
        return _write_applied(job, names=names, files=files, predeflated=predeflated)
    finally:
        _close_all(predeflated.values())  # (closing twice is harmless)


def _write_applied(
    job: ApplyJob,
    *,
    names: Mapping[str, str],
    files: Mapping[str, Path],
    predeflated: Mapping[str, PreDeflated],
) -> _Applied:
    archive, detail, plan, options = job.archive, job.detail, job.plan, job.options
    patchelf, work, staged, tags, arch = job.patchelf, job.work, job.staged, job.tags, job.arch
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


def remove_inputs(work: Path) -> None:
    """Remove the grafted and patched files of ``work`` (the staged wheel stays)."""
    for name in ("libs", "members"):
        shutil.rmtree(work / name, ignore_errors=True)


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


def _is_signature(member: str, record_path: str) -> bool:
    """``RECORD.jws`` / ``RECORD.p7s`` (PEP 427 "Signed wheel files")."""
    return any(member == record_path + suffix for suffix in SIGNATURE_SUFFIXES)
