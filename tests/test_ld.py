"""The loader model against real, gcc-built libraries, with ld.so itself as the oracle.

Each test builds its own small libraries in ``tmp_path`` (a C function per library, a
DT_NEEDED chain, RPATH or RUNPATH as the case needs), resolves the tree with
:func:`manywheel.ld.resolve_tree`, and where the host can run the result compares with
``ld.so --list``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from manywheel.errors import ElfError, InputError, UsageError
from manywheel.ld import (
    HostFilesystem,
    LoaderConfig,
    Resolution,
    expand_dst,
    extra_paths_from_env,
    resolve_tree,
    split_search_path,
)

HOST_LDSO = "/lib64/ld-linux-x86-64.so.2"
MUSL_LDSO = "/lib/ld-musl-x86_64.so.1"


def need(tool: str) -> None:
    if shutil.which(tool) is None and not os.path.exists(tool):
        pytest.skip(f"{tool} not available")


def build(
    out: Path,
    *,
    soname: str | None = None,
    calls: str | None = None,
    needed: tuple[Path, ...] = (),
    rpath: str | None = None,
    new_dtags: bool = False,
    cc: str = "gcc",
    exe: bool = False,
    link_dirs: tuple[Path, ...] = (),
) -> Path:
    """Compile a one-function library (or an executable) that calls ``calls``."""
    need(cc)
    out.parent.mkdir(parents=True, exist_ok=True)
    func = re.sub(r"\W", "_", out.name.split(".")[0])
    body = f"int {calls}(void); " if calls else ""
    if exe:
        body += f"int main(void) {{ return {calls + '()' if calls else '0'}; }}\n"
    else:
        body += f"int {func}(void) {{ return {calls + '()' if calls else '1'}; }}\n"
    src = out.with_name(out.name + ".c")
    src.write_text(body)
    cmd = [cc, "-O1", "-o", str(out), str(src), "-Wl,--no-as-needed"]
    cmd += [f"-Wl,-rpath-link,{d}" for d in link_dirs]
    if not exe:
        cmd[1:1] = ["-shared", "-fPIC"]
        if soname:
            cmd.append(f"-Wl,-soname,{soname}")
    for lib in needed:
        cmd += [f"-L{lib.parent}", f"-l:{lib.name}", f"-Wl,-rpath-link,{lib.parent}"]
    if rpath is not None:
        cmd.append(f"-Wl,-rpath,{rpath}")
    cmd.append("-Wl,--enable-new-dtags" if new_dtags else "-Wl,--disable-new-dtags")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def ldso_list(exe: Path, ldso: str = HOST_LDSO) -> dict[str, str | None]:
    """``ldd`` (or musl's ``ld.so --list``): DT_NEEDED name -> path (None: not found)."""
    # glibc: run the program itself in trace mode (what ldd does), so that its
    # $ORIGIN comes from /proc/self/exe as in a real start.
    argv = [str(exe)] if ldso == HOST_LDSO else [ldso, "--list", str(exe)]
    env = {**os.environ, "LD_TRACE_LOADED_OBJECTS": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    result: dict[str, str | None] = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        match = re.match(r"\s+(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$", line)
        if match:
            target = match.group(2)
            result[match.group(1)] = None if target == "not found" else target
    return result


def nodes(tree_deps: tuple[Resolution, ...]) -> dict[str, Resolution]:
    """The first node per name in depth-first order, preferring loading nodes."""
    found: dict[str, Resolution] = {}
    stack = list(reversed(tree_deps))
    while stack:
        node = stack.pop()
        if node.name not in found or (
            found[node.name].status != "found" and node.status == "found"
        ):
            found[node.name] = node
        stack.extend(reversed(node.children))
    return found


def chain(tmp_path: Path, *, new_dtags: bool) -> tuple[Path, Path, Path, Path]:
    """exe -> libalpha (dir a) -> libbeta (dir b) -> libgamma (dir c).

    exe's rpath/runpath is "a:c"; libalpha's is "b"; libbeta has none, so libgamma is
    reachable only through exe's entry -- inherited for RPATH, not for RUNPATH.
    """
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gamma = build(c / "libgamma.so.1", soname="libgamma.so.1")
    beta = build(b / "libbeta.so.1", soname="libbeta.so.1", calls="libgamma", needed=(gamma,))
    alpha = build(
        a / "libalpha.so.1",
        soname="libalpha.so.1",
        calls="libbeta",
        needed=(beta,),
        rpath=str(b),
        new_dtags=new_dtags,
    )
    exe = build(
        tmp_path / "app" / "main",
        calls="libalpha",
        needed=(alpha,),
        rpath=f"{a}:{c}",
        new_dtags=new_dtags,
        exe=True,
    )
    return exe, alpha, beta, gamma


# --------------------------------------------------------------------------- glibc rules


def test_rpath_found_directly_and_inherited(tmp_path: Path) -> None:
    exe, alpha, beta, gamma = chain(tmp_path, new_dtags=False)
    tree = resolve_tree(exe)
    by_name = nodes(tree.dependencies)

    assert by_name["libalpha.so.1"].path == str(alpha)
    assert by_name["libalpha.so.1"].rule is not None
    assert by_name["libalpha.so.1"].rule.kind == "rpath"
    assert by_name["libalpha.so.1"].rule.owner == str(exe)
    assert not by_name["libalpha.so.1"].rule.inherited

    beta_node = by_name["libbeta.so.1"]
    assert beta_node.path == str(beta)
    assert beta_node.rule is not None and beta_node.rule.kind == "rpath"
    assert beta_node.rule.owner == str(alpha) and not beta_node.rule.inherited

    gamma_node = by_name["libgamma.so.1"]
    assert gamma_node.status == "found"
    assert gamma_node.path == str(gamma)
    assert gamma_node.rule is not None and gamma_node.rule.kind == "rpath"
    assert gamma_node.rule.owner == str(exe) and gamma_node.rule.inherited
    assert gamma_node.rule.describe() == "rpath of main, inherited"
    # Searched in order: libalpha's rpath (b), then exe's (a, then c).
    assert [a.path for a in gamma_node.tried] == [
        str(tmp_path / "b" / "libgamma.so.1"),
        str(tmp_path / "a" / "libgamma.so.1"),
    ]
    assert {a.result for a in gamma_node.tried} == {"missing"}

    oracle = ldso_list(exe)
    for name in ("libalpha.so.1", "libbeta.so.1", "libgamma.so.1", "libc.so.6"):
        assert by_name[name].path == oracle[name], name


def test_runpath_is_not_inherited(tmp_path: Path) -> None:
    exe, _alpha, beta, gamma = chain(tmp_path, new_dtags=True)
    tree = resolve_tree(exe)
    by_name = nodes(tree.dependencies)

    assert by_name["libalpha.so.1"].rule is not None
    assert by_name["libalpha.so.1"].rule.kind == "runpath"
    assert by_name["libbeta.so.1"].path == str(beta)
    assert by_name["libbeta.so.1"].rule is not None
    assert by_name["libbeta.so.1"].rule.describe() == "runpath of libalpha.so.1"

    gamma_node = by_name["libgamma.so.1"]
    assert gamma_node.status == "not-found"
    tried = [a.path for a in gamma_node.tried]
    assert str(gamma) not in tried  # exe's RUNPATH does not apply to libbeta's needs
    assert "/etc/ld.so.cache" in tried
    cache_attempt = next(a for a in gamma_node.tried if a.rule.kind == "ld.so.cache")
    assert cache_attempt.result == "no-cache-entry"
    assert tried[-6:] == [
        "/lib64/libgamma.so.1",
        "/usr/lib64/libgamma.so.1",
        "/lib/x86_64-linux-gnu/libgamma.so.1",
        "/usr/lib/x86_64-linux-gnu/libgamma.so.1",
        "/lib/libgamma.so.1",
        "/usr/lib/libgamma.so.1",
    ]
    assert tree.unresolved == (gamma_node,)

    oracle = ldso_list(exe)
    assert oracle["libgamma.so.1"] is None
    assert oracle["libbeta.so.1"] == str(beta)


def test_runpath_disables_rpath_of_same_object(tmp_path: Path) -> None:
    lib = build(tmp_path / "a" / "libx.so", soname="libx.so")
    exe = build(
        tmp_path / "main",
        calls="libx",
        needed=(lib,),
        rpath=str(lib.parent),
        exe=True,
        new_dtags=True,
    )
    tree = resolve_tree(exe)
    assert tree.root.runpath == str(lib.parent)
    node = nodes(tree.dependencies)["libx.so"]
    assert node.rule is not None and node.rule.kind == "runpath"


def test_origin_expansion_and_symlinks(tmp_path: Path) -> None:
    # exe's RPATH is $ORIGIN/../lib; exe is reached through a symlink elsewhere: the
    # executable's $ORIGIN is its real directory (the kernel's /proc/self/exe).
    lib = build(tmp_path / "pkg" / "lib" / "libo.so.1", soname="libo.so.1")
    exe = build(
        tmp_path / "pkg" / "bin" / "main",
        calls="libo",
        needed=(lib,),
        rpath="$ORIGIN/../lib",
        exe=True,
    )
    link = tmp_path / "elsewhere" / "main"
    link.parent.mkdir()
    link.symlink_to(exe)
    for root in (exe, link):
        node = nodes(resolve_tree(root).dependencies)["libo.so.1"]
        assert node.status == "found"
        assert node.path == f"{tmp_path}/pkg/bin/../lib/libo.so.1"
        assert node.realpath == str(lib)
        assert node.rule is not None and node.rule.entry == "$ORIGIN/../lib"
        assert ldso_list(root)["libo.so.1"] == node.path


def test_library_origin_is_not_symlink_resolved(tmp_path: Path) -> None:
    # liba lives in y/ and is reached through the symlink x/liba.so; its RPATH $ORIGIN
    # means x/ (glibc does not resolve the library's path), where libb is absent.
    libb = build(tmp_path / "y" / "libb.so", soname="libb.so")
    liba = build(
        tmp_path / "y" / "liba.so", soname="liba.so", calls="libb", needed=(libb,), rpath="$ORIGIN"
    )
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "liba.so").symlink_to(liba)
    exe = build(
        tmp_path / "main",
        calls="liba",
        needed=(tmp_path / "x" / "liba.so",),
        rpath=str(tmp_path / "x"),
        exe=True,
        link_dirs=(tmp_path / "y",),
    )
    by_name = nodes(resolve_tree(exe).dependencies)
    assert by_name["liba.so"].path == str(tmp_path / "x" / "liba.so")
    assert by_name["liba.so"].realpath == str(liba)
    assert by_name["libb.so"].status == "not-found"
    assert by_name["libb.so"].tried[0].path == str(tmp_path / "x" / "libb.so")
    assert ldso_list(exe)["libb.so"] is None


def test_expand_dst_tokens() -> None:
    assert expand_dst("$ORIGIN/../lib", "/o", "x86_64", "lib64") == "/o/../lib"
    assert expand_dst("${ORIGIN}/$LIB/$PLATFORM", "/o", "x86_64", "lib64") == "/o/lib64/x86_64"
    assert expand_dst("$ORIGINAL/x", "/o", "p", "l") == "$ORIGINAL/x"  # not a token
    assert expand_dst("$FOO/x", "/o", "p", "l") == "$FOO/x"  # unknown: kept
    assert expand_dst("/a/$PLATFORM", "/o", None, "l") is None  # no value: dropped


def test_platform_and_lib_tokens(tmp_path: Path) -> None:
    lib = build(tmp_path / "lib64" / "x86_64" / "libp.so", soname="libp.so")
    exe = build(
        tmp_path / "main",
        calls="libp",
        needed=(lib,),
        rpath=f"{tmp_path}/$LIB/$PLATFORM",
        exe=True,
    )
    node = nodes(resolve_tree(exe).dependencies)["libp.so"]
    assert node.status == "found" and node.path == str(lib)
    # Debian's ld.so expands $LIB to lib/x86_64-linux-gnu: the config can say so.
    debian = LoaderConfig(lib="lib/x86_64-linux-gnu")
    node = nodes(resolve_tree(exe, debian).dependencies)["libp.so"]
    assert node.status == "not-found"
    assert node.tried[0].path == f"{tmp_path}/lib/x86_64-linux-gnu/x86_64/libp.so"


def test_ldpaths_replace_system_search(tmp_path: Path) -> None:
    lib = build(tmp_path / "only" / "libonly.so.2", soname="libonly.so.2")
    exe = build(tmp_path / "main", calls="libonly", needed=(lib,), exe=True)

    default = nodes(resolve_tree(exe).dependencies)
    assert default["libonly.so.2"].status == "not-found"
    assert default["libc.so.6"].rule is not None
    assert default["libc.so.6"].rule.kind == "ld.so.cache"

    config = LoaderConfig(ldpaths=(str(lib.parent), "/lib/x86_64-linux-gnu"))
    tree = resolve_tree(exe, config)
    by_name = nodes(tree.dependencies)
    assert by_name["libonly.so.2"].path == str(lib)
    assert by_name["libonly.so.2"].rule is not None
    assert by_name["libonly.so.2"].rule.kind == "ldpaths"
    assert by_name["libc.so.6"].path == "/lib/x86_64-linux-gnu/libc.so.6"
    assert by_name["libc.so.6"].rule is not None and by_name["libc.so.6"].rule.kind == "ldpaths"
    assert by_name["libc.so.6"].tried[0].path == f"{lib.parent}/libc.so.6"
    assert tree.setup.cache_status == "not used"


def test_extra_paths_from_env() -> None:
    assert extra_paths_from_env({}) == ()
    assert extra_paths_from_env({"AUDITWHEEL_LD_LIBRARY_PATH": "/a::/b"}) == ("/a", "/b")
    both = {"AUDITWHEEL_LD_LIBRARY_PATH": "/a", "MANYWHEEL_LD_LIBRARY_PATH": "/m;/n"}
    assert extra_paths_from_env(both) == ("/m", "/n")
    assert extra_paths_from_env({"MANYWHEEL_LD_LIBRARY_PATH": "", **both}) == ("/m", "/n")
    assert extra_paths_from_env({"MANYWHEEL_LD_LIBRARY_PATH": ""}) == ()
    assert split_search_path("a:b;;c") == ("a", "b", "c")


def test_extra_paths_searched_after_library_path(tmp_path: Path) -> None:
    first = build(tmp_path / "first" / "libdup.so.1", soname="libdup.so.1")
    second = build(tmp_path / "second" / "libdup.so.1", soname="libdup.so.1")
    exe = build(tmp_path / "main", calls="libdup", needed=(first,), exe=True)

    env = {"AUDITWHEEL_LD_LIBRARY_PATH": f"{tmp_path}/nowhere:{second.parent}"}
    config = LoaderConfig(extra_paths=extra_paths_from_env(env))
    node = nodes(resolve_tree(exe, config).dependencies)["libdup.so.1"]
    assert node.path == str(second)
    assert node.rule is not None and node.rule.kind == "extra-paths"
    assert [a.path for a in node.tried] == [f"{tmp_path}/nowhere/libdup.so.1"]

    both = LoaderConfig(library_path=(str(first.parent),), extra_paths=(str(second.parent),))
    node = nodes(resolve_tree(exe, both).dependencies)["libdup.so.1"]
    assert node.path == str(first)
    assert node.rule is not None and node.rule.kind == "ld-library-path"


def test_python3_matches_ldd() -> None:
    python = os.path.realpath(shutil.which("python3") or "/usr/bin/python3")
    tree = resolve_tree(python)
    proc = subprocess.run(["ldd", python], capture_output=True, text=True, check=True)
    oracle = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"\s+(\S+) => (\S+) \(0x", line)
        if match:
            oracle[match.group(1)] = match.group(2)
    by_name = nodes(tree.dependencies)
    assert "libc.so.6" in oracle
    for name, path in oracle.items():
        assert by_name[name].resolved, name
        assert by_name[name].path == path, name
    assert by_name["libc.so.6"].rule is not None
    assert by_name["libc.so.6"].rule.kind == "ld.so.cache"
    assert tree.interpreter is not None and tree.interpreter.status == "found"
    assert tree.unresolved == ()


