"""ld.so.conf parsing: comments, includes with globs (absolute and relative), hwcap
lines, old ``=TYPE`` suffixes, loops, all inside a sysroot."""

from __future__ import annotations

from pathlib import Path

from manywheel.ld import HostFilesystem
from manywheel.ldconf import ConfLine, parse_conf_lines, read_ld_so_conf


def test_parse_conf_lines() -> None:
    text = (
        "# comment\n"
        "  /usr/local/lib   # trailing comment\n"
        "include /etc/a/*.conf  b.conf\n"
        "include\tc/*.conf\n"
        "hwcap 1 nosegneg\n"
        "/usr/lib/libc5-compat=libc5\n"
        "/opt/x///\n"
        "\n"
        "/\n"
    )
    assert parse_conf_lines(text) == [
        ConfLine("dir", "/usr/local/lib", 2),
        ConfLine("include", "/etc/a/*.conf", 3),
        ConfLine("include", "b.conf", 3),
        ConfLine("include", "c/*.conf", 4),
        ConfLine("hwcap", "1 nosegneg", 5),
        ConfLine("dir", "/usr/lib/libc5-compat", 6),
        ConfLine("dir", "/opt/x", 7),
        ConfLine("dir", "/", 9),
    ]


def test_includes_in_sysroot(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "ld.so.conf.d").mkdir(parents=True)
    (etc / "ld.so.conf").write_text(
        "/first\ninclude /etc/ld.so.conf.d/*.conf\ninclude local.conf\n/first\nhwcap 0 x\n"
    )
    (etc / "ld.so.conf.d" / "b.conf").write_text("/b\n")
    (etc / "ld.so.conf.d" / "a.conf").write_text("/a\ninclude ../loop.conf\n")
    (etc / "ld.so.conf.d" / "skip.txt").write_text("/not-read\n")
    (etc / "loop.conf").write_text("/loop\ninclude /etc/ld.so.conf\n")
    (etc / "local.conf").write_text("/local  \n")
    conf = read_ld_so_conf(HostFilesystem(str(tmp_path)))
    assert conf.dirs == ("/first", "/a", "/loop", "/b", "/local")
    assert conf.files == (
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d/a.conf",
        "/etc/loop.conf",
        "/etc/ld.so.conf.d/b.conf",
        "/etc/local.conf",
    )
    assert any("include loop" in p for p in conf.problems)
    assert any("hwcap" in p for p in conf.problems)


def test_include_through_absolute_symlink_in_sysroot(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.conf").write_text("/x\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "conf.d").symlink_to("/real")
    (tmp_path / "etc" / "ld.so.conf").write_text("include /etc/conf.d/*.conf\n")
    conf = read_ld_so_conf(HostFilesystem(str(tmp_path)))
    assert conf.dirs == ("/x",)


def test_missing_conf(tmp_path: Path) -> None:
    conf = read_ld_so_conf(HostFilesystem(str(tmp_path)))
    assert conf.dirs == () and conf.files == ()
    assert len(conf.problems) == 1 and "/etc/ld.so.conf" in conf.problems[0]


def test_host_conf_lists_multiarch_dir() -> None:
    conf = read_ld_so_conf(HostFilesystem())
    if not conf.files:
        return
    assert conf.files[0] == "/etc/ld.so.conf"
    if Path("/etc/ld.so.conf.d/x86_64-linux-gnu.conf").exists():
        assert "/lib/x86_64-linux-gnu" in conf.dirs
