"""The policy checks as pure functions: hand-made facts and graphs, no file, no loader.

Each case pins one rule of manywheel.verdict: the version-needs table is what ld.so
checks (not only the symbols), weak version needs and weak symbols, prefixes a policy
does not constrain, internal/grafted/excluded libraries, blacklists, the ISA level, and
what repair would reach.
"""

from __future__ import annotations

from manywheel.elf import (
    DynamicInfo,
    ElfFacts,
    ElfHeader,
    Symbol,
    VersionNeed,
    VersionNeedAux,
)
from manywheel.linkgraph import ExternalRef, FileNode, Link, LinkGraph
from manywheel.policy import Policy, load_policies
from manywheel.report import PolicyVerdict
from manywheel.verdict import VER_FLG_WEAK, best_tags, evaluate, evaluate_all

ARCH = "x86_64"
POLICIES = load_policies()


def policy(name: str) -> Policy:
    return POLICIES.get(name)


def facts(
    name: str,
    needed: tuple[str, ...] = ("libc.so.6",),
    needs: tuple[VersionNeed, ...] = (),
    symbols: tuple[Symbol, ...] = (),
    isa: int | None = None,
) -> ElfFacts:
    header = ElfHeader(64, "little", 62, 0, 0, 3, 0, 0, ARCH, None)
    dynamic = DynamicInfo(needed, None, None, None, 0, 0)
    return ElfFacts(name, header, None, dynamic, needs, (), symbols, isa)


def need(lib: str, *versions: str, weak: tuple[str, ...] = ()) -> VersionNeed:
    auxes = tuple(
        VersionNeedAux(v, 0, VER_FLG_WEAK if v in weak else 0, i + 2)
        for i, v in enumerate((*versions, *weak))
    )
    return VersionNeed(lib, auxes)


def undef(
    name: str, version: str | None = None, lib: str | None = None, weak: bool = False
) -> Symbol:
    return Symbol(name, False, "WEAK" if weak else "GLOBAL", "FUNC", version, False, lib)


def external(
    name: str, key: str | None, chain: tuple[str, ...], excluded: bool = False
) -> ExternalRef:
    return ExternalRef(
        name=name,
        key=key,
        soname=name,
        path=key,
        realpath=key,
        rule="ld.so.cache" if key else None,
        tried=() if key else (f"/usr/lib/{name} (missing: no such file)",),
        error=None,
        chains=(chain,),
        excluded=excluded,
    )


LIBC = external("libc.so.6", "/lib/libc.so.6", ("pkg/_ext.so", "libc.so.6"))


def graph(
    members: dict[str, ElfFacts],
    externals: tuple[ExternalRef, ...] = (LIBC,),
    external_facts: dict[str, ElfFacts] | None = None,
    internal: dict[str, str] | None = None,
) -> LinkGraph:
    """Members link every DT_NEEDED to the external of that name, or to ``internal``."""
    internal = internal or {}
    by_name = {ref.name: ref for ref in externals}
    nodes: dict[str, FileNode] = {}

    def links(f: ElfFacts) -> tuple[Link, ...]:
        out = []
        for lib in f.dynamic.needed if f.dynamic else ():
            if lib in internal:
                out.append(Link(lib, internal[lib], True))
            else:
                out.append(Link(lib, by_name[lib].key, False))
        return tuple(out)

    for key, f in members.items():
        nodes[key] = FileNode(key, True, f, links(f))
    for ref in externals:
        if ref.key is not None and ref.key not in nodes:
            ext = (external_facts or {}).get(ref.key)
            nodes[ref.key] = FileNode(ref.key, False, ext, links(ext) if ext else ())
    return LinkGraph(nodes, tuple(members), by_name, (), ())


def texts(verdict: PolicyVerdict, after: bool = False) -> list[str]:
    return [e.text for e in (verdict.evidence_after_repair if after else verdict.evidence)]


# --------------------------------------------------------------------------- versions


def test_version_too_new_names_each_symbol_once() -> None:
    f = facts(
        "pkg/_ext.so",
        needs=(need("libc.so.6", "GLIBC_2.2.5", "GLIBC_2.14"),),
        symbols=(
            undef("memcpy", "GLIBC_2.14", "libc.so.6"),
            undef("malloc", "GLIBC_2.2.5", "libc.so.6"),
        ),
    )
    v = evaluate(graph({"pkg/_ext.so": f}), policy("manylinux_2_12"), ARCH)
    assert texts(v) == ["pkg/_ext.so imports memcpy@GLIBC_2.14 from libc.so.6"]
    (e,) = v.evidence
    assert (e.kind, e.file, e.symbol, e.version, e.library) == (
        "symbol-version",
        "pkg/_ext.so",
        "memcpy",
        "GLIBC_2.14",
        "libc.so.6",
    )
    assert evaluate(graph({"pkg/_ext.so": f}), policy("manylinux_2_17"), ARCH).ok


