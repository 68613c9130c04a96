"""The wheel overlay's path rules: lexical normalisation inside the prefix, install paths."""

from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from manywheel.ldfs import HostFilesystem
from manywheel.wheelfs import SITE_PACKAGES, WHEEL_PREFIX, WheelFilesystem, install_path


def reference_split(path: str) -> tuple[bool, str]:
    """The rule written plainly: normpath inside the prefix, the path as is outside."""
    inside = path == WHEEL_PREFIX or path.startswith(WHEEL_PREFIX + "/")
    if not inside:
        return False, path
    norm = "/" + posixpath.normpath(path).lstrip("/")
    return norm == WHEEL_PREFIX or norm.startswith(WHEEL_PREFIX + "/"), norm


SEGMENTS = st.sampled_from(["__wheel__", "site-packages", "pkg", "a.so", ".", "..", "", ".x"])


@given(st.lists(SEGMENTS, max_size=6), st.booleans())
def test_split_is_lexical_normalisation(segments: list[str], trailing: bool) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    with HostFilesystem("/") as host:
        fs = WheelFilesystem(host, {})
        assert fs._split(path) == reference_split(path)
        assert fs._split(WHEEL_PREFIX + path) == reference_split(WHEEL_PREFIX + path)


@given(st.lists(SEGMENTS.filter(lambda s: s not in ("", ".", "..")), min_size=1, max_size=4))
def test_install_path_of_a_plain_member(segments: list[str]) -> None:
    member = "/".join(segments)
    want = posixpath.join(SITE_PACKAGES, member)
    if not member.split("/")[0].endswith(".data"):
        assert install_path(member) == want


def test_install_path_of_data_schemes() -> None:
    assert install_path("p-1.data/scripts/tool") == WHEEL_PREFIX + "/bin/tool"
    assert install_path("p-1.data/purelib/m.py") == SITE_PACKAGES + "/m.py"
    assert install_path("p-1.data/odd/x") == SITE_PACKAGES + "/p-1.data/odd/x"


def test_directories_of_members_exist() -> None:
    with HostFilesystem("/") as host:
        fs = WheelFilesystem(host, {}, others=["pkg/sub/mod.py", "top.py"])
        for path in (
            "/__wheel__",
            SITE_PACKAGES,
            SITE_PACKAGES + "/pkg",
            SITE_PACKAGES + "/pkg/sub",
        ):
            assert fs.exists(path) and not fs.is_file(path)
        assert fs.is_file(SITE_PACKAGES + "/pkg/sub/mod.py")
        assert fs.is_file(SITE_PACKAGES + "/pkg/../top.py")


def test_display_path_names_wheel_places_as_the_wheel_installs_them() -> None:
    from manywheel.wheelfs import display_path

    assert display_path(SITE_PACKAGES + "/pkg.libs/libx.so") == "pkg.libs/libx.so in the wheel"
    assert display_path(SITE_PACKAGES + "/pkg/../pkg.libs/x") == "pkg.libs/x in the wheel"
    assert display_path(SITE_PACKAGES + "/pkg/../../lib/x") == "lib/x in the wheel's data"
    assert display_path(SITE_PACKAGES + "/pkg/../../../../usr/lib/z.so") == "/usr/lib/z.so"
    assert display_path(SITE_PACKAGES + "/pkg/..") == ". in the wheel"
    assert display_path(WHEEL_PREFIX + "/bin/tool") == "tool in the wheel's scripts"
    assert display_path(WHEEL_PREFIX + "/include/x.h") == "x.h in the wheel's headers"
    assert display_path(WHEEL_PREFIX + "/share/x") == "share/x in the wheel's data"
    assert display_path(WHEEL_PREFIX) == ". in the wheel's data"
    assert display_path("/usr/lib/libc.so.6") == "/usr/lib/libc.so.6"
    assert display_path("/__wheelbarrow/x") == "/__wheelbarrow/x"
