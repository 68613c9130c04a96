"""Loader model: resolve the dependency tree of an ELF file as its dynamic loader would.

Nothing is executed: the files are read (each ELF once) and the search rules of glibc's
``ld.so`` (``elf/dl-load.c``: ``_dl_map_object``, ``open_path``, ``open_verify``) or of
musl's dynamic linker (``ldso/dynlink.c``: ``load_library``, ``path_open``,
``fixup_rpath``) are applied to them. Every found library records the rule that found
it; every missing one records each place tried and why it was rejected.
docs/loader.md states the search order plainly and lists what is not modelled.

Entry point: :func:`resolve_tree` (a file and a :class:`LoaderConfig` in, a
:class:`DependencyTree` out). The config is built in :mod:`manywheel.ldconfig`; the
disk is read only through :mod:`manywheel.ldfs`; the result types are in
:mod:`manywheel.ldresult` and ``$ORIGIN`` expansion in :mod:`manywheel.ldexpand`. All
are re-exported here.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from manywheel.elf import ElfHeader
from manywheel.errors import ElfError, InputError
from manywheel.ldcache import CacheFormatError, LdCache, cache_flags_for_arch, parse_ld_so_cache
from manywheel.ldconf import read_ld_so_conf
from manywheel.ldconfig import (
    MUSL_DEFAULT_DIRS,
    LoaderConfig,
    config_from_options,
    default_platform,
    default_system_dirs,
    dst_lib_for_arch,
    extra_paths_from_env,
    glibc_interpreter,
    musl_ldso_arch,
    split_search_path,
)
from manywheel.ldexpand import expand_dst, musl_expand
from manywheel.ldfs import ElfView, Filesystem, HostFilesystem
from manywheel.ldresult import (
    Attempt,
    AttemptResult,
    DependencyTree,
    LibcFlavor,
    LoadedObject,
    Resolution,
    ResolutionStatus,
    Rule,
    RuleKind,
    SearchSetup,
)
from manywheel.value import Value

__all__ = [
    "Attempt",
    "AttemptResult",
    "DependencyTree",
    "ElfView",
    "Filesystem",
    "HostFilesystem",
    "LibcFlavor",
    "LoadedObject",
    "LoaderConfig",
    "LoaderSession",
    "Resolution",
    "ResolutionStatus",
    "Rule",
    "RuleKind",
    "SearchSetup",
    "config_from_options",
    "default_platform",
    "default_system_dirs",
    "dst_lib_for_arch",
    "expand_dst",
    "extra_paths_from_env",
    "resolve_tree",
    "split_search_path",
]

#: ``DF_1_NODEFLIB`` (gABI / GNU): do not search the cache or the default directories.
DF_1_NODEFLIB = 0x800
_ET_EXEC, _ET_DYN = 2, 3
_ELFOSABI_SYSV, _ELFOSABI_GNU = 0, 3

_MACHINE_NAMES = {
    3: "i386",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}
# musl's load_library: names "lib" + one of these + "." are the loader itself.
_MUSL_RESERVED = ("c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet.")


def _machine_name(machine: int) -> str:
    return _MACHINE_NAMES.get(machine, f"EM_{machine}")


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


# --------------------------------------------------------------------------- resolver


@dataclass(slots=True)
class _Loaded:
    """A loaded object during resolution (mutable bookkeeping)."""

    obj: LoadedObject
    fs: Filesystem
    origin: str | None
    loader: _Loaded | None
    names: set[str]
    children: list[_Node] = field(default_factory=list)


@dataclass(slots=True)
class _Node:
    name: str
    status: ResolutionStatus
    rule: Rule | None
    path: str | None = None
    realpath: str | None = None
    loaded: _Loaded | None = None
    tried: list[Attempt] = field(default_factory=list)
    error: str | None = None
    loaded_by: str | None = None
    own_search: str | None = None
    notes: list[str] = field(default_factory=list)

    def freeze(self) -> Resolution:
        children = (
            tuple(child.freeze() for child in self.loaded.children)
            if (self.loaded is not None and self.status == "found")
            else ()
        )
        return Resolution(
            name=self.name,
            status=self.status,
            rule=self.rule,
            path=self.path,
            realpath=self.realpath,
            obj=self.loaded.obj if self.loaded is not None else None,
            tried=tuple(self.tried),
            error=self.error,
            loaded_by=self.loaded_by,
            own_search=self.own_search,
            notes=tuple(self.notes),
            children=children,
        )


@dataclass(slots=True)
class _Candidate:
    directory: str | None  # None: ``path`` is complete (cache entry, DT_NEEDED path)
    rule: Rule
    fs: Filesystem
    path: str | None = None
    skip_reason: str | None = None  # recorded as not-modelled


def _object_facts(elf: ElfView, path: str, fs: Filesystem) -> LoadedObject:
    header = elf.header
    dynamic = elf.dynamic
    return LoadedObject(
        path=path,
        realpath=fs.realpath(path),
        host_path=fs.host_path(path),
        soname=dynamic.soname if dynamic else None,
        needed=dynamic.needed if dynamic else (),
        rpath=dynamic.rpath if dynamic else None,
        runpath=dynamic.runpath if dynamic else None,
        nodeflib=bool(dynamic and dynamic.flags_1 & DF_1_NODEFLIB),
        elf_class=header.elf_class,
        byte_order=header.byte_order,
        machine=header.machine,
        arch=header.arch,
        osabi=header.osabi,
        elf_type=header.elf_type,
        interpreter=elf.interpreter,
    )


@dataclass
class _SystemPart:
    """The system part of the search (cache, conf, default or musl dirs), read once."""

    system_dirs: tuple[str, ...] = ()
    cache: LdCache | None = None
    cache_status: str = "not used"
    conf_dirs: tuple[str, ...] = ()
    conf_files: tuple[str, ...] = ()
    musl_path_file: str | None = None
    musl_dirs: tuple[str, ...] = ()
    musl_dirs_rule: Rule = field(default_factory=lambda: Rule("musl-default-dirs"))
    problems: list[str] = field(default_factory=list)


_Memo = dict[tuple[str, str, str], _SystemPart]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Searched(Value):
    """What :meth:`_Resolver.search` found for one name and one search list (reusable)."""

    status: ResolutionStatus
    rule: Rule | None
    path: str | None
    realpath: str | None
    tried: tuple[Attempt, ...]
    error: str | None
    notes: tuple[str, ...]
    obj: LoadedObject | None
    fs: Filesystem | None
    origin: str | None
    #: The requester's path, which its own DT_RPATH/DT_RUNPATH rules name as owner.
    owner: str | None = None


def _reowned(done: _Searched, owner: str) -> _Searched:
    """``done`` as found by the requester at ``owner``: its own (not inherited)
    DT_RPATH/DT_RUNPATH rules name ``owner``; nothing else in a search names the
    requester (the notes do, so a search with notes is never shared)."""
    if done.owner == owner:
        return done
    old = done.owner

    def swap(rule: Rule) -> Rule:
        if rule.owner != old or rule.inherited or rule.kind not in ("rpath", "runpath"):
            return rule
        return Rule(rule.kind, owner, rule.entry, False)

    return _Searched(
        status=done.status,
        rule=swap(done.rule) if done.rule is not None else None,
        path=done.path,
        realpath=done.realpath,
        tried=tuple(Attempt(a.path, swap(a.rule), a.result, a.detail) for a in done.tried),
        error=done.error,
        notes=done.notes,
        obj=done.obj,
        fs=done.fs,
        origin=done.origin,
        owner=owner,
    )


#: (resolver invariants, name, requester's search inputs) -> the search's outcome. A
#: search depends only on these (the view's files do not change during a session).
#: Also ("any requester", invariants, name, inputs but the requester's path) -> an
#: outcome without notes, for :func:`_reowned`.
_SearchMemo = dict[tuple[object, ...], _Searched]
_Verdict = Literal["ok", "skip", "fatal"]
#: (resolver invariants, id(view), path) -> (result, detail, verdict) of opening a file.
_ProbeMemo = dict[tuple[object, ...], tuple[AttemptResult, str, _Verdict]]


class _Resolver:
    def __init__(
        self,
        config: LoaderConfig,
        fs: Filesystem,
        root: LoadedObject,
        libc: LibcFlavor,
        *,
        memo: _Memo | None = None,
        searches: _SearchMemo | None = None,
        probes: _ProbeMemo | None = None,
        tokens: dict[tuple[object, ...], int] | None = None,
    ) -> None:
        self.memo: _Memo = {} if memo is None else memo
        # the search invariants -> a small int standing for them in memo keys (hashed
        # per lookup: a tuple's hash is not cached)
        self.tokens: dict[tuple[object, ...], int] = {} if tokens is None else tokens
        self.searches: _SearchMemo = {} if searches is None else searches
        self._invariants: int | None = None
        # (invariants, id(fs), path) -> (result, detail, verdict) of opening the file
        self.probes: _ProbeMemo = {} if probes is None else probes
        self.config = config
        self.fs = fs
        self.root_header = root
        self.libc = libc
        self.platform = config.platform or default_platform(root.arch)
        self.lib = config.lib or dst_lib_for_arch(root.arch)
        self.loaded: list[_Loaded] = []
        self.problems: list[str] = []
        self.cache: LdCache | None = None
        self.cache_status = "not used"
        self.conf_dirs: tuple[str, ...] = ()
        self.conf_files: tuple[str, ...] = ()
        self.system_dirs: tuple[str, ...] = ()
        self.musl_path_file: str | None = None
        self.musl_dirs: tuple[str, ...] = ()
        self.musl_dirs_rule: Rule = Rule("musl-default-dirs")
        self.interp_path: str | None = None

    # ---- the system part of the search, read once

    def prepare_glibc(self) -> None:
        if self.config.ldpaths is not None:
            return
        key = ("glibc", self.root_header.arch or "", "")
        memo = self.memo.get(key)
        if memo is None:
            memo = self._read_glibc_system()
            self.memo[key] = memo
        self._apply(memo)

    def _read_glibc_system(self) -> _SystemPart:
        part = _SystemPart(
            system_dirs=self.config.system_dirs or default_system_dirs(self.root_header.arch)
        )
        path = self.config.cache_file
        try:
            data = self.fs.read_bytes(path)
        except OSError as exc:
            part.cache_status = f"missing ({exc.strerror or exc})"
        else:
            try:
                part.cache = parse_ld_so_cache(data)
                part.cache_status = "used"
            except CacheFormatError as exc:
                part.cache_status = f"invalid ({exc})"
        if part.cache is None:
            # No usable cache: search what ldconfig would have indexed.
            conf = read_ld_so_conf(self.fs, self.config.conf_file)
            part.conf_dirs = conf.dirs
            part.conf_files = conf.files
            part.problems.extend(conf.problems)
        return part

    def _apply(self, part: _SystemPart) -> None:
        self.system_dirs = part.system_dirs
        self.cache = part.cache
        self.cache_status = part.cache_status
        self.conf_dirs = part.conf_dirs
        self.conf_files = part.conf_files
        self.musl_path_file = part.musl_path_file
        self.musl_dirs = part.musl_dirs
        self.musl_dirs_rule = part.musl_dirs_rule
        self.problems.extend(part.problems)

    def prepare_musl(self, interpreter: str) -> None:
        if self.config.ldpaths is not None:
            return
        key = ("musl", self.root_header.arch or "", interpreter)
        memo = self.memo.get(key)
        if memo is None:
            memo = self._read_musl_system(interpreter)
            self.memo[key] = memo
        self._apply(memo)

    def _read_musl_system(self, interpreter: str) -> _SystemPart:
        part = _SystemPart()
        match = re.fullmatch(r"ld-musl-(.+)\.so\.1", posixpath.basename(interpreter))
        ldso_arch = match.group(1) if match else musl_ldso_arch(self.root_header.arch) or ""
        # ldso/dynlink.c: the file is <prefix>/etc/ld-musl-ARCH.path, where <prefix> is
        # the interpreter's path minus its last two components (/lib/ld-musl-x.so.1 -> "").
        prefix = (
            posixpath.dirname(posixpath.dirname(interpreter)) if interpreter.startswith("/") else ""
        )
        prefix = "" if prefix == "/" else prefix
        path_file = f"{prefix}/etc/ld-musl-{ldso_arch}.path"
        part.musl_path_file = path_file
        try:
            text = self.fs.read_bytes(path_file).decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            part.musl_dirs = MUSL_DEFAULT_DIRS
            part.musl_dirs_rule = Rule("musl-default-dirs")
        except OSError as exc:
            # Exists but unreadable: musl then searches no system directory at all.
            part.musl_dirs = ()
            part.musl_dirs_rule = Rule("musl-path-file", owner=path_file)
            part.problems.append(f"{path_file}: cannot read ({exc.strerror or exc})")
        else:
            part.musl_dirs = split_search_path(text, ":\n")
            part.musl_dirs_rule = Rule("musl-path-file", owner=path_file)
        return part

    def setup(self) -> SearchSetup:
        return SearchSetup(
            libc=self.libc,
            sysroot=self.config.sysroot,
            library_path=self.config.library_path,
            extra_paths=self.config.extra_paths,
            ldpaths=self.config.ldpaths,
            platform=self.platform,
            lib=self.lib,
            cache_file=self.config.cache_file if self.libc == "glibc" else None,
            cache_status=self.cache_status if self.libc == "glibc" else None,
            conf_dirs=self.conf_dirs,
            conf_files=self.conf_files,
            system_dirs=self.system_dirs,
            musl_path_file=self.musl_path_file,
            musl_dirs=self.musl_dirs,
            problems=tuple(self.problems),
        )

    # ---- search lists

    def _dirs(self, entries: tuple[str, ...], rule: Rule) -> Iterator[_Candidate]:
        for entry in entries:
            yield _Candidate(entry, Rule(rule.kind, rule.owner, entry, rule.inherited), self.fs)

    def _path_entries(
        self, raw: str, owner: _Loaded, kind: RuleKind, inherited: bool
    ) -> Iterator[_Candidate]:
        """The entries of one DT_RPATH/DT_RUNPATH string, expanded (glibc rules)."""
        for entry in raw.split(":"):
            rule = Rule(kind, owner.obj.path, entry, inherited)
            if not entry:
                yield _Candidate(
                    None,
                    rule,
                    owner.fs,
                    path="",
                    skip_reason="empty entry: the working directory; not modelled",
                )
                continue
            expanded = expand_dst(entry, owner.origin, self.platform, self.lib)
            # Directories from $ORIGIN live where the object lives; others in the view.
            fs = owner.fs if "ORIGIN" in entry else self.fs
            if expanded is None:
                yield _Candidate(
                    None,
                    rule,
                    fs,
                    path=entry,
                    skip_reason="a substitution has no value; ld.so drops the entry",
                )
            elif not expanded.startswith("/"):
                yield _Candidate(
                    None,
                    rule,
                    fs,
                    path=expanded,
                    skip_reason="relative to the working directory; not modelled",
                )
            else:
                yield _Candidate(expanded, rule, fs)

    def glibc_candidates(
        self, name: str, requester: _Loaded, notes: list[str]
    ) -> Iterator[_Candidate]:
        """glibc ``_dl_map_object`` order for a name without a slash."""
        obj = requester.obj
        if obj.runpath is None:
            # DT_RPATH of the requester, then of its loader, and up; an object with a
            # DT_RUNPATH contributes no DT_RPATH (get-dynamic-info.h drops it).
            chain: _Loaded | None = requester
            while chain is not None:
                if chain.obj.rpath is not None and chain.obj.runpath is None:
                    yield from self._path_entries(
                        chain.obj.rpath, chain, "rpath", inherited=chain is not requester
                    )
                chain = chain.loader
        elif obj.rpath is not None:
            notes.append(f"DT_RPATH of {posixpath.basename(obj.path)} ignored: it has a DT_RUNPATH")
        yield from self._dirs(self.config.library_path, Rule("ld-library-path"))
        yield from self._dirs(self.config.extra_paths, Rule("extra-paths"))
        if obj.runpath is not None:
            yield from self._path_entries(obj.runpath, requester, "runpath", inherited=False)
        if obj.nodeflib:
            notes.append(
                f"{posixpath.basename(obj.path)} is marked DF_1_NODEFLIB: "
                "ld.so.cache and default directories not searched"
            )
            return
        if self.config.ldpaths is not None:
            yield from self._dirs(self.config.ldpaths, Rule("ldpaths"))
            return
        searched: set[str] = set()
        if self.cache is not None:
            entry = self.cache.lookup(name, cache_flags_for_arch(self.root_header.arch))
            cache_rule = Rule("ld.so.cache", owner=self.config.cache_file)
            if entry is not None:
                yield _Candidate(None, cache_rule, self.fs, path=entry.path)
            else:
                others = self.cache.candidates(name)
                detail = f"no entry for {name}"
                if others:
                    labels = ", ".join(sorted({e.describe() for e in others}))
                    detail += f" usable here (entries only for: {labels})"
                yield _Candidate(
                    None, cache_rule, self.fs, path=self.config.cache_file, skip_reason=detail
                )
        else:
            # No cache: model the one ldconfig would build from the conf directories.
            yield from self._dirs(self.conf_dirs, Rule("ld.so.conf", owner=self.config.conf_file))
            searched = set(self.conf_dirs)
        system = tuple(d for d in self.system_dirs if d not in searched)
        yield from self._dirs(system, Rule("default-dirs"))

    def musl_candidates(self, requester: _Loaded, notes: list[str]) -> Iterator[_Candidate]:
        """musl ``load_library`` order for a name without a slash."""
        yield from self._dirs(self.config.library_path, Rule("ld-library-path"))
        yield from self._dirs(self.config.extra_paths, Rule("extra-paths"))
        chain: _Loaded | None = requester
        while chain is not None:
            obj = chain.obj
            # decode_dyn: DT_RUNPATH, when present, replaces DT_RPATH; both inherit.
            kind: RuleKind = "runpath" if obj.runpath is not None else "rpath"
            raw = obj.runpath if obj.runpath is not None else obj.rpath
            if raw is not None:
                expanded = musl_expand(raw, chain.origin or ".")
                if expanded is None:
                    notes.append(
                        f"{kind} of {posixpath.basename(obj.path)} ignored: "
                        "musl only expands $ORIGIN"
                    )
                else:
                    fs = chain.fs if "ORIGIN" in raw else self.fs
                    for entry in split_search_path(expanded, ":\n"):
                        rule = Rule(kind, obj.path, entry, inherited=chain is not requester)
                        yield _Candidate(entry, rule, fs)
            chain = chain.loader
        if self.config.ldpaths is not None:
            yield from self._dirs(self.config.ldpaths, Rule("ldpaths"))
        else:
            yield from self._dirs(self.musl_dirs, self.musl_dirs_rule)

    # ---- probing one candidate

    def _check(self, elf: ElfView) -> tuple[AttemptResult, str, bool] | None:
        """glibc ``open_verify``: None if loadable, else (result, detail, fatal)."""
        header: ElfHeader = elf.header
        want = self.root_header
        if header.elf_class != want.elf_class:
            return ("wrong-class", f"{header.elf_class}-bit ELF, need {want.elf_class}-bit", False)
        if header.byte_order != want.byte_order:
            return (
                "wrong-byte-order",
                f"{header.byte_order}-endian, need {want.byte_order}-endian",
                True,
            )
        if header.osabi not in (_ELFOSABI_SYSV, _ELFOSABI_GNU):
            return ("wrong-osabi", f"OS ABI {header.osabi} is neither SYSV nor GNU", True)
        if header.machine != want.machine:
            return (
                "wrong-machine",
                f"{_machine_name(header.machine)}, need {_machine_name(want.machine)}",
                False,
            )
        if want.arch is not None and header.arch != want.arch:
            why = header.arch or header.arch_problem or "unknown variant"
            return ("wrong-arch", f"{why}, need {want.arch}", False)
        if header.elf_type not in (_ET_EXEC, _ET_DYN):
            return (
                "not-loadable",
                f"ELF type {header.elf_type}: only ET_DYN and ET_EXEC load",
                True,
            )
        return None

    def probe(self, name: str, cand: _Candidate) -> tuple[Attempt, _Verdict]:
        path = cand.path if cand.directory is None else _join(cand.directory, name)
        assert path is not None
        if cand.skip_reason is not None:
            result: AttemptResult = (
                "no-cache-entry" if cand.rule.kind == "ld.so.cache" else "not-modelled"
            )
            return Attempt(path, cand.rule, result, cand.skip_reason), "skip"
        key = (self._search_invariants(), id(cand.fs), path)
        known = self.probes.get(key)
        if known is None:
            known = self.probes[key] = self._open(cand.fs, path)
        result, detail, verdict = known
        return Attempt(path, cand.rule, result, detail), verdict

    def _open(self, fs: Filesystem, path: str) -> tuple[AttemptResult, str, _Verdict]:
        """Whether ``path`` in ``fs`` loads for this root: (result, detail, verdict).

        Depends only on the file and the root's header, so :meth:`probe` memoizes it.
        """
        if not fs.exists(path):
            return "missing", "no such file", "skip"
        if not fs.is_file(path):
            return "not-a-file", "not a regular file", "skip"
        try:
            elf = fs.open_elf(path)
        except PermissionError:
            return "unreadable", "permission denied", "skip"
        except OSError as exc:
            return "unreadable", exc.strerror or str(exc), "skip"
        except ElfError as exc:
            return "invalid-elf", str(exc), "fatal"
        try:
            problem = self._check(elf)
        except ElfError as exc:
            return "invalid-elf", str(exc), "fatal"
        if problem is not None:
            result, detail, fatal = problem
            if self.libc == "musl":
                fatal = True  # path_open takes the first file it can open
            return result, detail, "fatal" if fatal else "skip"
        return "found", "loadable", "ok"

    # ---- resolution of one DT_NEEDED entry

    def _match_loaded(self, name: str) -> _Loaded | None:
        for loaded in self.loaded:
            if name in loaded.names:
                return loaded
        return None

    def _musl_reserved(self, name: str) -> bool:
        return name.startswith("lib") and any(name[3:].startswith(r) for r in _MUSL_RESERVED)

    def _search_invariants(self) -> int:
        """What every search and probe of this resolver reads from the root and config
        (a token: equal tokens, equal invariants)."""
        if self._invariants is None:
            want = self.root_header
            invariants = (
                self.libc,
                want.elf_class,
                want.byte_order,
                want.machine,
                want.arch,
                self.platform,
                self.lib,
                id(self.cache),
                self.config.cache_file,
                self.conf_dirs,
                self.system_dirs,
                self.musl_dirs,
                self.musl_dirs_rule,
            )
            self._invariants = self.tokens.setdefault(invariants, len(self.tokens))
        return self._invariants

    def _search_key(
        self, name: str, requester: _Loaded
    ) -> tuple[tuple[object, ...], tuple[object, ...]]:
        """Everything :meth:`_search` reads besides the view's (unchanging) files; and
        the same without the requester's path (see :func:`_reowned`)."""
        obj = requester.obj
        own = (obj.rpath, obj.runpath, obj.nodeflib, requester.origin, id(requester.fs))
        inherited: list[tuple[object, ...]] = []
        if "/" not in name and (self.libc != "glibc" or obj.runpath is None):
            # glibc reads a loader's DT_RPATH only when it has no DT_RUNPATH
            # (glibc_candidates); musl reads either of every loader up the chain.
            glibc = self.libc == "glibc"
            chain = requester.loader
            while chain is not None:
                up = chain.obj
                if (
                    (up.rpath is not None and up.runpath is None)
                    if glibc
                    else (up.rpath is not None or up.runpath is not None)
                ):
                    inherited.append((up.path, up.rpath, up.runpath, chain.origin, id(chain.fs)))
                chain = chain.loader
        common = (self._search_invariants(), name, own, tuple(inherited))
        return (*common, obj.path), ("any requester", *common)

    def search(self, name: str, requester: _Loaded) -> _Node:
        """Search ``name`` for ``requester``, without looking at loaded objects.

        The outcome is memoized per name and search inputs (:meth:`_search_key`); each
        call gets fresh bookkeeping (a new :class:`_Loaded` loaded by ``requester``).
        """
        done, node = self._searched(name, requester)
        if node is not None:
            return node
        node = _Node(
            name,
            done.status,
            done.rule,
            path=done.path,
            realpath=done.realpath,
            tried=list(done.tried),
            error=done.error,
            notes=list(done.notes),
        )
        if done.obj is not None and done.fs is not None and done.path is not None:
            node.loaded = _Loaded(
                obj=done.obj,
                fs=done.fs,
                origin=done.origin,
                loader=requester,
                names={name, done.path},
            )
        return node

    def _searched(self, name: str, requester: _Loaded) -> tuple[_Searched, _Node | None]:
        """The memoized outcome of :meth:`_search`, and the node when it was searched
        now (None when the outcome was known)."""
        key, shared_key = self._search_key(name, requester)
        done = self.searches.get(key)
        if done is None:
            # The same search by another requester with the same search inputs (roots
            # in one directory with one RUNPATH): the same outcome, the rules of the
            # requester's own entries naming it instead.
            owner = requester.obj.path
            shared = self.searches.get(shared_key)
            if shared is not None:
                done = self.searches[key] = _reowned(shared, owner)
            else:
                node = self._search(name, requester)
                loaded = node.loaded
                done = _Searched(
                    status=node.status,
                    rule=node.rule,
                    path=node.path,
                    realpath=node.realpath,
                    tried=tuple(node.tried),
                    error=node.error,
                    notes=tuple(node.notes),
                    obj=loaded.obj if loaded is not None else None,
                    fs=loaded.fs if loaded is not None else None,
                    origin=loaded.origin if loaded is not None else None,
                    owner=owner,
                )
                self.searches[key] = done
                if not done.notes:  # notes name the requester: not shared
                    self.searches[shared_key] = done
                return done, node
        return done, None

    def _search(self, name: str, requester: _Loaded) -> _Node:
        node = _Node(name, "not-found", None)
        if "/" in name:
            candidates: Iterator[_Candidate]
            path = name
            if self.libc == "glibc":
                expanded = expand_dst(name, requester.origin, self.platform, self.lib)
                path = expanded if expanded is not None else name
            rule = Rule("needed-path", entry=name)
            if not path.startswith("/"):
                candidates = iter(
                    [
                        _Candidate(
                            None,
                            rule,
                            self.fs,
                            path=path,
                            skip_reason="relative to the working directory; not modelled",
                        )
                    ]
                )
            else:
                fs = requester.fs if "ORIGIN" in name else self.fs
                candidates = iter([_Candidate(None, rule, fs, path=path)])
        elif self.libc == "glibc":
            candidates = self.glibc_candidates(name, requester, node.notes)
        else:
            candidates = self.musl_candidates(requester, node.notes)
        for cand in candidates:
            attempt, verdict = self.probe(name, cand)
            if verdict == "ok":
                node.status, node.rule = "found", cand.rule
                node.path, node.realpath = attempt.path, cand.fs.realpath(attempt.path)
                node.loaded = _Loaded(
                    obj=_object_facts(cand.fs.open_elf(attempt.path), attempt.path, cand.fs),
                    fs=cand.fs,
                    origin=posixpath.dirname(attempt.path),
                    loader=requester,
                    names={name, attempt.path},
                )
                return node
            node.tried.append(attempt)
            if verdict == "fatal":
                node.status = "error"
                loader = "ld.so" if self.libc == "glibc" else "the musl loader"
                node.error = f"{loader} stops at {attempt.path}: {attempt.detail}"
                return node
        return node

    def resolve(self, name: str, requester: _Loaded) -> _Node:
        # musl: libc.so, libpthread.so... are the loader itself.
        if self.libc == "musl" and "/" not in name and self._musl_reserved(name):
            interp = (
                self.loaded[0]
                if self.loaded and self.loaded[0].obj.path == self.interp_path
                else None
            )
            return _Node(
                name,
                "already-loaded",
                Rule("musl-libc"),
                path=self.interp_path,
                realpath=interp.obj.realpath if interp else None,
                loaded=interp,
                loaded_by="interpreter",
            )
        # Name match against loaded objects (glibc _dl_name_match_p and the SONAME
        # check; musl compares the short names it searched for).
        previous = self._match_loaded(name) if "/" not in name or self.libc == "glibc" else None
        if previous is not None:
            return self._already(name, requester, previous, by_name=True)
        node = self.search(name, requester)
        if node.status != "found" or node.loaded is None:
            return node
        # Same file loaded under another name (dev/ino match in both loaders).
        for loaded in self.loaded:
            if loaded.obj.realpath == node.realpath and loaded.fs is node.loaded.fs:
                loaded.names.add(name)
                return self._already(name, requester, loaded, by_name=False, found=node)
        new = node.loaded
        if self.libc == "glibc" and new.obj.soname:
            new.names.add(new.obj.soname)
        if self.libc == "musl" and "/" in name:
            new.names.discard(name)  # musl gives no short name to explicit paths
        self.loaded.append(new)
        return node

    def _already(
        self,
        name: str,
        requester: _Loaded,
        previous: _Loaded,
        *,
        by_name: bool,
        found: _Node | None = None,
    ) -> _Node:
        first_by = previous.loader.obj.path if previous.loader is not None else None
        if previous.obj.path == self.interp_path:
            rule = Rule("interpreter")
        else:
            rule = Rule("already-loaded", owner=first_by)
        node = _Node(
            name,
            "already-loaded",
            rule,
            path=previous.obj.path,
            realpath=previous.obj.realpath,
            loaded=previous,
            loaded_by=first_by if rule.kind == "already-loaded" else "interpreter",
        )
        if found is not None:
            node.notes.append(
                f"found at {found.path} ({found.rule.describe() if found.rule else ''}), "
                "the same file as an object already loaded"
            )
        elif by_name and "/" not in name:
            own, _ = self._searched(name, requester)
            if own.status != "found":
                node.own_search = "not found"
                node.notes.append(
                    f"{posixpath.basename(requester.obj.path)}'s own search would "
                    "not find it: it relies on the object being loaded first"
                )
            elif own.realpath != previous.obj.realpath:
                node.own_search = own.path
                node.notes.append(
                    f"{posixpath.basename(requester.obj.path)}'s own search would "
                    f"find {own.path} instead"
                )
        return node

    # ---- the whole tree

    def load_interpreter(self, path: str) -> _Node:
        """Model the interpreter as loaded before anything else."""
        self.interp_path = path
        rule = Rule("interpreter")
        node = _Node(posixpath.basename(path), "not-found", rule, path=path)
        names = {path, posixpath.basename(path)}
        try:
            if not self.fs.is_file(path):
                node.tried.append(Attempt(path, rule, "missing", "no such file"))
                self.problems.append(f"interpreter {path} not found")
                return node
            elf = self.fs.open_elf(path)
            obj = _object_facts(elf, path, self.fs)
        except (ElfError, OSError) as exc:
            node.tried.append(Attempt(path, rule, "invalid-elf", str(exc)))
            node.status = "error"
            node.error = f"interpreter {path}: {exc}"
            return node
        if self.libc == "glibc" and obj.soname:
            names.add(obj.soname)
        loaded = _Loaded(
            obj=obj, fs=self.fs, origin=posixpath.dirname(path), loader=None, names=names
        )
        self.loaded.append(loaded)
        node.status, node.loaded, node.realpath = "found", loaded, obj.realpath
        return node

    def load_all(self, root: _Loaded) -> list[_Node]:
        """Breadth-first, as ld.so's ``_dl_map_object_deps`` and musl's ``load_deps``."""
        queue = [root]
        top: list[_Node] = []
        index = 0
        while index < len(queue):
            current = queue[index]
            index += 1
            for name in current.obj.needed:
                node = self.resolve(name, current)
                current.children.append(node)
                if node.status == "found" and node.loaded is not None:
                    queue.append(node.loaded)
            if current is root:
                top = current.children
        return top


