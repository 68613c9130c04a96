"""The graft plan: what ``repair`` copies into a wheel and how every file is rewired.

Pure: a :class:`~manywheel.linkgraph.LinkGraph` (the audit's resolution of the wheel in
its install layout) and a target :class:`~manywheel.policy.Policy` in, a
:class:`GraftPlan` out. Nothing here reads or writes a file; :mod:`manywheel.repair`
applies the plan. The rules (docs/repair.md says why):

**Which libraries.** From every ELF member, each ``DT_NEEDED`` entry that loads from
outside the wheel and that the policy does not allow (and ``--exclude`` did not name) is
grafted, and what it needs is followed in turn: the set ``ok_after_repair`` judged
(:mod:`manywheel.verdict`). Allowed and excluded libraries are leaves: the target system
provides them with their own dependencies. Libraries the wheel ships are never renamed.
A library the loader model did not find cannot be grafted: it is listed in
:attr:`GraftPlan.missing`. A ``libpython`` entry is removed, never grafted (PEP 513:
the interpreter provides those symbols).

**Names.** A grafted file is stored as ``<libs_dir>/<base>-<hash8>.so<suffix>``
(:func:`graft_name`), from the file name it was found under (``libyaml-0.so.2.0.9`` ->
``libyaml-0-1a2b3c4d.so.2.0.9``), with ``DT_SONAME`` set to that name so that two
wheels grafting different builds of one library never share a soname in one process
(ld.so reuses an already loaded object whose soname matches a ``DT_NEEDED`` entry,
glibc ``_dl_map_object``). The hash covers everything the shipped bytes are computed
from (the original bytes among them), so it is not known here: the plan orders the
libraries so :mod:`manywheel.repair` can compute it.

**Order and cycles.** A grafted library's ``DT_NEEDED`` names are its dependencies' new
names, so dependencies are named first (:attr:`GraftPlan.groups`, leaves first: the
strongly connected components in reverse topological order, Tarjan 1972). Each group
(one library, or a dependency cycle) is named from one hash of everything its shipped
bytes are computed from (docs/repair.md, "Names").

**Search paths.** Every patched file gets an ``$ORIGIN``-relative entry to the library
directory (``DT_RUNPATH``; ``DT_RPATH`` only where the file already used ``DT_RPATH``
alone, to keep what the build meant for its in-wheel dependencies). ``DT_RUNPATH`` is
not inherited (gABI: it applies to the object's own ``DT_NEEDED`` entries only), so every
grafted library that needs another grafted one gets its own ``$ORIGIN`` entry. Existing
entries that point inside the installed wheel are kept; the others are dropped with a
note (they name the build machine).

**Scripts.** An ELF executable under ``<name>.data/scripts/`` installs to the
environment's ``bin/``, whose place relative to ``site-packages`` is unknown when the
wheel is built, so no ``$ORIGIN`` path can reach the library directory. One that needs a
grafted library is moved to ``<name>.scripts/`` in site-packages and a launcher with a
``#!python`` shebang (rewritten by installers, PEP 427 "Recommended installer
features") takes its place and ``exec``-s it (:func:`launcher_text`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from manywheel.elf import ElfFacts
from manywheel.linkgraph import ExternalRef, FileNode, LinkGraph
from manywheel.patch import merge_rpath, rpath_for
from manywheel.policy import Policy
from manywheel.report import PolicyVerdict, verdict_tags
from manywheel.value import Value
from manywheel.wheel import WheelInfo
from manywheel.wheelfs import SITE_PACKAGES, WHEEL_PREFIX, install_path

__all__ = [
    "GraftPlan",
    "GraftedLibrary",
    "Launcher",
    "MemberPatch",
    "Walk",
    "graft_name",
    "graft_walk",
    "is_libpython",
    "launcher_text",
    "plan_graft",
    "plan_platform_tags",
    "retag_filename",
    "retag_wheel_text",
    "strongly_connected",
]

_LIBPYTHON = re.compile(r"libpython\d")
_ORIGIN = re.compile(r"^(?:\$ORIGIN|\$\{ORIGIN\})(?=/|$)")
_SO_SUFFIX = re.compile(r"\.so(?=\.|$)")
RpathKind = Literal["runpath", "rpath"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GraftedLibrary(Value):
    """One external file copied into the wheel.

    ``key`` is where the loader model found it (its graph key: the resolved path, seen
    from the sysroot); ``needed_as`` every ``DT_NEEDED`` name that loads it; ``needs``
    its own ``DT_NEEDED`` names that load other grafted libraries, with their keys;
    ``rpath`` its new ``DT_RUNPATH`` (``"$ORIGIN"`` when it needs grafted libraries,
    ``""`` to drop a search path naming the build machine, None: none to change).
    """

    key: str
    file_name: str
    soname: str | None
    needed_as: tuple[str, ...]
    needs: tuple[tuple[str, str], ...]
    rpath: str | None
    group: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MemberPatch(Value):
    """The changes to one ELF member: ``replace`` maps ``DT_NEEDED`` names to grafted
    keys (their new names are known once those are hashed); ``dest`` differs from
    ``path`` for a script moved into site-packages."""

    path: str
    dest: str
    replace: tuple[tuple[str, str], ...]
    remove: tuple[str, ...]
    rpath: str | None
    rpath_kind: RpathKind


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Launcher(Value):
    """A ``#!python`` script left at ``path`` (in ``.data/scripts/``) that runs the ELF
    executable moved to ``target`` (a path relative to site-packages)."""

    path: str
    target: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GraftPlan(Value):
    """Everything ``repair`` does to one wheel, before any byte is hashed."""

    policy: str
    libs_dir: str
    grafts: tuple[GraftedLibrary, ...]  # leaves first (group order)
    groups: tuple[tuple[str, ...], ...]  # keys per strongly connected component
    patches: tuple[MemberPatch, ...]
    launchers: tuple[Launcher, ...]
    missing: tuple[ExternalRef, ...]
    excluded: tuple[str, ...]
    removed: tuple[tuple[str, str], ...]  # (member, libpython DT_NEEDED) removed
    unreachable: tuple[str, ...]  # members no $ORIGIN path can lead to the libraries
    notes: tuple[str, ...]


def graft_name(file_name: str, digest: str) -> str:
    """The grafted file's name and soname: ``<base>-<8 hex digits>.so<suffix>``.

    ``graft_name("libyaml-0.so.2.0.9", "1a2b3c4d...") == "libyaml-0-1a2b3c4d.so.2.0.9"``;
    a name without ``.so`` gets the hash at its end.
    """
    short = digest[:8]
    match = _SO_SUFFIX.search(file_name)
    if match is None:
        return f"{file_name}-{short}"
    return f"{file_name[: match.start()]}-{short}{file_name[match.start() :]}"


def is_libpython(name: str) -> bool:
    """``libpython3.11.so.1.0`` and the like (PEP 513 forbids linking them)."""
    return _LIBPYTHON.match(name) is not None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Walk(Value):
    """What one policy makes ``repair`` graft: keys with the names that load them."""

    grafted: Mapping[str, tuple[str, ...]]  # key -> DT_NEEDED names, sorted
    by_name: Mapping[str, str]  # DT_NEEDED name -> key
    missing: tuple[ExternalRef, ...]
    excluded: tuple[str, ...]


def graft_walk(graph: LinkGraph, policy: Policy, arch: str) -> Walk:
    """Follow links out of the wheel through every library ``policy`` does not allow
    (the rule of :mod:`manywheel.verdict`), without ``libpython`` entries."""
    by_name: dict[str, str] = {}
    missing: dict[str, ExternalRef] = {}
    excluded: set[str] = set()
    seen: set[str] = set()
    queued: set[str] = set()
    queue: list[FileNode] = [graph.nodes[key] for key in sorted(graph.members)]
    while queue:
        node = queue.pop(0)
        for link in node.links:
            if link.internal or link.name in seen or is_libpython(link.name):
                continue
            seen.add(link.name)
            ref = graph.externals.get(link.name)
            if ref is None:
                continue
            if ref.excluded:
                excluded.add(link.name)
                continue
            if policy.allows_library(link.name, arch):
                continue
            target = graph.node(ref.key)
            if target is None or ref.key is None:
                missing[link.name] = ref
                continue
            if ref.key not in queued:
                queued.add(ref.key)
                queue.append(target)
            by_name[link.name] = ref.key
    grafted: dict[str, list[str]] = {}
    for name, key in by_name.items():
        grafted.setdefault(key, []).append(name)
    return Walk(
        grafted={key: tuple(sorted(names)) for key, names in sorted(grafted.items())},
        by_name=dict(sorted(by_name.items())),
        missing=tuple(missing[name] for name in sorted(missing)),
        excluded=tuple(sorted(excluded)),
    )


def strongly_connected(edges: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Tarjan's strongly connected components of ``edges`` (node -> successors), each
    sorted, listed so that every component comes after all those it reaches (leaves
    first). Deterministic: nodes and successors are visited in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            out.append(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return tuple(out)


def _site_dir(install: str) -> str | None:
    """The directory of an install path relative to site-packages, None outside it."""
    if not install.startswith(SITE_PACKAGES + "/"):
        return None
    return posixpath.dirname(install[len(SITE_PACKAGES) + 1 :])


def _search_path(facts: ElfFacts) -> tuple[tuple[str, ...], RpathKind]:
    """The entries of the file's effective search path, and the tag to write back:
    DT_RPATH only when the file has DT_RPATH and no DT_RUNPATH (ld.so ignores DT_RPATH
    when DT_RUNPATH is present)."""
    dynamic = facts.dynamic
    if dynamic is None:
        return (), "runpath"
    if dynamic.runpath is not None:
        return tuple(dynamic.runpath.split(":")), "runpath"
    if dynamic.rpath is not None:
        return tuple(dynamic.rpath.split(":")), "rpath"
    return (), "runpath"


def _in_wheel(path: str) -> bool:
    return path == WHEEL_PREFIX or path.startswith(WHEEL_PREFIX + "/")


def _kept_entries(
    label: str, entries: Iterable[str], origin: str, new_origin: str, notes: list[str]
) -> list[str]:
    """Entries that lead inside the installed wheel, rewritten for a moved file; the
    others are dropped with a note. ``origin``/``new_origin``: install directories."""
    kept: list[str] = []
    for entry in entries:
        if not entry:
            continue
        match = _ORIGIN.match(entry)
        target = posixpath.normpath(origin + entry[match.end() :]) if match else None
        if target is None or not _in_wheel(target):
            notes.append(f"{label}: search path entry {entry} leads outside the wheel: dropped")
            continue
        if new_origin == origin:
            kept.append(entry)
        elif target.startswith(SITE_PACKAGES + "/") or target == SITE_PACKAGES:
            rel = posixpath.relpath(target, new_origin)
            kept.append("$ORIGIN" if rel == "." else f"$ORIGIN/{rel}")
        else:
            notes.append(
                f"{label}: search path entry {entry} leads outside site-packages, where "
                "the moved file cannot reach it: dropped"
            )
    return kept


def _script_dest(info: WheelInfo, member: str) -> str | None:
    """``<name>.scripts/<file>`` for a member of ``<name>.data/scripts/``, else None."""
    if info.data_dir is None or member not in info.data_members.get("scripts", ()):
        return None
    inner = member[len(info.data_dir) + len("/scripts/") :]
    return f"{info.identity.name}.scripts/{inner}"


def plan_graft(
    graph: LinkGraph,
    policy: Policy,
    arch: str,
    info: WheelInfo,
    *,
    lib_sdir: str = ".libs",
) -> GraftPlan:
    """The plan that makes the wheel satisfy ``policy`` (module docstring).

    ``lib_sdir`` is appended to the distribution name to name the library directory
    at the wheel root (``.libs`` -> ``<name>.libs/``).
    """
    libs_dir = f"{info.identity.name}{lib_sdir}"
    walk = graft_walk(graph, policy, arch)
    notes: list[str] = []
    edges: dict[str, list[str]] = {}
    needs: dict[str, list[tuple[str, str]]] = {}
    for key in walk.grafted:
        node = graph.nodes[key]
        own = [
            (link.name, walk.by_name[link.name]) for link in node.links if link.name in walk.by_name
        ]
        needs[key] = own
        edges[key] = sorted({dep for _, dep in own})
    groups = strongly_connected(edges)
    group_of = {key: i for i, group in enumerate(groups) for key in group}
    grafts: list[GraftedLibrary] = []
    for group in groups:
        for key in group:
            node = graph.nodes[key]
            facts = node.facts
            entries, _ = _search_path(facts) if facts is not None else ((), "runpath")
            file_name = posixpath.basename(key)
            if entries:
                notes.append(
                    f"{file_name}: search path {':'.join(entries)} names the build machine: dropped"
                )
            rpath = "$ORIGIN" if needs[key] else ("" if entries else None)
            grafts.append(
                GraftedLibrary(
                    key=key,
                    file_name=file_name,
                    soname=facts.dynamic.soname if facts and facts.dynamic else None,
                    needed_as=walk.grafted[key],
                    needs=tuple(sorted(set(needs[key]))),
                    rpath=rpath,
                    group=group_of[key],
                )
            )
    patches, launchers, removed, unreachable = _member_patches(graph, info, walk, libs_dir, notes)
    return GraftPlan(
        policy=policy.name,
        libs_dir=libs_dir,
        grafts=tuple(grafts),
        groups=groups,
        patches=patches,
        launchers=launchers,
        missing=walk.missing,
        excluded=walk.excluded,
        removed=removed,
        unreachable=unreachable,
        notes=tuple(notes),
    )


def _member_patches(
    graph: LinkGraph, info: WheelInfo, walk: Walk, libs_dir: str, notes: list[str]
) -> tuple[
    tuple[MemberPatch, ...], tuple[Launcher, ...], tuple[tuple[str, str], ...], tuple[str, ...]
]:
    patches: list[MemberPatch] = []
    launchers: list[Launcher] = []
    removed: list[tuple[str, str]] = []
    unreachable: list[str] = []
    for member in sorted(graph.members):
        node = graph.nodes[member]
        if node.facts is None:
            continue
        replace = tuple(
            (link.name, walk.by_name[link.name])
            for link in node.links
            if not link.internal and link.name in walk.by_name
        )
        needed = node.facts.dynamic.needed if node.facts.dynamic else ()
        remove = tuple(name for name in needed if is_libpython(name))
        removed.extend((member, name) for name in remove)
        if not replace and not remove:
            continue
        if not replace:
            patches.append(MemberPatch(member, member, (), remove, None, "runpath"))
            continue
        dest = member
        origin = posixpath.dirname(install_path(member))
        script_dest = _script_dest(info, member)
        if script_dest is not None:
            dest = script_dest
            launchers.append(Launcher(member, script_dest))
        site = _site_dir(install_path(dest))
        if site is None:
            unreachable.append(member)
            continue
        entries, kind = _search_path(node.facts)
        new_origin = posixpath.dirname(install_path(dest))
        kept = _kept_entries(member, entries, origin, new_origin, notes)
        rpath = ":".join(merge_rpath(kept, [rpath_for(site, libs_dir)]))
        patches.append(MemberPatch(member, dest, replace, remove, rpath, kind))
    return tuple(patches), tuple(launchers), tuple(removed), tuple(unreachable)


def launcher_text(launcher: Launcher, dist: str) -> str:
    """The script left in ``.data/scripts/`` for a moved ELF executable.

    Installers replace the ``#!python`` line with the environment's interpreter (PEP 427,
    "Recommended installer features"). The script finds the moved executable on
    ``sys.path`` (site-packages, wherever the environment put it: venv, ``--user``,
    ``--prefix``) and replaces itself with it, keeping ``argv[0]`` so the program's
    messages name the command the user typed.
    """
    parts = tuple(launcher.target.split("/"))
    command = parts[-1]
    return (
        "#!python\n"
        f"# Written by 'manywheel repair' for {dist}: the ELF executable {command} needs\n"
        "# libraries grafted into the wheel, which only an $ORIGIN-relative search path\n"
        f"# reaches, so it was moved to site-packages/{launcher.target}; this runs it.\n"
        "import os\n"
        "import sys\n"
        "\n"
        f"TARGET = {parts!r}\n"
        "\n"
        "\n"
        "def main():\n"
        "    for entry in sys.path:\n"
        "        if not entry:\n"
        "            continue\n"
        "        path = os.path.join(entry, *TARGET)\n"
        "        if os.path.isfile(path) and os.access(path, os.X_OK):\n"
        "            os.execv(path, [sys.argv[0], *sys.argv[1:]])\n"
        f'    sys.exit("{command}: cannot find " + "/".join(TARGET) + " on sys.path")\n'
        "\n"
        "\n"
        'if __name__ == "__main__":\n'
        "    main()\n"
    )


# --------------------------------------------------------------------------- tags


def plan_platform_tags(
    graph: LinkGraph,
    verdicts: Sequence[PolicyVerdict],
    policies: Sequence[Policy],
    target: Policy,
    arch: str,
    *,
    only_plat: bool = False,
) -> tuple[str, ...]:
    """The platform tags of the repaired wheel, most compatible first, each canonical
    tag followed by its legacy aliases (PEP 600 keeps ``manylinux1``/``2010``/``2014``
    as aliases that older installers understand).

    The target's tag, and unless ``only_plat`` every more compatible policy (``policies``
    are most compatible first) that the repaired content satisfies too: one that passes
    after repair (``ok_after_repair``) and grafts exactly the same files -- grafting
    more or fewer libraries would be another content than the one written.
    """
    by_policy = {v.policy: v for v in verdicts}
    wanted = graft_walk(graph, target, arch)
    chosen: list[PolicyVerdict] = []
    for policy in policies if not only_plat else ():
        if policy.name == target.name:
            break
        verdict = by_policy.get(policy.name)
        if verdict is None or not verdict.ok_after_repair:
            continue
        walk = graft_walk(graph, policy, arch)
        if not walk.missing and set(walk.grafted) == set(wanted.grafted):
            chosen.append(verdict)
    chosen.append(by_policy[target.name])
    return tuple(tag for verdict in chosen for tag in verdict_tags(verdict))


def retag_filename(filename: str, platform_tags: Sequence[str]) -> str:
    """``filename`` with its platform part replaced by ``platform_tags`` (a compressed
    tag set, ``.``-joined, PEP 425); name, version, build, python and ABI parts kept."""
    stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename
    head, python, abi, _old = stem.rsplit("-", 3)
    return f"{head}-{python}-{abi}-{'.'.join(platform_tags)}.whl"


def retag_wheel_text(text: str, filename: str, platform_tags: Sequence[str]) -> str:
    """The WHEEL file with one ``Tag:`` line per python, ABI and platform tag of the new
    filename (PEP 427: "Tag: ... one for each tag"), in place of the old ones; every
    other line is kept as it was."""
    stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename
    _head, python, abi, _old = stem.rsplit("-", 3)
    newline = "\r\n" if "\r\n" in text else "\n"
    tags = [
        f"Tag: {py}-{ab}-{plat}"
        for py in python.split(".")
        for ab in abi.split(".")
        for plat in platform_tags
    ]
    out: list[str] = []
    inserted = False
    for line in text.splitlines():
        if line.split(":", 1)[0].strip().lower() == "tag":
            if not inserted:
                out.extend(tags)
                inserted = True
            continue
        out.append(line)
    if not inserted:
        while out and not out[-1].strip():
            out.pop()
        out.extend(tags)
    return newline.join(out) + newline
