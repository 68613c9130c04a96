"""What `manywheel show` imports, and the local stand-ins that keep it small.

`show` reads every wheel through manywheel.wheel; parsing WHEEL with :mod:`email`, the
filename with :mod:`packaging` and importing :mod:`hashlib` up front cost more than a
small wheel's whole audit. The local code must agree with those libraries exactly:
the differential tests below hold it to them on generated input.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.tags import parse_tag
from packaging.utils import InvalidWheelFilename
from packaging.utils import parse_wheel_filename as packaging_parse_wheel_filename

from manywheel.errors import InputError
from manywheel.wheel import (
    _b64,
    _canonical_tags,
    _canonicalize_name,
    _header_fields,
    _plain_version,
    _simple_wheel_filename,
    _wheel_version,
    parse_wheel_filename,
)
from wheelbuild import build_wheel

# -- WHEEL headers against email -----------------------------------------------------------

_PIECES = (
    "Wheel-Version",
    "wheel-version",
    "Tag",
    "Root-Is-Purelib",
    "Build",
    "From ",
    "From",
    ":",
    ": ",
    " ",
    "\t",
    "  ",
    "\n",
    "\r\n",
    "\r",
    "x",
    "1.0",
    "true",
    "py3-none-any",
    "Bad Name",
    "a:b",
    "é",
    "\x0c",
    "\u2028",
    "\x85",
    "\x7f",
    "~!",
    "X-Y",
    "\x00",
)


def _email_fields(text: str) -> list[tuple[str, str]]:
    message = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    return [(name, str(value)) for name, value in message.items()]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 40)))


def test_header_fields_agree_with_email_on_generated_text() -> None:
    rng = random.Random(20240611)
    for _ in range(5000):
        text = _random_text(rng)
        assert _header_fields(text) == _email_fields(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.43.0)\nRoot-Is-Purelib: false\n"
        "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n",
        "Wheel-Version: 1.0\r\nTag: a\r\n  continued\r\n\tagain\r\n\r\nTag: body\r\n",
        " leading continuation\nWheel-Version: 1.0\n",
        "From someone\nWheel-Version: 1.0\nFrom the end\n",
        "Wheel-Version: 1.0\nFrom middle\nTag: x\n",
        "Wheel-Version:1.0\nTag:\t  spaced  \nNo colon here\nTag: after\n",
        ":no name\nWheel-Version: 1.0",
        "Wheel-Version: 1.0\rRoot-Is-Purelib: true\r",
        "Tag: \udcff surrogate\nWheel-Version: 1.0\n",
        "Wheel-Version: 1.0\n" + "Tag: py3-none-any\n" * 5000,
    ],
)
def test_header_fields_agree_with_email(text: str) -> None:
    assert _header_fields(text) == _email_fields(text)


# -- filenames and tags against packaging --------------------------------------------------


def _packaging_result(base: str) -> tuple[str, str, str | None, tuple[str, ...]] | None:
    try:
        packaging_parse_wheel_filename(base)
    except InvalidWheelFilename:
        return None
    parts = base[: -len(".whl")].split("-")
    build = parts[2] if len(parts) == 6 else None
    tags: dict[str, None] = {}
    for py in parts[-3].split("."):
        for abi in parts[-2].split("."):
            for plat in parts[-1].split("."):
                tags[f"{py}-{abi}-{plat}".lower()] = None
    return parts[0], parts[1], build, tuple(tags)


_NAMES = ("numpy", "Foo_Bar", "a.b", "x__y", "é", "", "_", "A1")
_VERSIONS = (
    "1.0",
    "2.4.6",
    "1.0rc1",
    "1.0.post1.dev2",
    "1.0+local.7",
    "2.13.0+cpu",
    "1.0a1.post2.dev3",
    "1.0-1",
    "1!2",
    "v1",
    "",
    "1.0post1",
    "1.0b",
    "1.0.dev",
    "1.0+UPPER",
    "1.0+a..b",
    "1.0c1",
    "1." + "9" * 30,
    "1.\u0663",
)
_BUILDS = ("", "-1", "-1abc", "-abc", "-", "-1" + "0" * 30)
_TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "py2.py3-none-any",
    "CP311-Abi3-Linux_X86_64",
    "3-none-any",
    "py3-none-",
    "py3..py2-none-any",
    "py3-none",
)


def test_simple_filename_parse_agrees_with_packaging() -> None:
    accepted = 0
    for name in _NAMES:
        for version in _VERSIONS:
            for build in _BUILDS:
                for tags in _TAGS:
                    base = f"{name}-{version}{build}-{tags}.whl"
                    simple = _simple_wheel_filename(base)
                    expected = _packaging_result(base)
                    if simple is not None:  # the fast path only takes what packaging takes
                        accepted += 1
                        assert simple == expected, base
                    if expected is None:
                        with pytest.raises(InputError, match="not a wheel filename"):
                            parse_wheel_filename(base)
                    else:
                        assert parse_wheel_filename(base) == expected, base
    assert accepted > 100


@pytest.mark.parametrize(
    "version",
    [
        *_VERSIONS,
        "1.0rc",
        "rc1",
        "post1",
        "dev1",
        "1.post1",
        "1.dev0",
        "1a2b3",
        "1.0+",
        "+x",
        "1.2.3.4.5",
    ],
)
def test_plain_version_is_valid_pep_440(version: str) -> None:
    from packaging.version import InvalidVersion, Version

    if _plain_version(version):
        try:
            assert str(Version(version)) == version  # valid, and in normal form
        except InvalidVersion:
            pytest.fail(f"{version!r} taken as plain but packaging refuses it")


@pytest.mark.parametrize(
    "text",
    ["1.0", "2.13", "1.0.0", "1", "a.b", "1.", ".1", "\u0661.\u0662", "².1", " 1.0", "1.0 ", ""],
)
def test_wheel_version_is_the_old_regex(text: str) -> None:
    match = re.fullmatch(r"(\d+)\.(\d+)", text)
    expected = None if match is None else (int(match.group(1)), int(match.group(2)))
    assert _wheel_version(text) == expected


@pytest.mark.parametrize(
    "line", [*_TAGS, "py3-none-any-extra", "", "-", "py3-none-any.", "x.y-a-b", "py 3-none-any"]
)
def test_canonical_tags_agree_with_packaging(line: str) -> None:
    try:
        expected = tuple(sorted(str(t) for t in parse_tag(line)))
    except ValueError:
        expected = (line,)
    assert _canonical_tags(line) == expected


@pytest.mark.parametrize("name", ["Foo_Bar", "a..-_b", "A.B", "x", "--a__b--", "Straße"])
def test_canonicalize_name_is_pep_503(name: str) -> None:
    assert _canonicalize_name(name) == re.sub(r"[-_.]+", "-", name).lower()


def test_b64_is_urlsafe_nopad() -> None:
    for size in range(70):
        raw = bytes(range(256))[size : size * 3] + bytes([251, 255] * size)
        assert _b64(raw) == base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- what the commands import --------------------------------------------------------------

# Only what these imports add counts: a .pth file may have loaded anything at startup.
_SHOW_IMPORTS = """
import sys
before = set(sys.modules)
import manywheel.cli, manywheel.audit, manywheel.render
print(" ".join(sorted(set(sys.modules) - before)))
"""


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_show_path_does_not_import_heavy_modules() -> None:
    """The modules `show` loads leave out what only other commands (or unusual wheels)
    need; each of these cost a millisecond or more of every run."""
    loaded = _modules_after(_SHOW_IMPORTS)
    for unwanted in (
        "email",
        "hashlib",
        "base64",
        "packaging",
        "packaging.tags",
        "packaging.version",
        "platform",
        "subprocess",
        "socket",
        "urllib.parse",
        "logging",
        "concurrent.futures",
        "manywheel.check",
        "manywheel.host",
        "manywheel.repair",
    ):
        assert unwanted not in loaded, unwanted
    assert "manywheel.audit" in loaded  # the probe did import the show path


_SHOW_RUN = """
import sys
before = set(sys.modules)
from manywheel import cli
for extra in ([], ["--json"]):
    code = cli.main(["show", "--allow-pure-python-wheel", *extra, sys.argv[1]])
    assert code == 0, code
