"""Policy verdicts: pure functions from the link graph and a policy to evidence.

Nothing here reads a file: the facts were read once (:mod:`manywheel.memberfacts`,
:mod:`manywheel.linkgraph`) and every policy is judged over them. The rules:

**External libraries.** Starting from the wheel's ELF members, every ``DT_NEEDED`` entry
that loads from outside the wheel is an external library. One the policy allows (or the
user excluded) is a leaf: the system provides it with its own dependencies. One it does
not allow is a failure (``external-library``, with the chain that pulls it in and where
it was found; ``library-not-found`` with every place tried when the loader finds
nothing), and what it needs is followed in turn: ``repair`` would graft all of those.

**Symbol versions.** ld.so checks every entry of a file's version-needs table when it
loads the file (glibc ``elf/dl-version.c``, ``_dl_check_map_versions``), whether or not a
symbol refers to it, so the table is what is judged, per library it names. A version
of a prefix the policy does not constrain (``OPENSSL_3.0.0``) does not count; neither do
versions needed from a library inside the wheel (internal, or grafted by repair) or from
an excluded one. A *weak* version need (``VER_FLG_WEAK``) only makes ld.so print a
warning in verbose mode when it is missing; it counts only when a non-weak undefined
symbol uses it, because that symbol then fails to bind. Evidence names each symbol
using the version (one :class:`~manywheel.report.Evidence` per file, symbol and
version), or the version table itself when no symbol uses it.

**Blacklisted symbols.** Non-weak undefined symbols a file imports from a library whose
blacklist names them (a weak undefined symbol may stay unresolved: it does not count).

**x86-64 ISA level.** A file whose GNU property note needs x86-64-v2 or above fails every
portable policy (they promise the x86-64 baseline), unless that check is disabled.

**After repair.** The same checks on the wheel's members plus the grafted libraries,
with the links to grafted libraries now internal; a library not found cannot be
grafted, so the policy stays out of reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from manywheel.elf import ElfFacts
from manywheel.linkgraph import ExternalRef, FileNode, LinkGraph
from manywheel.policy import Policy, SymbolVersion
from manywheel.report import Evidence, PolicyVerdict
from manywheel.value import Value

__all__ = ["VER_FLG_WEAK", "best_tags", "evaluate", "evaluate_all"]

#: ``VER_FLG_WEAK`` of a Vernaux entry (LSB symbol versioning).
VER_FLG_WEAK = 0x2
_ISA_ABOVE_BASELINE = frozenset({"v2", "v3", "v4"})


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Imports(Value):
    """A file's undefined symbols, indexed once for every policy."""

    by_version: dict[tuple[str, str], tuple[tuple[str, bool], ...]]  # (lib, ver) -> (name, weak)
    # non-weak undefined name -> library of its version (the names blacklists watch)
    strong: dict[str, str | None]


def _index(facts: ElfFacts, watched: frozenset[str], versions: frozenset[str]) -> _Imports:
    """``strong`` holds only the names in ``watched`` (those some blacklist names),
    ``by_version`` only the version names in ``versions`` (those some policy rejects)."""
    by_version: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    strong: dict[str, str | None] = {}
    # One pass over possibly 10^5 symbols: tuple unpacking, no attribute lookups.
    for name, defined, bind, _type, version, _hidden, library in facts.symbols:
        if defined:
            continue
        weak = bind == "WEAK"
        if not weak and name in watched and name not in strong:
            strong[name] = library
        if version in versions and library is not None:
            key = (library, version)
            users = by_version.get(key)
            if users is None:
                by_version[key] = [(name, weak)]
            else:
                users.append((name, weak))
    return _Imports({k: tuple(v) for k, v in by_version.items()}, strong)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _FilePlan(Value):
    """The policy-independent part of one file's checks (see :meth:`_Context.plan`)."""

    external: dict[str, bool]  # DT_NEEDED name -> whether it counts as external
    # (library, version name, weak, rejecters) of each version needed from an external
    # library that some policy rejects; bit i of rejecters: policy i rejects it
    versions: tuple[tuple[str, str, bool, int], ...]
    # the external names some blacklist names (the others are never blocked)
    watched: tuple[str, ...]
    # the evidence of each entry of ``versions``, filled when first needed
    evidence: list[tuple[Evidence, ...] | None]


