"""What a wheel says about itself: filename, ``.dist-info/WHEEL``, ``RECORD``, ``.data``.

The wheel format is PEP 427 (as amended by PEP 491 and maintained as the PyPA "Binary
distribution format" specification); ``RECORD`` comes from PEP 376. This module parses
those three sources of truth and checks them against each other and against the archive:

* :func:`parse_wheel_filename` -- ``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``
  with its compressed tag sets expanded in a deterministic order;
* :func:`parse_wheel_metadata` -- the ``WHEEL`` file (email-header format);
* :func:`find_dist_info` -- the one ``{name}-{version}.dist-info`` directory;
* :func:`parse_record` / :func:`check_record` -- ``RECORD`` rows and their agreement with
  the archive members (hash, size, missing and extra entries);
* :func:`check_tags` / :func:`purelib_note` -- filename tags against ``WHEEL`` ``Tag:`` lines;
* :func:`read_wheel` -- all of the above for one :class:`~manywheel.zipread.ZipArchive`.

Everything except :func:`read_wheel` and :func:`hash_member` is pure: text in, values out.
Inconsistencies an installer could live with become :class:`~manywheel.report.Evidence`
(kinds ``"record"`` and ``"tag-mismatch"``); what makes the wheel unreadable as a wheel
(no WHEEL, no RECORD, an unparsable row, a future major Wheel-Version) raises
:class:`~manywheel.errors.InputError` with one line naming the file.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from manywheel.errors import InputError
from manywheel.report import Evidence, WheelIdentity
from manywheel.value import Value
from manywheel.zipread import ZipArchive, ZipMember

# email, hashlib and packaging are imported where they are needed, not here: `show`
# reads every wheel through this module, and those imports (with socket, datetime,
# urllib, platform, subprocess... behind them) cost more than parsing a WHEEL file.
# The common case is handled locally; anything unusual goes to the library that
# defines the behaviour (see _header_fields, _simple_wheel_filename, _simple_tags).

__all__ = [
    "DATA_SCHEMES",
    "STRONG_HASHES",
    "SUPPORTED_WHEEL_MAJOR",
    "WEAK_HASHES",
    "MemberDigest",
    "RecordEntry",
    "RecordHasher",
    "WheelInfo",
    "WheelMetadata",
    "check_record",
    "check_tags",
    "find_dist_info",
    "format_record",
    "hash_member",
    "member_digests",
    "parse_record",
    "parse_wheel_filename",
    "parse_wheel_metadata",
    "purelib_note",
    "read_wheel",
    "record_algorithms",
    "record_hash",
]

SUPPORTED_WHEEL_MAJOR: Final = 1
"""PEP 427: an installer "must fail if Wheel-Version has a greater major version"."""

SUPPORTED_WHEEL_VERSION: Final = (1, 0)

STRONG_HASHES: Final = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
"""RECORD hash algorithms accepted: PEP 427 asks for "sha256 or better"."""

WEAK_HASHES: Final = frozenset({"md5", "sha1", "sha224", "sha3_224"})
"""Algorithms hashlib knows but PEP 427 refuses (md5 and sha1 by name, the rest are weaker
than sha256)."""

DATA_SCHEMES: Final = ("purelib", "platlib", "headers", "scripts", "data")
"""The install schemes a ``.data`` directory may hold (PEP 427, "The .data directory")."""

SIGNATURE_SUFFIXES: Final = (".jws", ".p7s")
"""``RECORD.jws`` / ``RECORD.p7s`` sign RECORD (PEP 427, "Signed wheel files"); they are
not hashed in RECORD, and RECORD itself cannot hash itself."""

MAX_WHEEL_SIZE: Final = 1024 * 1024
MAX_RECORD_SIZE: Final = 256 * 1024 * 1024

_FILENAME_FORMAT: Final = "PEP 427: {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl"


# -- filename ------------------------------------------------------------------------------


def _wheel_version(text: str) -> tuple[int, int] | None:
    """``MAJOR.MINOR`` (decimal digits, ``(\\d+)\\.(\\d+)``) as numbers, else None."""
    major, dot, minor = text.partition(".")
    if not dot or not major.isdecimal() or not minor.isdecimal():
        return None
    return int(major), int(minor)


def _plain_number(text: str) -> bool:
    return text.isdigit() and len(text) <= 18  # ASCII digits here: callers check isascii


def _plain_version(version: str) -> bool:
    """Whether ``version`` is a PEP 440 version in normal form of the everyday kind:
    ``N(.N)*[{a|b|rc}N][.postN][.devN][+local]`` in ASCII, numbers of at most 18 digits,
    local segments lower-case letters and digits. Every such string is valid (packaging
    parses it); False says nothing either way."""
    if not version.isascii():
        return False
    public, plus, local = version.partition("+")
    if plus and not all(p.isalnum() and p == p.lower() for p in local.split(".")):
        return False
    parts = public.split(".")
    if parts[-1].startswith("dev") and not _plain_number(parts.pop()[3:]):
        return False
    if parts and parts[-1].startswith("post") and not _plain_number(parts.pop()[4:]):
        return False
    if not parts:
        return False
    for marker in ("rc", "a", "b"):
        release, found, number = parts[-1].partition(marker)
        if found:
            if not _plain_number(number):
                return False
            parts[-1] = release
            break
    return all(_plain_number(p) for p in parts)


def _plain_word(text: str) -> bool:
    """ASCII letters, digits, ``.`` and ``_`` only, at least one."""
    return text.isascii() and (text.replace(".", "").replace("_", "") or "_").isalnum()


def _simple_tags(tag: str) -> tuple[str, ...] | None:
    """The tags of a compressed tag set ``python-abi-platform`` expanded and lower-cased
    in the order written, without repeats, when it is plainly valid (three parts, no
    empty component, identifiers as interpreters); None for anything else.

    What :func:`packaging.tags.parse_tag` gives (it lower-cases each part) for every
    tag set that every packaging release accepts; the rest is left to packaging."""
    components = [component.split(".") for component in tag.split("-")]
    if len(components) != 3 or any("" in parts for parts in components):
        return None
    pythons, abis, platforms = components
    if not all(py.isidentifier() for py in pythons):
        return None
    tags: dict[str, None] = {}
    for py in pythons:
        for abi in abis:
            for plat in platforms:
                tags[f"{py}-{abi}-{plat}".lower()] = None
    return tuple(tags)


def _simple_wheel_filename(base: str) -> tuple[str, str, str | None, tuple[str, ...]] | None:
    """:func:`parse_wheel_filename` for a plainly valid filename (ASCII name, a PEP 440
    version in normal form, a numeric build tag, plain tags); None when packaging has
    to decide. Whatever this accepts, every packaging release accepts alike."""
    if not base.endswith(".whl"):
        return None
    parts = base[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return None
    name, version = parts[0], parts[1]
    build = parts[2] if len(parts) == 6 else None
    if "__" in name or not _plain_word(name) or not _plain_version(version):
        return None
    if build is not None and not (_plain_word(build) and build[0].isdigit() and len(build) <= 18):
        return None
    tags = _simple_tags("-".join(parts[-3:]))
    if tags is None:
        return None
    return name, version, build, tags


def parse_wheel_filename(filename: str) -> tuple[str, str, str | None, tuple[str, ...]]:
    """Split a wheel filename (PEP 427 "File name convention") into its parts.

    Returns ``(name, version, build, tags)``: name, version and build exactly as written
    in the filename (``build`` is None when absent), and every tag of the compressed tag
    set (PEP 425 "Compressed Tag Sets") expanded as ``python x abi x platform``, each in
    the order written, without repeats. Validation is :mod:`packaging`'s; ``filename`` may
    be a path, only its last component is parsed. Raises :class:`InputError`.
    """
    base = os.path.basename(filename)
    simple = _simple_wheel_filename(base)
    if simple is not None:
        return simple
    from packaging.tags import Tag  # noqa: PLC0415 -- only for unusual filenames
    from packaging.utils import InvalidWheelFilename  # noqa: PLC0415
    from packaging.utils import parse_wheel_filename as packaging_parse  # noqa: PLC0415

    try:
        packaging_parse(base)
    except InvalidWheelFilename as exc:
        raise InputError(f"{filename}: not a wheel filename ({_FILENAME_FORMAT}): {exc}") from None
    parts = base[: -len(".whl")].split("-")
    # packaging accepted it: 5 or 6 dash-separated parts.
    name, version = parts[0], parts[1]
    build = parts[2] if len(parts) == 6 else None
    pythons, abis, platforms = (p.split(".") for p in parts[-3:])
    tags: dict[str, None] = {}
    for py in pythons:
        for abi in abis:
            for plat in platforms:
                tags[str(Tag(py, abi, plat))] = None
    return name, version, build, tuple(tags)


def _platform_parts(tags: Iterable[str]) -> tuple[str, ...]:
    platforms: dict[str, None] = {}
    for tag in tags:
        platforms[tag.rsplit("-", 1)[-1]] = None
    return tuple(platforms)


# -- WHEEL ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WheelMetadata(Value):
    """The ``{name}-{version}.dist-info/WHEEL`` file (PEP 427 "File contents").

    ``tags`` are the ``Tag:`` lines in file order; ``build`` the optional ``Build:`` line.
    ``notes`` are things worth saying that do not make the file unusable (a newer minor
    Wheel-Version, which PEP 427 says to warn about; a missing or odd Root-Is-Purelib).
    """

    wheel_version: str
    generator: str | None
    root_is_purelib: bool
    tags: tuple[str, ...]
    build: str | None
    notes: tuple[str, ...] = ()

    @property
    def version_tuple(self) -> tuple[int, int]:
        """``Wheel-Version`` as ``(major, minor)``."""
        numbers = _wheel_version(self.wheel_version)
        assert numbers is not None  # checked by parse_wheel_metadata
        return numbers


def parse_wheel_metadata(text: str, source: str) -> WheelMetadata:
    """Parse a WHEEL file; ``source`` names it in messages (e.g. ``x.whl: x.dist-info/WHEEL``).

    The format is email headers (RFC 822 as read by :mod:`email`, like METADATA), so a
    header after the first blank line is not a header: that is what installers see too.
    A missing or malformed ``Wheel-Version``, or a major version above 1, raises
    :class:`InputError` (PEP 427: the installer "must fail").
    """
    fields = _header_fields(text)
    versions = [v.strip() for v in _get_all(fields, "Wheel-Version")]
    if not versions:
        raise InputError(f"{source}: no Wheel-Version header (PEP 427 requires one)")
    if len(set(versions)) > 1:
        raise InputError(f"{source}: conflicting Wheel-Version headers: {', '.join(versions)}")
    version = versions[0]
    numbers = _wheel_version(version)
    if numbers is None:
        raise InputError(f"{source}: Wheel-Version {version!r} is not of the form MAJOR.MINOR")
    major, minor = numbers
    if major > SUPPORTED_WHEEL_MAJOR:
        raise InputError(
            f"{source}: Wheel-Version {version} is not supported "
            f"(manywheel reads major version {SUPPORTED_WHEEL_MAJOR}; PEP 427: must fail)"
        )
    notes: list[str] = []
    if (major, minor) > SUPPORTED_WHEEL_VERSION:
        notes.append(
            f"{source}: Wheel-Version {version} is newer than 1.0; read as 1.0 (PEP 427: warn)"
        )
    purelib_value = _get(fields, "Root-Is-Purelib")
    if purelib_value is None:
        notes.append(f"{source}: no Root-Is-Purelib header; taken as false")
        root_is_purelib = False
    else:
        lowered = purelib_value.strip().lower()
        root_is_purelib = lowered == "true"
        if lowered not in ("true", "false"):
            notes.append(
                f"{source}: Root-Is-Purelib is {purelib_value.strip()!r}, "
                "neither true nor false; taken as false"
            )
    generator = _get(fields, "Generator")
    build = _get(fields, "Build")
    return WheelMetadata(
        wheel_version=version,
        generator=None if generator is None else generator.strip(),
        root_is_purelib=root_is_purelib,
        tags=tuple(t.strip() for t in _get_all(fields, "Tag")),
        build=None if build is None else build.strip(),
        notes=tuple(notes),
    )


def _continues_headers(line: str) -> bool:
    """Whether ``line`` belongs to the header block: ``email.feedparser.headerRE``,
    ``From |[\\041-\\071\\073-\\176]*:|[\\t ]`` (a field name of printable ASCII but
    space and colon, then a colon; a continuation; an envelope line)."""
    if line[0] in " \t" or line.startswith("From "):
        return True
    colon = line.find(":")
    name = line[:colon]
    return colon >= 0 and name.isascii() and name.isprintable() and " " not in name


def _header_fields(text: str) -> list[tuple[str, str]]:
    """The header fields of ``text`` in order, ``(name, value)``, exactly as
    ``email.parser.HeaderParser(policy=email.policy.compat32)`` reads them (and
    ``str()`` of each value): the block ends at the first line that is neither a
    header nor a continuation (normally the blank line); a continuation line is
    appended to the value with its line break and indentation; the value loses the
    blank after the colon and its final line break. A text that is not pure Unicode
    (lone surrogates, which email wraps in a Header) goes to :mod:`email` itself.

    This is feedparser's ``_parse_headers`` without :mod:`email`, which with its
    imports (socket, datetime, urllib...) costs more than `show` spends on a wheel."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _email_header_fields(text)
    block: list[str] = []
    for line in io.StringIO(text, newline="").readlines():  # splits at \r\n, \r, \n
        if not _continues_headers(line):
            break
        block.append(line)
    fields: list[tuple[str, str]] = []
    name = ""
    lines: list[str] = []

    def flush() -> None:
        first = lines[0].split(":", 1)[1].lstrip(" \t")
        fields.append((name, (first + "".join(lines[1:])).rstrip("\r\n")))

    for number, line in enumerate(block):
        if line[0] in " \t":
            if name:  # a continuation before any header is dropped (a defect to email)
                lines.append(line)
            continue
        if name:
            flush()
            name, lines = "", []
        if line.startswith("From "):
            if number == 0:  # a Unix "From " envelope line, not a header
                continue
            if number == len(block) - 1:  # the first body line, says feedparser
                return fields
            continue  # a misplaced envelope line: a defect, ignored
        colon = line.find(":")
        if colon == 0:  # no field name: a defect, ignored
            continue
        name, lines = line[:colon], [line]
    if name:
        flush()
    return fields