print(" ".join(sorted(set(sys.modules) - before)), file=sys.stderr)
"""


def test_show_run_does_not_import_heavy_modules(tmp_path: Path) -> None:
    """A whole `show` of a plain wheel (filename, WHEEL, RECORD, the text and JSON
    reports) needs none of email, packaging, hashlib: they are only the fallbacks."""
    wheel = build_wheel(
        tmp_path,
        {"demo/__init__.py": b"", "demo/data.txt": b"x" * 100},
        platform_tags=("manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        build="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", _SHOW_RUN, str(wheel)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stderr.split())
    assert "manywheel.audit" in loaded
    for unwanted in ("email", "hashlib", "packaging", "logging", "manywheel.check"):
        assert unwanted not in loaded, unwanted


# -- the console entry point ---------------------------------------------------------------

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# What the console script pip generates runs (`sys.exit(<entry point>())`).
_SCRIPT = "import sys; from manywheel.cli import console_main; sys.exit(console_main())"


def test_console_script_is_console_main() -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert 'manywheel = "manywheel.cli:console_main"' in text


def _entry(kind: str) -> list[str]:
    if kind == "module":
        return [sys.executable, "-m", "manywheel"]
    if kind == "script":
        return [sys.executable, "-c", _SCRIPT]
    installed = shutil.which("manywheel")
    if installed is None or "console_main" not in Path(installed).read_text(errors="replace"):
        pytest.skip("no installed console script calling console_main (reinstall to test it)")
    return [installed]


ENTRIES = ["module", "script", "installed"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_console_entry_flushes_everything_through_a_pipe(entry: str) -> None:
    """The console entry leaves with os._exit after flushing: all output must arrive,
    here a third of a megabyte, far more than the pipe and stdout buffers hold."""
    result = subprocess.run(
        [*_entry(entry), "policies", "--json"], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) > 100_000
    assert json.loads(result.stdout)  # the whole document arrived
    assert result.stderr == b""
    text = subprocess.run([*_entry(entry), "policies"], stdout=subprocess.PIPE, check=True)
    assert text.stdout.endswith(b"\n")


@pytest.mark.parametrize("entry", ENTRIES)
def test_console_entry_keeps_the_exit_code(entry: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing-1.0-py3-none-any.whl"
    result = subprocess.run(
        [*_entry(entry), "show", str(missing)], capture_output=True, check=False
    )
    assert result.returncode == 3
    assert result.stdout == b""
    assert result.stderr.decode().startswith("manywheel: error: ")
    assert result.stderr.endswith(b"\n")
    usage = subprocess.run([*_entry(entry), "--no-such-option"], capture_output=True, check=False)
    assert usage.returncode == 2
    assert b"unrecognized arguments" in usage.stderr


@pytest.mark.parametrize("entry", ["module", "script"])
def test_console_entry_survives_a_closed_pipe(entry: str) -> None:
    """`manywheel policies --json | head -c 10`: the reader leaves early; no traceback,
    exit 0, as before the entry point ended with os._exit."""
    command = " ".join(shlex.quote(word) for word in _entry(entry))
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} policies --json | head -c 10"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 10
    assert b"Traceback" not in result.stderr
    assert b"BrokenPipe" not in result.stderr


def test_console_entry_collects_garbage_less_often() -> None:
    """The console entry raises the collector's thresholds for the run (cli._GC_THRESHOLDS);
    the library entry cli.main leaves the process's settings alone."""
    probe = (
        "import gc, io, json, sys; from manywheel import cli; before = gc.get_threshold(); "
        "sys.stdout = io.StringIO(); cli.main(['--version']); sys.stdout = sys.__stdout__; "
        "library = gc.get_threshold(); "
        "cli.main = lambda argv=None: print(json.dumps([before, library, gc.get_threshold()])) "
        "or 0; cli.console_main()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, library, during = json.loads(done.stdout)
    assert before == library == [700, 10, 10]  # CPython's default, untouched by cli.main
    assert during == [50_000, 20, 20]