# --------------------------------------------------------------------------- skipping


def test_wrong_machine_and_class_skipped(tmp_path: Path) -> None:
    need("aarch64-linux-gnu-gcc")
    need("arm-linux-gnueabihf-gcc")
    arm64 = build(
        tmp_path / "arm64" / "libdup.so.1", soname="libdup.so.1", cc="aarch64-linux-gnu-gcc"
    )
    arm32 = build(
        tmp_path / "arm32" / "libdup.so.1", soname="libdup.so.1", cc="arm-linux-gnueabihf-gcc"
    )
    good = build(tmp_path / "good" / "libdup.so.1", soname="libdup.so.1")
    exe = build(
        tmp_path / "main",
        calls="libdup",
        needed=(good,),
        rpath=f"{arm64.parent}:{arm32.parent}:{good.parent}",
        exe=True,
    )
    node = nodes(resolve_tree(exe).dependencies)["libdup.so.1"]
    assert node.status == "found" and node.path == str(good)
    assert [(a.path, a.result) for a in node.tried] == [
        (str(arm64), "wrong-machine"),
        (str(arm32), "wrong-class"),
    ]
    assert "AArch64" in node.tried[0].detail and "32-bit" in node.tried[1].detail
    assert ldso_list(exe)["libdup.so.1"] == str(good)


