"""``--exclude``: libraries the user declares provided by the target system.

A pattern without ``/`` is an :func:`fnmatch` glob on the library's name (its
``DT_NEEDED`` entry or the ``DT_SONAME`` of the file found). A pattern with ``/`` is a
glob on the library's path, compared with every symbolic link resolved on both sides:
the literal directory part of the pattern is resolved in the loader's view, and the
library's path is tried as found, with its directory resolved, and fully resolved. So
``/usr/lib/x86_64-linux-gnu/libfoo.so*`` also matches a library found as
``/lib/x86_64-linux-gnu/libfoo.so.1`` on a usr-merged system (``/lib -> usr/lib``).
Matching is case-sensitive (:func:`fnmatch.fnmatchcase`), as file names are.
"""

from __future__ import annotations

import contextlib
import glob
import posixpath
from fnmatch import fnmatchcase

from manywheel.ldfs import Filesystem

__all__ = ["ExcludeMatcher"]


class ExcludeMatcher:
    """Decides, per external library, whether an ``--exclude`` pattern names it."""

    def __init__(self, patterns: tuple[str, ...], fs: Filesystem) -> None:
        self._fs = fs
        self._names = tuple(p for p in patterns if "/" not in p)
        paths: list[str] = []
        for pattern in patterns:
            if "/" in pattern:
                paths.append(pattern)
                resolved = self._resolve_pattern(pattern)
                if resolved is not None and resolved != pattern:
                    paths.append(resolved)
        self._paths = tuple(paths)

    def _resolve_pattern(self, pattern: str) -> str | None:
        """The pattern with its literal leading directories' symlinks resolved."""
        if not pattern.startswith("/"):
            return None
        parts = pattern.split("/")
        literal = 1
        while literal < len(parts) - 1 and not glob.has_magic(parts[literal]):
            literal += 1
        head = "/".join(parts[:literal]) or "/"
        try:
            real = self._fs.realpath(head)
        except (OSError, ValueError):
            return None
        return posixpath.join(real, *parts[literal:])

    def _path_forms(self, path: str | None, realpath: str | None) -> list[str]:
        forms: list[str] = []
        if path:
            forms.append(path)
            with contextlib.suppress(OSError, ValueError):
                forms.append(
                    posixpath.join(
                        self._fs.realpath(posixpath.dirname(path)), posixpath.basename(path)
                    )
                )
        if realpath:
            forms.append(realpath)
        return forms

    def excluded(
        self, name: str, soname: str | None, path: str | None, realpath: str | None
    ) -> bool:
        """Whether a pattern names this library (see the module docstring)."""
        names = [name] + ([soname] if soname and soname != name else [])
        if any(fnmatchcase(n, p) for n in names for p in self._names):
            return True
        forms = self._path_forms(path, realpath) if self._paths else []
        return any(fnmatchcase(f, p) for f in forms for p in self._paths)
