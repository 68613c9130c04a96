"""Build the ELF test fixtures from the C sources in ``tests/csrc`` at test time.

No binary is checked in: every ELF file a test reads is compiled here, with
deterministic command lines, by one of the toolchains installed on the machine
(host gcc, the Debian cross compilers, musl-gcc). Tests that need a toolchain that is
missing skip with the reason (see ``conftest.py``).

The two primitives, :func:`compile_shared` and :func:`compile_exe`, are general enough
for later tests that build wheels; :func:`build_fixture_set` composes them into the
standard set of files the ELF reader and the loader model are tested against.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CSRC = Path(__file__).resolve().parent / "csrc"

#: Flags shared by every compile: no debug info (no build paths in the output), fixed
#: optimisation, warnings as errors so a broken source is noticed, C locale messages.
COMMON_CFLAGS: tuple[str, ...] = ("-O2", "-g0", "-std=gnu11", "-Wall", "-Werror")


class FixtureBuildError(RuntimeError):
    """A compile or link step failed; the message holds the command and its output."""


@dataclass(frozen=True)
class Toolchain:
    """One C toolchain able to produce ELF files for one target.

    ``arch`` is the manywheel architecture name the produced files must be read as;
    ``libdir`` is where that target's libc lives (the sysroot library directory).
    """

    name: str
    cc: str
    triplet: str
    arch: str
    kind: Literal["glibc", "musl"]
    libdir: Path
    strip: str

    @property
    def missing(self) -> str | None:
        """Why this toolchain cannot be used here, or None when it can."""
        for tool in (self.cc, self.strip):
            if shutil.which(tool) is None:
                return f"{tool} not found on PATH (toolchain {self.name})"
        return None

    @property
    def is_native(self) -> bool:
        return self.name == "native"

    @property
    def ext_suffix(self) -> str:
        """The CPython extension suffix a module built for this target would carry."""
        if self.is_native:
            suffix = sysconfig.get_config_var("EXT_SUFFIX")
            if isinstance(suffix, str):
                return suffix
        major, minor = sys.version_info[:2]
        return f".cpython-{major}{minor}-{self.triplet}.so"


@functools.cache
def _native_triplet() -> str:
    try:
        out = subprocess.run(
            ["gcc", "-dumpmachine"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = f"{platform.machine()}-linux-gnu"
    return out


_TRIPLET_ARCH = {
    "x86_64-linux-gnu": "x86_64",
    "i686-linux-gnu": "i686",
    "aarch64-linux-gnu": "aarch64",
    "arm-linux-gnueabihf": "armv7l",
    "powerpc64le-linux-gnu": "ppc64le",
    "powerpc64-linux-gnu": "ppc64",
    "s390x-linux-gnu": "s390x",
    "riscv64-linux-gnu": "riscv64",
}


def native_toolchain() -> Toolchain:
    """The host gcc (glibc)."""
    triplet = _native_triplet()
    return Toolchain(
        name="native",
        cc="gcc",
        triplet=triplet,
        arch=_TRIPLET_ARCH.get(triplet, platform.machine()),
        kind="glibc",
        libdir=Path("/lib") / triplet,
        strip="strip",
    )


#: name -> (triplet, manywheel arch); compilers are ``<triplet>-gcc``.
CROSS_TARGETS: dict[str, tuple[str, str]] = {
    "aarch64": ("aarch64-linux-gnu", "aarch64"),
    "armhf": ("arm-linux-gnueabihf", "armv7l"),
    "ppc64el": ("powerpc64le-linux-gnu", "ppc64le"),
    "ppc64": ("powerpc64-linux-gnu", "ppc64"),
    "s390x": ("s390x-linux-gnu", "s390x"),
    "riscv64": ("riscv64-linux-gnu", "riscv64"),
}


def cross_toolchains() -> list[Toolchain]:
    """Every Debian cross toolchain we know of, installed or not (see ``missing``)."""
    return [
        Toolchain(
            name=name,
            cc=f"{triplet}-gcc",
            triplet=triplet,
            arch=arch,
            kind="glibc",
            libdir=Path("/usr") / triplet / "lib",
            strip=f"{triplet}-strip",
        )
        for name, (triplet, arch) in CROSS_TARGETS.items()
    ]


def musl_toolchain() -> Toolchain:
    """musl-gcc (a wrapper around the host gcc with musl's specs file)."""
    return Toolchain(
        name="musl",
        cc="musl-gcc",
        triplet="x86_64-linux-musl",
        arch="x86_64",
        kind="musl",
        libdir=Path("/usr/lib/x86_64-linux-musl"),
        strip="strip",
    )


def all_toolchains() -> list[Toolchain]:
    return [native_toolchain(), *cross_toolchains(), musl_toolchain()]


def find_toolchain(name: str) -> Toolchain:
    for toolchain in all_toolchains():
        if toolchain.name == name:
            return toolchain
    raise KeyError(name)


# --------------------------------------------------------------------------- compiling


def run_tool(cmd: Sequence[str | os.PathLike[str]]) -> None:
    """Run one build command; raise :class:`FixtureBuildError` with its output if it fails."""
    argv = [os.fspath(part) for part in cmd]
    env = {**os.environ, "LC_ALL": "C"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise FixtureBuildError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout}{proc.stderr}"
        )