def test_non_elf_candidate_stops_the_loader(tmp_path: Path) -> None:
    good = build(tmp_path / "good" / "libtxt.so", soname="libtxt.so")
    bad = tmp_path / "bad" / "libtxt.so"
    bad.parent.mkdir()
    # A linker script, as libc.so is one.
    bad.write_text("/* GNU ld script */\nGROUP ( /lib/libtxt.so /usr/lib/libtxt_nonshared.a )\n")
    exe = build(
        tmp_path / "main",
        calls="libtxt",
        needed=(good,),
        rpath=f"{bad.parent}:{good.parent}",
        exe=True,
    )
    tree = resolve_tree(exe)
    node = nodes(tree.dependencies)["libtxt.so"]
    assert node.status == "error"
    assert node.tried[-1].path == str(bad) and node.tried[-1].result == "invalid-elf"
    assert node.error is not None and str(bad) in node.error
    assert node in tree.unresolved
    proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "invalid ELF header" in proc.stderr


# --------------------------------------------------------------------------- load order


def test_already_loaded_is_reused_and_own_search_reported(tmp_path: Path) -> None:
    # exe needs libshared (via its rpath) and libuser; libuser needs libshared too but
    # has its own rpath pointing at another copy: ld.so reuses the loaded one.
    shared = build(tmp_path / "s1" / "libshared.so.1", soname="libshared.so.1")
    other = build(tmp_path / "s2" / "libshared.so.1", soname="libshared.so.1")
    user = build(
        tmp_path / "u" / "libuser.so.1",
        soname="libuser.so.1",
        calls="libshared",
        needed=(other,),
        rpath=str(other.parent),
    )
    src_needed = (shared, user)
    exe = build(
        tmp_path / "main",
        calls="libuser",
        needed=src_needed,
        rpath=f"{shared.parent}:{user.parent}",
        exe=True,
    )
    tree = resolve_tree(exe)
    user_node = next(n for n in tree.dependencies if n.name == "libuser.so.1")
    reused = next(c for c in user_node.children if c.name == "libshared.so.1")
    assert reused.status == "already-loaded"
    assert reused.path == str(shared)
    assert reused.loaded_by == str(exe)
    assert reused.own_search == str(other)
    # ld.so agrees: one libshared, the first one.
    assert ldso_list(exe)["libshared.so.1"] == str(shared)


