"""JSON and text renderings of dependency trees: the JSON validates against the
published schema; the text is plain (no reprs) and says where and why."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from manywheel.ld import LoaderConfig, resolve_tree
from manywheel.lddtree import SCHEMA_VERSION, load_schema, render_tree, tree_to_json
from test_ld import build, chain


def validate(data: dict[str, object]) -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    json.dumps(data)  # plain JSON data only


def test_python3_json_and_text() -> None:
    python = os.path.realpath(shutil.which("python3") or "/usr/bin/python3")
    tree = resolve_tree(python)
    data = tree_to_json(tree)
    validate(data)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["loader"]["libc"] == "glibc"
    assert data["unresolved"] == []
    text = render_tree(tree)
    assert text.startswith(f"{python} (glibc, x86_64, interpreter /lib64/ld-linux-x86-64.so.2)")
    assert "  libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 [ld.so.cache]" in text.splitlines()


def test_not_found_tree(tmp_path: Path) -> None:
    exe, alpha, beta, _gamma = chain(tmp_path, new_dtags=True)
    tree = resolve_tree(exe)
    data = tree_to_json(tree)
    validate(data)
    assert data["unresolved"] == ["libgamma.so.1"]
    lines = render_tree(tree).splitlines()
    assert f"  libalpha.so.1 => {alpha} [runpath of main]" in lines
    assert f"    libbeta.so.1 => {beta} [runpath of libalpha.so.1]" in lines
    missing = next(line for line in lines if "libgamma.so.1 =>" in line)
    assert missing.startswith("      libgamma.so.1 => not found (tried: ")
    assert "/etc/ld.so.cache (no-cache-entry: no entry for libgamma.so.1" in missing
    assert "/usr/lib64/libgamma.so.1 (missing: no such file), " in missing
    assert missing.endswith("/usr/lib/libgamma.so.1 (missing: no such file))")
    for line in lines:
        assert "Rule(" not in line and "Attempt(" not in line and "{" not in line


def test_skipped_candidates_and_sysroot_json(tmp_path: Path) -> None:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc not available")
    bad = build(tmp_path / "bad" / "libdup.so.1", soname="libdup.so.1", cc="aarch64-linux-gnu-gcc")
    good = build(tmp_path / "good" / "libdup.so.1", soname="libdup.so.1")
    exe = build(tmp_path / "main", calls="libdup", needed=(good,), exe=True)
    tree = resolve_tree(exe, LoaderConfig(library_path=(str(bad.parent), str(good.parent))))
    data = tree_to_json(tree)
    validate(data)
    node = data["dependencies"][0]
    assert node["tried"][0]["result"] == "wrong-machine"
    assert node["rule"]["kind"] == "ld-library-path"
    line = render_tree(tree).splitlines()[1]
    assert line == (
        f"  libdup.so.1 => {good} [LD_LIBRARY_PATH] (skipped: {bad} (AArch64, need x86-64))"
    )
