"""Platform policies: what a manylinux / musllinux wheel may use from the system.

A policy is data (``manywheel/policies/*.json``, derived by ``tools/derive_policies.py``
and described in ``docs/policies.md``): for each architecture it exists for, the symbol
versions a wheel may require per version prefix (``GLIBC``, ``GLIBCXX``, ``CXXABI``,
``GCC``, ``LIBATOMIC``, ``ZLIB``), the libraries it may leave external, and symbols it must
not import from them.

The tags come from PEP 513 (manylinux1), PEP 571 (manylinux2010), PEP 599 (manylinux2014),
PEP 600 (``manylinux_x_y``: a wheel must work on every mainstream distribution with
glibc >= x.y) and PEP 656 (``musllinux_x_y``). ``linux`` is the non-portable tag every
Linux wheel satisfies; it has the lowest priority.

This module only loads, validates and answers questions about policies; evaluating a
wheel's ELF facts against them is the audit's job.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from manywheel.errors import UsageError
from manywheel.value import Value

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "FAMILIES",
    "KNOWN_ARCHES",
    "Policy",
    "PolicySet",
    "SymbolVersion",
    "load_policies",
    "load_policy_file",
    "version_tuple",
]

FORMAT_VERSION = 1
FAMILIES = ("manylinux", "musllinux")
KNOWN_ARCHES = frozenset(
    {"i686", "x86_64", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x", "riscv64", "loongarch64"}
)
BUILTIN_FILES = ("manylinux.json", "musllinux.json")

_VERSION_RE = re.compile(r"\d+(?:\.\d+)*")
_FLAVOURED_RE = re.compile(r"(?:(?P<flavour>[A-Za-z0-9_]*?)_)?(?P<numbers>\d+(?:\.\d+)*)")
_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def version_tuple(text: str) -> tuple[int, ...]:
    """``"2.17"`` -> ``(2, 17)``; raises ``ValueError`` for anything but dotted digits."""
    if not _VERSION_RE.fullmatch(text):
        raise ValueError(f"not a dotted version: {text!r}")
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SymbolVersion(Value):
    """A symbol-version name split as policies see it.

    ``GLIBC_2.17`` -> prefix ``GLIBC``, version ``2.17`` (flavour ``""``, numbers
    ``(2, 17)``); ``GLIBCXX_LDBL_3.4.21`` -> prefix ``GLIBCXX``, version ``LDBL_3.4.21``
    (flavour ``LDBL``); ``CXXABI_TM_1`` -> flavour ``TM``, numbers ``(1,)``;
    ``CXXABI_FLOAT128`` and ``GLIBC_PRIVATE`` have a flavour and no numbers. Versions
    compare as tuples of integers, so ``GLIBC_2.9 < GLIBC_2.17``.
    """

    name: str
    prefix: str
    version: str
    flavour: str
    numbers: tuple[int, ...]

    @classmethod
    def parse(cls, name: str) -> SymbolVersion | None:
        """Split ``name``; ``None`` when it has no ``PREFIX_version`` shape."""
        prefix, sep, version = name.partition("_")
        if not sep or not prefix or not version:
            return None
        match = _FLAVOURED_RE.fullmatch(version)
        if match is None:
            return cls(name, prefix, version, version, ())
        numbers = version_tuple(match.group("numbers"))
        return cls(name, prefix, version, match.group("flavour") or "", numbers)

    @property
    def sort_key(self) -> tuple[str, str, tuple[int, ...]]:
        """Order within a prefix: plain versions by number, then flavoured ones."""
        return (self.prefix, self.flavour, self.numbers)


def _version_key(version: str) -> tuple[str, tuple[int, ...]]:
    parsed = SymbolVersion.parse("X_" + version)
    assert parsed is not None
    return (parsed.flavour, parsed.numbers)


@dataclass(frozen=True, eq=False, repr=False)
class Policy(Value):
    """One platform tag family member, e.g. ``manylinux_2_17`` (alias ``manylinux2014``).

    ``symbol_versions[prefix][arch]`` is the set of versions (the part after
    ``PREFIX_``) a wheel may require; a prefix not listed does not constrain (it belongs
    to a library the wheel grafts). ``libraries[arch]`` are the sonames that may stay
    external on that arch; ``library_prefixes`` admit every soname starting with one of
    them (musl resolves ``libc.``, ``libm.``… to itself). ``blacklist[soname]`` are
    symbols a wheel must not import from that library.
    """

    name: str
    family: str
    libc: str
    version: tuple[int, ...]
    priority: int
    aliases: tuple[str, ...] = ()
    arches: frozenset[str] = frozenset()
    libraries: Mapping[str, frozenset[str]] = field(default_factory=dict)
    library_prefixes: tuple[str, ...] = ()
    symbol_versions: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    blacklist: Mapping[str, frozenset[str]] = field(default_factory=dict)
    interpreters: Mapping[str, str] = field(default_factory=dict)
    standard: str = ""
    reference: str = ""
    source: str = "<builtin>"

    @property
    def portable(self) -> bool:
        """False only for the catch-all ``linux`` policy."""
        return self.family != "linux"

    def tag(self, arch: str) -> str:
        """The platform tag, e.g. ``manylinux_2_17_x86_64``."""
        return f"{self.name}_{arch}"

    def applies_to(self, arch: str) -> bool:
        return not self.portable or arch in self.arches

    def libraries_for(self, arch: str) -> frozenset[str]:
        """Sonames that may stay external on ``arch`` (without the prefix rule)."""
        return self.libraries.get("*", frozenset()) | self.libraries.get(arch, frozenset())

    def allows_library(self, soname: str, arch: str) -> bool:
        if not self.portable:
            return True
        if not self.applies_to(arch):
            return False
        if soname in self.libraries_for(arch):
            return True
        return any(soname.startswith(prefix) for prefix in self.library_prefixes)

    def allowed_versions(self, prefix: str, arch: str) -> frozenset[str] | None:
        """The versions allowed for ``prefix`` on ``arch``; ``None`` = not constrained."""
        if not self.portable or prefix not in self.symbol_versions:
            return None
        return self.symbol_versions[prefix].get(arch, frozenset())

    def allows_symbol_version(self, name: str, arch: str) -> bool:
        """Whether a wheel may require the version node ``name`` (e.g. ``GLIBC_2.18``)."""
        parsed = SymbolVersion.parse(name)
        if parsed is None:
            return True
        allowed = self.allowed_versions(parsed.prefix, arch)
        return allowed is None or parsed.version in allowed

    def max_version(self, prefix: str, arch: str) -> str | None:
        """The newest plain (unflavoured) version allowed, e.g. ``"2.17"`` for GLIBC."""
        allowed = self.allowed_versions(prefix, arch)
        plain = [v for v in allowed or () if _version_key(v)[0] == ""]
        return max(plain, key=_version_key) if plain else None

    def blacklisted(self, soname: str) -> frozenset[str]:
        return self.blacklist.get(soname, frozenset())


LINUX = Policy(
    name="linux",
    family="linux",
    libc="any",
    version=(),
    priority=0,
    standard="PEP 425",
    reference="any Linux system (not portable)",
)


@dataclass(frozen=True, eq=False, repr=False)
class PolicySet(Value):
    """All known policies, highest priority first, plus the ``linux`` catch-all."""

    policies: tuple[Policy, ...]

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> Policy | None:
        """The policy called ``name`` or having it as alias, else ``None``."""
        for policy in self.policies:
            if name == policy.name or name in policy.aliases:
                return policy
        return None

    def get(self, name: str) -> Policy:
        """Like :meth:`find`, raising a one-line :class:`UsageError` when unknown."""
        policy = self.find(name)
        if policy is None:
            known = ", ".join(p.name for p in self.policies)
            raise UsageError(f"unknown policy {name!r} (known: {known})")
        return policy

    def family(self, family: str) -> tuple[Policy, ...]:
        """The policies of one family, oldest (most compatible) first."""
        return tuple(p for p in self.policies if p.family == family)

    def for_arch(self, arch: str, libc: str | None = None) -> tuple[Policy, ...]:
        """Policies defined for ``arch`` (and ``libc``), highest priority first."""
        return tuple(
            p
            for p in self.policies
            if p.applies_to(arch) and (libc is None or not p.portable or p.libc == libc)
        )

    @property
    def linux(self) -> Policy:
        return self.get("linux")


# --------------------------------------------------------------------------- loading


class _Problem(Exception):
    """A validation problem, turned into one UsageError line by the caller."""


_POLICY_FIELDS = {
    "name",
    "extends",
    "aliases",
    "version",
    "priority",
    "standard",
    "reference",
    "arches",
    "libraries",
    "library_prefixes",
    "symbol_versions",
    "blacklist",
}
_REQUIRED_FIELDS = ("name", "version", "priority", "arches")
_FILE_FIELDS = {"format", "family", "libc", "note", "interpreters", "policies"}


def _expect(value: object, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Problem(f"{what} must be {'an' if kind is int else 'a'} {_KIND_NAMES[kind]}")
    return value


_KIND_NAMES = {dict: "object", list: "list", str: "string", int: "integer"}


def _strings(value: object, what: str) -> list[str]:
    items = _expect(value, list, what)
    for item in items:
        if not isinstance(item, str) or not item:
            raise _Problem(f"{what} must be a list of non-empty strings")
    return list(items)


def _arch_list(value: object, what: str) -> list[str]:
    arches = _strings(value, what)
    for arch in arches:
        if arch not in KNOWN_ARCHES:
            raise _Problem(f"{what}: unknown architecture {arch!r}")
    return arches


def _parse_policy(
    raw: object,
    *,
    family: str,
    libc: str,
    interpreters: Mapping[str, str],
    source: str,
    known: Mapping[str, Policy],
) -> Policy:
    """Validate one policy object and expand ``extends`` against ``known``."""
    name = "?"
    try:
        entry = _expect(raw, dict, "policy")
        if isinstance(entry.get("name"), str):
            name = entry["name"]
        for key in _REQUIRED_FIELDS:
            if key not in entry:
                raise _Problem(f"missing field {key!r}")
        unknown = sorted(set(entry) - _POLICY_FIELDS)
        if unknown:
            raise _Problem(f"unknown field {unknown[0]!r}")
        name = _expect(entry["name"], str, "field 'name'")
        if not _NAME_RE.fullmatch(name) or not name.startswith(family + "_"):
            raise _Problem(f"field 'name': {name!r} is not of the form {family}_X_Y")
        base: Policy | None = None
        if "extends" in entry:
            parent = _expect(entry["extends"], str, "field 'extends'")
            base = known.get(parent)
            if base is None:
                raise _Problem(f"field 'extends': unknown policy {parent!r}")
        version_raw = _expect(entry["version"], list, "field 'version'")
        if not version_raw or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in version_raw
        ):
            raise _Problem("field 'version' must be a list of non-negative integers")
        version = tuple(version_raw)
        if name != family + "_" + "_".join(str(v) for v in version):
            raise _Problem(f"field 'version': {list(version)} does not match the name")
        priority = _expect(entry["priority"], int, "field 'priority'")
        if priority <= 0:
            raise _Problem("field 'priority' must be positive (0 is the linux policy's)")
        aliases = tuple(_strings(entry.get("aliases", []), "field 'aliases'"))
        arches = frozenset(_arch_list(entry["arches"], "field 'arches'"))
        if not arches:
            raise _Problem("field 'arches' must not be empty")

        libraries: dict[str, set[str]] = {}
        if base is not None:
            libraries = {k: set(v) for k, v in base.libraries.items()}
        libs_raw = _expect(entry.get("libraries", {}), dict, "field 'libraries'")
        for key, sonames in libs_raw.items():
            if key != "*" and key not in KNOWN_ARCHES:
                raise _Problem(f"field 'libraries': unknown architecture {key!r}")
            libraries.setdefault(key, set()).update(_strings(sonames, f"field 'libraries.{key}'"))
        prefixes = tuple(
            _strings(entry.get("library_prefixes", []), "field 'library_prefixes'")
        ) or (base.library_prefixes if base is not None else ())

        symbol_versions: dict[str, dict[str, set[str]]] = {}
        if base is not None:
            symbol_versions = {
                p: {a: set(v) for a, v in per.items() if a in arches}
                for p, per in base.symbol_versions.items()
            }
        sv_raw = _expect(entry.get("symbol_versions", {}), dict, "field 'symbol_versions'")
        for prefix, per_arch in sv_raw.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", prefix):
                raise _Problem(f"field 'symbol_versions': bad prefix {prefix!r}")
            what = f"field 'symbol_versions.{prefix}'"
            for arch, versions in _expect(per_arch, dict, what).items():
                if arch not in arches:
                    raise _Problem(f"{what}: architecture {arch!r} is not in 'arches'")
                # Any non-empty string is a version: with the prefix checked above,
                # SymbolVersion.parse(f"{prefix}_{item}") accepts every one of them.
                listed = _strings(versions, f"{what}.{arch}")
                symbol_versions.setdefault(prefix, {}).setdefault(arch, set()).update(listed)
        blacklist_raw = _expect(entry.get("blacklist", {}), dict, "field 'blacklist'")
        blacklist = {
            lib: frozenset(_strings(symbols, f"field 'blacklist.{lib}'"))
            for lib, symbols in blacklist_raw.items()
        }
    except _Problem as problem:
        raise UsageError(f"{source}: policy {name!r}: {problem}") from None
    return Policy(
        name=name,
        family=family,
        libc=libc,
        version=version,
        priority=priority,
        aliases=aliases,
        arches=arches,
        libraries=MappingProxyType({k: frozenset(v) for k, v in sorted(libraries.items())}),
        library_prefixes=prefixes,
        symbol_versions=MappingProxyType(
            {
                p: MappingProxyType({a: frozenset(v) for a, v in sorted(per.items())})
                for p, per in sorted(symbol_versions.items())
            }
        ),
        blacklist=MappingProxyType(dict(sorted(blacklist.items()))),
        interpreters=MappingProxyType(
            {a: interpreters[a] for a in sorted(arches) if a in interpreters}
        ),
        standard=_expect(entry.get("standard", ""), str, "field 'standard'"),
        reference=_expect(entry.get("reference", ""), str, "field 'reference'"),
        source=source,
    )


def load_policy_file(
    text: str, source: str, known: Mapping[str, Policy] = MappingProxyType({})
) -> tuple[Policy, ...]:
    """Parse and validate one policy file (built-in or ``--policy-file``).

    ``known`` are policies ``extends`` may refer to besides those of this file. Raises
    :class:`UsageError` with one line naming the file, the policy and the field.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{source}: not valid JSON: {err.msg} (line {err.lineno})") from None
    try:
        top = _expect(data, dict, "the file")
        for key in ("format", "family", "policies"):
            if key not in top:
                raise _Problem(f"missing field {key!r}")
        unknown = sorted(set(top) - _FILE_FIELDS)
        if unknown:
            raise _Problem(f"unknown field {unknown[0]!r}")
        if top["format"] != FORMAT_VERSION:
            raise _Problem(f"field 'format': unsupported format {top['format']!r}")
        family = _expect(top["family"], str, "field 'family'")
        if family not in FAMILIES:
            raise _Problem(f"field 'family': unknown family {family!r}")
        libc = "glibc" if family == "manylinux" else "musl"
        if top.get("libc", libc) != libc:
            raise _Problem(f"field 'libc': must be {libc!r} for {family}")
        interpreters = _expect(top.get("interpreters", {}), dict, "field 'interpreters'")
        for arch, path in interpreters.items():
            if arch not in KNOWN_ARCHES or not isinstance(path, str):
                raise _Problem(f"field 'interpreters': bad entry {arch!r}")
        policies_raw = _expect(top["policies"], list, "field 'policies'")
    except _Problem as problem:
        raise UsageError(f"{source}: {problem}") from None
    scope = dict(known)
    result = []
    for raw in policies_raw:
        policy = _parse_policy(
            raw,
            family=family,
            libc=libc,
            interpreters=interpreters,
            source=source,
            known=scope,
        )
        scope[policy.name] = policy
        result.append(policy)
    return tuple(result)