class _Context:
    """Per-graph caches shared by every policy: indexes and evidence already built."""

    def __init__(
        self, graph: LinkGraph, arch: str, check_isa: bool, policies: Sequence[Policy]
    ) -> None:
        self.graph = graph
        self.arch = arch
        self.check_isa = check_isa
        self.policies = policies
        # Every name some policy blacklists: only those are indexed as strong imports.
        self.blacklisted = frozenset(
            name for policy in policies for names in policy.blacklist.values() for name in names
        )
        self.blacklisting = frozenset(
            library for policy in policies for library in policy.blacklist
        )
        self._imports: dict[str, _Imports] = {}
        self._parsed: dict[str, SymbolVersion | None] = {}
        # version name -> bit i set when policy i rejects it
        self._rejecters: dict[str, int] = {}
        self._version_evidence: dict[tuple[str, str, str, bool], tuple[Evidence, ...]] = {}
        self._plans: dict[tuple[str, frozenset[str]], _FilePlan] = {}
        # node key -> the names whose being inside changes its plan
        self._reads: dict[str, frozenset[str]] = {}
        # (policy index, node key, names inside that it reads) -> its evidence
        self._file_evidence: dict[tuple[int, str, frozenset[str]], tuple[Evidence, ...]] = {}
        # policy index -> version prefix -> the allowed versions (None: unconstrained)
        self._allowed: list[dict[str, frozenset[str] | None]] = [{} for _ in policies]
        # policy index -> external name -> whether the policy allows it
        self._allows: list[dict[str, bool]] = [{} for _ in policies]
        # the external names the members link to, in first-link order (see _walk)
        self._member_externals: tuple[str, ...] | None = None

    def relevant(self, node: FileNode, inside: frozenset[str]) -> frozenset[str]:
        """The part of ``inside`` that :meth:`plan` reads for ``node``."""
        if not inside:
            return inside
        reads = self._reads.get(node.key)
        if reads is None:
            assert node.facts is not None
            reads = self._reads[node.key] = frozenset(
                [link.name for link in node.links]
                + [need.file for need in node.facts.version_needs]
            )
        return inside & reads

    def plan(self, node: FileNode, inside: frozenset[str]) -> _FilePlan:
        """What of ``node`` every policy checks, given the libraries counted as inside
        (``inside`` already :meth:`relevant`)."""
        key = (node.key, inside)
        cached = self._plans.get(key)
        if cached is None:
            cached = self._plans[key] = self._make_plan(node, inside)
        return cached

    def allowed(self, index: int, policy: Policy) -> dict[str, frozenset[str] | None]:
        """``policy.allowed_versions`` of every prefix (``policy`` is number ``index``)."""
        known = self._allowed[index]
        if not known:
            known.update(
                (prefix, policy.allowed_versions(prefix, self.arch))
                for prefix in policy.symbol_versions
            )
        return known

    def allows(self, index: int, policy: Policy, name: str) -> bool:
        known = self._allows[index]
        allowed = known.get(name)
        if allowed is None:
            allowed = known[name] = policy.allows_library(name, self.arch)
        return allowed

    def member_externals(self) -> tuple[str, ...]:
        """The names of the members' links that leave the wheel (not internal, known
        external, not excluded), each once, in the order :func:`_walk` meets them."""
        if self._member_externals is None:
            graph = self.graph
            names: dict[str, None] = {}
            for key in graph.members:
                for link in graph.nodes[key].links:
                    if link.internal or link.name in names:
                        continue
                    ref = graph.externals.get(link.name)
                    if ref is not None and not ref.excluded:
                        names[link.name] = None
            self._member_externals = tuple(names)
        return self._member_externals

    def _make_plan(self, node: FileNode, inside: frozenset[str]) -> _FilePlan:
        assert node.facts is not None
        external: dict[str, bool] = {}
        for link in node.links:
            ref = self.graph.externals.get(link.name)
            excluded = ref is not None and ref.excluded
            external[link.name] = not (link.internal or link.name in inside or excluded)
        versions: list[tuple[str, str, bool, int]] = []
        for need in node.facts.version_needs:
            if not external.get(need.file, need.file not in inside):
                continue
            for aux in need.versions:
                # A version every policy allows yields no evidence under any of them.
                rejecters = self.rejecters(aux.name)
                if rejecters:
                    weak = bool(aux.flags & VER_FLG_WEAK)
                    versions.append((need.file, aux.name, weak, rejecters))
        watched = tuple(n for n, ext in external.items() if ext and n in self.blacklisting)
        return _FilePlan(external, tuple(versions), watched, [None] * len(versions))

    def imports(self, node: FileNode) -> _Imports:
        cached = self._imports.get(node.key)
        if cached is None:
            assert node.facts is not None
            rejected = frozenset(
                aux.name
                for need in node.facts.version_needs
                for aux in need.versions
                if self.rejecters(aux.name)
            )
            cached = self._imports[node.key] = _index(node.facts, self.blacklisted, rejected)
        return cached

    def rejecters(self, name: str) -> int:
        """The policies that reject the version node ``name``: bit i for policy i (only
        the versions some policy rejects are looked up in a file's imports)."""
        known = self._rejecters.get(name)
        if known is None:
            parsed = self.parse(name)
            known = 0
            if parsed is not None:
                for index, policy in enumerate(self.policies):
                    if not policy.portable:
                        continue
                    allowed = self.allowed(index, policy).get(parsed.prefix)
                    if allowed is not None and parsed.version not in allowed:
                        known |= 1 << index
            self._rejecters[name] = known
        return known

    def parse(self, name: str) -> SymbolVersion | None:
        try:
            return self._parsed[name]
        except KeyError:
            parsed = self._parsed[name] = SymbolVersion.parse(name)
            return parsed

    def version_evidence(
        self, node: FileNode, library: str, version: str, weak: bool
    ) -> tuple[Evidence, ...]:
        """Evidence that ``node`` needs ``version`` of ``library`` (the same every policy)."""
        key = (node.key, library, version, weak)
        cached = self._version_evidence.get(key)
        if cached is None:
            cached = self._version_evidence[key] = _version_evidence(
                node.key, self.imports(node), library, version, weak
            )
        return cached


