"""Which libc and architecture a wheel is for: from its tags, else from its ELF files.

Sources, in order of trust:

1. the filename's platform tags: ``manylinux_X_Y_<arch>`` / legacy ``manylinux1`` /
   ``manylinux2010`` / ``manylinux2014`` (glibc, PEP 513/571/599/600), ``musllinux_X_Y_<arch>``
   (musl, PEP 656), ``linux_<arch>`` (architecture only);
2. ``PT_INTERP`` of the ELF members: ``ld-musl-*`` is musl's loader, any other glibc's;
3. ``DT_NEEDED``: ``libc.so.6`` is glibc's soname, ``libc.so`` (or ``libc.musl-*``) musl's.

The architecture not given by a tag is the one most ELF members have (``e_machine``,
class, byte order, ABI flags). Disagreements between sources are reported, never
silently resolved: a libc conflict with the tags becomes ``tag-mismatch`` evidence.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from manywheel.memberfacts import MemberFacts
from manywheel.report import Evidence, WheelIdentity
from manywheel.value import Value

__all__ = ["Libc", "Platform", "detect_platform", "tag_platform"]

Libc = Literal["glibc", "musl"]

_PEP600 = re.compile(r"(manylinux|musllinux)_\d+_\d+_(.+)")
_LEGACY = re.compile(r"manylinux(?:1|2010|2014)_(.+)")
_LINUX = re.compile(r"linux_(.+)")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Platform(Value):
    """The wheel's libc (``glibc``/``musl``) and arch, and where each came from."""

    libc: Libc
    arch: str | None
    source: str
    evidence: tuple[Evidence, ...] = ()
    notes: tuple[str, ...] = ()


def tag_platform(tag: str) -> tuple[Libc | None, str | None]:
    """(libc, arch) a platform tag names; ``linux_x86_64`` -> (None, "x86_64")."""
    if m := _PEP600.fullmatch(tag):
        return ("glibc" if m.group(1) == "manylinux" else "musl"), m.group(2)
    if m := _LEGACY.fullmatch(tag):
        return "glibc", m.group(1)
    if m := _LINUX.fullmatch(tag):
        return None, m.group(1)
    return None, None


def _interp_libc(interpreter: str) -> Libc:
    return "musl" if posixpath.basename(interpreter).startswith("ld-musl-") else "glibc"


def _needed_libc(needed: Sequence[str]) -> Libc | None:
    if "libc.so.6" in needed:
        return "glibc"
    if "libc.so" in needed or any(n.startswith("libc.musl-") for n in needed):
        return "musl"
    return None


@dataclass
class _Seen:
    tag_libc: tuple[Libc, str] | None = None  # (libc, tag)
    tag_arch: str | None = None
    interp: tuple[Libc, str, str] | None = None  # (libc, member, interpreter)
    needed: tuple[Libc, str] | None = None  # (libc, member)


def detect_platform(identity: WheelIdentity, elf: Sequence[MemberFacts]) -> Platform:
    """Decide libc and arch (see the module docstring); conflicts become evidence/notes."""
    seen = _Seen()
    notes: list[str] = []
    tags_named: list[tuple[str | None, str | None, str]] = []
    for tag in identity.platform_tags:
        libc, arch = tag_platform(tag)
        if arch is not None:
            tags_named.append((libc, arch, tag))
            seen.tag_arch = seen.tag_arch or arch
            if libc is not None and seen.tag_libc is None:
                seen.tag_libc = (libc, tag)
    libcs = {lc for lc, _, _ in tags_named if lc is not None}
    if len(libcs) > 1 or len({a for _, a, _ in tags_named}) > 1:
        notes.append(
            "the platform tags name several platforms: "
            + ", ".join(t for _, _, t in tags_named)
            + f"; audited as the first, {tags_named[0][2]}"
        )
    arches: Counter[str] = Counter()
    for member in elf:
        facts = member.facts
        if facts is None:
            continue
        if facts.header.arch is not None:
            arches[facts.header.arch] += 1
        if facts.interpreter and seen.interp is None:
            seen.interp = (_interp_libc(facts.interpreter), member.name, facts.interpreter)
        needed = facts.dynamic.needed if facts.dynamic else ()
        libc = _needed_libc(needed)
        if libc is not None and seen.needed is None:
            seen.needed = (libc, member.name)
    return _decide(seen, arches, notes)


def _decide(seen: _Seen, arches: Counter[str], notes: list[str]) -> Platform:
    evidence: list[Evidence] = []
    elf_libc: tuple[Libc, str, str] | None = None  # (libc, source, explanation)
    if seen.interp is not None:
        found, member, interp = seen.interp
        elf_libc = (found, "PT_INTERP", f"the PT_INTERP of {member} ({interp}) is {found}'s")
    if seen.needed is not None:
        found, member = seen.needed
        so = "libc.so.6" if found == "glibc" else "libc.so"
        why = f"{member} needs {so}, {found}'s libc"
        if elf_libc is None:
            elf_libc = (found, "DT_NEEDED", why)
        elif elf_libc[0] != found:
            notes.append(f"{elf_libc[2]}, but {why}")
    libc: Libc
    if seen.tag_libc is not None:
        libc, source = seen.tag_libc[0], "tags"
        if elf_libc is not None and elf_libc[0] != libc:
            evidence.append(
                Evidence(
                    kind="tag-mismatch",
                    file=seen.tag_libc[1],
                    text=f"the tag {seen.tag_libc[1]} says {libc}, but {elf_libc[2]}",
                    detail="libc",
                )
            )
    elif elf_libc is not None:
        libc, source = elf_libc[0], elf_libc[1]
    else:
        libc, source = "glibc", "default"
        notes.append("nothing tells the libc (no tag, PT_INTERP or libc DT_NEEDED): glibc assumed")
    if libc == "musl":
        # PEP 656 ties musllinux_1_Y to the musl release, but musl defines no symbol
        # versions, so which release added an imported symbol is not in the file.
        notes.append(
            "musl does not version its symbols: musllinux verdicts rest on the libraries "
            "each file needs, not on the musl release that added each imported symbol"
        )
    if seen.tag_arch is not None:
        arch, arch_source = seen.tag_arch, "tags"
    elif arches:
        arch, arch_source = arches.most_common(1)[0][0], "ELF header"
    else:
        arch, arch_source = None, "unknown"
    text = source if arch_source == source else f"{arch_source} (arch), {source} (libc)"
    return Platform(libc, arch, text, tuple(evidence), tuple(notes))
