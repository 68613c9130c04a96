"""Problems no policy and no repair can fix, and claims the content does not back.

Per ELF member (:func:`member_problems`):

* ``malformed-elf`` -- the reader could not read its facts;
* ``foreign-arch`` -- built for another architecture than the wheel's (an error: the
  loader refuses it, and no tag can describe a wheel mixing architectures);
* ``purelib-elf`` -- an ELF file under ``<name>.data/purelib/``: installers put purelib
  where pure Python goes, which may be shared between architectures (PEP 427);
* ``libpython`` -- ``DT_NEEDED`` on ``libpython*``: extension modules must not link it,
  the interpreter provides its symbols (PEP 513, "libpythonX.Y.so.1");
* ``python-abi`` -- imports that exist only in some builds of CPython: ``PyFPE_jbuf``
  (``--with-fpectl``, removed in 3.7) and ``PyUnicodeUCS2_*`` (narrow-Unicode Python 2
  builds, ABI tag ``cp27m``, never ``cp27mu`` nor any Python 3).

:func:`claims_vs_content` compares the filename's platform tags with the verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from manywheel.elf import Symbol
from manywheel.memberfacts import MemberFacts
from manywheel.platform_detect import tag_platform
from manywheel.report import Evidence, PolicyVerdict, WheelIdentity
from manywheel.value import Value
from manywheel.wheel import WheelInfo

__all__ = ["MemberProblems", "claims_vs_content", "member_problems"]

_LIBPYTHON = re.compile(r"libpython\d")
_NARROW_PY2 = re.compile(r"cp2\d+m?")  # narrow (UCS2) CPython 2 ABI tags; "mu" is UCS4


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MemberProblems(Value):
    evidence: tuple[Evidence, ...]
    skipped: frozenset[str]  # members judged by no policy (malformed, foreign arch)


def member_problems(
    elf: Sequence[MemberFacts], arch: str | None, info: WheelInfo
) -> MemberProblems:
    """Every policy-independent problem of the ELF members (module docstring)."""
    out: list[Evidence] = []
    skipped: set[str] = set()
    purelib = set(info.data_members.get("purelib", ()))
    abis = {tag.split("-")[1] for tag in info.identity.filename_tags}
    narrow_only = bool(abis) and all(_NARROW_PY2.fullmatch(a) for a in abis)
    for member in elf:
        name, facts = member.name, member.facts
        if facts is None:
            skipped.add(name)
            error = member.error or "unreadable"
            text = error if error.startswith(name) else f"{name}: {error}"
            out.append(Evidence("malformed-elf", name, f"malformed ELF: {text}", detail=error))
            continue
        if facts.header.arch != arch:
            skipped.add(name)
            what = facts.header.arch or facts.header.arch_problem or "an unknown architecture"
            out.append(
                Evidence(
                    "foreign-arch",
                    name,
                    f"{name} is built for {what}, but the wheel is for {arch}",
                    detail=what,
                )
            )
        if name in purelib:
            out.append(
                Evidence(
                    "purelib-elf",
                    name,
                    f"{name} is an ELF file in purelib, where only pure Python belongs",
                )
            )
        needed = facts.dynamic.needed if facts.dynamic else ()
        out.extend(
            Evidence(
                "libpython",
                name,
                f"{name} links {lib}: extension modules must get Python's symbols "
                "from the interpreter (PEP 513)",
                library=lib,
            )
            for lib in needed
            if _LIBPYTHON.match(lib)
        )
        out.extend(_abi_imports(name, facts.symbols, narrow_only))
    return MemberProblems(tuple(out), frozenset(skipped))


def _abi_imports(name: str, symbols: Sequence[Symbol], narrow_only: bool) -> list[Evidence]:
    out: list[Evidence] = []
    ucs2: list[str] = []
    for sym in symbols:
        sym_name = sym.name
        if sym.defined or sym.bind == "WEAK":
            continue
        if sym_name == "PyFPE_jbuf":
            out.append(
                Evidence(
                    "python-abi",
                    name,
                    f"{name} imports PyFPE_jbuf, which only CPython < 3.7 built "
                    "--with-fpectl provides",
                    symbol=sym_name,
                )
            )
        elif sym_name.startswith("PyUnicodeUCS2_") and not narrow_only:
            ucs2.append(sym_name)
    if ucs2:
        out.append(
            Evidence(
                "python-abi",
                name,
                f"{name} imports {ucs2[0]} (and {len(ucs2) - 1} more UCS2 symbols): only "
                "narrow-Unicode CPython 2 (ABI cp27m) provides them, not the tagged ABI",
                symbol=ucs2[0],
            )
        )
    return out


def claims_vs_content(
    identity: WheelIdentity, verdicts: Sequence[PolicyVerdict], arch: str | None
) -> list[Evidence]:
    """``tag-mismatch`` evidence for each platform tag of the filename the content does
    not satisfy (judged before repair)."""
    by_tag: dict[str, PolicyVerdict] = {}
    for verdict in verdicts:
        by_tag[verdict.tag] = verdict
        for alias in verdict.aliases:
            by_tag[f"{alias}_{arch}"] = verdict
    best = next((v.tag for v in verdicts if v.ok), None)
    out: list[Evidence] = []
    for tag in identity.platform_tags:
        libc, tag_arch = tag_platform(tag)
        if tag_arch is None:
            continue
        if tag_arch != arch:
            out.append(
                Evidence(
                    "tag-mismatch",
                    identity.filename,
                    f"the filename claims {tag}, but the ELF files are for {arch}",
                    detail="arch",
                )
            )
            continue
        claimed = by_tag.get(tag)
        if claimed is None:
            if libc is not None:
                out.append(
                    Evidence(
                        "tag-mismatch",
                        identity.filename,
                        f"the filename claims {tag}, which no known {arch} policy "
                        "of the wheel's libc describes",
                        detail="unknown-tag",
                    )
                )
            continue
        if not claimed.ok:
            out.append(
                Evidence(
                    "tag-mismatch",
                    identity.filename,
                    f"the filename claims {tag}, which the content does not satisfy "
                    f"(it satisfies {best or 'no tag'})",
                    detail="content",
                )
            )
    return out