def test_cycle_terminates(tmp_path: Path) -> None:
    # libp needs libq, libq needs libp (linked against a first build of libp).
    first_p = build(tmp_path / "l" / "libp.so", soname="libp.so")
    libq = build(
        tmp_path / "l" / "libq.so",
        soname="libq.so",
        calls="libp",
        needed=(first_p,),
        rpath="$ORIGIN",
    )
    libp = build(
        tmp_path / "l" / "libp.so", soname="libp.so", calls="libq", needed=(libq,), rpath="$ORIGIN"
    )
    tree = resolve_tree(libp)
    q = tree.dependencies[0]
    assert q.name == "libq.so" and q.status == "found"
    back = next(c for c in q.children if c.name == "libp.so")
    assert back.status == "already-loaded" and back.realpath == str(libp)


# --------------------------------------------------------------------------- sysroots


def _aarch64_root(tmp_path: Path) -> Path:
    """A root laid out like Debian's: usr/lib/aarch64-linux-gnu, lib -> /usr/lib."""
    need("aarch64-linux-gnu-gcc")
    src = Path("/usr/aarch64-linux-gnu/lib")
    root = tmp_path / "root"
    libdir = root / "usr" / "lib" / "aarch64-linux-gnu"
    libdir.mkdir(parents=True)
    for name in ("libc.so.6",):
        shutil.copy(src / name, libdir / name)
    shutil.copy(src / "ld-linux-aarch64.so.1", root / "usr" / "lib" / "ld-linux-aarch64.so.1")
    (root / "lib").symlink_to("/usr/lib")  # absolute: must stay inside the root
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc" / "ld.so.conf.d" / "aarch64-linux-gnu.conf").write_text(
        "# Multiarch support\n/lib/aarch64-linux-gnu\n/opt/alpha/  # trailing slash\n"
    )
    return root