def _link_args(needed_libs: Sequence[Path], rpath: str | None, new_dtags: bool | None) -> list[str]:
    args: list[str] = []
    for lib in needed_libs:
        # -l:<file name> makes DT_NEEDED the library's SONAME (or its file name) rather
        # than the build path; -rpath-link lets ld follow that library's own needs.
        args += [f"-L{lib.parent}", f"-l:{lib.name}", f"-Wl,-rpath-link,{lib.parent}"]
    if rpath is not None:
        args.append(f"-Wl,-rpath,{rpath}")
    if new_dtags is not None:
        args.append("-Wl,--enable-new-dtags" if new_dtags else "-Wl,--disable-new-dtags")
    return args


def _sources(sources: Sequence[str | Path]) -> list[Path]:
    # Bare names refer to tests/csrc.
    return [Path(s) if Path(s).is_absolute() else CSRC / s for s in sources]


def compile_shared(
    toolchain: Toolchain,
    sources: Sequence[str | Path],
    out: Path,
    *,
    soname: str | None = None,
    needed_libs: Sequence[Path] = (),
    rpath: str | None = None,
    new_dtags: bool | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Compile and link a shared library ``out`` from ``sources`` (names in csrc or paths).

    ``needed_libs`` become DT_NEEDED entries (by SONAME); ``rpath`` is stored verbatim
    (``$ORIGIN`` is not expanded by the shell: no shell is involved); ``new_dtags``
    chooses DT_RUNPATH (True) or DT_RPATH (False), None leaves the linker default.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd: list[str | os.PathLike[str]] = [toolchain.cc, *COMMON_CFLAGS, "-fPIC", "-shared"]
    cmd += _sources(sources)
    if soname is not None:
        cmd.append(f"-Wl,-soname,{soname}")
    cmd += _link_args(needed_libs, rpath, new_dtags)
    cmd += [*extra, "-o", out]
    run_tool(cmd)
    return out


def compile_exe(
    toolchain: Toolchain,
    sources: Sequence[str | Path],
    out: Path,
    *,
    needed_libs: Sequence[Path] = (),
    rpath: str | None = None,
    new_dtags: bool | None = None,
    pie: bool = True,
    static: bool = False,
    extra: Sequence[str] = (),
) -> Path:
    """Compile and link an executable ``out`` (PIE by default; ``static`` links libc in)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd: list[str | os.PathLike[str]] = [toolchain.cc, *COMMON_CFLAGS]
    if static:
        cmd.append("-static")
    else:
        cmd.append("-pie" if pie else "-no-pie")
    cmd.append("-fPIE" if pie else "-fno-pie")
    cmd += _sources(sources)
    cmd += _link_args(needed_libs, rpath, new_dtags)
    cmd += [*extra, "-o", out]
    run_tool(cmd)
    return out


def strip_copy(toolchain: Toolchain, src: Path, out: Path) -> Path:
    """``strip --strip-all`` ``src`` into ``out`` with the target's own strip."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([toolchain.strip, "--strip-all", "-o", out, src])
    return out


def drop_section_headers(src: Path, out: Path) -> Path:
    """Copy ``src`` with e_shoff, e_shnum and e_shstrndx zeroed (class- and endian-aware).

    The result still loads (the loader only uses program headers), but tools that rely
    on section headers (pyelftools' symbol tables, readelf -s) no longer see any.
    """
    data = bytearray(src.read_bytes())
    if data[:4] != b"\x7fELF":
        raise FixtureBuildError(f"{src} is not ELF")
    elf_class, elf_data = data[4], data[5]
    order: Literal["little", "big"] = "little" if elf_data == 1 else "big"
    if elf_class == 1:  # ELFCLASS32
        shoff, shoff_size, shnum, shstrndx = 0x20, 4, 0x30, 0x32
    elif elf_class == 2:  # ELFCLASS64
        shoff, shoff_size, shnum, shstrndx = 0x28, 8, 0x3C, 0x3E
    else:
        raise FixtureBuildError(f"{src}: unknown ELF class {elf_class}")
    data[shoff : shoff + shoff_size] = (0).to_bytes(shoff_size, order)
    data[shnum : shnum + 2] = (0).to_bytes(2, order)
    data[shstrndx : shstrndx + 2] = (0).to_bytes(2, order)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    return out


def _python_include_flags() -> list[str]:
    include = sysconfig.get_paths()["include"]
    return [f"-I{include}"]


# --------------------------------------------------------------------------- fixture set


@dataclass(frozen=True)
class FixtureSet:
    """The standard ELF fixtures of one toolchain, laid out as::

        root/chain/   libgamma.so.1 <- libbeta.so.1 <- libalpha.so.1 (DT_NEEDED chain)
        root/lib/     libversioned.so.1, libuseversioned.so, libweak.so, libisa.so,
                      rpath_user.so, runpath_user.so ($ORIGIN/../chain)
        root/bin/     hello (PIE), hello-nopie (DT_RPATH $ORIGIN/../chain), static_hello
        root/ext/     _demo<EXT_SUFFIX> (DT_RPATH $ORIGIN/../chain)
        root/mangled/ libversioned-stripped.so.1, libalpha-noshdr.so.1,
                      libversioned-noshdr.so.1, hello-nopie-noshdr

    Optional fixtures are None when the toolchain cannot build them; the reason is
    in ``problems``.
    """

    toolchain: Toolchain
    root: Path
    chain_dir: Path
    libgamma: Path
    libbeta: Path
    libalpha: Path
    libversioned: Path  # defines VERS_1.0, VERS_2.0 (inherits 1.0); vers_func in both
    libuseversioned: Path  # needs VERS_2.0 (and VERS_1.0 via vers_other) of libversioned
    libweak: Path  # weak undefined maybe_there
    rpath_user: Path  # DT_RPATH $ORIGIN/../chain, needs libalpha.so.1
    runpath_user: Path  # DT_RUNPATH $ORIGIN/../chain, needs libalpha.so.1
    hello_pie: Path  # PIE executable, needs libalpha.so.1, DT_RPATH $ORIGIN/../chain
    hello_nopie: Path  # non-PIE (ET_EXEC) executable, same links
    ext: Path  # _demo<suffix>, exports PyInit__demo, needs libalpha.so.1, DT_RPATH
    ext_is_real: bool  # built against Python.h (importable on this host)
    stripped: Path  # strip --strip-all copy of libversioned
    noshdr: Path  # libalpha with the section header table unlinked from the header
    noshdr_versioned: Path  # libversioned, same treatment
    noshdr_exe: Path  # hello-nopie, same treatment (its GNU hash table hashes no symbol)
    libisa: Path | None  # x86_64 only: -z x86-64-v3
    static_exe: Path | None  # -static, when the toolchain can
    problems: dict[str, str] = dataclasses.field(default_factory=dict)

    def elf_files(self) -> dict[str, Path]:
        """Every ELF fixture that was built, by field name, in declaration order."""
        return dict(self._iter_elf())

    def _iter_elf(self) -> Iterator[tuple[str, Path]]:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Path) and field.name not in {"root", "chain_dir"}:
                yield field.name, value


