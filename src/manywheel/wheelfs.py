"""The loader's view of an installed wheel: its members mounted over the host filesystem.

A wheel is never extracted. Its members are placed where an installer would put them
(the binary distribution format, PEP 427 / PEP 491) under a virtual prefix
:data:`WHEEL_PREFIX`:

* members at the root of the archive and under ``<name>.data/purelib/`` or
  ``<name>.data/platlib/`` go to ``<prefix>/site-packages/``;
* ``<name>.data/scripts/`` goes to ``<prefix>/bin/``, ``<name>.data/headers/`` to
  ``<prefix>/include/``, ``<name>.data/data/`` to ``<prefix>/`` (the install prefix).

So ``$ORIGIN`` of a member is its directory in the installed tree, and an RPATH such as
``$ORIGIN/../pkg.libs`` reaches the sibling directory, as ld.so would see it after
``pip install``. Every other path is looked up on the host (through a
:class:`~manywheel.ldfs.HostFilesystem`, which applies the sysroot). Paths under the
prefix never fall through to the host: a file missing from the wheel is missing.

``open_elf`` of a member returns the :class:`~manywheel.elf.ElfFacts` read from the zip
in the single streaming pass (an :class:`~manywheel.ldfs.ElfView`), so no member is ever
read twice. Zip members cannot be symbolic links (the archive reader refuses them), so
``..`` inside the prefix is resolved lexically, which is exact there.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from manywheel.elf import ElfFacts
from manywheel.errors import ElfError
from manywheel.ldfs import ElfView, Filesystem

__all__ = ["SITE_PACKAGES", "WHEEL_PREFIX", "WheelFilesystem", "display_path", "install_path"]

#: Where the wheel is mounted; a name no real system has at its root.
WHEEL_PREFIX = "/__wheel__"
SITE_PACKAGES = WHEEL_PREFIX + "/site-packages"
_PREFIX_SLASH = WHEEL_PREFIX + "/"

# PEP 427 "<name>.data/<scheme>/" subdirectories and where each scheme installs.
_SCHEMES = {
    "purelib": SITE_PACKAGES,
    "platlib": SITE_PACKAGES,
    "scripts": WHEEL_PREFIX + "/bin",
    "headers": WHEEL_PREFIX + "/include",
    "data": WHEEL_PREFIX,
}


def install_path(member: str) -> str:
    """Where an installer puts ``member`` (a zip path), in the virtual prefix.

    ``pkg/_ext.so`` -> ``/__wheel__/site-packages/pkg/_ext.so``;
    ``pkg-1.0.data/scripts/tool`` -> ``/__wheel__/bin/tool``. Unknown schemes under
    ``.data/`` stay in site-packages as they are named (installers refuse them).
    """
    top, sep, rest = member.partition("/")
    if sep and top.endswith(".data"):
        scheme, sep2, inner = rest.partition("/")
        base = _SCHEMES.get(scheme)
        if base is not None and sep2 and inner:
            return posixpath.join(base, inner)
    if member.startswith("/"):  # posixpath.join's rule; zip names are never absolute
        return member
    return f"{SITE_PACKAGES}/{member}"


# The installed places of display_path, most specific first.
_PLACES = (
    (SITE_PACKAGES + "/", "in the wheel"),
    (WHEEL_PREFIX + "/bin/", "in the wheel's scripts"),
    (WHEEL_PREFIX + "/include/", "in the wheel's headers"),
    (_PREFIX_SLASH, "in the wheel's data"),
)


def display_path(path: str) -> str:
    """How a path of the loader's search reads in a report: a host path as it is; a path
    in the mounted wheel relative to where the wheel installs
    (``/__wheel__/site-packages/pkg/../pkg.libs/libx.so`` -> ``pkg.libs/libx.so in the
    wheel``): the virtual prefix is the audit's device, not a place a user can look.
    ``..`` is resolved first, as the wheel view resolves it (members are never
    symlinks): a path that climbs out of the prefix is the host path it names."""
    if not (path == WHEEL_PREFIX or path.startswith(_PREFIX_SLASH)):
        return path
    norm = posixpath.normpath(path)
    if norm == SITE_PACKAGES:
        return ". in the wheel"
    if norm == WHEEL_PREFIX:
        return ". in the wheel's data"
    for root, where in _PLACES:
        if norm.startswith(root):
            return f"{norm[len(root) :]} {where}"
    return norm  # above the prefix: a host path


class WheelFilesystem:
    """A :class:`~manywheel.ldfs.Filesystem`: wheel members over a host view.

    ``elf`` maps member names to their facts (None with ``errors[name]`` for a
    malformed member); ``others`` are the remaining file members (not ELF; a name also
    in ``elf`` is that ELF member). The first member installed at a path wins; later
    ones are listed in :attr:`collisions`.
    """

    def __init__(
        self,
        host: Filesystem,
        elf: Mapping[str, ElfFacts | None],
        others: Iterable[str] = (),
        errors: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self._errors = dict(errors or {})
        self._elf = dict(elf)
        # installed path -> member name (a wheel has 10^4 members: plain dicts and sets)
        self._files: dict[str, str] = {}
        self._dirs: set[str] = {WHEEL_PREFIX}
        self.collisions: list[tuple[str, str]] = []  # (kept member, hidden member)
        self._add(elf)
        self._add(name for name in others if not name.endswith("/") and name not in elf)

    def _add(self, names: Iterable[str]) -> None:
        files, dirs, collisions = self._files, self._dirs, self.collisions
        heads: set[str] = set()
        prefix = SITE_PACKAGES + "/"
        for name in names:
            # install_path, its common case inline: no ``.data/`` scheme, not absolute.
            path = install_path(name) if ".data/" in name or name[:1] == "/" else prefix + name
            kept = files.get(path)
            if kept is not None:
                collisions.append((kept, name))
                continue
            files[path] = name
            # Every path under one directory has the same parents: walk them once.
            head = path.rpartition("/")[0]
            if head in heads:
                continue
            heads.add(head)
            parent = posixpath.dirname(path)
            while parent not in dirs and parent != "/":
                dirs.add(parent)
                parent = parent.rpartition("/")[0] or "/"  # dirname of a normalised path

    # -- where a path lives

    @staticmethod
    def in_wheel(path: str) -> bool:
        """Whether ``path`` (a normalised absolute path) lies in the wheel's prefix."""
        return path == WHEEL_PREFIX or path.startswith(WHEEL_PREFIX + "/")

    def _split(self, path: str) -> tuple[bool, str]:
        """(in the wheel?, path to use): lexical ``..`` handling inside the prefix."""
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path}")
        if not path.startswith(_PREFIX_SLASH):
            return (True, path) if path == WHEEL_PREFIX else (False, path)
        if "/." not in path and "//" not in path and not path.endswith("/"):
            return True, path  # already normal: normpath would return it unchanged
        if self.in_wheel(path):
            norm = posixpath.normpath(path)
            norm = "/" + norm.lstrip("/")  # normpath keeps a leading "//"
            return (True, norm) if self.in_wheel(norm) else (False, norm)
        return False, path

    def member_at(self, path: str) -> str | None:
        """The zip name of the member installed at ``path``, if any."""
        inside, norm = self._split(path)
        return self._files.get(norm) if inside else None

    # -- the Filesystem protocol

    def realpath(self, path: str) -> str:
        inside, norm = self._split(path)
        return norm if inside else self.host.realpath(norm)

    def exists(self, path: str) -> bool:
        inside, norm = self._split(path)
        if inside:
            return norm in self._files or norm in self._dirs
        return self.host.exists(norm)

    def is_file(self, path: str) -> bool:
        inside, norm = self._split(path)
        return norm in self._files if inside else self.host.is_file(norm)

    def read_bytes(self, path: str) -> bytes:
        inside, norm = self._split(path)
        if inside:
            # Only configuration files are read whole, and they are never in a wheel.
            raise PermissionError(13, "wheel members are not read here", norm)
        return self.host.read_bytes(norm)

    def glob(self, pattern: str) -> list[str]:
        inside, _ = self._split(pattern)
        return [] if inside else self.host.glob(pattern)

    def open_elf(self, path: str) -> ElfView:
        inside, norm = self._split(path)
        if not inside:
            return self.host.open_elf(norm)
        member = self._files.get(norm)
        if member is None:
            raise FileNotFoundError(2, "no such member", norm)
        facts = self._elf.get(member)
        if facts is not None:
            return facts
        raise ElfError(self._errors.get(member) or f"{member}: not an ELF file")

    def host_path(self, path: str) -> str | None:
        inside, norm = self._split(path)
        return None if inside else self.host.host_path(norm)
