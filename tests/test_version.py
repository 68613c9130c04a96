"""The version is written once (manywheel/_version.py) and costs no import at run time."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest

import manywheel
from manywheel._version import __version__


def test_package_exports_the_version() -> None:
    assert manywheel.__version__ == __version__


def test_cli_version_is_the_installed_distribution_version() -> None:
    try:
        installed = version("manywheel")
    except PackageNotFoundError:
        pytest.skip("manywheel is not installed (running from a bare source tree)")
    done = subprocess.run(
        [sys.executable, "-m", "manywheel", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"manywheel {installed}"


def test_import_does_not_load_importlib_metadata() -> None:
    code = "import sys, manywheel.cli; print('importlib.metadata' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
