"""The wheel's link graph: which file loads which, inside the wheel or from the system.

The loader model (:mod:`manywheel.ld`) resolves one tree per root in the wheel overlay
(:mod:`manywheel.wheelfs`); this module folds those trees into one graph that the
policy checks (:mod:`manywheel.verdict`) walk without touching any file again:

* a :class:`FileNode` per ELF file (wheel member or external library) with its facts and
  a :class:`Link` per ``DT_NEEDED`` entry: where that entry loads from;
* an :class:`ExternalRef` per external library name, with where it was found (or every
  place tried) and the chains of files that pull it in.

Roots are the files a process starts from: extension modules (``dlopen``-ed by the
interpreter, so they inherit no RPATH from ``python``) and executables. A library of the
wheel no root loads is *unreachable*; it is still resolved, as a root of its own,
because code can ``dlopen`` it (``ctypes.CDLL``), so its needs are audited too.

When two roots resolve the same ``DT_NEEDED`` entry of the same file differently (an
inherited DT_RPATH), the first resolution in root order is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from manywheel.elf import ElfFacts, ElfFile
from manywheel.errors import ElfError
from manywheel.ld import DependencyTree, LoaderSession, Resolution
from manywheel.value import Value
from manywheel.wheelfs import WheelFilesystem, display_path, install_path

__all__ = ["ExternalRef", "FileNode", "Link", "LinkGraph", "build_graph"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Link(Value):
    """Where one ``DT_NEEDED`` entry of a file loads from.

    ``target`` is the key of the loaded file (a member path when ``internal``, else the
    external library's path), None when the loader finds nothing. ``searched_out`` is
    False for a member counted as internal although the loader's search misses it (the
    wheel ships it under the needed name; it loads only with LD_LIBRARY_PATH).
    """

    name: str
    target: str | None
    internal: bool
    searched_out: bool = True


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FileNode(Value):
    """One ELF file of the graph; ``key`` is its member path or its path on the host."""

    key: str
    member: bool
    facts: ElfFacts | None
    links: tuple[Link, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExternalRef(Value):
    """A library the wheel's files need from outside the wheel, by ``DT_NEEDED`` name."""

    name: str
    key: str | None  # node key (path) when found
    soname: str | None  # the found file's DT_SONAME
    path: str | None
    realpath: str | None
    rule: str | None
    tried: tuple[str, ...]
    error: str | None
    chains: tuple[tuple[str, ...], ...]
    excluded: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LinkGraph(Value):
    """Every ELF file the wheel loads, and how; ``members`` are the audited member keys."""

    nodes: Mapping[str, FileNode]
    members: tuple[str, ...]
    externals: Mapping[str, ExternalRef]
    unreachable: tuple[str, ...]
    notes: tuple[str, ...]

    def node(self, key: str | None) -> FileNode | None:
        return self.nodes.get(key) if key is not None else None


#: (DT_NEEDED name, DT_SONAME, path, realpath) -> excluded by the user?
ExcludeRule = Callable[[str, str | None, str | None, str | None], bool]


class _Builder:
    def __init__(
        self, fs: WheelFilesystem, members: Mapping[str, ElfFacts], exclude: ExcludeRule
    ) -> None:
        self.fs = fs
        self.members = members
        self.exclude = exclude
        self.edges: dict[tuple[str, str], Link] = {}
        self.externals: dict[str, Resolution] = {}
        self.excluded: dict[str, bool] = {}
        # external name -> requester key -> shortest chain
        self.chains: dict[str, dict[str, tuple[str, ...]]] = {}
        self.loaded_members: set[str] = set()
        # members whose own DT_NEEDED the loader walked (roots, and members it found)
        self.expanded: set[str] = set()
        # members counted as internal by _shipped: the loader never walked their needs
        self.shipped_only: list[str] = []
        self.external_facts: dict[str, ElfFacts | None] = {}
        self.notes: list[str] = []
        # DT_SONAME, else file name -> member (the first one in archive order)
        self.by_soname: dict[str, str] = {}
        for name, facts in members.items():
            soname = facts.dynamic.soname if facts.dynamic else None
            self.by_soname.setdefault(soname or name.rpartition("/")[2], name)

    def _target(self, node: Resolution) -> tuple[str | None, bool]:
        where = node.realpath or node.path
        if not node.resolved or where is None:
            return None, False
        member = self.fs.member_at(where)
        if member is not None:
            return member, True
        return where, False

    def _shipped(self, parent: str, node: Resolution) -> str | None:
        """A member the loader does not find but the wheel ships under the needed name.

        Such a file (a test executable whose RUNPATH misses the library directory) only
        runs with LD_LIBRARY_PATH set; the wheel carries the library, so it counts as
        internal, and a note says the search path is missing.
        """
        if node.resolved or "/" in node.name:
            return None
        member = self.by_soname.get(node.name)
        if member is not None and (parent, node.name) not in self.edges:
            self.notes.append(
                f"{parent} needs {node.name}, which the loader does not find from it, but "
                f"the wheel ships {member}: counted as internal (an RPATH/RUNPATH entry "
                "is missing; it loads only with LD_LIBRARY_PATH)"
            )
        return member

    def add_tree(self, root_member: str, tree: DependencyTree) -> None:
        self.loaded_members.add(root_member)
        self.expanded.add(root_member)
        stack: list[tuple[str, tuple[str, ...], bool, Resolution]] = [
            (root_member, (root_member,), False, node) for node in reversed(tree.dependencies)
        ]
        while stack:
            parent, chain, hidden, node = stack.pop()
            target, internal = self._target(node)
            searched_out = True
            if target is None and (shipped := self._shipped(parent, node)) is not None:
                target, internal, searched_out = shipped, True, False
                self.shipped_only.append(shipped)
            elif internal and target is not None and node.status == "found":
                self.expanded.add(target)
            self.edges.setdefault(
                (parent, node.name), Link(node.name, target, internal, searched_out)
            )
            if internal and target is not None:
                self.loaded_members.add(target)
                label = target
            else:
                label = node.name
                hidden = self._external(parent, chain, hidden, node)
            if node.status == "found":
                for child in reversed(node.children):
                    stack.append((target or node.name, (*chain, label), hidden, child))

    def _external(
        self, parent: str, chain: tuple[str, ...], hidden: bool, node: Resolution
    ) -> bool:
        """Record an external library; returns whether what it loads is hidden by
        --exclude (only pulled in through excluded libraries)."""
        first = self.externals.setdefault(node.name, node)
        if first.status != "found" and node.status == "found":
            first = self.externals[node.name] = node  # where it loads, not a reuse
        soname = first.obj.soname if first.obj is not None else None
        if node.name not in self.excluded:
            self.excluded[node.name] = self.exclude(node.name, soname, first.path, first.realpath)
        if not hidden:
            full = (*chain, node.name)
            known = self.chains.setdefault(node.name, {})
            if parent not in known or len(full) < len(known[parent]):
                known[parent] = full
        return hidden or self.excluded[node.name]

    def external_ref(self, name: str) -> ExternalRef:
        node = self.externals[name]
        target, _ = self._target(node)
        return ExternalRef(
            name=name,
            key=target,
            soname=node.obj.soname if node.obj is not None else None,
            path=node.path if node.resolved else None,
            realpath=node.realpath if node.resolved else None,
            rule=node.rule.describe() if node.rule is not None and node.resolved else None,
            tried=tuple(f"{display_path(a.path)} ({a.result}: {a.detail})" for a in node.tried),
            error=node.error,
            chains=tuple(sorted(self.chains.get(name, {}).values())),
            excluded=self.excluded.get(name, False),
        )

    def links_of(self, key: str, needed: Sequence[str]) -> tuple[Link, ...]:
        return tuple(self.edges.get((key, name), Link(name, None, False)) for name in needed)