def _detect_libc(config: LoaderConfig, obj: LoadedObject) -> tuple[LibcFlavor, str | None]:
    """The libc flavour, and why it was chosen when it was guessed."""
    if config.libc != "auto":
        return config.libc, None
    if obj.interpreter:
        if posixpath.basename(obj.interpreter).startswith("ld-musl-"):
            return "musl", f"interpreter {obj.interpreter} is musl's"
        return "glibc", None
    # No PT_INTERP (a shared library): musl's libc has the soname libc.so, glibc's
    # libc.so.6.
    if "libc.so" in obj.needed or any(n.startswith("libc.musl-") for n in obj.needed):
        return "musl", "it needs libc.so, musl's C library"
    return "glibc", None


def resolve_tree(
    path: str | os.PathLike[str],
    config: LoaderConfig | None = None,
    fs: Filesystem | None = None,
) -> DependencyTree:
    """Resolve the dependency tree of the ELF file at ``path`` (a path on this machine).

    Raises InputError when the file is missing or unreadable, ElfError when it is not
    ELF or malformed. ``fs`` is the view searched (default: :class:`HostFilesystem` of
    ``config.sysroot``, closed on return).
    """
    config = config or LoaderConfig()
    host_path = os.path.abspath(os.fspath(path))
    if not os.path.lexists(host_path):
        raise InputError(f"{os.fspath(path)}: no such file")
    if os.path.isdir(host_path):
        raise InputError(f"{os.fspath(path)}: is a directory, not an ELF file")
    if not os.path.exists(host_path):
        raise InputError(f"{os.fspath(path)}: broken symbolic link")
    owned: list[HostFilesystem] = []
    if fs is None:
        owned.append(HostFilesystem(config.sysroot))
    view: Filesystem = fs if fs is not None else owned[0]
    try:
        # The root lives in the view when it is inside the sysroot, else on the host.
        root_fs: Filesystem = view
        logical = host_path
        if config.sysroot:
            real_root = os.path.realpath(config.sysroot)
            real_file = os.path.realpath(host_path)
            if os.path.commonpath([real_root, real_file]) == real_root:
                logical = "/" + os.path.relpath(real_file, real_root)
            else:
                owned.append(HostFilesystem(None))
                root_fs = owned[-1]
        try:
            elf = root_fs.open_elf(logical)
            root = _object_facts(elf, logical, root_fs)
        except PermissionError as exc:
            raise InputError(f"{os.fspath(path)}: permission denied") from exc
        except OSError as exc:
            raise InputError(f"{os.fspath(path)}: {exc.strerror or exc}") from exc
        except ElfError as exc:
            message = str(exc)
            if os.fspath(path) not in message and host_path not in message:
                message = f"{os.fspath(path)}: {message}"
            raise ElfError(message) from exc
        return _resolve_root(config, view, root_fs, logical, root, memo=None)
    finally:
        for opened in owned:
            opened.close()