def _email_header_fields(text: str) -> list[tuple[str, str]]:
    import email.parser  # noqa: PLC0415 -- only for text with lone surrogates
    import email.policy  # noqa: PLC0415

    message = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    return [(name, str(value)) for name, value in message.items()]


def _get_all(fields: Sequence[tuple[str, str]], name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in order: ``Message.get_all``."""
    wanted = name.lower()
    return [value for key, value in fields if key.lower() == wanted]


def _get(fields: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive): ``Message.get``."""
    values = _get_all(fields, name)
    return values[0] if values else None


# -- dist-info / data directories ----------------------------------------------------------


def _top_level_dirs(names: Iterable[str], suffix: str) -> list[str]:
    found: dict[str, None] = {}
    for name in names:
        top, sep, _ = name.partition("/")
        if sep and top.endswith(suffix):
            found[top] = None
    return list(found)


def _canonicalize_name(name: str) -> str:
    """PEP 503 normalization, ``re.sub(r"[-_.]+", "-", name).lower()``: what
    :func:`packaging.utils.canonicalize_name` computes."""
    value = name.lower().replace("_", "-").replace(".", "-")
    while "--" in value:
        value = value.replace("--", "-")
    return value


def _same_project(directory: str, suffix: str, name: str, version: str) -> bool:
    """Whether ``{dname}-{dversion}{suffix}`` names project ``name`` at ``version``.

    Names compare after PEP 503 normalization, versions after PEP 440 normalization
    (falling back to the exact string for a version packaging cannot parse).
    """
    stem = directory[: -len(suffix)]
    dname, sep, dversion = stem.rpartition("-")
    if not sep or _canonicalize_name(dname) != _canonicalize_name(name):
        return False
    if dversion == version:  # equal as written: equal as versions, or both unparsable
        return True
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    try:
        return Version(dversion) == Version(version)
    except InvalidVersion:
        return dversion == version


def find_dist_info(names: Sequence[str], name: str, version: str, *, source: str = "wheel") -> str:
    """The wheel's ``{name}-{version}.dist-info`` directory (no trailing slash).

    PEP 427 puts exactly one ``.dist-info`` directory at the root of the archive; it
    must belong to the distribution the filename names (PEP 503 name normalization,
    PEP 440 version normalization: ``Foo_Bar-1.0`` matches ``foo_bar-1.0.0``). None,
    several, or one for another project raise :class:`InputError` listing what was found.
    """
    candidates = _top_level_dirs(names, ".dist-info")
    expected = f"{name}-{version}.dist-info"
    if len(candidates) != 1:
        found = ", ".join(candidates) if candidates else "none"
        raise InputError(
            f"{source}: expected one .dist-info directory ({expected}), "
            f"found {len(candidates)}: {found}"
        )
    if not _same_project(candidates[0], ".dist-info", name, version):
        raise InputError(
            f"{source}: the .dist-info directory {candidates[0]} does not match "
            f"the filename's {name} {version} (expected {expected})"
        )
    return candidates[0]


def _find_data_dir(names: Sequence[str], name: str, version: str, source: str) -> str | None:
    """The ``{name}-{version}.data`` directory (PEP 427), if the wheel has one."""
    matching = [
        d for d in _top_level_dirs(names, ".data") if _same_project(d, ".data", name, version)
    ]
    if len(matching) > 1:
        raise InputError(
            f"{source}: more than one .data directory for {name} {version}: {', '.join(matching)}"
        )
    return matching[0] if matching else None


# -- RECORD --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RecordEntry(Value):
    """One RECORD row (PEP 376 "RECORD", PEP 427 "The .dist-info directory").

    ``hash_digest`` is the urlsafe base64 digest without ``=`` padding, as written;
    ``hash_algorithm`` and ``hash_digest`` are None for an empty hash field, ``size``
    is None for an empty size field. ``line`` is where the row ends in RECORD (1-based).
    """

    path: str
    hash_algorithm: str | None
    hash_digest: str | None
    size: int | None
    line: int = 0

    def to_row(self) -> tuple[str, str, str]:
        """The three CSV fields of this entry."""
        hash_field = (
            "" if self.hash_algorithm is None else f"{self.hash_algorithm}={self.hash_digest}"
        )
        return self.path, hash_field, "" if self.size is None else str(self.size)


def parse_record(text: str, source: str) -> tuple[RecordEntry, ...]:
    """Parse RECORD: CSV rows ``path,algorithm=digest,size`` (PEP 376, PEP 427).

    Paths may hold commas (then they are quoted, CSV style). Blank lines are skipped.
    A row without exactly three fields, with an empty path, a hash field without
    ``=``, or a size that is not a non-negative decimal integer raises
    :class:`InputError` naming ``source`` and the line number.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    entries: list[RecordEntry] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            entries.append(_record_row(row, source, line))
    except csv.Error as exc:
        raise InputError(f"{source}: line {reader.line_num}: malformed CSV ({exc})") from None
    return tuple(entries)


def _record_row(row: Sequence[str], source: str, line: int) -> RecordEntry:
    where = f"{source}: line {line}"
    if len(row) != 3:
        raise InputError(f"{where}: expected 3 fields (path,hash,size), found {len(row)}")
    path, hash_field, size_field = row
    if not path:
        raise InputError(f"{where}: empty path")
    algorithm: str | None = None
    digest: str | None = None
    if hash_field:
        algorithm, sep, digest = hash_field.partition("=")
        if not sep or not algorithm or not digest:
            raise InputError(f"{where}: hash {hash_field!r} is not of the form algorithm=digest")
    size: int | None = None
    if size_field:
        if not size_field.isascii() or not size_field.isdigit():
            raise InputError(f"{where}: size {size_field!r} is not a non-negative integer")
        size = int(size_field)
    return RecordEntry(path, algorithm, digest, size, line)


def format_record(entries: Iterable[RecordEntry]) -> str:
    """RECORD text for ``entries`` (CSV, ``\\n`` line ends, quoting only where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        writer.writerow(entry.to_row())
    return out.getvalue()


def record_algorithms(entries: Iterable[RecordEntry]) -> frozenset[str]:
    """The strong hash algorithms RECORD uses (lower case): what :func:`hash_member` needs."""
    return frozenset(
        e.hash_algorithm.lower()
        for e in entries
        if e.hash_algorithm is not None and e.hash_algorithm.lower() in STRONG_HASHES
    )


# -- hashing -------------------------------------------------------------------------------


_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    """urlsafe base64 without padding: RECORD's digest encoding (PEP 427).

    What ``base64.urlsafe_b64encode`` does, without importing :mod:`base64`."""
    import binascii  # noqa: PLC0415 -- only when hashing

    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MemberDigest(Value):
    """What is known of one member's content, to compare against its RECORD row.

    ``sha256`` is the urlsafe-base64-nopad digest, or None when the caller did not hash
    the member: then only ``size`` (take it from the central directory) is compared.
    ``others`` holds digests for other strong algorithms RECORD may use (sorted pairs
    ``(algorithm, digest)``); a RECORD hash in an algorithm not computed here is not
    compared (the size still is).
    """

    sha256: str | None
    size: int
    others: tuple[tuple[str, str], ...] = ()

    def digest(self, algorithm: str) -> str | None:
        """The digest for ``algorithm`` (lower case), or None when not computed."""
        if algorithm == "sha256":
            return self.sha256
        for name, value in self.others:
            if name == algorithm:
                return value
        return None


class RecordHasher:
    """Incremental hashing of one member's content: :meth:`update` chunks, then :meth:`result`.

    Computes sha256 always, plus any other ``algorithms`` from :data:`STRONG_HASHES`.
    """

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        names = sorted({"sha256", *(a.lower() for a in algorithms)})
        unknown = [a for a in names if a not in STRONG_HASHES]
        if unknown:
            raise ValueError(f"not a strong RECORD hash algorithm: {', '.join(unknown)}")
        import hashlib  # noqa: PLC0415 -- only when hashing (check, --verify-record, repair)

        self._hashes = {name: hashlib.new(name) for name in names}
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for h in self._hashes.values():
            h.update(data)
        self._size += len(data)

    def result(self) -> MemberDigest:
        digests = {name: _b64(h.digest()) for name, h in self._hashes.items()}
        sha256 = digests.pop("sha256")
        return MemberDigest(sha256, self._size, tuple(sorted(digests.items())))


def record_hash(data: bytes, algorithms: Iterable[str] = ()) -> MemberDigest:
    """The :class:`MemberDigest` of ``data`` (sha256 plus ``algorithms``)."""
    hasher = RecordHasher(algorithms)
    hasher.update(data)
    return hasher.result()


def hash_member(
    archive: ZipArchive, member: ZipMember, algorithms: Iterable[str] = ()
) -> MemberDigest:
    """Stream ``member`` out of ``archive`` (CRC-checked by zipread) and hash it."""
    hasher = RecordHasher(algorithms)
    for chunk in archive.iter_content(member):
        hasher.update(chunk)
    return hasher.result()


def member_digests(
    archive: ZipArchive, record: Iterable[RecordEntry] = (), *, hash_contents: bool = True
) -> dict[str, MemberDigest]:
    """The :class:`MemberDigest` of every file member of ``archive``, in archive order,
    ready for :func:`check_record`.

    With ``hash_contents`` every member is inflated and hashed with sha256 and the other
    strong algorithms ``record`` uses (:func:`record_algorithms`); without, digests hold
    only the central directory's sizes (instant, and still catches wrong sizes).
    """
    algorithms = record_algorithms(record)
    if not hash_contents:
        return {m.name: MemberDigest(None, m.file_size) for m in archive.members if not m.is_dir}
    return {m.name: hash_member(archive, m, algorithms) for m in archive.members if not m.is_dir}


# -- RECORD against the archive ------------------------------------------------------------


def _invalid_path(path: str) -> str | None:
    """Why ``path`` cannot name a member of a wheel (None when it can)."""
    if path.startswith("/") or (path[1:2] == ":" and path[0].isascii() and path[0].isalpha()):
        return "an absolute path"
    if "\\" in path:
        return "a path with a backslash"
    parts = path.split("/")
    if ".." in parts:
        return "a path with a '..' component"
    if "" in parts or "." in parts:
        return "a path with an empty or '.' component"
    return None


def _is_exempt(path: str, record_path: str) -> bool:
    return path == record_path or any(path == record_path + s for s in SIGNATURE_SUFFIXES)


def check_record(
    entries: Sequence[RecordEntry],
    members: Mapping[str, MemberDigest | None],
    record_path: str,
) -> tuple[Evidence, ...]:
    """Compare RECORD with the archive; one ``"record"`` :class:`Evidence` per problem.

    ``members`` maps every file member of the wheel (directories excluded) to what is
    known of its content: a :class:`MemberDigest` (with or without hashes; without, only
    the size is compared) or None (only its presence is checked). Reported, in RECORD
    order and then in ``members`` order:

    * a row whose path cannot be a member (absolute, ``..``: "extra/invalid entry");
    * a path listed more than once (checked once, on its first row);
    * a row naming no member;
    * a file without a hash, or hashed with md5/sha1/another algorithm weaker than
      sha256 or unknown (PEP 427: "sha256 or better");
    * a wrong size, a wrong hash;
    * a member RECORD does not list.

    RECORD and its signatures (``RECORD.jws``, ``RECORD.p7s``) are exempt from hashes and
    from being listed (PEP 427: RECORD cannot hash itself; signatures sign RECORD).
    """
    evidence: list[Evidence] = []

    def add(path: str, text: str) -> None:
        evidence.append(_record_evidence(path, text))

    counts = Counter(e.path for e in entries)
    seen: set[str] = set()
    for entry in entries:
        path = entry.path
        if path in seen:
            continue
        seen.add(path)
        if counts[path] > 1:
            add(path, f"{record_path} lists {path} {counts[path]} times")
        why = _invalid_path(path)
        if why is not None:
            add(path, f"{record_path} lists {path!r}, {why}, which cannot be a wheel member")
            continue
        if path not in members:
            add(path, f"{record_path} lists {path}, which is not in the wheel")
            continue
        if _is_exempt(path, record_path):
            continue
        evidence.extend(_check_entry(entry, members[path], record_path))
    for path in members:
        if path not in seen and not _is_exempt(path, record_path):
            add(path, f"{path} is not listed in {record_path}")
    return tuple(evidence)


def _record_evidence(path: str, text: str, detail: str | None = None) -> Evidence:
    return Evidence(kind="record", file=path, text=text, detail=detail)


def _check_entry(
    entry: RecordEntry, known: MemberDigest | None, record_path: str
) -> list[Evidence]:
    """Hash-algorithm, size and hash problems of one RECORD row whose member exists."""
    path = entry.path
    found: list[Evidence] = []
    comparable: str | None = None
    if entry.hash_algorithm is None:
        found.append(
            _record_evidence(
                path, f"{record_path} has no hash for {path} (PEP 427: every file but RECORD)"
            )
        )
    else:
        algorithm = entry.hash_algorithm.lower()
        if algorithm in STRONG_HASHES:
            comparable = algorithm
        elif algorithm in WEAK_HASHES:
            text = (
                f"{record_path} hashes {path} with {entry.hash_algorithm}, "
                "which PEP 427 does not allow (sha256 or better)"
            )
            found.append(_record_evidence(path, text))
        else:
            text = (
                f"{record_path} hashes {path} with unknown algorithm {entry.hash_algorithm!r} "
                "(PEP 427: sha256 or better)"
            )
            found.append(_record_evidence(path, text))
    if known is None:
        return found
    if entry.size is not None and entry.size != known.size:
        found.append(
            _record_evidence(
                path,
                f"{path} has {known.size} bytes, {record_path} says {entry.size}",
                detail=f"expected={entry.size} actual={known.size}",
            )
        )
    if comparable is not None:
        actual = known.digest(comparable)
        if actual is not None and actual != entry.hash_digest:
            found.append(
                _record_evidence(
                    path,
                    f"{path} has {comparable} {actual}, {record_path} says {entry.hash_digest}",
                    detail=f"expected={entry.hash_digest} actual={actual}",
                )
            )
    return found


# -- tags ----------------------------------------------------------------------------------


def _canonical_tags(line: str) -> tuple[str, ...]:
    """The expanded, lower-cased tags of one ``Tag:`` value (itself when unparsable)."""
    simple = _simple_tags(line)
    if simple is not None:
        return tuple(sorted(simple))
    from packaging.tags import parse_tag  # noqa: PLC0415 -- only for unusual tags

    try:
        return tuple(sorted(str(t) for t in parse_tag(line)))
    except ValueError:
        return (line,)


def check_tags(identity: WheelIdentity, wheel_path: str = "WHEEL") -> tuple[Evidence, ...]:
    """Filename tags against the WHEEL ``Tag:`` lines (PEP 427: WHEEL has one ``Tag:`` per
    expanded tag of the filename). They are compared as sets of expanded, lower-cased
    tags; at most two ``"tag-mismatch"`` :class:`Evidence` come back, one for the tags only
    in the filename, one for those only in WHEEL (each list in its source's order).

    Root-Is-Purelib with platform tags is not evidence but a note: see :func:`purelib_note`.
    """
    in_filename = {t.lower() for t in identity.filename_tags}
    in_wheel: dict[str, None] = {}
    for line in identity.wheel_tags:
        for tag in _canonical_tags(line):
            in_wheel[tag] = None
    only_filename = [t for t in identity.filename_tags if t.lower() not in in_wheel]
    only_wheel = [t for t in in_wheel if t not in in_filename]
    evidence: list[Evidence] = []
    if only_filename:
        evidence.append(
            Evidence(
                kind="tag-mismatch",
                file=wheel_path,
                text=f"tags in the filename but not in {wheel_path}: {', '.join(only_filename)}",
                detail="only-in-filename",
            )
        )
    if only_wheel:
        evidence.append(
            Evidence(
                kind="tag-mismatch",
                file=wheel_path,
                text=f"tags in {wheel_path} but not in the filename: {', '.join(only_wheel)}",
                detail="only-in-wheel",
            )
        )
    return tuple(evidence)


def purelib_note(identity: WheelIdentity, wheel_path: str = "WHEEL") -> str | None:
    """A note when ``Root-Is-Purelib: true`` meets platform-specific tags, else None.

    A note, not evidence: installing such a wheel works (the root goes to purelib, which
    is platlib on most systems). What does break -- ELF files installed into purelib
    -- is the audit's ``"purelib-elf"`` evidence, which needs the ELF scan.
    """
    if not identity.root_is_purelib:
        return None
    specific = [p for p in identity.platform_tags if p != "any"]
    if not specific:
        return None
    return (
        f"{wheel_path} says Root-Is-Purelib: true, but the wheel is tagged for "
        f"{', '.join(specific)}: its root installs into purelib, not platlib"
    )


# -- the whole wheel -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WheelInfo(Value):
    """A wheel's filename, dist-info, WHEEL, RECORD and .data layout, not yet hash-checked.

    ``members`` are the file members (directories excluded) in archive order;
    ``data_members`` maps each scheme under ``{name}-{version}.data/`` (``purelib``,
    ``platlib``, ``headers``, ``scripts``, ``data``, or anything else found there) to its
    members' full paths. ``identity.pure`` is False until :meth:`with_pure` says otherwise.
    """

    filename: str
    identity: WheelIdentity
    dist_info: str
    wheel_path: str
    record_path: str
    metadata: WheelMetadata
    record: tuple[RecordEntry, ...]
    data_dir: str | None
    data_members: Mapping[str, tuple[str, ...]]
    members: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def with_pure(self, pure: bool) -> WheelInfo:
        """This info with ``identity.pure`` set (True: the wheel has no ELF member)."""
        return dataclasses.replace(self, identity=dataclasses.replace(self.identity, pure=pure))

    def tag_evidence(self) -> tuple[Evidence, ...]:
        """:func:`check_tags` for this wheel."""
        return check_tags(self.identity, self.wheel_path)

    def record_evidence(self, members: Mapping[str, MemberDigest | None]) -> tuple[Evidence, ...]:
        """:func:`check_record` for this wheel's RECORD and the given member digests."""
        return check_record(self.record, members, self.record_path)


def _read_text(archive: ZipArchive, path: str, limit: int, source: str) -> str:
    try:
        member = archive.member(path)
    except KeyError:
        raise InputError(f"{source}: no {path} (PEP 427 requires it)") from None
    if member.file_size > limit:
        raise InputError(f"{source}: {path} is {member.file_size} bytes, over the {limit} limit")
    try:
        return archive.read(member).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source}: {path} is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def read_wheel(archive: ZipArchive, filename: str, *, pure: bool = False) -> WheelInfo:
    """Read what ``archive`` (the wheel called ``filename``) says about itself.

    Parses the filename, finds the dist-info directory, reads and parses WHEEL and
    RECORD, and lays out the ``.data`` directory. Nothing is hashed here: give
    :meth:`WheelInfo.record_evidence` the digests (:func:`hash_member`). Raises
    :class:`InputError` (one line) when the wheel cannot be read as a wheel.
    """
    label = os.path.basename(filename)
    name, version, build, tags = parse_wheel_filename(filename)
    names = [m.name for m in archive.members]
    dist_info = find_dist_info(names, name, version, source=label)
    wheel_path = f"{dist_info}/WHEEL"
    record_path = f"{dist_info}/RECORD"
    metadata = parse_wheel_metadata(
        _read_text(archive, wheel_path, MAX_WHEEL_SIZE, label), f"{label}: {wheel_path}"
    )
    record = parse_record(
        _read_text(archive, record_path, MAX_RECORD_SIZE, label), f"{label}: {record_path}"
    )
    data_dir = _find_data_dir(names, name, version, label)
    data_members: dict[str, list[str]] = {}
    files = tuple(m.name for m in archive.members if not m.is_dir)
    if data_dir is not None:
        prefix = data_dir + "/"
        for path in files:
            if path.startswith(prefix):
                scheme = path[len(prefix) :].partition("/")[0]
                data_members.setdefault(scheme, []).append(path)
    identity = WheelIdentity(
        filename=label,
        name=name,
        version=version,
        build=build,
        filename_tags=tags,
        wheel_tags=metadata.tags,
        platform_tags=_platform_parts(tags),
        root_is_purelib=metadata.root_is_purelib,
        pure=pure,
    )
    notes = list(metadata.notes)
    if metadata.build is not None and metadata.build != build:
        notes.append(
            f"{label}: {wheel_path} says Build: {metadata.build}, "
            f"the filename says {build or 'no build tag'}"
        )
    note = purelib_note(identity, wheel_path)
    if note is not None:
        notes.append(f"{label}: {note}")
    return WheelInfo(
        filename=label,
        identity=identity,
        dist_info=dist_info,
        wheel_path=wheel_path,
        record_path=record_path,
        metadata=metadata,
        record=record,
        data_dir=data_dir,
        data_members={k: tuple(v) for k, v in data_members.items()},
        members=files,
        notes=tuple(notes),
    )
