"""Loader configuration: which directories, platform and $LIB the loader model searches with.

Kept apart from the resolver so the CLI can build a config without the search machinery.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from manywheel.errors import UsageError
from manywheel.value import Value

__all__ = [
    "EXTRA_PATH_VARIABLES",
    "MUSL_DEFAULT_DIRS",
    "LoaderConfig",
    "config_from_options",
    "default_platform",
    "default_system_dirs",
    "dst_lib_for_arch",
    "extra_paths_from_env",
    "glibc_interpreter",
    "musl_ldso_arch",
    "split_search_path",
]

#: Environment variables holding extra library directories, by priority. The second
#: is the one auditwheel reads; existing build scripts set it.
EXTRA_PATH_VARIABLES = ("MANYWHEEL_LD_LIBRARY_PATH", "AUDITWHEEL_LD_LIBRARY_PATH")

# glibc's PT_INTERP per arch (used when the root has none, e.g. an extension module:
# the process that loads it was started by this interpreter).
_GLIBC_INTERPRETERS = {
    "x86_64": "/lib64/ld-linux-x86-64.so.2",
    "i686": "/lib/ld-linux.so.2",
    "aarch64": "/lib/ld-linux-aarch64.so.1",
    "armv7l": "/lib/ld-linux-armhf.so.3",
    "ppc64le": "/lib64/ld64.so.2",
    "ppc64": "/lib64/ld64.so.1",
    "s390x": "/lib/ld64.so.1",
    "riscv64": "/lib/ld-linux-riscv64-lp64d.so.1",
    "loongarch64": "/lib64/ld-linux-loongarch-lp64d.so.1",
}
# musl's LDSO_ARCH per arch: the interpreter is /lib/ld-musl-$LDSO_ARCH.so.1.
_MUSL_ARCH = {
    "x86_64": "x86_64",
    "i686": "i386",
    "aarch64": "aarch64",
    "armv7l": "armhf",
    "ppc64le": "powerpc64le",
    "ppc64": "powerpc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}
# Upstream glibc's compiled-in SYSTEM_DIRS (slibdir, libdir) per arch.
_SYSTEM_DIRS = {
    "x86_64": ("/lib64", "/usr/lib64"),
    "aarch64": ("/lib64", "/usr/lib64"),
    "ppc64le": ("/lib64", "/usr/lib64"),
    "ppc64": ("/lib64", "/usr/lib64"),
    "s390x": ("/lib64", "/usr/lib64"),
    "loongarch64": ("/lib64", "/usr/lib64"),
    "riscv64": ("/lib64/lp64d", "/usr/lib64/lp64d"),
}
# What $LIB expands to in upstream glibc (DL_DST_LIB: the last part of slibdir).
_DST_LIB = {
    "x86_64": "lib64",
    "aarch64": "lib64",
    "ppc64le": "lib64",
    "ppc64": "lib64",
    "s390x": "lib64",
    "loongarch64": "lib64",
    "riscv64": "lib64/lp64d",
}
#: musl's default search path (SYS_PATH_DFLT) when no ld-musl-ARCH.path file exists.
MUSL_DEFAULT_DIRS = ("/lib", "/usr/local/lib", "/usr/lib")


# Debian's multiarch triplets: its ld.so has /lib/<triplet> and /usr/lib/<triplet> built in.
_MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "i686": "i386-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "armv7l": "arm-linux-gnueabihf",
    "ppc64le": "powerpc64le-linux-gnu",
    "ppc64": "powerpc64-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
    "loongarch64": "loongarch64-linux-gnu",
}


def default_system_dirs(arch: str | None) -> tuple[str, ...]:
    """The default directories, last in glibc's search: every distribution's, in one list.

    Upstream glibc compiles in slibdir and libdir (``/lib64``, ``/usr/lib64`` on 64-bit
    ports; ``/lib``, ``/usr/lib`` on 32-bit ones); Debian's build has the multiarch
    directories plus ``/lib`` and ``/usr/lib``; a cross root (``/usr/<triplet>``) has
    just ``lib/``. The target's distribution is unknown, so we search the union: a
    candidate of another class or machine is skipped as ld.so skips it, so the extra
    directories cannot produce a wrong answer, only find what one of them would.
    """
    upstream = _SYSTEM_DIRS.get(arch or "", ())
    triplet = _MULTIARCH.get(arch or "")
    multiarch = (f"/lib/{triplet}", f"/usr/lib/{triplet}") if triplet else ()
    return tuple(dict.fromkeys((*upstream, *multiarch, "/lib", "/usr/lib")))


def dst_lib_for_arch(arch: str | None) -> str:
    """What upstream glibc expands ``$LIB`` to: ``lib64`` on 64-bit ports, else ``lib``."""
    return _DST_LIB.get(arch or "", "lib")


def default_platform(arch: str | None) -> str | None:
    """A stand-in for ``AT_PLATFORM``, which the kernel sets from the CPU.

    x86-64, AArch64, i686 and s390x... report the architecture name; 32-bit ARM
    reports e.g. ``v7l``. POWER reports the CPU generation (``power9``), which a
    file cannot tell: we use the arch name and let the config override it.
    """
    if arch is None:
        return None
    return {"armv7l": "v7l"}.get(arch, arch)


def glibc_interpreter(arch: str | None) -> str | None:
    """glibc's standard ``PT_INTERP`` for ``arch`` (None for an unknown arch)."""
    return _GLIBC_INTERPRETERS.get(arch or "")