def test_version_needed_by_the_table_alone_still_counts() -> None:
    # ld.so checks every non-weak Vernaux at load time, used by a symbol or not.
    f = facts("pkg/_ext.so", needs=(need("libc.so.6", "GLIBC_2.34"),))
    v = evaluate(graph({"pkg/_ext.so": f}), policy("manylinux_2_31"), ARCH)
    assert texts(v) == ["pkg/_ext.so needs GLIBC_2.34 of libc.so.6 (version table)"]


def test_weak_version_need_counts_only_through_strong_symbols() -> None:
    weak_only = facts(
        "pkg/a.so",
        needs=(need("libc.so.6", weak=("GLIBC_2.34",)),),
        symbols=(undef("maybe", "GLIBC_2.34", "libc.so.6", weak=True),),
    )
    assert evaluate(graph({"pkg/a.so": weak_only}), policy("manylinux_2_17"), ARCH).ok
    strong_user = facts(
        "pkg/a.so",
        needs=(need("libc.so.6", weak=("GLIBC_2.34",)),),
        symbols=(
            undef("maybe", "GLIBC_2.34", "libc.so.6", weak=True),
            undef("surely", "GLIBC_2.34", "libc.so.6"),
        ),
    )
    v = evaluate(graph({"pkg/a.so": strong_user}), policy("manylinux_2_17"), ARCH)
    assert texts(v) == ["pkg/a.so imports surely@GLIBC_2.34 from libc.so.6"]


def test_unconstrained_prefix_and_unparsable_names_do_not_count() -> None:
    ssl = external("libssl.so.3", "/usr/lib/libssl.so.3", ("pkg/a.so", "libssl.so.3"))
    f = facts(
        "pkg/a.so",
        needed=("libc.so.6", "libssl.so.3"),
        needs=(need("libssl.so.3", "OPENSSL_3.0.0"), need("libc.so.6", "WEIRD")),
    )
    v = evaluate(graph({"pkg/a.so": f}, (LIBC, ssl)), policy("manylinux_2_17"), ARCH)
    assert [e.kind for e in v.evidence] == ["external-library"]  # libssl itself, no version


def test_versions_needed_from_internal_or_excluded_libraries_do_not_count() -> None:
    cxx = external("libstdc++.so.6", "/usr/lib/libstdc++.so.6", ("pkg/a.so", "libstdc++.so.6"))
    f = facts(
        "pkg/a.so",
        needed=("libc.so.6", "libstdc++.so.6"),
        needs=(need("libstdc++.so.6", "GLIBCXX_3.4.30"),),
        symbols=(undef("_ZSt4cout", "GLIBCXX_3.4.30", "libstdc++.so.6"),),
    )
    strict = policy("manylinux_2_17")
    assert not evaluate(graph({"pkg/a.so": f}, (LIBC, cxx)), strict, ARCH).ok
    shipped = graph(
        {"pkg/a.so": f, "pkg.libs/libstdc++.so.6": facts("pkg.libs/libstdc++.so.6")},
        (LIBC,),
        internal={"libstdc++.so.6": "pkg.libs/libstdc++.so.6"},
    )
    assert evaluate(shipped, strict, ARCH).ok
    excluded = external(
        "libstdc++.so.6", "/usr/lib/libstdc++.so.6", ("pkg/a.so", "libstdc++.so.6"), True
    )
    assert evaluate(graph({"pkg/a.so": f}, (LIBC, excluded)), strict, ARCH).ok


# --------------------------------------------------------------------------- libraries, repair


