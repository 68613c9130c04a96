"""The audit report: what a wheel is, what it needs, and each policy's verdict with evidence.

CONTRACT written by the lead: the audit (audit.py) produces these objects, the renderers
(text and JSON, render.py) and `check` consume them. Field names are the interface;
adding fields is fine, renaming needs the lead's agreement. Plain frozen dataclasses:
the JSON form is their ``dataclasses.asdict`` shape with tuples as lists (see
schemas/report.schema.json), versioned by ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass

from manywheel.value import Value

SCHEMA_VERSION = 1

#: The ``detail`` of "tag-mismatch" evidence that compares a tag the filename claims
#: with the content (problems.claims_vs_content): the claimed tag is for another
#: architecture, names no known policy, or is not satisfied. ``check`` judges every
#: claimed tag itself and leaves these out (check.is_claim_evidence).
CLAIM_DETAILS = frozenset({"arch", "unknown-tag", "content"})


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WheelIdentity(Value):
    """What the wheel says about itself (PEP 427 filename, WHEEL metadata)."""

    filename: str
    name: str  # distribution name as in the filename
    version: str
    build: str | None
    filename_tags: tuple[str, ...]  # every expanded tag of the filename, e.g. cp311-cp311-...
    wheel_tags: tuple[str, ...]  # the WHEEL file's Tag: lines, in order
    platform_tags: tuple[str, ...]  # the distinct platform parts of filename_tags, in order
    root_is_purelib: bool
    pure: bool  # no ELF member at all


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Evidence(Value):
    """One fact against a policy or a consistency check, with the file it comes from.

    ``kind`` is one of: "symbol-version" (symbol too new), "external-library",
    "library-not-found", "blacklisted-symbol", "isa-level", "libpython",
    "python-abi" (PyFPE / UCS2 on old ABIs), "foreign-arch", "purelib-elf",
    "malformed-elf", "tag-mismatch", "record" (missing / extra / wrong hash or size).
    ``file`` is a wheel member path (or an external library's path for symbols it
    imports itself); the other fields are filled where they apply.
    ``text`` is the one-line human sentence, e.g.
    "numpy/_core/_multiarray_umath.so imports memcpy@GLIBC_2.14 from libc.so.6".
    """

    kind: str
    file: str
    text: str
    symbol: str | None = None
    version: str | None = None  # e.g. "GLIBC_2.14"
    library: str | None = None  # providing / external library soname
    chain: tuple[str, ...] = ()  # member -> lib -> ... -> library (how it is pulled in)
    found_at: str | None = None  # where the library was found on this host
    tried: tuple[str, ...] = ()  # every place tried, when not found
    detail: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExternalLibrary(Value):
    """A library outside the wheel that the wheel's ELF files need (transitively)."""

    soname: str
    path: str | None  # resolved path on the host, None when not found
    realpath: str | None
    rule: str | None  # which loader rule found it ("ld.so.cache", "rpath of x.so", ...)
    chains: tuple[tuple[str, ...], ...]  # each: member path -> ... -> soname
    tried: tuple[str, ...]
    excluded: bool  # taken out of consideration by --exclude
    allowed_by: str | None  # most compatible policy that allows it to stay external


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ElfMemberInfo(Value):
    """One ELF member of the wheel and its role."""

    path: str  # member path inside the wheel
    arch: str | None
    is_extension: bool  # a Python extension module (exports PyInit_<name>)
    soname: str | None
    needed: tuple[str, ...]
    internal_needed: dict[str, str]  # DT_NEEDED -> member path it resolves to inside the wheel
    x86_isa_level: str | None
    error: str | None  # malformed: the reader's message


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PolicyVerdict(Value):
    """One policy's answer for this wheel; ``evidence`` is empty exactly when ``ok``."""

    policy: str  # canonical name, e.g. manylinux_2_17
    aliases: tuple[str, ...]
    tag: str  # e.g. manylinux_2_17_x86_64
    ok: bool
    evidence: tuple[Evidence, ...]
    # would pass after `repair` grafts every external library it does not allow
    # (counting the symbol versions the grafted libraries need themselves)
    ok_after_repair: bool
    evidence_after_repair: tuple[Evidence, ...]


def _verdict_arch(verdict: PolicyVerdict) -> str:
    """The ``_<arch>`` suffix of a verdict's tag (``manylinux_2_17_x86_64`` -> ``_x86_64``)."""
    return verdict.tag[len(verdict.policy) :]


def verdict_tags(verdict: PolicyVerdict) -> tuple[str, ...]:
    """The canonical tag of a verdict followed by its legacy alias tags."""
    suffix = _verdict_arch(verdict)
    return (verdict.tag, *(alias + suffix for alias in verdict.aliases))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WheelReport(Value):
    """Everything `show` prints and `check` judges, for one wheel."""

    schema_version: int
    wheel: WheelIdentity
    libc: str | None  # "glibc" | "musl" | None (pure)
    arch: str | None
    libc_arch_source: str  # "tags" | "PT_INTERP" | "DT_NEEDED" | ...
    members: tuple[ElfMemberInfo, ...]
    external: tuple[ExternalLibrary, ...]
    unreachable_libraries: tuple[str, ...]  # in-wheel libraries nothing loads
    verdicts: tuple[PolicyVerdict, ...]  # the wheel's libc/arch policies, most compatible first
    best_tag: str | None  # most compatible tag whose every check passes (None: not even linux_)
    repair_tag: str | None  # most compatible tag reachable by `repair`
    consistency: tuple[Evidence, ...]  # tag-mismatch and record evidence, not policy-bound
    problems: tuple[Evidence, ...]  # policy-independent blockers (foreign arch, libpython...)
    notes: tuple[str, ...]