def _resolve_root(
    config: LoaderConfig,
    view: Filesystem,
    root_fs: Filesystem,
    logical: str,
    root: LoadedObject,
    *,
    memo: _Memo | None,
    searches: _SearchMemo | None = None,
    probes: _ProbeMemo | None = None,
    tokens: dict[tuple[object, ...], int] | None = None,
) -> DependencyTree:
    """The tree of ``root`` (at ``logical`` in ``root_fs``), searched in ``view``."""
    libc, why = _detect_libc(config, root)
    notes: list[str] = []
    if why:
        notes.append(f"musl rules used: {why}")
    resolver = _Resolver(
        config, view, root, libc, memo=memo, searches=searches, probes=probes, tokens=tokens
    )
    if root.interpreter is None and root.elf_type == _ET_EXEC:
        notes.append("statically linked: no interpreter")
    if libc == "glibc":
        interpreter = root.interpreter or glibc_interpreter(root.arch)
        resolver.prepare_glibc()
    else:
        interpreter = (
            root.interpreter or f"/lib/ld-musl-{musl_ldso_arch(root.arch) or 'unknown'}.so.1"
        )
        resolver.prepare_musl(interpreter)
    interp_node: _Node | None = None
    if interpreter is not None and (root.interpreter is not None or root.needed):
        interp_node = resolver.load_interpreter(interpreter)
        if root.interpreter is None:
            interp_node.notes.append(
                "the root has no PT_INTERP: assumed loaded by the standard interpreter"
            )
    # The root: names are its path and (glibc) its soname.
    root_names = {logical}
    if libc == "glibc" and root.soname:
        root_names.add(root.soname)
    root_origin = posixpath.dirname(
        root.realpath if (root.interpreter is not None or root.elf_type == _ET_EXEC) else logical
    )
    root_loaded = _Loaded(obj=root, fs=root_fs, origin=root_origin, loader=None, names=root_names)
    resolver.loaded.append(root_loaded)
    top = resolver.load_all(root_loaded)
    return DependencyTree(
        root=root,
        setup=resolver.setup(),
        interpreter=interp_node.freeze() if interp_node is not None else None,
        dependencies=tuple(node.freeze() for node in top),
        notes=tuple(notes),
    )


class LoaderSession:
    """Resolve the trees of many roots that live in one filesystem view.

    The system part of the search (``ld.so.cache`` or ``ld.so.conf``, default
    directories; musl's path file) is read and parsed once per libc, architecture and
    interpreter, and the view caches every parsed file, so each further root costs only
    its own search. ``fs`` is not closed by the session.
    """

    def __init__(self, config: LoaderConfig, fs: Filesystem) -> None:
        self.config = config
        self.fs = fs
        self._memo: _Memo = {}
        self._searches: _SearchMemo = {}
        self._probes: _ProbeMemo = {}
        self._tokens: dict[tuple[object, ...], int] = {}

    def resolve(self, path: str) -> DependencyTree:
        """The tree of the ELF file at ``path`` in the view (an absolute view path).

        Raises ElfError when the file is not ELF or malformed, OSError when unreadable.
        """
        root = _object_facts(self.fs.open_elf(path), path, self.fs)
        return _resolve_root(
            self.config,
            self.fs,
            self.fs,
            path,
            root,
            memo=self._memo,
            searches=self._searches,
            probes=self._probes,
            tokens=self._tokens,
        )
