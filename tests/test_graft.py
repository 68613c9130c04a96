"""The pure parts of the graft plan: names, order, search paths, tags, WHEEL text."""

from __future__ import annotations

import subprocess
import sys

from manywheel.graft import (
    Launcher,
    graft_name,
    launcher_text,
    retag_filename,
    retag_wheel_text,
    strongly_connected,
)


def test_graft_name_keeps_base_and_version_suffix() -> None:
    digest = "1a2b3c4d" + "0" * 56
    assert graft_name("libyaml-0.so.2.0.9", digest) == "libyaml-0-1a2b3c4d.so.2.0.9"
    assert graft_name("libfoo.so", digest) == "libfoo-1a2b3c4d.so"
    assert graft_name("libfoo.sox.so.1", digest) == "libfoo.sox-1a2b3c4d.so.1"
    assert graft_name("weird", digest) == "weird-1a2b3c4d"


def test_components_leaves_first() -> None:
    edges = {"top": ["mid"], "mid": ["leaf"], "leaf": []}
    assert strongly_connected(edges) == (("leaf",), ("mid",), ("top",))


def test_cycle_is_one_component_after_its_dependencies() -> None:
    edges = {"ext": ["a"], "a": ["b"], "b": ["a", "c"], "c": []}
    assert strongly_connected(edges) == (("c",), ("a", "b"), ("ext",))


def test_components_are_deterministic() -> None:
    one = {"x": ["y", "z"], "y": [], "z": []}
    two = {"z": [], "y": [], "x": ["z", "y"]}
    assert strongly_connected(one) == strongly_connected(two) == (("y",), ("z",), ("x",))


def test_retag_filename() -> None:
    name = "demo-1.0-1-cp311-cp311-linux_x86_64.whl"
    tags = ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    assert retag_filename(name, tags) == (
        "demo-1.0-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )


def test_retag_wheel_text_replaces_tag_lines_in_place() -> None:
    text = "Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\nBuild: 1\n"
    out = retag_wheel_text(text, "demo-1.0-cp311.cp312-abi3-x.whl", ["p1", "p2"])
    assert out == (
        "Wheel-Version: 1.0\n"
        "Tag: cp311-abi3-p1\nTag: cp311-abi3-p2\nTag: cp312-abi3-p1\nTag: cp312-abi3-p2\n"
        "Build: 1\n"
    )


def test_retag_wheel_text_without_tags_appends() -> None:
    out = retag_wheel_text("Wheel-Version: 1.0\n\n", "d-1-py3-none-any.whl", ["p"])
    assert out == "Wheel-Version: 1.0\nTag: py3-none-p\n"


def test_launcher_is_valid_python_that_reports_a_missing_target() -> None:
    text = launcher_text(Launcher("demo-1.0.data/scripts/tool", "demo.scripts/tool"), "demo")
    assert text.startswith("#!python\n")
    compile(text, "tool", "exec")
    run = subprocess.run(
        [sys.executable, "-I", "-c", text], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "tool: cannot find demo.scripts/tool on sys.path" in run.stderr