def _facts_of(fs: WheelFilesystem, path: str) -> ElfFacts | None:
    """Full facts of an external library (symbols, versions), read through the view."""
    try:
        view = fs.open_elf(path)
        if isinstance(view, ElfFacts):
            return view
        if isinstance(view, ElfFile):
            return view.facts()
    except (ElfError, OSError):
        return None
    return None


def build_graph(
    session: LoaderSession,
    fs: WheelFilesystem,
    members: Mapping[str, ElfFacts],
    roots: Sequence[str],
    libraries: Sequence[str],
    *,
    exclude: ExcludeRule,
    needs_facts: Callable[[str], bool],
) -> LinkGraph:
    """Resolve ``roots`` (member paths), then every library of ``libraries`` none of them
    loads (as a root of its own), and fold the trees into a :class:`LinkGraph`.

    ``members`` holds the facts of every audited member; ``needs_facts(name)`` says
    whether an external library's own facts are needed (it may have to be grafted):
    only those are read in full.
    """
    builder = _Builder(fs, members, exclude)
    for root in roots:
        builder.add_tree(root, session.resolve(install_path(root)))
    unreachable = tuple(lib for lib in libraries if lib not in builder.loaded_members)
    for lib in unreachable:
        builder.add_tree(lib, session.resolve(install_path(lib)))
    # A shipped library the loader missed (counted as internal) was never walked: its
    # own DT_NEEDED are resolved with it as a root, as for unreachable libraries.
    while pending := [m for m in dict.fromkeys(builder.shipped_only) if m not in builder.expanded]:
        builder.shipped_only.clear()
        for lib in pending:
            builder.add_tree(lib, session.resolve(install_path(lib)))
    nodes: dict[str, FileNode] = {}
    for name, facts in members.items():
        needed = facts.dynamic.needed if facts.dynamic is not None else ()
        nodes[name] = FileNode(name, True, facts, builder.links_of(name, needed))
    externals: dict[str, ExternalRef] = {}
    for name in builder.externals:
        ref = builder.external_ref(name)
        if not ref.chains:
            builder.notes.append(f"{name}: only needed through excluded libraries; not audited")
            continue
        externals[name] = ref
        if ref.key is not None and ref.key not in nodes:
            ext_facts = _facts_of(fs, ref.key) if needs_facts(name) else None
            needed = _needed(fs, ref.key) if ext_facts is None else _needed_of(ext_facts)
            nodes[ref.key] = FileNode(ref.key, False, ext_facts, builder.links_of(ref.key, needed))
    return LinkGraph(
        nodes=nodes,
        members=tuple(members),
        externals=externals,
        unreachable=unreachable,
        notes=tuple(builder.notes),
    )


def _needed_of(facts: ElfFacts) -> tuple[str, ...]:
    return facts.dynamic.needed if facts.dynamic is not None else ()


def _needed(fs: WheelFilesystem, path: str) -> tuple[str, ...]:
    try:
        dynamic = fs.open_elf(path).dynamic
    except (ElfError, OSError):
        return ()
    return dynamic.needed if dynamic is not None else ()
