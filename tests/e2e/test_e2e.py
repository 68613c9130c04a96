"""The end-to-end tier (tests/e2e/run.py) under pytest, skipped unless MANYWHEEL_E2E=1.

It needs root, debootstrap and a network, and takes minutes on a fresh machine (see
docs/e2e.md), so the normal suite only checks that the in-root script stays runnable on
the oldest root's interpreter and that its ELF reading is right.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import inroot_check
import pytest
import run as e2e_run

HERE = Path(__file__).resolve().parent


def test_inroot_check_parses_as_python_3_9() -> None:
    """inroot_check.py runs on bullseye's python3 (3.9): no newer syntax."""
    source = (HERE / "inroot_check.py").read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))


def test_dt_needed_reads_the_interpreters_libraries() -> None:
    candidates = [*Path("/usr/lib").glob("*/libm.so.6"), *Path("/lib64").glob("libm.so.6")]
    libm = next((p for p in candidates if p.exists()), None)
    if libm is None or sys.byteorder != "little":
        pytest.skip("no 64-bit little-endian libm.so.6 where expected")
    assert "libc.so.6" in inroot_check.dt_needed(str(libm))
    assert inroot_check.dt_needed(__file__) == []


def test_a_suite_the_mirror_dropped_comes_from_the_archive() -> None:
    """Debian moves old releases to archive.debian.org; the tier follows, unless told
    which mirror to use."""
    mirror = "http://deb.debian.org/debian"

    def carries(answers: dict[tuple[str, str], bool | None]):  # type: ignore[no-untyped-def]
        return lambda where, suite: answers.get((where, suite), False)

    archive = e2e_run.ARCHIVE_MIRROR
    both = carries({(mirror, "bullseye"): True, (archive, "bullseye"): True})
    moved = carries({(archive, "bullseye"): True})
    gone = carries({})
    unknown = carries({(mirror, "bullseye"): None, (archive, "bullseye"): True})
    unreachable_archive = carries({(archive, "bullseye"): None})
    assert e2e_run.mirror_for("bullseye", mirror, explicit=False, has_suite=both) == mirror
    assert e2e_run.mirror_for("bullseye", mirror, explicit=False, has_suite=moved) == archive
    assert e2e_run.mirror_for("bullseye", mirror, explicit=True, has_suite=moved) == mirror
    assert e2e_run.mirror_for("bullseye", mirror, explicit=False, has_suite=gone) == mirror
    assert e2e_run.mirror_for("bullseye", mirror, explicit=False, has_suite=unknown) == mirror
    assert (
        e2e_run.mirror_for("bullseye", mirror, explicit=False, has_suite=unreachable_archive)
        == mirror
    )


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MANYWHEEL_E2E") != "1",
    reason="the end-to-end tier runs only with MANYWHEEL_E2E=1 (root, debootstrap, network)",
)
def test_end_to_end_tier() -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / "run.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