def _check_family(policies: list[Policy]) -> None:
    """Each newer policy of a family must allow at least what the older one allows."""
    ordered = sorted(policies, key=lambda p: p.version)
    for older, newer in itertools.pairwise(ordered):
        where = f"{newer.source}: policy {newer.name!r}"
        if newer.version == older.version:
            raise UsageError(f"{where}: field 'version': same version as {older.name!r}")
        if newer.priority >= older.priority:
            raise UsageError(
                f"{where}: field 'priority': must be lower than {older.name!r}'s "
                f"({older.priority}), newer policies are less compatible"
            )
        # Per arch: an in-house policy may exist for fewer architectures.
        for arch in sorted(older.arches & newer.arches):
            lost = older.libraries_for(arch) - newer.libraries_for(arch)
            if lost:
                raise UsageError(
                    f"{where}: field 'libraries': {arch}: drops {sorted(lost)[0]} "
                    f"that older {older.name!r} allows"
                )
            for prefix, per_arch in older.symbol_versions.items():
                before = per_arch.get(arch, frozenset())
                after = newer.symbol_versions.get(prefix, {}).get(arch, frozenset())
                lost = before - after
                if prefix not in newer.symbol_versions:
                    raise UsageError(
                        f"{where}: field 'symbol_versions': no {prefix} entry, "
                        f"older {older.name!r} constrains it"
                    )
                if lost:
                    first = min(lost, key=_version_key)
                    raise UsageError(
                        f"{where}: field 'symbol_versions': {arch}: drops {prefix}_{first} "
                        f"that older {older.name!r} allows"
                    )
        for lib, symbols in newer.blacklist.items():
            extra = symbols - older.blacklist.get(lib, frozenset())
            if extra:
                raise UsageError(
                    f"{where}: field 'blacklist': {lib}: blocks {sorted(extra)[0]} "
                    f"that older {older.name!r} allows"
                )