#: the field names of every ELF file a FixtureSet may hold (for static parametrization)
ELF_FIXTURE_NAMES: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(FixtureSet)
    if f.name not in {"toolchain", "root", "chain_dir", "ext_is_real", "problems"}
)


#: each mangled copy -> the field name of the file it was made from
MANGLED_ORIGINALS: dict[str, str] = {
    "stripped": "libversioned",
    "noshdr": "libalpha",
    "noshdr_versioned": "libversioned",
    "noshdr_exe": "hello_nopie",
}


#: what the ``fixture_builder`` pytest fixture returns: toolchain -> its (cached) set
FixtureBuilder = Callable[[Toolchain], FixtureSet]


def compile_chain(tc: Toolchain, directory: Path) -> tuple[Path, Path, Path]:
    """libalpha.so.1 -> libbeta.so.1 -> libgamma.so.1 (DT_NEEDED by SONAME, no search
    path of their own) into ``directory``; returns (alpha, beta, gamma)."""
    gamma = compile_shared(tc, ["gamma.c"], directory / "libgamma.so.1", soname="libgamma.so.1")
    beta = compile_shared(
        tc, ["beta.c"], directory / "libbeta.so.1", soname="libbeta.so.1", needed_libs=[gamma]
    )
    alpha = compile_shared(
        tc, ["alpha.c"], directory / "libalpha.so.1", soname="libalpha.so.1", needed_libs=[beta]
    )
    return alpha, beta, gamma


