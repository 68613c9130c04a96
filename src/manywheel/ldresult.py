"""Loader model results: the rule that found each library, every place tried, the tree.

What :func:`manywheel.ld.resolve_tree` returns (each ``Rule`` names one step of the ld.so
or musl search order); plain values with no search logic, re-exported by :mod:`manywheel.ld`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from manywheel.value import Value

__all__ = [
    "Attempt",
    "AttemptResult",
    "DependencyTree",
    "LibcFlavor",
    "LoadedObject",
    "Resolution",
    "ResolutionStatus",
    "Rule",
    "RuleKind",
    "SearchSetup",
]

LibcFlavor = Literal["glibc", "musl"]

RuleKind = Literal[
    "needed-path",
    "rpath",
    "ld-library-path",
    "extra-paths",
    "runpath",
    "ld.so.cache",
    "ld.so.conf",
    "default-dirs",
    "ldpaths",
    "musl-path-file",
    "musl-default-dirs",
    "already-loaded",
    "interpreter",
    "musl-libc",
]

AttemptResult = Literal[
    "found",
    "missing",
    "unreadable",
    "not-a-file",
    "wrong-class",
    "wrong-machine",
    "wrong-arch",
    "wrong-byte-order",
    "wrong-osabi",
    "not-loadable",
    "invalid-elf",
    "no-cache-entry",
    "not-modelled",
]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Rule(Value):
    """Which search rule produced a directory (or a result)."""

    kind: RuleKind
    #: For rpath/runpath: the object whose entry it is; for the cache and path files:
    #: the file; for already-loaded: the object that loaded the library first.
    owner: str | None = None
    #: The search-path entry as written (before ``$ORIGIN``... expansion).
    entry: str | None = None
    #: True for an rpath inherited from an object up the chain of loaders.
    inherited: bool = False

    def describe(self) -> str:
        """Short human text: ``runpath of _ext.so``, ``ld.so.cache``..."""
        owner = posixpath.basename(self.owner) if self.owner else None
        match self.kind:
            case "rpath":
                return f"rpath of {owner}" + (", inherited" if self.inherited else "")
            case "runpath":
                return f"runpath of {owner}"
            case "needed-path":
                return "path in DT_NEEDED"
            case "ld-library-path":
                return "LD_LIBRARY_PATH"
            case "extra-paths":
                return "extra paths from the environment"
            case "ld.so.cache":
                return "ld.so.cache"
            case "ld.so.conf":
                return "ld.so.conf"
            case "default-dirs":
                return "default dirs"
            case "ldpaths":
                return "ldpaths"
            case "musl-path-file":
                return self.owner or "ld-musl path file"
            case "musl-default-dirs":
                return "musl default dirs"
            case "already-loaded":
                return f"already loaded by {owner}" if owner else "already loaded"
            case "interpreter":
                return "program interpreter"
            case "musl-libc":
                return "musl libc: the loader itself"
        return str(self.kind)  # pragma: no cover


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Attempt(Value):
    """One place the loader looked, and what it found there."""

    path: str
    rule: Rule
    result: AttemptResult
    detail: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LoadedObject(Value):
    """The loader-relevant facts of one ELF file of the tree."""

    path: str  # as the loader opened it (in the sysroot view when one is used)
    realpath: str
    host_path: str | None  # where manywheel read it
    soname: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    nodeflib: bool
    elf_class: int
    byte_order: str
    machine: int
    arch: str | None
    osabi: int
    elf_type: int
    interpreter: str | None


ResolutionStatus = Literal["found", "already-loaded", "not-found", "error"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Resolution(Value):
    """How one DT_NEEDED entry of one object resolves (a node of the tree).

    ``found``: loaded here for the first time (``children`` are its own needs).
    ``already-loaded``: the loader reuses an object loaded earlier in load order
    (breadth-first, as ld.so and musl load); ``loaded_by`` names the object whose
    dependency loaded it, and ``own_search`` tells where this object's own search
    would have led when that differs. ``not-found``: ``tried`` lists every place
    looked at. ``error``: the loader would stop the whole load at the last attempt
    (e.g. a file with the right name that is not ELF).
    """

    name: str
    status: ResolutionStatus
    rule: Rule | None
    path: str | None = None
    realpath: str | None = None
    obj: LoadedObject | None = None
    tried: tuple[Attempt, ...] = ()
    error: str | None = None
    loaded_by: str | None = None
    own_search: str | None = None
    notes: tuple[str, ...] = ()
    children: tuple[Resolution, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.status in ("found", "already-loaded")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SearchSetup(Value):
    """The parts of the search that do not depend on the requesting object."""

    libc: LibcFlavor
    sysroot: str | None
    library_path: tuple[str, ...]
    extra_paths: tuple[str, ...]
    ldpaths: tuple[str, ...] | None
    platform: str | None
    lib: str
    # glibc
    cache_file: str | None = None
    cache_status: str | None = None  # used / missing / invalid: reason / not used
    conf_dirs: tuple[str, ...] = ()
    conf_files: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    # musl
    musl_path_file: str | None = None
    musl_dirs: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DependencyTree(Value):
    """The resolved dependency tree of one ELF file."""

    root: LoadedObject
    setup: SearchSetup
    interpreter: Resolution | None
    dependencies: tuple[Resolution, ...]
    notes: tuple[str, ...] = ()

    def walk(self) -> Iterator[tuple[int, Resolution]]:
        """Every node depth-first, with its depth (1 for the root's direct needs)."""
        stack = [(1, node) for node in reversed(self.dependencies)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.children))

    @property
    def libraries(self) -> tuple[Resolution, ...]:
        """Each loaded library once (the ``found`` nodes), in depth-first order."""
        return tuple(node for _, node in self.walk() if node.status == "found")

    @property
    def unresolved(self) -> tuple[Resolution, ...]:
        return tuple(node for _, node in self.walk() if not node.resolved)