def _builtin_texts() -> Iterator[tuple[str, str]]:
    # Package data sits next to this module in every install (the wheel is unpacked, never
    # imported from a zip); importlib.resources (and pathlib) would cost ~10 ms of imports.
    package = os.path.join(os.path.dirname(__file__), "policies")
    for name in BUILTIN_FILES:
        yield f"<builtin>/{name}", _read_text(os.path.join(package, name))


def _read_text(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


@functools.cache
def _builtin_policies() -> tuple[Policy, ...]:
    """The built-in policies, parsed and validated once per process (they are immutable)."""
    by_name: dict[str, Policy] = {}
    for source, text in _builtin_texts():
        for policy in load_policy_file(text, source, by_name):
            by_name[policy.name] = policy
    return tuple(by_name.values())


def load_policies(extra_files: Iterable[str | Path] = ()) -> PolicySet:
    """Load the built-in policies, then ``extra_files`` (``--policy-file``), validated.

    A policy in an extra file with the name of a known one replaces it; others are added.
    Every family is then checked for monotonicity and name/alias clashes. Raises
    :class:`UsageError` (one line: file, policy, field) on any problem.
    """
    by_name = {policy.name: policy for policy in _builtin_policies()}
    for path in extra_files:
        source = str(path)
        try:
            text = _read_text(path)
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise UsageError(f"{source}: cannot read policy file: {reason}") from None
        for policy in load_policy_file(text, source, by_name):
            by_name[policy.name] = policy
    names: dict[str, str] = {"linux": "linux"}
    for policy in by_name.values():
        for label in (policy.name, *policy.aliases):
            if label in names and names[label] != policy.name:
                raise UsageError(
                    f"{policy.source}: policy {policy.name!r}: field 'aliases': "
                    f"{label!r} is already used by {names[label]!r}"
                )
            names[label] = policy.name
    for family in FAMILIES:
        _check_family([p for p in by_name.values() if p.family == family])
    ordered = sorted(by_name.values(), key=lambda p: (-p.priority, p.family, p.version))
    return PolicySet((*ordered, LINUX))