def test_external_library_chain_and_repair_counts_its_versions() -> None:
    new_key = "/opt/lib/libnew.so.1"
    new = external("libnew.so.1", new_key, ("pkg/a.so", "libnew.so.1"))
    new_facts = facts(
        "libnew.so.1",
        needs=(need("libc.so.6", "GLIBC_2.34"),),
        symbols=(undef("pthread_create", "GLIBC_2.34", "libc.so.6"),),
    )
    g = graph(
        {"pkg/a.so": facts("pkg/a.so", needed=("libc.so.6", "libnew.so.1"))},
        (LIBC, new),
        {new_key: new_facts},
    )
    verdicts = evaluate_all(g, POLICIES.for_arch(ARCH, "glibc"), ARCH)
    by_name = {v.policy: v for v in verdicts}
    old = by_name["manylinux_2_31"]
    (ext,) = old.evidence
    assert (ext.kind, ext.library, ext.chain, ext.found_at) == (
        "external-library",
        "libnew.so.1",
        ("pkg/a.so", "libnew.so.1"),
        new_key,
    )
    assert texts(old, after=True) == [f"{new_key} imports pthread_create@GLIBC_2.34 from libc.so.6"]
    assert by_name["manylinux_2_34"].ok_after_repair and not by_name["manylinux_2_34"].ok
    assert best_tags(verdicts, blocked=False) == ("linux_x86_64", "manylinux_2_34_x86_64")
    assert best_tags(verdicts, blocked=True) == (None, None)


def test_library_not_found_blocks_repair_and_lists_the_places_tried() -> None:
    lost = external("liblost.so.1", None, ("pkg/a.so", "liblost.so.1"))
    g = graph({"pkg/a.so": facts("pkg/a.so", needed=("libc.so.6", "liblost.so.1"))}, (LIBC, lost))
    v = evaluate(g, policy("manylinux_2_17"), ARCH)
    (e,) = v.evidence
    assert e.kind == "library-not-found" and e.tried == lost.tried
    assert not v.ok_after_repair and v.evidence_after_repair == (e,)
    assert evaluate(g, POLICIES.linux, ARCH).ok


def test_allowed_library_is_a_leaf_and_excluded_one_counts_nothing() -> None:
    # libz.so.1 is allowed: whatever it loads is the system's business.
    z_key, odd_key = "/usr/lib/libz.so.1", "/usr/lib/libodd.so.1"
    z = external("libz.so.1", z_key, ("pkg/a.so", "libz.so.1"))
    odd = external("libodd.so.1", odd_key, ("pkg/a.so", "libz.so.1", "libodd.so.1"))
    g = graph(
        {"pkg/a.so": facts("pkg/a.so", needed=("libc.so.6", "libz.so.1"))},
        (LIBC, z, odd),
        {z_key: facts("libz.so.1", needed=("libodd.so.1",))},
    )
    assert evaluate(g, policy("manylinux_2_17"), ARCH).ok
    foo = external("libfoo.so.1", "/x/libfoo.so.1", ("pkg/a.so", "libfoo.so.1"), excluded=True)
    g2 = graph({"pkg/a.so": facts("pkg/a.so", needed=("libc.so.6", "libfoo.so.1"))}, (LIBC, foo))
    assert evaluate(g2, policy("manylinux_2_5"), ARCH).ok


# --------------------------------------------------------------------------- symbols, ISA


def test_blacklisted_symbol_counts_unless_weak() -> None:
    z = external("libz.so.1", "/usr/lib/libz.so.1", ("pkg/a.so", "libz.so.1"))
    strong = facts(
        "pkg/a.so", needed=("libc.so.6", "libz.so.1"), symbols=(undef("gzflags"), undef("crc32"))
    )
    v = evaluate(graph({"pkg/a.so": strong}, (LIBC, z)), policy("manylinux_2_17"), ARCH)
    (e,) = v.evidence
    assert (e.kind, e.symbol, e.library) == ("blacklisted-symbol", "gzflags", "libz.so.1")
    weak = facts(
        "pkg/a.so", needed=("libc.so.6", "libz.so.1"), symbols=(undef("gzflags", weak=True),)
    )
    assert evaluate(graph({"pkg/a.so": weak}, (LIBC, z)), policy("manylinux_2_17"), ARCH).ok


def test_isa_level_above_baseline_fails_portable_policies_only() -> None:
    f = facts("pkg/a.so", isa=0b101)  # baseline + v3
    g = graph({"pkg/a.so": f})
    v = evaluate(g, policy("manylinux_2_17"), ARCH)
    assert [(e.kind, e.detail) for e in v.evidence] == [("isa-level", "x86-64-v3")]
    assert not v.ok_after_repair  # repair does not rebuild code
    assert evaluate(g, POLICIES.linux, ARCH).ok
    assert evaluate(g, policy("manylinux_2_17"), ARCH, check_isa=False).ok