def test_cross_aarch64_in_sysroot(tmp_path: Path) -> None:
    root = _aarch64_root(tmp_path)
    cc = "aarch64-linux-gnu-gcc"
    alpha = build(root / "opt" / "alpha" / "libalpha.so.1", soname="libalpha.so.1", cc=cc)
    exe = build(tmp_path / "out" / "main", calls="libalpha", needed=(alpha,), cc=cc, exe=True)

    tree = resolve_tree(exe, LoaderConfig(sysroot=str(root)))
    assert tree.root.arch == "aarch64"
    assert tree.setup.cache_status is not None and tree.setup.cache_status.startswith("missing")
    assert tree.setup.conf_dirs == ("/lib/aarch64-linux-gnu", "/opt/alpha")
    assert tree.setup.conf_files == ("/etc/ld.so.conf", "/etc/ld.so.conf.d/aarch64-linux-gnu.conf")
    by_name = nodes(tree.dependencies)
    assert by_name["libalpha.so.1"].path == "/opt/alpha/libalpha.so.1"
    assert by_name["libalpha.so.1"].obj is not None
    assert by_name["libalpha.so.1"].obj.host_path == str(alpha)
    libc = by_name["libc.so.6"]
    assert libc.status == "found" and libc.path == "/lib/aarch64-linux-gnu/libc.so.6"
    assert libc.rule is not None and libc.rule.kind == "ld.so.conf"
    assert libc.realpath == "/usr/lib/aarch64-linux-gnu/libc.so.6"
    assert libc.obj is not None and libc.obj.host_path == str(
        root / "usr/lib/aarch64-linux-gnu/libc.so.6"
    )
    assert tree.interpreter is not None and tree.interpreter.status == "found"
    assert tree.interpreter.realpath == "/usr/lib/ld-linux-aarch64.so.1"
    ld_node = next(c for c in libc.children if c.name == "ld-linux-aarch64.so.1")
    assert ld_node.status == "already-loaded" and ld_node.rule is not None
    assert ld_node.rule.kind == "interpreter"
    assert tree.unresolved == ()

    # The same tree without sysroot: the host's x86-64 libc is skipped (wrong machine).
    host = nodes(resolve_tree(exe, LoaderConfig(ldpaths=("/lib/x86_64-linux-gnu",))).dependencies)
    assert host["libc.so.6"].status == "not-found"
    assert host["libc.so.6"].tried[0].result == "wrong-machine"