def _version_evidence(
    file: str, imports: _Imports, library: str, version: str, weak: bool
) -> tuple[Evidence, ...]:
    users = imports.by_version.get((library, version), ())
    if weak:
        users = tuple(u for u in users if not u[1])
        if not users:
            return ()
    if not users:
        return (
            Evidence(
                kind="symbol-version",
                file=file,
                text=f"{file} needs {version} of {library} (version table)",
                version=version,
                library=library,
            ),
        )
    return tuple(
        Evidence(
            kind="symbol-version",
            file=file,
            text=f"{file} imports {name}@{version} from {library}",
            symbol=name,
            version=version,
            library=library,
            detail="weak symbol" if is_weak else None,
        )
        for name, is_weak in sorted(set(users))
    )


# --------------------------------------------------------------------------- walking


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Walk(Value):
    """External libraries reached from the members under one policy."""

    grafted: tuple[ExternalRef, ...]  # not allowed, found: repair copies them in
    missing: tuple[ExternalRef, ...]  # not allowed, not found: repair cannot


def _walk(ctx: _Context, index: int, policy: Policy) -> _Walk:
    """Follow links out of the wheel, through every library the policy does not allow.

    Breadth-first from the members; their own links are met in the order
    :meth:`_Context.member_externals` lists (the same for every policy).
    """
    graph = ctx.graph
    seen: set[str] = set()
    grafted: list[ExternalRef] = []
    missing: list[ExternalRef] = []
    queue: list[FileNode] = []

    def reach(name: str) -> None:
        ref = graph.externals[name]
        seen.add(name)
        target = graph.node(ref.key)
        if target is None:
            missing.append(ref)
        else:
            grafted.append(ref)
            queue.append(target)

    for name in ctx.member_externals():
        if not ctx.allows(index, policy, name):
            reach(name)
    head = 0
    while head < len(queue):
        node = queue[head]
        head += 1
        for link in node.links:
            if link.internal or link.name in seen:
                continue
            ref = graph.externals.get(link.name)
            if ref is None or ref.excluded or ctx.allows(index, policy, link.name):
                continue
            reach(link.name)
    return _Walk(tuple(grafted), tuple(missing))


def _external_evidence(ref: ExternalRef, policy: Policy) -> Evidence:
    chain = ref.chains[0] if ref.chains else (ref.name,)
    path = " -> ".join(chain)
    if ref.key is None:
        what = f"failed: {ref.error}" if ref.error else f"tried {len(ref.tried)} places"
        return Evidence(
            kind="library-not-found",
            file=chain[0],
            text=f"{path}: {ref.name} not found ({what})",
            library=ref.name,
            chain=chain,
            tried=ref.tried,
            detail=ref.error,
        )
    where = f"{ref.path} ({ref.rule})" if ref.rule else f"{ref.path}"
    return Evidence(
        kind="external-library",
        file=chain[0],
        text=f"{path}: {ref.name} is not allowed by {policy.name} (found at {where})",
        library=ref.name,
        chain=chain,
        found_at=ref.path,
    )


# --------------------------------------------------------------------------- file checks


