"""Build real wheel archives at test time from a mapping of member paths to contents.

No wheel is checked in: a test says which members it wants (bytes, or a ``Path`` to a
file compiled by ``fixtures.py``) and :func:`build_wheel` writes a PEP 427 zip with a
correct ``.dist-info/WHEEL``, ``METADATA`` and ``RECORD`` (sha256 and size of every
member). Keyword options break exactly one thing at a time -- a wrong RECORD hash or
size, an entry missing from RECORD, a RECORD line for a file that is not there, WHEEL
``Tag:`` lines that disagree with the filename -- so each consistency verdict of the
audit can be forced by a test that says what it broke.

Output is deterministic (fixed timestamps, members in the order given, dist-info last),
so two builds of the same spec are byte-identical.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

#: 1980-01-01 is the earliest date a zip entry can carry; fixed for reproducibility.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

MemberContent = bytes | Path


def record_hash(data: bytes) -> str:
    """The RECORD hash field of ``data``: ``sha256=`` + urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def dist_info_dir(name: str, version: str) -> str:
    """``{name}-{version}.dist-info`` with the name escaped as in the wheel filename."""
    return f"{_escape(name)}-{version}.dist-info"


def data_dir(name: str, version: str) -> str:
    """``{name}-{version}.data``: members under ``<this>/purelib/`` install to purelib."""
    return f"{_escape(name)}-{version}.data"


def _escape(name: str) -> str:
    # PEP 427 / binary distribution format: runs of -_. become a single underscore.
    out: list[str] = []
    for ch in name:
        if ch in "-_.":
            if not out or out[-1] != "_":
                out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def wheel_filename(
    name: str,
    version: str,
    python_tag: str,
    abi_tag: str,
    platform_tags: Sequence[str],
    *,
    build: str | None = None,
) -> str:
    """The PEP 427 filename; several platform tags are joined with ``.`` (compressed set)."""
    parts = [_escape(name), version]
    if build is not None:
        parts.append(build)
    parts += [python_tag, abi_tag, ".".join(platform_tags)]
    return "-".join(parts) + ".whl"


def expanded_tags(python_tag: str, abi_tag: str, platform_tags: Sequence[str]) -> list[str]:
    """Every ``py-abi-plat`` triple a compressed filename tag set stands for, in order."""
    return [
        f"{py}-{abi}-{plat}"
        for py in python_tag.split(".")
        for abi in abi_tag.split(".")
        for plat in platform_tags
    ]


def build_wheel(
    outdir: Path,
    members: Mapping[str, MemberContent],
    *,
    name: str = "demo",
    version: str = "1.0",
    python_tag: str = "cp311",
    abi_tag: str = "cp311",
    platform_tags: Sequence[str] = ("linux_x86_64",),
    build: str | None = None,
    root_is_purelib: bool = False,
    wheel_tags: Sequence[str] | None = None,
    extra_wheel_lines: Sequence[str] = (),
    filename: str | None = None,
    bad_hash: Collection[str] = (),
    bad_size: Collection[str] = (),
    omit_from_record: Collection[str] = (),
    extra_record_lines: Sequence[str] = (),
    executable: Collection[str] | None = None,
) -> Path:
    """Write a wheel into ``outdir`` and return its path.

    ``members`` maps archive paths (``pkg/_ext.so``, ``demo-1.0.data/purelib/x.so``) to
    bytes or to a file whose bytes are copied. The dist-info files are generated; a
    member given under the dist-info directory replaces the generated one (except
    RECORD, always generated).

    Consistency options (each names member paths, or whole RECORD lines):

    * ``wheel_tags`` -- the WHEEL ``Tag:`` lines; default: the filename's expanded tags.
    * ``filename`` -- use this file name instead of the one derived from the tags.
    * ``bad_hash`` / ``bad_size`` -- RECORD carries a wrong hash / size for these paths.
    * ``omit_from_record`` -- these paths have no RECORD line.
    * ``extra_record_lines`` -- verbatim lines appended to RECORD (e.g. for a file
      that is not in the archive).
    * ``executable`` -- paths stored with mode 0755; default: every member given as a
      ``Path`` or starting with the ELF magic.
    """
    dist_info = dist_info_dir(name, version)
    contents: dict[str, bytes] = {}
    for path, content in members.items():
        contents[path] = content.read_bytes() if isinstance(content, Path) else content
    if executable is None:
        executable = {
            path
            for path, content in members.items()
            if isinstance(content, Path) or contents[path][:4] == b"\x7fELF"
        }

    tags = expanded_tags(python_tag, abi_tag, platform_tags)
    wheel_lines = [
        "Wheel-Version: 1.0",
        "Generator: manywheel-tests (wheelbuild.py)",
        f"Root-Is-Purelib: {'true' if root_is_purelib else 'false'}",
    ]
    wheel_lines += [f"Tag: {tag}" for tag in (tags if wheel_tags is None else wheel_tags)]
    if build is not None:
        wheel_lines.append(f"Build: {build}")
    wheel_lines += list(extra_wheel_lines)
    generated = {
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: a wheel built by the manywheel test suite\n"
        ).encode(),
        f"{dist_info}/WHEEL": ("\n".join(wheel_lines) + "\n").encode(),
    }
    for path, data in generated.items():
        contents.setdefault(path, data)
    record_path = f"{dist_info}/RECORD"
    contents.pop(record_path, None)

    record_lines: list[str] = []
    for path, data in contents.items():
        if path in omit_from_record:
            continue
        digest = record_hash(data + b"corrupted" if path in bad_hash else data)
        size = len(data) + 1 if path in bad_size else len(data)
        record_lines.append(f"{_csv_field(path)},{digest},{size}")
    record_lines += list(extra_record_lines)
    record_lines.append(f"{record_path},,")
    contents[record_path] = ("\n".join(record_lines) + "\n").encode()

    if filename is None:
        filename = wheel_filename(name, version, python_tag, abi_tag, platform_tags, build=build)
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / filename
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if path in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return out


def _csv_field(value: str) -> str:
    # RECORD is CSV: quote a path holding a comma or quote (rare, but legal).
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