def test_cross_aarch64_with_ldpaths(tmp_path: Path) -> None:
    need("aarch64-linux-gnu-gcc")
    exe = build(tmp_path / "main", cc="aarch64-linux-gnu-gcc", exe=True)
    config = LoaderConfig(ldpaths=("/usr/aarch64-linux-gnu/lib",))
    libc = nodes(resolve_tree(exe, config).dependencies)["libc.so.6"]
    assert libc.path == "/usr/aarch64-linux-gnu/lib/libc.so.6"
    assert libc.obj is not None and libc.obj.arch == "aarch64"


def test_sysroot_realpath_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "usr" / "lib" / "libz.so").write_text("x")
    (root / "lib").symlink_to("/usr/lib")
    (root / "up").symlink_to("../../../..")
    (root / "loop").symlink_to("loop")
    fs = HostFilesystem(str(root))
    assert fs.realpath("/lib/libz.so") == "/usr/lib/libz.so"
    assert fs.is_file("/lib/libz.so")
    assert fs.host_path("/lib/libz.so") == str(root / "usr/lib/libz.so")
    assert fs.realpath("/up/usr/lib") == "/usr/lib"
    assert fs.realpath("/../../lib") == "/usr/lib"
    assert not fs.exists("/etc/passwd")
    assert not fs.is_file("/loop")
    assert fs.glob("/lib/*.so") == ["/usr/lib/libz.so"]


