"""Facts about this machine: libc, architecture, and the platform tags an installer accepts.

The answer is the one an installer (pip, through ``packaging.tags``) running on the Python
that runs manywheel would give, with each step explained:

* **libc** -- glibc is asked for its version in-process, without loading any new library:
  ``os.confstr("CS_GNU_LIBC_VERSION")`` first, ``gnu_get_libc_version`` of the already
  loaded process (``ctypes.CDLL(None)``, i.e. ``dlopen(NULL)``) second. musl has no such
  call; PEP 656 ("Reading the musl version") says to run the musl loader named by the
  interpreter's ``PT_INTERP`` and parse what it prints on stderr.
* **arch** -- the interpreter's own ELF header decides, not the kernel: a 32-bit userland
  on a 64-bit kernel (i686 Python on an x86_64 kernel, armhf Python on an aarch64 kernel)
  can only load 32-bit extensions. ``uname -m`` (``platform.machine()``) is the fallback
  and decides only the armv8l alias (see :func:`tag_archs`).
* **tags** -- PEP 600 (perennial manylinux, normative for the PEP 513/571/599 legacy
  aliases too), PEP 656 (musllinux), then the plain ``linux_<arch>`` tag of PEP 425.

The work is split in two: :func:`build_report` and the tag functions are pure over their
inputs (arch, libc version, an optional ``_manylinux`` module object), so tests drive
every case; :func:`probe_host` is the thin edge that gathers the real values.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from manywheel.elf import ElfFile
from manywheel.errors import EnvironmentProblem, ManywheelError
from manywheel.value import Value

__all__ = [
    "HOST_SCHEMA_VERSION",
    "MUSL_LOADER_TIMEOUT",
    "ArchInfo",
    "ExecutableFacts",
    "HostReport",
    "LibcInfo",
    "OverrideNote",
    "PythonInfo",
    "TagSet",
    "build_report",
    "detect_arch",
    "detect_libc",
    "glibc_from_process",
    "load_manylinux_override",
    "manylinux_tags",
    "musl_version_from_loader",
    "musllinux_tags",
    "parse_libc_version",
    "platform_tags",
    "probe_host",
    "read_executable",
    "render_report",
    "report_to_json",
    "tag_archs",
]

#: ``schema_version`` of :func:`report_to_json` (schemas/platform.schema.json).
HOST_SCHEMA_VERSION = 1

#: Seconds the musl loader gets to print its version (it answers in milliseconds).
MUSL_LOADER_TIMEOUT = 5.0

LibcFamily = Literal["glibc", "musl", "unknown"]
Version = tuple[int, int]
#: Runs a musl loader: (version, None) or (None, why not).
MuslProbe = Callable[[str], tuple[Version | None, str | None]]

#: Arches for which manylinux tags exist (PEP 599 list plus the PEP 600 newcomers that
#: packaging.tags knows). Anything else gets only its ``linux_<arch>`` tag.
MANYLINUX_ARCHS = frozenset(
    {
        "x86_64",
        "i686",
        "aarch64",
        "armv7l",
        "armv8l",
        "ppc64",
        "ppc64le",
        "s390x",
        "riscv64",
        "loongarch64",
    }
)

#: The oldest glibc a manylinux tag exists for: manylinux1 (PEP 513) is glibc 2.5 on
#: x86 only; every other arch starts at manylinux2014 (PEP 599), glibc 2.17.
_X86_FLOOR: Version = (2, 5)
_OTHER_FLOOR: Version = (2, 17)

#: PEP 600 "Legacy manylinux tags": each legacy tag is an alias of one perennial tag,
#: and only for the arches its PEP defined it for.
LEGACY_ALIASES: dict[Version, tuple[str, frozenset[str]]] = {
    (2, 5): ("manylinux1", frozenset({"x86_64", "i686"})),
    (2, 12): ("manylinux2010", frozenset({"x86_64", "i686"})),
    (2, 17): (
        "manylinux2014",
        frozenset({"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"}),
    ),
}

#: PEP 600 "Package installers": the legacy boolean attributes of ``_manylinux``
#: (PEP 513, 571, 599), each consulted for exactly one glibc version.
LEGACY_ATTRIBUTES: dict[Version, str] = {
    (2, 5): "manylinux1_compatible",
    (2, 12): "manylinux2010_compatible",
    (2, 17): "manylinux2014_compatible",
}

#: glibc has never changed its major version; should it, the minors of the old major
#: are unknown. Like packaging.tags, assume the old major ended at minor 50.
_LAST_MINOR_OF_OLD_MAJOR = 50

#: ``platform.machine()`` spellings -> wheel arch names (PEP 425 uses sysconfig's).
_MACHINE_ALIASES = {
    "amd64": "x86_64",
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "arm64": "aarch64",
}
_32BIT_USERLAND = {"x86_64": "i686", "aarch64": "armv7l", "armv8l": "armv7l"}


# ---------------------------------------------------------------------------
# Facts


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LibcInfo(Value):
    """The C library the running Python uses.

    ``version`` is (major, minor), or None when it could not be learned (the reason is in
    ``problem``). ``source`` says how the answer was learned, e.g.
    ``"confstr(CS_GNU_LIBC_VERSION)"`` or ``"musl loader /lib/ld-musl-x86_64.so.1"``.
    """

    family: LibcFamily
    version: Version | None
    source: str
    problem: str | None = None

    @property
    def version_text(self) -> str | None:
        return None if self.version is None else f"{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ArchInfo(Value):
    """The architecture extensions must be built for to load into the running Python.

    ``name`` is the wheel arch (x86_64, i686, aarch64, armv7l, ppc64le, ppc64, s390x,
    riscv64, loongarch64, or a normalized ``uname -m`` for others); ``machine`` is
    ``platform.machine()`` (the kernel's view); ``elf_class`` the interpreter's class
    (32/64, None when its header could not be read); ``tag_archs`` the arch names tags are
    generated for, most specific first (see :func:`tag_archs`); ``problem`` why no
    manylinux tag can apply although the arch has a name (e.g. ARM soft-float).
    """

    name: str
    machine: str
    elf_class: int | None
    source: str
    tag_archs: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PythonInfo(Value):
    """The interpreter whose view is reported (the one running manywheel)."""

    executable: str
    implementation: str  # sys.implementation.name
    version: str  # "3.11.7"
    interpreter: str | None  # PT_INTERP of the executable (its dynamic loader)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OverrideNote(Value):
    """One answer of the ``_manylinux`` module (PEP 600 "Package installers") that changed
    the result, or that was not a bool and was taken by its truth value as PEP 600 does.

    ``tags`` are the tags the answer applies to (a perennial tag and its legacy alias);
    ``asked`` the call or attribute read (``"manylinux_compatible(2, 28, 'x86_64')"``);
    ``returned`` the ``repr`` of the answer; ``accepted`` the resulting verdict.
    """

    tags: tuple[str, ...]
    asked: str
    returned: str
    accepted: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TagSet(Value):
    """Accepted platform tags, most specific first, and the override notes behind them."""

    tags: tuple[str, ...]
    notes: tuple[OverrideNote, ...] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class HostReport(Value):
    """What this machine accepts: the answer of ``manywheel platform``.

    ``tags`` are platform tags only (PEP 425's third part), most specific first, as an
    installer orders its preference. ``override_module`` is the file of the importable
    ``_manylinux`` module (``"<unknown>"`` when it has none) or None when there is none;
    ``override_attributes`` the override names it defines.
    """

    python: PythonInfo
    arch: ArchInfo
    libc: LibcInfo
    tags: tuple[str, ...]
    override_module: str | None = None
    override_attributes: tuple[str, ...] = ()
    overrides: tuple[OverrideNote, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------
# Pure: versions, arches, tags


_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


def parse_libc_version(text: str) -> Version | None:
    """(major, minor) from the first ``N.M`` in ``text``; None when there is none.

    Patched builds append junk (Linaro: ``"2.20-2014.11"``), so only the leading
    ``major.minor`` counts, as in packaging's ``_parse_glibc_version``.
    """
    match = _VERSION_RE.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _parse_musl_banner(stderr: str) -> Version | None:
    """PEP 656: the first non-empty line starts with ``musl``, the second is
    ``Version X.Y[.Z]``."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("musl"):
        return None
    match = re.match(r"Version (\d+)\.(\d+)", lines[1])
    return (int(match.group(1)), int(match.group(2))) if match else None


def normalize_machine(machine: str) -> str:
    """A ``uname -m`` value as a wheel arch name (PEP 425: ``.``/``-`` become ``_``)."""
    name = machine.strip().lower()
    name = _MACHINE_ALIASES.get(name, name)
    return re.sub(r"[.-]", "_", name) or "unknown"


def tag_archs(arch: str, machine: str) -> tuple[str, ...]:
    """The arch names tags are generated for, most specific first.

    An armhf (armv7l) userland on an ARMv8 CPU -- an aarch64 kernel, or a kernel that
    reports ``armv8l`` -- also accepts ``armv8l`` tags, first: packaging.tags maps such a
    32-bit interpreter to ``linux_armv8l`` with ``armv7l`` as its fallback, so pip here
    accepts both. Every other arch is just itself.
    """
    if arch == "armv7l" and normalize_machine(machine) in {"aarch64", "armv8l"}:
        return ("armv8l", "armv7l")
    return (arch,)


def _glibc_versions(current: Version, floor: Version) -> Iterator[Version]:
    """Every glibc version from ``current`` down to ``floor``, newest first.

    PEP 600 "Legacy manylinux tags": a system is compatible with
    a tag when ``(sys_major, sys_minor) >= (tag_major, tag_minor)``, across majors too.
    """
    major, minor = current
    while (major, minor) >= floor:
        yield (major, minor)
        if minor > 0:
            minor -= 1
        else:
            major, minor = major - 1, _LAST_MINOR_OF_OLD_MAJOR


def _describe_call(major: int, minor: int, arch: str) -> str:
    return f"manylinux_compatible({major}, {minor}, {arch!r})"


def _override_problem(asked: str, exc: BaseException, module: object) -> EnvironmentProblem:
    where = getattr(module, "__file__", None) or "<no file>"
    return EnvironmentProblem(
        f"the _manylinux module ({where}) failed: _manylinux.{asked} raised "
        f"{type(exc).__name__}: {exc}; pip on this Python would fail the same way: "
        "fix or remove that module"
    )


def _truth(value: object, asked: str, module: object) -> bool:
    """``bool(value)``, as PEP 600's reference code applies it to every answer."""
    try:
        return bool(value)
    except Exception as exc:
        raise _override_problem(f"{asked} -> bool()", exc, module) from exc


def _override_verdict(
    override: object, version: Version, arch: str
) -> tuple[bool | None, str, object]:
    """Ask the ``_manylinux`` module about one perennial tag (PEP 600 "Package installers").

    Returns (verdict or None for "default logic", what was asked, the raw answer).
    ``manylinux_compatible`` takes precedence: when the module defines it, the legacy
    attributes are not read at all, even when it returns None (PEP 600: "If both the
    new and old attributes are defined, then manylinux_compatible takes precedence").
    """
    major, minor = version
    func = getattr(override, "manylinux_compatible", None)
    if func is not None:
        asked = _describe_call(major, minor, arch)
        if not callable(func):
            raise EnvironmentProblem(
                f"the _manylinux module ({getattr(override, '__file__', None) or '<no file>'})"
                f" defines manylinux_compatible as a {type(func).__name__}, not a function "
                "(PEP 600); fix or remove that module"
            )
        try:
            answer = func(major, minor, arch)
        except Exception as exc:
            raise _override_problem(asked, exc, override) from exc
        if answer is None:
            return None, asked, answer
        return _truth(answer, asked, override), asked, answer
    attribute = LEGACY_ATTRIBUTES.get(version)
    if attribute is not None and hasattr(override, attribute):
        answer = getattr(override, attribute)
        return _truth(answer, attribute, override), attribute, answer
    return None, "", None


def manylinux_tags(
    archs: Sequence[str] | str, glibc: Version, override: object | None = None
) -> TagSet:
    """The manylinux tags a glibc ``glibc`` system of these arches accepts, best first.

    PEP 600: ``manylinux_X_Y_arch`` for every glibc X.Y from the system's own down to
    2.5 on x86 (manylinux1, PEP 513) or 2.17 elsewhere (manylinux2014, PEP 599); each
    legacy alias (PEP 600 "Legacy manylinux tags") right after the perennial tag it
    stands for, and only on the arches its PEP defined it for.

    ``override`` is the ``_manylinux`` module (any object with its attributes) or None.
    PEP 600's reference code consults it only for tags the default logic already
    accepts (after the glibc-version and arch checks), so it can remove tags, never add
    them; and it asks about every tag separately: ``manylinux_compatible(2, 28, ...)``
    returning False removes ``manylinux_2_28`` only, not the older tags. An answer that
    is not a bool counts by its truth value (``return bool(result)`` in the PEP) and is
    noted; an override that raises is an :class:`EnvironmentProblem` (one line, exit 4),
    since the installer would fail there too.
    """
    arch_list = (archs,) if isinstance(archs, str) else tuple(archs)
    tags: list[str] = []
    notes: list[OverrideNote] = []
    for arch in arch_list:
        if arch not in MANYLINUX_ARCHS:
            continue
        floor = _X86_FLOOR if arch in {"x86_64", "i686"} else _OTHER_FLOOR
        for version in _glibc_versions(glibc, floor):
            perennial = f"manylinux_{version[0]}_{version[1]}_{arch}"
            group = [perennial]
            legacy = LEGACY_ALIASES.get(version)
            if legacy is not None and arch in legacy[1]:
                group.append(f"{legacy[0]}_{arch}")
            verdict: bool | None = None
            if override is not None:
                verdict, asked, answer = _override_verdict(override, version, arch)
                if verdict is False or (verdict is not None and not isinstance(answer, bool)):
                    notes.append(OverrideNote(tuple(group), asked, repr(answer), verdict))
            if verdict is not False:
                tags.extend(group)
    return TagSet(tuple(tags), tuple(notes))


def musllinux_tags(archs: Sequence[str] | str, musl: Version) -> tuple[str, ...]:
    """The musllinux tags a musl ``musl`` system of these arches accepts, best first.

    PEP 656: ``musllinux_X_Y_arch`` promises to work on musl X.Y "or later", so a musl
    X.Z system accepts every minor Y from Z down to 0 of its major. PEP 656 defines no
    override module (``_manylinux`` is about glibc only).
    """
    arch_list = (archs,) if isinstance(archs, str) else tuple(archs)
    major, current = musl
    return tuple(
        f"musllinux_{major}_{minor}_{arch}"
        for arch in arch_list
        for minor in range(current, -1, -1)
    )


def platform_tags(
    libc: LibcInfo,
    archs: Sequence[str] | str,
    override: object | None = None,
    *,
    abi_ok: bool = True,
) -> TagSet:
    """Every platform tag this system accepts, most specific first.

    manylinux (glibc) or musllinux (musl) tags first, then ``linux_<arch>`` for each arch
    last (PEP 425: the platform's own tag, accepted by any installer on it). ``abi_ok``
    False (e.g. an ARM soft-float interpreter) drops the manylinux tags: PEP 599 defines
    ``armv7l`` as the hard-float ABI. A libc whose version is unknown gets none either.
    """
    arch_list = (archs,) if isinstance(archs, str) else tuple(archs)
    found = TagSet(())
    if libc.version is not None:
        if libc.family == "glibc" and abi_ok:
            found = manylinux_tags(arch_list, libc.version, override)
        elif libc.family == "musl":
            found = TagSet(musllinux_tags(arch_list, libc.version))
    linux = tuple(f"linux_{arch}" for arch in arch_list)
    return TagSet(found.tags + linux, found.notes)


def build_report(
    python: PythonInfo,
    arch: ArchInfo,
    libc: LibcInfo,
    override: object | None = None,
) -> HostReport:
    """The report for these facts (pure: no host access beyond calling ``override``)."""
    result = platform_tags(libc, arch.tag_archs, override, abi_ok=arch.problem is None)
    module_file: str | None = None
    attributes: tuple[str, ...] = ()
    if override is not None:
        module_file = getattr(override, "__file__", None) or "<unknown>"
        names = ("manylinux_compatible", *LEGACY_ATTRIBUTES.values())
        attributes = tuple(name for name in names if hasattr(override, name))
    return HostReport(
        python=python,
        arch=arch,
        libc=libc,
        tags=result.tags,
        override_module=module_file,
        override_attributes=attributes,
        overrides=result.notes,
    )


# ---------------------------------------------------------------------------
# Edge: gathering the real values


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExecutableFacts(Value):
    """What the interpreter's ELF file says: its loader (PT_INTERP) and its arch.

    ``elf_class`` is None when the header could not be read (``problem`` says why);
    ``arch`` is None when the header names no arch wheels exist for (``problem`` too).
    """

    path: str
    interpreter: str | None
    elf_class: int | None
    arch: str | None
    problem: str | None = None


def read_executable(path: str) -> ExecutableFacts:
    """PT_INTERP and ELF header of the file at ``path``, through :class:`ElfFile`.

    An unreadable or non-ELF file is not an error here: the facts carry the reason and
    the callers fall back (``uname -m``; glibc answers without PT_INTERP anyway).
    """
    if not path:
        return ExecutableFacts(path, None, None, None, "sys.executable is empty")
    try:
        with ElfFile.open(path) as elf:
            header = elf.header
            try:
                interpreter = elf.interpreter
            except ManywheelError as err:
                return ExecutableFacts(path, None, header.elf_class, header.arch, str(err))
    except ManywheelError as err:
        return ExecutableFacts(path, None, None, None, str(err))
    return ExecutableFacts(path, interpreter, header.elf_class, header.arch, header.arch_problem)


def glibc_from_process(
    confstr: Callable[[str], str | None] | None = None,
    ctypes_version: Callable[[], str | None] | None = None,
) -> LibcInfo | None:
    """glibc's version as the running process sees it, or None when this is not glibc.

    ``confstr(CS_GNU_LIBC_VERSION)`` answers "glibc 2.36" without loading anything; the
    fallback calls ``gnu_get_libc_version`` through ``dlopen(NULL)``, the handle of the
    already loaded program. Both are parameters so tests can stand in for them.
    """
    ask_confstr = confstr if confstr is not None else _confstr
    ask_ctypes = ctypes_version if ctypes_version is not None else _ctypes_glibc_version
    text = ask_confstr("CS_GNU_LIBC_VERSION")
    if text:
        family, _, number = text.strip().partition(" ")
        version = parse_libc_version(number)
        if family == "glibc" and version is not None:
            return LibcInfo("glibc", version, "confstr(CS_GNU_LIBC_VERSION)")
    text = ask_ctypes()
    if text is not None:
        source = "gnu_get_libc_version() of the running process"
        version = parse_libc_version(text)
        if version is None:
            return LibcInfo("glibc", None, source, f"unparsable glibc version {text!r}")
        return LibcInfo("glibc", version, source)
    return None


def _confstr(name: str) -> str | None:
    try:
        return os.confstr(name)
    except (AttributeError, ValueError, OSError):  # not glibc, or no confstr at all
        return None


def _ctypes_glibc_version() -> str | None:
    try:
        import ctypes  # noqa: PLC0415 -- only on the fallback path

        process = ctypes.CDLL(None)
        func = process.gnu_get_libc_version
    except (ImportError, OSError, AttributeError):
        return None
    func.restype = ctypes.c_char_p
    raw: Any = func()
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else None


def musl_version_from_loader(
    loader: str, timeout: float = MUSL_LOADER_TIMEOUT
) -> tuple[Version | None, str | None]:
    """Run the musl loader with no arguments and read its version (PEP 656).

    The loader prints ``musl libc (x86_64)`` / ``Version 1.2.3`` on stderr and exits 1.
    Returns (version, None) or (None, why not). Bounded by ``timeout`` seconds; stdin is
    closed and stdout discarded, so it cannot wait for input or flood us.
    """
    try:
        proc = subprocess.run(
            [loader],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"the musl loader {loader} did not answer within {timeout:g} s"
    except OSError as exc:
        return None, f"cannot run the musl loader {loader}: {exc.strerror or exc}"
    stderr = proc.stderr.decode("utf-8", "replace")
    version = _parse_musl_banner(stderr)
    if version is None:
        first = stderr.strip().splitlines()[0] if stderr.strip() else "nothing"
        return None, f"the musl loader {loader} printed {first!r}, not a musl version banner"
    return version, None


def _is_musl_loader(path: str) -> bool:
    return os.path.basename(path).startswith("ld-musl-")


def detect_libc(
    exe: ExecutableFacts,
    glibc: Callable[[], LibcInfo | None] = glibc_from_process,
    musl_version: MuslProbe = musl_version_from_loader,
) -> LibcInfo:
    """The libc of the Python whose ELF facts are ``exe``.

    glibc answers in-process first; otherwise a ``ld-musl-*`` PT_INTERP is run for its
    version (PEP 656 suggests PT_INTERP or ``ldd``; we use PT_INTERP). A statically
    linked or foreign interpreter is ``unknown`` (PEP 656: static interpreters "should
    not claim compatibility with musllinux platform tags").
    """
    found = glibc()
    if found is not None:
        return found
    if exe.interpreter is None:
        return LibcInfo(
            "unknown",
            None,
            f"no PT_INTERP in {exe.path or '<unknown>'}",
            exe.problem or "the interpreter is statically linked: no libc loader to ask",
        )
    if _is_musl_loader(exe.interpreter):
        version, problem = musl_version(exe.interpreter)
        return LibcInfo("musl", version, f"musl loader {exe.interpreter}", problem)
    return LibcInfo(
        "unknown",
        None,
        f"PT_INTERP {exe.interpreter} of {exe.path}",
        "not glibc (no CS_GNU_LIBC_VERSION, no gnu_get_libc_version) and not a musl loader",
    )


def detect_arch(exe: ExecutableFacts, machine: str, *, maxsize: int = sys.maxsize) -> ArchInfo:
    """The arch from the interpreter's ELF header, ``uname -m`` only as the fallback.

    The binary's class decides: an i686 interpreter on an x86_64 kernel loads only i686
    extensions. Without a readable header, a 32-bit interpreter (``sys.maxsize``) on a
    64-bit kernel is mapped to the 32-bit counterpart, as packaging.tags does.
    """
    machine_arch = normalize_machine(machine)
    where = exe.path or "<unknown>"
    if exe.arch is not None:
        source = f"ELF header of {where}: {exe.elf_class}-bit {exe.arch}"
        if exe.arch != machine_arch:
            source += f"; the kernel reports {machine!r}"
        return ArchInfo(exe.arch, machine, exe.elf_class, source, tag_archs(exe.arch, machine))
    if exe.elf_class is not None:  # a readable header, but no arch wheels exist for
        name = machine_arch
        if exe.elf_class == 32:
            name = _32BIT_USERLAND.get(machine_arch, machine_arch)
        problem = exe.problem or "unsupported ELF machine"
        source = f"uname -m {machine!r} and the {exe.elf_class}-bit ELF header of {where}"
        return ArchInfo(name, machine, exe.elf_class, source, (name,), problem)
    name = machine_arch
    if maxsize <= 2**32:
        name = _32BIT_USERLAND.get(machine_arch, machine_arch)
    source = f"uname -m {machine!r}" + (" with a 32-bit Python" if name != machine_arch else "")
    if exe.problem:
        source += f" (ELF header unreadable: {exe.problem})"
    return ArchInfo(name, machine, None, source, tag_archs(name, machine))


def load_manylinux_override(name: str = "_manylinux") -> object | None:
    """Import the override module of PEP 513/600 the way an installer would, or None.

    Importing runs its code: an exception other than ImportError is reported as one line
    (:class:`EnvironmentProblem`), since the installer would fail on it too.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
    except Exception as exc:
        raise EnvironmentProblem(
            f"importing the {name} override module (PEP 600) failed: "
            f"{type(exc).__name__}: {exc}; fix or remove that module"
        ) from exc


def probe_host(executable: str | None = None, machine: str | None = None) -> HostReport:
    """Gather this machine's facts and build the report (the ``platform`` command).

    Defaults: ``sys.executable`` and ``platform.machine()``. Raises
    :class:`EnvironmentProblem` only for a broken ``_manylinux`` override module.
    """
    exe = read_executable(sys.executable if executable is None else executable)
    python = PythonInfo(
        executable=exe.path,
        implementation=sys.implementation.name,
        version=platform.python_version(),
        interpreter=exe.interpreter,
    )
    arch = detect_arch(exe, platform.machine() if machine is None else machine)
    libc = detect_libc(exe)
    override = load_manylinux_override() if libc.family == "glibc" else None
    return build_report(python, arch, libc, override)


# ---------------------------------------------------------------------------
# Rendering


def _libc_line(libc: LibcInfo) -> str:
    version = libc.version_text or "version unknown"
    text = f"{libc.family} {version}" if libc.family != "unknown" else "unknown"
    text += f", from {libc.source}"
    if libc.problem:
        text += f"; {libc.problem}"
    return text


def render_report(report: HostReport) -> str:
    """Plain text: libc, arch, python, the override, then every accepted tag."""
    arch = report.arch
    arch_line = arch.name
    if arch.tag_archs != (arch.name,):
        arch_line += f" (tags for {', '.join(arch.tag_archs)})"
    arch_line += f", from {arch.source}"
    if arch.problem:
        arch_line += f"; no manylinux tags: {arch.problem}"
    py = report.python
    lines = [
        f"libc:      {_libc_line(report.libc)}",
        f"arch:      {arch_line}",
        f"python:    {py.implementation} {py.version} at {py.executable or '<unknown>'}"
        + (f", loader {py.interpreter}" if py.interpreter else ""),
    ]
    if report.override_module is None:
        lines.append("override:  none (no importable _manylinux module)")
    else:
        defined = ", ".join(report.override_attributes) or "no override attribute"
        lines.append(f"override:  _manylinux at {report.override_module} defines {defined}")
        legacy = [a for a in report.override_attributes if a != "manylinux_compatible"]
        if legacy and "manylinux_compatible" in report.override_attributes:
            lines.append(
                f"           {', '.join(legacy)} ignored: manylinux_compatible takes "
                "precedence (PEP 600)"
            )
        for note in report.overrides:
            verdict = "accepted" if note.accepted else "removed"
            lines.append(
                f"           {verdict} {', '.join(note.tags)}: "
                f"_manylinux.{note.asked} gave {note.returned}"
            )
    lines.append(f"accepts {len(report.tags)} platform tags, most specific first:")
    lines.extend(f"  {tag}" for tag in report.tags)
    return "\n".join(lines) + "\n"


def report_to_json(report: HostReport) -> dict[str, Any]:
    """The report as JSON data matching schemas/platform.schema.json (version 1)."""
    return {
        "schema_version": HOST_SCHEMA_VERSION,
        "libc": {
            "family": report.libc.family,
            "version": report.libc.version_text,
            "source": report.libc.source,
            "problem": report.libc.problem,
        },
        "arch": {
            "name": report.arch.name,
            "machine": report.arch.machine,
            "elf_class": report.arch.elf_class,
            "tag_archs": list(report.arch.tag_archs),
            "source": report.arch.source,
            "problem": report.arch.problem,
        },
        "python": {
            "executable": report.python.executable,
            "implementation": report.python.implementation,
            "version": report.python.version,
            "interpreter": report.python.interpreter,
        },
        "override": {
            "module": report.override_module,
            "attributes": list(report.override_attributes),
            "notes": [
                {
                    "tags": list(note.tags),
                    "asked": note.asked,
                    "returned": note.returned,
                    "accepted": note.accepted,
                }
                for note in report.overrides
            ],
        },
        "tags": list(report.tags),
    }