def _file_evidence(
    ctx: _Context, node: FileNode, index: int, policy: Policy, inside: frozenset[str]
) -> tuple[Evidence, ...]:
    """Symbol versions, blacklisted symbols and ISA level of one file under ``policy``
    (number ``index`` of the context's policies), built once per policy, file and part
    of ``inside`` the file's checks read.

    ``inside`` names the external libraries that count as internal (grafted).
    """
    if node.facts is None:
        return ()
    inside = ctx.relevant(node, inside)
    key = (index, node.key, inside)
    cached = ctx._file_evidence.get(key)
    if cached is None:
        cached = ctx._file_evidence[key] = _new_file_evidence(ctx, node, index, policy, inside)
    return cached


def _new_file_evidence(
    ctx: _Context, node: FileNode, index: int, policy: Policy, inside: frozenset[str]
) -> tuple[Evidence, ...]:
    facts = node.facts
    assert facts is not None
    label = node.key
    plan = ctx.plan(node, inside)
    bit = 1 << index
    out: list[Evidence] = []
    for slot, (library, version, weak, rejecters) in enumerate(plan.versions):
        if rejecters & bit:
            known = plan.evidence[slot]
            if known is None:
                known = plan.evidence[slot] = ctx.version_evidence(node, library, version, weak)
            out.extend(known)
    imports: _Imports | None = None
    for name in plan.watched:
        blocked = policy.blacklisted(name)
        if not blocked:
            continue
        imports = imports or ctx.imports(node)
        for symbol in sorted(blocked.intersection(imports.strong)):
            if imports.strong[symbol] in (None, name):
                out.append(
                    Evidence(
                        kind="blacklisted-symbol",
                        file=label,
                        text=f"{label} imports {symbol} from {name}, which {policy.name} forbids",
                        symbol=symbol,
                        library=name,
                    )
                )
    level = facts.x86_isa_level
    if ctx.check_isa and policy.portable and ctx.arch == "x86_64" and level in _ISA_ABOVE_BASELINE:
        out.append(
            Evidence(
                kind="isa-level",
                file=label,
                text=f"{label} needs x86-64-{level}; {policy.name} promises only the baseline",
                detail=f"x86-64-{level}",
            )
        )
    return tuple(out)


def _files_evidence(
    ctx: _Context, nodes: Iterable[FileNode], index: int, policy: Policy, inside: frozenset[str]
) -> list[Evidence]:
    out: list[Evidence] = []
    for node in nodes:
        out.extend(_file_evidence(ctx, node, index, policy, inside))
    return out


def _evaluate(ctx: _Context, index: int, policy: Policy) -> PolicyVerdict:
    graph = ctx.graph
    members = [graph.nodes[key] for key in graph.members]
    walk = _walk(ctx, index, policy)
    evidence = [_external_evidence(ref, policy) for ref in (*walk.grafted, *walk.missing)]
    evidence.extend(_files_evidence(ctx, members, index, policy, frozenset()))
    if walk.grafted or walk.missing:
        inside = frozenset(ref.name for ref in walk.grafted)
        grafted = [graph.nodes[ref.key] for ref in walk.grafted if ref.key is not None]
        after = [_external_evidence(ref, policy) for ref in walk.missing]
        after.extend(_files_evidence(ctx, [*members, *grafted], index, policy, inside))
    else:
        after = list(evidence)
    return PolicyVerdict(
        policy=policy.name,
        aliases=policy.aliases,
        tag=policy.tag(ctx.arch),
        ok=not evidence,
        evidence=tuple(evidence),
        ok_after_repair=not after,
        evidence_after_repair=tuple(after),
    )


def evaluate(
    graph: LinkGraph, policy: Policy, arch: str, *, check_isa: bool = True
) -> PolicyVerdict:
    """The verdict of one policy over the graph (see the module docstring)."""
    return _evaluate(_Context(graph, arch, check_isa, [policy]), 0, policy)


def evaluate_all(
    graph: LinkGraph, policies: Sequence[Policy], arch: str, *, check_isa: bool = True
) -> tuple[PolicyVerdict, ...]:
    """Every policy's verdict, in the order given (most compatible first), sharing the
    symbol indexes and evidence between policies."""
    ctx = _Context(graph, arch, check_isa, policies)
    return tuple(_evaluate(ctx, index, policy) for index, policy in enumerate(policies))


def best_tags(verdicts: Sequence[PolicyVerdict], blocked: bool) -> tuple[str | None, str | None]:
    """(best_tag, repair_tag): the first verdict (most compatible) that passes now, and
    the first that passes after repair; both None when policy-independent problems
    (``blocked``) stand in the way, which repair does not fix."""
    if blocked:
        return None, None
    best = next((v.tag for v in verdicts if v.ok), None)
    repair = next((v.tag for v in verdicts if v.ok_after_repair), None)
    return best, repair