def musl_ldso_arch(arch: str | None) -> str | None:
    """musl's ``LDSO_ARCH`` for ``arch``, as in ``/lib/ld-musl-$LDSO_ARCH.so.1``."""
    return _MUSL_ARCH.get(arch or "")


def split_search_path(value: str, separators: str = ":;") -> tuple[str, ...]:
    """Split a search path the way ld.so splits LD_LIBRARY_PATH (``:`` and ``;``).

    Empty entries are dropped: ld.so reads them as the working directory, which means
    nothing for a file examined outside the process that will load it.
    """
    parts = re.split("[" + re.escape(separators) + "]", value)
    return tuple(part for part in parts if part)


def extra_paths_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """The extra library directories given by the environment.

    ``MANYWHEEL_LD_LIBRARY_PATH`` when set (even empty), else
    ``AUDITWHEEL_LD_LIBRARY_PATH``; split like LD_LIBRARY_PATH. These directories are
    searched right after LD_LIBRARY_PATH.
    """
    for name in EXTRA_PATH_VARIABLES:
        if name in env:
            return split_search_path(env[name])
    return ()


def _as_tuple(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise UsageError(f"{name} must be a list of directories, not a string")
    if not isinstance(value, (list, tuple)):
        raise UsageError(f"{name} must be a list of directories")
    items = tuple(os.fspath(item) for item in value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise UsageError(f"{name} contains an empty or invalid directory")
    return items


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LoaderConfig(Value):
    """How to model the loader. Nothing is read from the environment implicitly.

    ``ldpaths`` replaces the system part of the search (ld.so.cache, ld.so.conf and the
    default directories for glibc; the ld-musl path file and defaults for musl).
    ``library_path`` plays LD_LIBRARY_PATH; ``extra_paths`` (see
    :func:`extra_paths_from_env`) is searched right after it. With ``sysroot``, every
    directory of the search, the cache and the configuration files are taken inside
    that directory.
    """

    sysroot: str | None = None
    ldpaths: tuple[str, ...] | None = None
    library_path: tuple[str, ...] = ()
    extra_paths: tuple[str, ...] = ()
    libc: Literal["auto", "glibc", "musl"] = "auto"
    #: Value of ``$PLATFORM``; None: :func:`default_platform` of the root's arch.
    platform: str | None = None
    #: Value of ``$LIB``; None: :func:`dst_lib_for_arch` of the root's arch.
    lib: str | None = None
    #: glibc's compiled-in directories; None: :func:`default_system_dirs`.
    system_dirs: tuple[str, ...] | None = None
    cache_file: str = "/etc/ld.so.cache"
    conf_file: str = "/etc/ld.so.conf"

    def __post_init__(self) -> None:
        if self.libc not in ("auto", "glibc", "musl"):
            raise UsageError(f"unknown libc {self.libc!r}: expected auto, glibc or musl")
        if self.ldpaths is not None:
            object.__setattr__(self, "ldpaths", _as_tuple(self.ldpaths, "ldpaths"))
        if self.system_dirs is not None:
            object.__setattr__(self, "system_dirs", _as_tuple(self.system_dirs, "system_dirs"))
        object.__setattr__(self, "library_path", _as_tuple(self.library_path, "library_path"))
        object.__setattr__(self, "extra_paths", _as_tuple(self.extra_paths, "extra_paths"))
        if self.sysroot is not None:
            sysroot = os.fspath(self.sysroot)
            if not os.path.isdir(sysroot):
                raise UsageError(f"sysroot {sysroot}: not a directory")
            object.__setattr__(self, "sysroot", os.path.abspath(sysroot))


def config_from_options(
    *,
    ldpaths: str | None = None,
    sysroot: str | None = None,
    environ: Mapping[str, str] | None = None,
    library_path: str | None = None,
    libc: Literal["auto", "glibc", "musl"] = "auto",
) -> LoaderConfig:
    """A config from command-line style values (the CLI's single entry point).

    ``ldpaths`` and ``library_path`` are colon-separated strings. ``environ`` is only
    consulted for the extra-path variables (:func:`extra_paths_from_env`); the process's
    own LD_LIBRARY_PATH is deliberately not used (it describes this machine's process,
    not the target's): pass ``library_path`` to model one. Raises UsageError.
    """
    ldpath_dirs: tuple[str, ...] | None = None
    if ldpaths is not None:
        ldpath_dirs = split_search_path(ldpaths, ":")
        if not ldpath_dirs:
            raise UsageError("--ldpaths: no directory given")
    return LoaderConfig(
        sysroot=sysroot,
        ldpaths=ldpath_dirs,
        library_path=split_search_path(library_path) if library_path else (),
        extra_paths=extra_paths_from_env(environ or {}),
        libc=libc,
    )