# --------------------------------------------------------------------------- musl


def test_musl_rules(tmp_path: Path) -> None:
    need("musl-gcc")
    need(MUSL_LDSO)
    # musl inherits RUNPATH (it treats it like RPATH): the chain that fails for glibc
    # resolves here.
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gamma = build(c / "libgamma.so.1", soname="libgamma.so.1", cc="musl-gcc")
    beta = build(
        b / "libbeta.so.1", soname="libbeta.so.1", calls="libgamma", needed=(gamma,), cc="musl-gcc"
    )
    alpha = build(
        a / "libalpha.so.1",
        soname="libalpha.so.1",
        calls="libbeta",
        needed=(beta,),
        rpath=str(b),
        new_dtags=True,
        cc="musl-gcc",
    )
    exe = build(
        tmp_path / "main",
        calls="libalpha",
        needed=(alpha,),
        rpath=f"{a}:{c}",
        new_dtags=True,
        cc="musl-gcc",
        exe=True,
    )
    tree = resolve_tree(exe)
    assert tree.setup.libc == "musl"
    by_name = nodes(tree.dependencies)
    gamma_node = by_name["libgamma.so.1"]
    assert gamma_node.status == "found" and gamma_node.path == str(gamma)
    assert gamma_node.rule is not None and gamma_node.rule.kind == "runpath"
    assert gamma_node.rule.inherited
    libc = by_name["libc.so"]
    assert libc.status == "already-loaded" and libc.rule is not None
    assert libc.rule.kind == "musl-libc" and libc.path == MUSL_LDSO

    oracle = ldso_list(exe, MUSL_LDSO)
    assert oracle["libgamma.so.1"] == str(gamma)


def test_musl_path_file_replaces_defaults(tmp_path: Path) -> None:
    need("musl-gcc")
    root = tmp_path / "root"
    lib = build(root / "opt" / "m" / "libm1.so", soname="libm1.so", cc="musl-gcc")
    exe = build(tmp_path / "main", calls="libm1", needed=(lib,), cc="musl-gcc", exe=True)
    node = nodes(resolve_tree(exe, LoaderConfig(sysroot=str(root))).dependencies)["libm1.so"]
    assert node.status == "not-found"
    assert [a.path for a in node.tried] == [
        "/lib/libm1.so",
        "/usr/local/lib/libm1.so",
        "/usr/lib/libm1.so",
    ]
    (root / "etc").mkdir()
    (root / "etc" / "ld-musl-x86_64.path").write_text("/nowhere\n/opt/m:/usr/lib\n")
    tree = resolve_tree(exe, LoaderConfig(sysroot=str(root)))
    node = nodes(tree.dependencies)["libm1.so"]
    assert node.status == "found" and node.path == "/opt/m/libm1.so"
    assert node.rule is not None and node.rule.kind == "musl-path-file"
    assert [a.path for a in node.tried] == ["/nowhere/libm1.so"]
    assert tree.setup.musl_dirs == ("/nowhere", "/opt/m", "/usr/lib")


# --------------------------------------------------------------------------- errors


def test_root_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        resolve_tree(tmp_path / "missing.so")
    with pytest.raises(InputError, match="directory"):
        resolve_tree(tmp_path)
    text = tmp_path / "notelf.so"
    text.write_text("hello, this is not ELF at all\n")
    with pytest.raises(ElfError) as info:
        resolve_tree(text)
    assert "\n" not in str(info.value) and str(text) in str(info.value)
    with pytest.raises(UsageError):
        LoaderConfig(sysroot=str(tmp_path / "nope"))
    with pytest.raises(UsageError):
        LoaderConfig(ldpaths="/lib")  # type: ignore[arg-type]


def test_config_from_options() -> None:
    from manywheel.ld import config_from_options

    env = {"LD_LIBRARY_PATH": "/ignored", "AUDITWHEEL_LD_LIBRARY_PATH": "/x:/y"}
    config = config_from_options(ldpaths="/a::/b", environ=env)
    assert config.ldpaths == ("/a", "/b")
    assert config.extra_paths == ("/x", "/y")
    assert config.library_path == ()
    assert config_from_options().ldpaths is None
    with pytest.raises(UsageError):
        config_from_options(ldpaths=":")
