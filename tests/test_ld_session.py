"""LoaderSession: many roots in one view share searches, and get the trees each root
alone would get (the memo's keys hold everything a search reads)."""

from __future__ import annotations

from pathlib import Path

from manywheel.ld import DependencyTree, HostFilesystem, LoaderConfig, LoaderSession, resolve_tree
from test_ld import build


def alone_and_shared(roots: list[Path]) -> list[tuple[DependencyTree, DependencyTree]]:
    """(resolve_tree of each root alone, the same root resolved in one session)."""
    config = LoaderConfig()
    with HostFilesystem(None) as fs:
        session = LoaderSession(config, fs)
        shared = [session.resolve(str(root)) for root in roots]
    return [(resolve_tree(root, config), tree) for root, tree in zip(roots, shared, strict=True)]


def test_roots_in_one_directory_name_their_own_runpath(tmp_path: Path) -> None:
    """Two roots with one RUNPATH share the search of their needs; the rules (found
    and tried) still name each root as the owner of the entry."""
    lib = build(tmp_path / "lib" / "libx.so.1", soname="libx.so.1")
    roots = [
        build(
            tmp_path / "app" / f"mod{i}.so",
            calls="libx",
            needed=(lib,),
            rpath="$ORIGIN/../none:$ORIGIN/../lib",
            new_dtags=True,
        )
        for i in range(3)
    ]
    for root, (alone, shared) in zip(roots, alone_and_shared(roots), strict=True):
        assert shared == alone
        node = shared.dependencies[0]
        assert node.name == "libx.so.1" and node.realpath == str(lib)
        assert node.rule is not None and node.rule.owner == str(root)
        assert [a.rule.owner for a in node.tried] == [str(root)]
        assert node.rule.describe() == f"runpath of {root.name}"


def test_inherited_rpath_keeps_searches_apart(tmp_path: Path) -> None:
    """One library (no search path of its own) loaded by roots whose DT_RPATH differ:
    its need is found through one root's inherited entry only. A RUNPATH root passes
    nothing down, like a root with no search path at all."""
    gamma = build(tmp_path / "g" / "libgamma.so.1", soname="libgamma.so.1")
    beta = build(
        tmp_path / "b" / "libbeta.so.1", soname="libbeta.so.1", calls="libgamma", needed=(gamma,)
    )
    libdirs = f"{beta.parent}:{gamma.parent}"
    with_rpath = build(tmp_path / "r1" / "mod.so", calls="libbeta", needed=(beta,), rpath=libdirs)
    without = build(
        tmp_path / "r2" / "mod.so", calls="libbeta", needed=(beta,), rpath=str(beta.parent)
    )
    runpath = build(
        tmp_path / "r3" / "mod.so", calls="libbeta", needed=(beta,), rpath=libdirs, new_dtags=True
    )
    both = [with_rpath, without, runpath, with_rpath]
    results = alone_and_shared(both)
    for alone, shared in results:
        assert shared == alone
    found = [shared.dependencies[0].children[0] for _, shared in results]
    assert [n.status for n in found] == ["found", "not-found", "not-found", "found"]
    assert found[0].rule is not None and found[0].rule.inherited
    assert found[0].rule.owner == str(with_rpath)
