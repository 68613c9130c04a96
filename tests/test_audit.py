"""audit_wheel on real wheels: gcc-built ELF files zipped at test time (tests/wheelbuild.py).

Each test builds the smallest wheel that forces one verdict and checks the evidence that
explains it, so a regression in the loader overlay, the graph or a policy check fails
here with the file, symbol and library named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures import (
    Toolchain,
    compile_chain,
    compile_exe,
    compile_shared,
    find_toolchain,
    native_toolchain,
)
from manywheel.audit import AuditOptions, audit_wheel, audit_wheel_detail
from manywheel.errors import InputError, ManywheelError
from manywheel.report import Evidence, PolicyVerdict, WheelReport
from wheelbuild import build_wheel

TORCH = Path("/work/cache/torch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")

# Every extension reads the environment so that it needs libc.so.6 (gcc links with
# --as-needed: a library nothing uses is dropped from DT_NEEDED).
LIBC = "#include <stdlib.h>\n"
EXT_C = (
    LIBC + "extern int inner(void);\n"
    'void *PyInit__ext(void) { return inner() ? getenv("A") : 0; }\n'
)
PLAIN_EXT_C = LIBC + 'void *PyInit__ext(void) { return getenv("A"); }\n'
USES_PYTHON_C = "int Py_Fake(void);\nint PyInit__ext(void) { return Py_Fake(); }\n"
INNER_C = "int inner(void) { return 42; }\n"
USES_ALPHA_C = (
    LIBC + "extern int alpha_value(void);\n"
    'void *PyInit__ext(void) { return alpha_value() ? getenv("A") : 0; }\n'
)
USES_NEW_C = (
    LIBC + "extern int new_start(void);\n"
    'void *PyInit__ext(void) { return new_start() ? getenv("A") : 0; }\n'
)
NEW_C = (
    "#include <pthread.h>\n"
    "static void *run(void *arg) { return arg; }\n"
    "int new_start(void) { pthread_t t; if (pthread_create(&t, 0, run, 0)) return -1;"
    " return pthread_join(t, 0); }\n"
)
MAIN_C = "int main(void) { return 0; }\n"


@dataclass(frozen=True)
class Libs:
    """ELF files of the audit tests, built once per session by the host gcc."""

    tc: Toolchain
    root: Path
    inner: Path  # libinner.so.1
    ext_rpath: Path  # _ext.so: needs libinner.so.1, DT_RPATH $ORIGIN/../pkg.libs
    ext_norpath: Path  # _ext.so: needs libinner.so.1, no search path
    plain_ext: Path  # _ext.so needing libc only
    hostdir: Path  # libalpha.so.1 -> libbeta.so.1 -> libgamma.so.1, outside any wheel
    linkdir: Path  # a symbolic link to hostdir
    ext_alpha: Path  # _ext.so needing libalpha.so.1 (found through the environment)
    libnew: Path  # libnew.so.1 in newdir: pthread_create@GLIBC_2.34
    ext_new: Path  # _ext.so needing libnew.so.1
    exe: Path  # a PIE executable: __libc_start_main@GLIBC_2.34
    libisa: Path  # -z x86-64-v3


def _src(root: Path, name: str, text: str) -> Path:
    path = root / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def libs(tmp_path_factory: pytest.TempPathFactory) -> Libs:
    tc = native_toolchain()
    if tc.missing or tc.arch != "x86_64":
        pytest.skip(tc.missing or "the audit tests expect an x86_64 glibc host")
    root = tmp_path_factory.mktemp("audit-libs")
    inner = compile_shared(
        tc,
        [_src(root, "inner.c", INNER_C)],
        root / "inner" / "libinner.so.1",
        soname="libinner.so.1",
    )
    ext_c = _src(root, "ext.c", EXT_C)
    ext_rpath = compile_shared(
        tc,
        [ext_c],
        root / "rpath" / "_ext.so",
        needed_libs=[inner],
        rpath="$ORIGIN/../pkg.libs",
        new_dtags=False,
    )
    ext_norpath = compile_shared(tc, [ext_c], root / "norpath" / "_ext.so", needed_libs=[inner])
    plain_ext = compile_shared(tc, [_src(root, "plain.c", PLAIN_EXT_C)], root / "plain" / "_ext.so")
    hostdir = root / "host"
    csrc = Path(__file__).parent / "csrc"
    alpha, _, _ = compile_chain(tc, hostdir)
    linkdir = root / "hostlink"
    linkdir.symlink_to(hostdir, target_is_directory=True)
    ext_alpha = compile_shared(
        tc,
        [_src(root, "usealpha.c", USES_ALPHA_C)],
        root / "alpha" / "_ext.so",
        needed_libs=[alpha],
    )
    libnew = compile_shared(
        tc, [_src(root, "new.c", NEW_C)], root / "newdir" / "libnew.so.1", soname="libnew.so.1"
    )
    ext_new = compile_shared(
        tc, [_src(root, "usenew.c", USES_NEW_C)], root / "usenew" / "_ext.so", needed_libs=[libnew]
    )
    exe = compile_exe(tc, [_src(root, "main.c", MAIN_C)], root / "bin" / "tool")
    libisa = compile_shared(
        tc, [csrc / "isa.c"], root / "isa" / "libisa.so", extra=["-Wl,-z,x86-64-v3"]
    )
    return Libs(
        tc,
        root,
        inner,
        ext_rpath,
        ext_norpath,
        plain_ext,
        hostdir,
        linkdir,
        ext_alpha,
        libnew,
        ext_new,
        exe,
        libisa,
    )


def audit(path: Path, **options: object) -> WheelReport:
    return audit_wheel(path, AuditOptions(**options))  # type: ignore[arg-type]


def verdict(report: WheelReport, policy: str) -> PolicyVerdict:
    for v in report.verdicts:
        if v.policy == policy:
            return v
    raise AssertionError(f"no verdict for {policy}: {[v.policy for v in report.verdicts]}")


def kinds(evidence: tuple[Evidence, ...], kind: str) -> list[Evidence]:
    return [e for e in evidence if e.kind == kind]


def env_path(*dirs: Path) -> dict[str, str]:
    return {"MANYWHEEL_LD_LIBRARY_PATH": ":".join(str(d) for d in dirs)}


# --------------------------------------------------------------------------- internal / external


def test_library_reached_through_origin_rpath_is_internal(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        {"pkg/_ext.so": libs.ext_rpath, "pkg.libs/libinner.so.1": libs.inner},
    )
    report = audit(wheel)
    assert [lib.soname for lib in report.external if lib.soname == "libinner.so.1"] == []
    ext = next(m for m in report.members if m.path == "pkg/_ext.so")
    assert ext.is_extension
    assert ext.internal_needed == {"libinner.so.1": "pkg.libs/libinner.so.1"}
    assert report.unreachable_libraries == ()
    assert report.best_tag == "manylinux_2_5_x86_64"
    assert report.problems == () and report.consistency == ()
    assert all(v.ok for v in report.verdicts)


def test_library_not_found_and_not_shipped_blocks_every_portable_tag(
    libs: Libs, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_norpath})
    report = audit(wheel)
    (lib,) = [lib for lib in report.external if lib.soname == "libinner.so.1"]
    assert lib.path is None and lib.tried, lib
    assert lib.chains == (("pkg/_ext.so", "libinner.so.1"),)
    (missing,) = kinds(verdict(report, "manylinux_2_17").evidence, "library-not-found")
    assert missing.chain == ("pkg/_ext.so", "libinner.so.1")
    assert missing.tried == lib.tried
    assert not verdict(report, "manylinux_2_17").ok_after_repair  # cannot graft it
    assert report.best_tag == report.repair_tag == "linux_x86_64"


def test_shipped_library_the_loader_misses_is_internal_with_a_note(
    libs: Libs, tmp_path: Path
) -> None:
    # No RPATH leads from pkg/_ext.so to pkg.libs/: a packaging bug, not a dependency
    # on the target system; it is reported as a note.
    wheel = build_wheel(
        tmp_path, {"pkg/_ext.so": libs.ext_norpath, "pkg.libs/libinner.so.1": libs.inner}
    )
    report = audit(wheel)
    assert "libinner.so.1" not in {lib.soname for lib in report.external}
    assert any("pkg.libs/libinner.so.1" in note and "RUNPATH" in note for note in report.notes)
    assert report.best_tag == "manylinux_2_5_x86_64"
    # The link says so too (repair's verification reads it): internal, but not found by
    # the loader's search; with the RPATH, the same library is found by the search.
    detail = audit_wheel_detail(wheel, AuditOptions())
    assert detail.graph is not None
    (link,) = [x for x in detail.graph.nodes["pkg/_ext.so"].links if x.name == "libinner.so.1"]
    assert (link.target, link.internal, link.searched_out) == (
        "pkg.libs/libinner.so.1",
        True,
        False,
    )
    found = build_wheel(
        tmp_path / "rpath", {"pkg/_ext.so": libs.ext_rpath, "pkg.libs/libinner.so.1": libs.inner}
    )
    graph = audit_wheel_detail(found, AuditOptions()).graph
    assert graph is not None
    (link,) = [x for x in graph.nodes["pkg/_ext.so"].links if x.name == "libinner.so.1"]
    assert (link.target, link.internal, link.searched_out) == ("pkg.libs/libinner.so.1", True, True)


def test_external_library_with_chain_and_where_found(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_alpha})
    report = audit(wheel, environ=env_path(libs.hostdir))
    by_name = {lib.soname: lib for lib in report.external}
    gamma = by_name["libgamma.so.1"]
    assert gamma.path == f"{libs.hostdir}/libgamma.so.1"
    assert gamma.chains == (("pkg/_ext.so", "libalpha.so.1", "libbeta.so.1", "libgamma.so.1"),)
    assert gamma.allowed_by == "linux" and not gamma.excluded
    assert by_name["libc.so.6"].allowed_by == "manylinux_2_5"
    evidence = kinds(verdict(report, "manylinux_2_17").evidence, "external-library")
    assert [e.library for e in evidence] == ["libalpha.so.1", "libbeta.so.1", "libgamma.so.1"]
    assert evidence[2].chain == gamma.chains[0]
    assert evidence[2].found_at == gamma.path
    assert "libgamma.so.1" in evidence[2].text and gamma.path in evidence[2].text
    assert report.best_tag == "linux_x86_64"
    assert report.repair_tag == "manylinux_2_5_x86_64"  # grafting all three is enough


def test_unreachable_library_is_reported_and_still_audited(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        {
            "pkg/_ext.so": libs.plain_ext,
            "pkg/libisa.so": libs.libisa,
            "pkg/libnew.so.1": libs.libnew,
        },
    )
    report = audit(wheel)
    assert report.unreachable_libraries == ("pkg/libisa.so", "pkg/libnew.so.1")
    # Unreachable, yet dlopen-able: its needs count.
    (isa,) = kinds(verdict(report, "manylinux_2_5").evidence, "isa-level")
    assert isa.file == "pkg/libisa.so" and "x86-64-v3" in isa.text
    assert report.best_tag == "linux_x86_64"
    relaxed = audit(wheel, disable_isa_ext_check=True)
    assert relaxed.best_tag == "manylinux_2_34_x86_64"  # libnew.so.1: GLIBC_2.34


# --------------------------------------------------------------------------- libc and arch


def test_libc_and_arch_from_tags(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path, {"pkg/_ext.so": libs.plain_ext}, platform_tags=("manylinux_2_17_x86_64",)
    )
    report = audit(wheel)
    assert (report.libc, report.arch, report.libc_arch_source) == ("glibc", "x86_64", "tags")
    assert report.verdicts[0].policy == "manylinux_2_5"
    assert report.verdicts[-1].policy == "linux"


def test_libc_from_pt_interp_when_tags_only_name_the_arch(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/tool": libs.exe}, platform_tags=("linux_x86_64",))
    report = audit(wheel)
    assert (report.libc, report.arch) == ("glibc", "x86_64")
    assert report.libc_arch_source == "tags (arch), PT_INTERP (libc)"


def test_libc_conflict_between_tags_and_pt_interp_is_evidence(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/tool": libs.exe}, platform_tags=("musllinux_1_2_x86_64",))
    report = audit(wheel)
    assert report.libc == "musl"  # the tags are trusted first...
    conflict = [e for e in report.consistency if e.kind == "tag-mismatch" and e.detail == "libc"]
    assert len(conflict) == 1  # ...and the disagreement is reported
    assert "ld-linux-x86-64.so.2" in conflict[0].text and "glibc" in conflict[0].text
    assert all(v.policy.startswith(("musllinux", "linux")) for v in report.verdicts)


def test_musl_from_pt_interp(tmp_path: Path) -> None:
    tc = find_toolchain("musl")
    if tc.missing:
        pytest.skip(tc.missing)
    exe = compile_exe(tc, [_src(tmp_path, "main.c", MAIN_C)], tmp_path / "tool")
    wheel = build_wheel(tmp_path / "w", {"pkg/tool": exe}, platform_tags=("linux_x86_64",))
    report = audit(wheel)
    assert report.libc == "musl"
    assert report.libc_arch_source == "tags (arch), PT_INTERP (libc)"
    assert report.verdicts[0].policy.startswith("musllinux_")


def test_member_of_another_arch_is_a_problem(libs: Libs, tmp_path: Path) -> None:
    cross = find_toolchain("aarch64")
    if cross.missing:
        pytest.skip(cross.missing)
    foreign = compile_shared(cross, [_src(tmp_path, "p.c", PLAIN_EXT_C)], tmp_path / "arm.so")
    wheel = build_wheel(
        tmp_path / "w",
        {"pkg/_ext.so": libs.plain_ext, "pkg/_arm.so": foreign},
        platform_tags=("manylinux_2_17_x86_64",),
    )
    report = audit(wheel)
    (problem,) = kinds(report.problems, "foreign-arch")
    assert problem.file == "pkg/_arm.so" and "aarch64" in problem.text
    assert report.best_tag is None and report.repair_tag is None


# --------------------------------------------------------------------------- symbol versions


def test_too_new_glibc_version_names_the_symbol(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/tool": libs.exe})
    report = audit(wheel)
    old = verdict(report, "manylinux_2_31")
    assert not old.ok
    texts = [e.text for e in kinds(old.evidence, "symbol-version")]
    assert "pkg/tool imports __libc_start_main@GLIBC_2.34 from libc.so.6" in texts
    (ev,) = [e for e in old.evidence if e.symbol == "__libc_start_main"]
    assert (ev.file, ev.version, ev.library) == ("pkg/tool", "GLIBC_2.34", "libc.so.6")
    assert verdict(report, "manylinux_2_34").ok
    assert report.best_tag == report.repair_tag == "manylinux_2_34_x86_64"


def test_repair_counts_the_grafted_library_versions(libs: Libs, tmp_path: Path) -> None:
    # The extension itself only needs GLIBC_2.2.5; the external libnew.so.1 it pulls in
    # needs pthread_create@GLIBC_2.34. Repair grafts libnew, whose needs then count.
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_new})
    report = audit(wheel, environ=env_path(libs.libnew.parent))
    assert report.best_tag == "linux_x86_64"
    assert report.repair_tag == "manylinux_2_34_x86_64"
    blocked = verdict(report, "manylinux_2_31")
    assert [e.library for e in kinds(blocked.evidence, "external-library")] == ["libnew.so.1"]
    assert not blocked.ok_after_repair
    after = {e.text for e in blocked.evidence_after_repair}
    assert f"{libs.libnew} imports pthread_create@GLIBC_2.34 from libc.so.6" in after
    assert verdict(report, "manylinux_2_34").ok_after_repair


# --------------------------------------------------------------------------- exclude


def test_exclude_by_soname(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_alpha})
    report = audit(wheel, environ=env_path(libs.hostdir), exclude=("libalpha.so.*",))
    by_name = {lib.soname: lib for lib in report.external}
    assert by_name["libalpha.so.1"].excluded
    # What only the excluded library loads is not the wheel's business any more.
    assert "libbeta.so.1" not in by_name and "libgamma.so.1" not in by_name
    assert report.best_tag == "manylinux_2_5_x86_64"


@pytest.mark.parametrize("found_via, pattern_via", [("link", "real"), ("real", "link")])
def test_exclude_by_path_through_a_symlink(
    libs: Libs, tmp_path: Path, found_via: str, pattern_via: str
) -> None:
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_alpha})
    dirs = {"link": libs.linkdir, "real": libs.hostdir}
    pattern = f"{dirs[pattern_via]}/libalpha.so*"
    report = audit(wheel, environ=env_path(dirs[found_via]), exclude=(pattern,))
    alpha = next(lib for lib in report.external if lib.soname == "libalpha.so.1")
    assert alpha.excluded, (alpha.path, pattern)
    assert report.best_tag == "manylinux_2_5_x86_64"


def test_exclude_that_matches_nothing_changes_nothing(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_alpha})
    report = audit(wheel, environ=env_path(libs.hostdir), exclude=("/nowhere/libalpha.so*",))
    assert not any(lib.excluded for lib in report.external)
    assert report.best_tag == "linux_x86_64"


# --------------------------------------------------------------------------- problems, input


def test_pure_wheel_is_refused_unless_allowed(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path, {"pkg/__init__.py": b""}, python_tag="py3", abi_tag="none", platform_tags=("any",)
    )
    with pytest.raises(InputError, match=r"pure Python wheel .*--allow-pure-python-wheel"):
        audit(wheel)
    report = audit(wheel, allow_pure=True)
    assert report.wheel.pure and report.verdicts == () and report.best_tag is None


def test_policy_independent_problems(libs: Libs, tmp_path: Path) -> None:
    fake_python = compile_shared(
        libs.tc,
        [_src(tmp_path, "py.c", "int Py_Fake(void) { return 0; }\n")],
        tmp_path / "py" / "libpython3.11.so.1.0",
        soname="libpython3.11.so.1.0",
    )
    linked = compile_shared(
        libs.tc,
        [_src(tmp_path, "e.c", USES_PYTHON_C)],
        tmp_path / "linked" / "_ext.so",
        needed_libs=[fake_python],
    )
    wheel = build_wheel(
        tmp_path / "w",
        {
            "pkg/_ext.so": linked,
            "demo-1.0.data/purelib/pkg/_pure.so": libs.plain_ext,
            "pkg/_broken.so": b"\x7fELF" + b"\x00" * 60,
        },
    )
    report = audit(wheel, environ=env_path(fake_python.parent))
    assert {e.kind: e.file for e in report.problems} == {
        "libpython": "pkg/_ext.so",
        "purelib-elf": "demo-1.0.data/purelib/pkg/_pure.so",
        "malformed-elf": "pkg/_broken.so",
    }
    broken = next(m for m in report.members if m.path == "pkg/_broken.so")
    assert broken.error
    assert report.best_tag is None and report.repair_tag is None


def test_record_and_tag_consistency(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        {"pkg/_ext.so": libs.plain_ext, "pkg/data.txt": b"x" * 5000},
        platform_tags=("manylinux_2_5_x86_64",),
        bad_hash=("pkg/_ext.so", "pkg/data.txt"),
    )
    report = audit(wheel)
    assert sorted(e.file for e in kinds(report.consistency, "record")) == [
        "pkg/_ext.so",
        "pkg/data.txt",
    ]
    assert report.best_tag == "manylinux_2_5_x86_64"


def test_record_sizes_still_checked_without_hashing(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        {"pkg/_ext.so": libs.plain_ext, "pkg/a.txt": b"a", "pkg/b.txt": b"b"},
        bad_hash=("pkg/a.txt",),
        bad_size=("pkg/b.txt",),
    )
    report = audit(wheel, verify_hashes=False)
    assert [e.file for e in kinds(report.consistency, "record")] == ["pkg/b.txt"]
    assert report.best_tag == "manylinux_2_5_x86_64"


def test_claimed_tag_the_content_does_not_satisfy(libs: Libs, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"pkg/tool": libs.exe}, platform_tags=("manylinux_2_17_x86_64",))
    report = audit(wheel)
    (claim,) = [e for e in report.consistency if e.detail == "content"]
    assert "manylinux_2_17_x86_64" in claim.text and "manylinux_2_34_x86_64" in claim.text


def test_unreadable_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ManywheelError) as missing:
        audit(tmp_path / "nope-1.0-py3-none-any.whl")
    assert "\n" not in str(missing.value)
    junk = tmp_path / "junk-1.0-cp311-cp311-linux_x86_64.whl"
    junk.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(ManywheelError) as bad:
        audit(junk)
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize("verify_hashes", [False, True], ids=["show", "hashing"])
def test_metadata_faults_are_reported_before_member_faults(
    libs: Libs, tmp_path: Path, verify_hashes: bool
) -> None:
    """WHEEL is read beside the scan when nothing is hashed; which fault is reported
    must not depend on that: the metadata's first, then the members'."""
    from test_archive import patch_entry

    members = {"pkg/tool": libs.exe}
    good = build_wheel(tmp_path / "good", members)
    patch_entry(good, "pkg/tool", "crc", 0)
    with pytest.raises(ManywheelError, match="pkg/tool: CRC-32 mismatch"):
        audit(good, verify_hashes=verify_hashes)
    wheel_file = "demo-1.0.dist-info/WHEEL"
    bad = build_wheel(tmp_path / "bad", {**members, wheel_file: b"Wheel-Version: 9.0\n"})
    patch_entry(bad, "pkg/tool", "crc", 0)
    with pytest.raises(ManywheelError, match="Wheel-Version") as info:
        audit(bad, verify_hashes=verify_hashes)
    assert "CRC" not in str(info.value)


def test_places_tried_in_the_wheel_are_named_as_the_wheel_installs_them(
    libs: Libs, tmp_path: Path
) -> None:
    """The loader's search mounts the wheel at a virtual prefix; reports name those
    places as the wheel's own paths, never as the prefix."""
    wheel = build_wheel(tmp_path, {"pkg/_ext.so": libs.ext_rpath})  # libinner.so.1 left out
    report = audit(wheel)
    (missing,) = [lib for lib in report.external if lib.soname == "libinner.so.1"]
    assert missing.path is None
    assert missing.tried[0] == "pkg.libs/libinner.so.1 in the wheel (missing: no such file)"
    assert not any("__wheel__" in place for place in missing.tried)
    blocked = [e for v in report.verdicts for e in v.evidence if e.kind == "library-not-found"]
    assert blocked and all("__wheel__" not in place for e in blocked for place in e.tried)


