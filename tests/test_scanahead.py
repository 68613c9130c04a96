"""The scan started before the audit's modules are imported (manywheel.scanahead): the
audit that takes it over reports exactly what an audit scanning by itself reports,
faults included, in the same order."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import FixtureSet
from manywheel.audit import AuditOptions, audit_wheel
from manywheel.errors import ManywheelError
from manywheel.memberfacts import scan_archive
from manywheel.render import document_json_text
from manywheel.scanahead import ScanAhead
from manywheel.zipread import ZipArchive
from test_archive import patch_entry
from wheelbuild import build_wheel

SHOW = AuditOptions(verify_hashes=False)


def _outcome(path: Path, *, ahead: bool) -> str:
    """The JSON report, or the error's one line."""
    started = ScanAhead(path) if ahead else None
    try:
        return document_json_text([audit_wheel(path, SHOW, ahead=started)])
    except ManywheelError as exc:
        return f"error: {exc}"
    finally:
        if started is not None:
            started.close()


@pytest.fixture
def wheel(native_fixtures: FixtureSet, tmp_path: Path) -> Path:
    members = {"pkg/_ext.so": native_fixtures.ext, "pkg/libv.so": native_fixtures.libversioned}
    return build_wheel(tmp_path, members)


def test_facts_are_those_of_a_scan_of_its_own(wheel: Path) -> None:
    ahead = ScanAhead(wheel)
    with ahead.open() as archive:
        facts = ahead.facts()
    with ZipArchive(wheel) as archive:
        assert facts == scan_archive(archive, symbols="imports").facts
    assert len(facts) == 2


def test_the_report_does_not_depend_on_the_early_start(wheel: Path) -> None:
    assert _outcome(wheel, ahead=True) == _outcome(wheel, ahead=False)
    assert '"best_tag"' in _outcome(wheel, ahead=True)


def test_faults_come_in_the_same_order(native_fixtures: FixtureSet, tmp_path: Path) -> None:
    members = {"pkg/tool": native_fixtures.ext}
    corrupt = build_wheel(tmp_path / "member", members)
    patch_entry(corrupt, "pkg/tool", "crc", 0)
    both = build_wheel(
        tmp_path / "both", {**members, "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 9.0\n"}
    )
    patch_entry(both, "pkg/tool", "crc", 0)
    junk = tmp_path / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(b"no zip here" * 20)
    cases = {
        corrupt: "CRC-32 mismatch",
        both: "Wheel-Version",
        junk: "not a zip archive",
        tmp_path / "missing-1.0-py3-none-any.whl": "cannot read",
        tmp_path: "is a directory",
    }
    for path, message in cases.items():
        early, own = _outcome(path, ahead=True), _outcome(path, ahead=False)
        assert early == own, path
        assert early.startswith("error: ") and message in early, early


def test_close_without_taking_over_closes_the_archive(wheel: Path) -> None:
    ahead = ScanAhead(wheel)
    ahead.close()
    assert ahead._archive is not None
    with pytest.raises(ValueError, match="closed archive"):
        ahead._archive.read_raw(ahead._archive.members[0], 0, 1)


def test_an_early_scan_serves_one_path_without_hashing(wheel: Path, tmp_path: Path) -> None:
    ahead = ScanAhead(wheel)
    try:
        with pytest.raises(ValueError, match="serves one path"):
            audit_wheel(wheel, AuditOptions(verify_hashes=True), ahead=ahead)
        with pytest.raises(ValueError, match="serves one path"):
            audit_wheel(tmp_path / "other-1.0-py3-none-any.whl", SHOW, ahead=ahead)
    finally:
        ahead.close()
