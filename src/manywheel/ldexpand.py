"""Dynamic string tokens in search-path entries: ``$ORIGIN``, ``$PLATFORM``, ``$LIB``.

glibc's ``_dl_dst_substitute`` (``elf/dl-load.c``) and musl's ``fixup_rpath``
(``ldso/dynlink.c``) differ on unknown tokens, so each has its own function.
"""

from __future__ import annotations

import re

__all__ = ["expand_dst", "musl_expand"]

_DST_RE = re.compile(r"\$(?:\{(ORIGIN|PLATFORM|LIB)\}|(ORIGIN|PLATFORM|LIB)(?![A-Za-z0-9_]))")


def expand_dst(entry: str, origin: str | None, platform: str | None, lib: str) -> str | None:
    """Expand ``$ORIGIN``, ``$PLATFORM``, ``$LIB`` (or ``${...}``) in one path entry.

    glibc's ``_dl_dst_substitute``: a known token without a value drops the whole entry
    (None is returned); an unknown ``$NAME`` stays as written.
    """
    values = {"ORIGIN": origin, "PLATFORM": platform, "LIB": lib}
    dropped = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal dropped
        value = values[match.group(1) or match.group(2)]
        if value is None:
            dropped = True
            return ""
        return value

    result = _DST_RE.sub(substitute, entry)
    return None if dropped else result


def musl_expand(entry_list: str, origin: str) -> str | None:
    """musl's ``fixup_rpath``: only ``$ORIGIN``/``${ORIGIN}``; any other ``$`` voids it."""
    if "$" not in entry_list:
        return entry_list
    rest = entry_list
    while (index := rest.find("$")) >= 0:
        if not (rest.startswith("$ORIGIN", index) or rest.startswith("${ORIGIN}", index)):
            return None
        rest = rest[index + 1 :]
    return entry_list.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