# --------------------------------------------------------------------------- torch


@pytest.mark.slow
def test_torch_wheel_best_tag() -> None:
    """The verdict on the real torch wheel (its speed is benchmarks/bench_show.py's)."""
    if not TORCH.is_file():
        pytest.skip(f"{TORCH} is not there (the real-wheel cache is not set up)")
    report = audit(TORCH)
    assert report.best_tag == "manylinux_2_28_x86_64"
    assert len(report.members) == 136
    blocked = verdict(report, "manylinux_2_27")
    assert any(e.symbol == "fcntl64" and e.version == "GLIBC_2.28" for e in blocked.evidence)


def test_a_metadata_fault_stops_the_scan_of_the_members(
    libs: Libs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hashing, WHEEL is read beside the scan; when it is refused, no member is
    started any more (a bad WHEEL must not cost a whole torch scan first)."""
    import os
    import threading

    from manywheel import memberfacts

    stopped = threading.Event()
    scanned: list[str] = []
    scan_member, stop = memberfacts._scan_member, memberfacts.PendingScan.stop

    def counted(archive: Any, member: Any, *args: Any) -> Any:
        stopped.wait(10)  # every worker waits until the metadata fault stopped the scan
        scanned.append(member.name)
        return scan_member(archive, member, *args)

    def stopping(self: Any) -> None:
        stop(self)
        stopped.set()

    monkeypatch.setattr(memberfacts, "_scan_member", counted)
    monkeypatch.setattr(memberfacts.PendingScan, "stop", stopping)
    members: dict[str, bytes | Path] = {f"pkg/data{i}.bin": os.urandom(300_000) for i in range(8)}
    members["demo-1.0.dist-info/WHEEL"] = b"Wheel-Version: 9.0\n"
    wheel = build_wheel(tmp_path, members)
    with pytest.raises(ManywheelError, match="Wheel-Version"):
        audit(wheel, verify_hashes=False)
    assert stopped.is_set()
    assert len(scanned) <= memberfacts.cpus() < 8