def build_fixture_set(toolchain: Toolchain, outdir: Path) -> FixtureSet:
    """Compile the whole fixture set of ``toolchain`` into ``outdir`` (a few seconds)."""
    missing = toolchain.missing
    if missing is not None:
        raise FixtureBuildError(missing)
    tc = toolchain
    chain = outdir / "chain"
    lib = outdir / "lib"
    bin_ = outdir / "bin"
    problems: dict[str, str] = {}
    origin_chain = "$ORIGIN/../chain"

    alpha, beta, gamma = compile_chain(tc, chain)

    versioned = compile_shared(
        tc,
        ["versioned.c"],
        lib / "libversioned.so.1",
        soname="libversioned.so.1",
        extra=[f"-Wl,--version-script={CSRC / 'versioned.map'}"],
    )
    useversioned = compile_shared(
        tc, ["useversioned.c"], lib / "libuseversioned.so", needed_libs=[versioned]
    )
    weak = compile_shared(tc, ["weak.c"], lib / "libweak.so")
    rpath_user = compile_shared(
        tc,
        ["rpathuser.c"],
        lib / "rpath_user.so",
        needed_libs=[alpha],
        rpath=origin_chain,
        new_dtags=False,
    )
    runpath_user = compile_shared(
        tc,
        ["rpathuser.c"],
        lib / "runpath_user.so",
        needed_libs=[alpha],
        rpath=origin_chain,
        new_dtags=True,
    )
    # The executables and the extension use DT_RPATH: glibc applies an object's RUNPATH
    # only to its own DT_NEEDED, so with RUNPATH libalpha would be found but not libbeta
    # (the chain libraries carry no path of their own); runpath_user is that case.
    hello_pie = compile_exe(
        tc, ["hello.c"], bin_ / "hello", needed_libs=[alpha], rpath=origin_chain, new_dtags=False
    )
    hello_nopie = compile_exe(
        tc,
        ["hello.c"],
        bin_ / "hello-nopie",
        needed_libs=[alpha],
        rpath=origin_chain,
        new_dtags=False,
        pie=False,
    )

    ext_is_real = tc.is_native
    ext_flags = _python_include_flags() if ext_is_real else ["-DMANYWHEEL_NO_PYTHON_H"]
    ext = compile_shared(
        tc,
        ["demo.c"],
        outdir / "ext" / f"_demo{tc.ext_suffix}",
        needed_libs=[alpha],
        rpath=origin_chain,
        new_dtags=False,
        extra=ext_flags,
    )

    mangled = outdir / "mangled"
    stripped = strip_copy(tc, versioned, mangled / "libversioned-stripped.so.1")
    noshdr = drop_section_headers(alpha, mangled / "libalpha-noshdr.so.1")
    noshdr_versioned = drop_section_headers(versioned, mangled / "libversioned-noshdr.so.1")
    noshdr_exe = drop_section_headers(hello_nopie, mangled / "hello-nopie-noshdr")

    libisa: Path | None = None
    if tc.arch == "x86_64":
        libisa = compile_shared(tc, ["isa.c"], lib / "libisa.so", extra=["-Wl,-z,x86-64-v3"])
    else:
        problems["libisa"] = f"x86-64 ISA levels do not apply to {tc.arch}"

    static_exe: Path | None = None
    try:
        static_exe = compile_exe(tc, ["static_hello.c"], bin_ / "static_hello", static=True)
    except FixtureBuildError as exc:
        problems["static_exe"] = f"{tc.name} cannot link -static: {exc}"

    return FixtureSet(
        toolchain=tc,
        root=outdir,
        chain_dir=chain,
        libgamma=gamma,
        libbeta=beta,
        libalpha=alpha,
        libversioned=versioned,
        libuseversioned=useversioned,
        libweak=weak,
        rpath_user=rpath_user,
        runpath_user=runpath_user,
        hello_pie=hello_pie,
        hello_nopie=hello_nopie,
        ext=ext,
        ext_is_real=ext_is_real,
        stripped=stripped,
        noshdr=noshdr,
        noshdr_versioned=noshdr_versioned,
        noshdr_exe=noshdr_exe,
        libisa=libisa,
        static_exe=static_exe,
        problems=problems,
    )
