"""Command-line front end: argument parsing, dispatch, rendering and exit codes.

This is the only layer that prints. Every expected failure is a
:class:`~manywheel.errors.ManywheelError`; it reaches the user as one line on
stderr (``manywheel: error: ...``) and its documented exit code (docs/exit-codes.md).
Building the parser reads nothing from the host, so a broken environment can only
fail the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from manywheel import __version__
from manywheel.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, ManywheelError

if TYPE_CHECKING:
    from manywheel.scanahead import ScanAhead

Handler = Callable[[argparse.Namespace], int]

EPILOG = """\
exit codes: 0 success, 1 check failed (or repair impossible), 2 usage error (bad
option, argument or environment variable), 3 unreadable input (missing file,
not ELF, malformed), 4 environment problem (missing tool, unwritable directory).
See docs/exit-codes.md.
"""


class _Formatter(argparse.HelpFormatter):
    """Descriptions are wrapped to the terminal; text with its own line breaks (the
    exit-code epilog) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say what to do and exit with EXIT_USAGE."""

    def error(self, message: str) -> Any:  # argparse's own signature returns NoReturn
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_loader_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that resolves libraries like the loader."""
    parser.add_argument(
        "--ldpaths",
        metavar="PATHS",
        help="colon-separated directories that replace the system search list "
        "(ld.so.cache, ld.so.conf and the default directories)",
    )
    parser.add_argument(
        "--sysroot",
        metavar="DIR",
        help="resolve every path of the search, the ld.so cache and conf files "
        "included, inside DIR (a chroot or a cross-compilation root)",
    )


def _cmd_lddtree(args: argparse.Namespace) -> int:
    """Print the dependency tree of one ELF file, as the loader would resolve it."""
    from manywheel import ld, lddtree

    config = ld.config_from_options(
        ldpaths=args.ldpaths,
        sysroot=args.sysroot,
        environ=os.environ,
        # Build scripts say `LD_LIBRARY_PATH=/opt/x/lib <tool>`; it describes this
        # host, so it does not apply to a tree looked up inside a sysroot.
        library_path=None if args.sysroot else os.environ.get("LD_LIBRARY_PATH"),
    )
    tree = ld.resolve_tree(args.file, config)
    if args.json:
        _print_json(lddtree.tree_to_json(tree))
    else:
        sys.stdout.write(lddtree.render_tree(tree))
    return EXIT_OK


def _cmd_platform(args: argparse.Namespace) -> int:
    """Describe this machine: libc, architecture and the wheel tags an installer accepts."""
    from manywheel import host

    report = host.probe_host()
    if args.json:
        _print_json(host.report_to_json(report))
    else:
        sys.stdout.write(host.render_report(report))
    return EXIT_OK


def _add_audit_options(parser: argparse.ArgumentParser, *, verb: str = "audit") -> None:
    """Options shared by ``show``, ``check`` and ``repair``: what the audit looks at."""
    parser.add_argument("wheels", metavar="WHEEL", nargs="+", help=f"wheel file(s) to {verb}")
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (see schemas/)"
    )
    parser.add_argument(
        "--exclude",
        metavar="GLOB",
        action="append",
        default=[],
        help="leave libraries whose soname or resolved path matches GLOB out of the "
        "audit, as if the target system provided them (repeatable)",
    )
    parser.add_argument(
        "--disable-isa-ext-check",
        action="store_true",
        help="do not hold x86-64 ISA levels (x86-64-v2/v3/v4 notes) against the tags",
    )
    parser.add_argument(
        "--policy-file",
        metavar="FILE",
        action="append",
        default=[],
        help="extra policy file (format of docs/policies.md), repeatable; a policy with a "
        "known name replaces it",
    )
    parser.add_argument(
        "--allow-pure-python-wheel",
        action="store_true",
        help="accept a wheel without ELF files instead of failing with exit code 3",
    )
    _add_loader_options(parser)


def _audit_all(args: argparse.Namespace, *, verify_hashes: bool) -> list[Any]:
    """Audit every wheel named on the command line; the first unreadable one stops all.

    ``verify_hashes``: hash every member against RECORD (the CI gate always does;
    `show` checks RECORD's names and sizes unless --verify-record, since inflating the
    non-ELF members costs about a third of the time on a big wheel).

    Without hashing, the first wheel's scan starts before the audit's modules are
    imported (:mod:`manywheel.scanahead`): importing them is single-threaded Python,
    the scan is mostly inflating with the GIL released."""
    ahead = None
    if not verify_hashes and args.wheels:
        from manywheel.scanahead import ScanAhead

        ahead = ScanAhead(args.wheels[0])
    try:
        return _audit_each(args, verify_hashes=verify_hashes, ahead=ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _audit_each(
    args: argparse.Namespace, *, verify_hashes: bool, ahead: ScanAhead | None
) -> list[Any]:
    from manywheel.audit import AuditOptions, audit_wheel

    options = AuditOptions(
        exclude=tuple(args.exclude),
        disable_isa_ext_check=args.disable_isa_ext_check,
        ldpaths=args.ldpaths,
        sysroot=args.sysroot,
        policy_files=tuple(args.policy_file),
        allow_pure=args.allow_pure_python_wheel,
        environ=os.environ,
        verify_hashes=verify_hashes,
    )
    return [
        audit_wheel(path, options, ahead=ahead if i == 0 else None)
        for i, path in enumerate(args.wheels)
    ]


def _cmd_show(args: argparse.Namespace) -> int:
    """Audit wheels and explain, per wheel, which tags they satisfy and what blocks more."""
    reports = _audit_all(args, verify_hashes=args.verify_record)
    from manywheel import render

    if args.json:
        sys.stdout.write(render.document_json_text(reports) + "\n")
    else:
        sys.stdout.write(render.render_show_many(reports))
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    """The CI gate: exit 0 only if every wheel satisfies the tags it claims (or --plat)."""
    from manywheel import check, policy, render

    # Policies first: a bad --policy-file or --plat is a usage error before any wheel
    # is read.
    policies = policy.load_policies(args.policy_file)
    plat = check.parse_plat(args.plat, policies) if args.plat is not None else None
    reports = _audit_all(args, verify_hashes=True)
    results = [check.check_report(report, policies, plat) for report in reports]
    if args.json:
        sys.stdout.write(render.document_json_text(reports, results) + "\n")
    else:
        sys.stdout.write(render.render_check(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_CHECK_FAILED


def _cmd_repair(args: argparse.Namespace) -> int:
    """Graft external libraries into wheels, relabel them, write them to -w DIR."""
    from manywheel import repair

    options = repair.RepairOptions(
        out_dir=args.wheel_dir,
        plat=args.plat,
        only_plat=args.only_plat,
        exclude=tuple(args.exclude),
        lib_sdir=args.lib_sdir,
        strip=args.strip,
        compresslevel=args.zip_compression_level,
        update_tags=not args.no_update_tags,
        ldpaths=args.ldpaths,
        sysroot=args.sysroot,
        policy_files=tuple(args.policy_file),
        allow_pure=args.allow_pure_python_wheel,
        disable_isa_ext_check=args.disable_isa_ext_check,
        environ=os.environ,
        verify_record=args.verify_record,
    )
    results = []
    for path in args.wheels:
        result = repair.repair_wheel(path, options)
        results.append(result)
        if not args.json:
            sys.stdout.write(repair.render_results([result]))
            sys.stdout.flush()
    if args.json:
        _print_json(repair.results_to_json(results))
    return EXIT_OK


def _cmd_policies(args: argparse.Namespace) -> int:
    """List the known policies: aliases, arches, newest allowed symbol versions."""
    from manywheel import policy, render

    policies = policy.load_policies(args.policy_file)
    if args.json:
        _print_json(render.policies_to_json(policies))
    else:
        sys.stdout.write(render.render_policies(policies))
    return EXIT_OK


def _print_json(data: Mapping[str, Any]) -> None:
    import json  # only the commands that print JSON this way need it

    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; reads nothing from the host."""
    parser = _Parser(
        prog="manywheel",
        description="Tell which Linux systems a binary wheel runs on, and make it portable.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"manywheel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "lddtree",
        help="show the shared-library dependency tree of an ELF file",
        description="Resolve the dependencies of FILE the way its loader (glibc's ld.so or "
        "musl's) would, without running it: for every library, where it was found and by "
        "which rule; for every missing one, each place tried. Extra directories are read "
        "from MANYWHEEL_LD_LIBRARY_PATH (or AUDITWHEEL_LD_LIBRARY_PATH) and searched like "
        "LD_LIBRARY_PATH; LD_LIBRARY_PATH itself is honoured unless --sysroot is given.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("file", metavar="FILE", help="an ELF executable or shared library")
    p.add_argument("--json", action="store_true", help="print the tree as JSON (see schemas/)")
    _add_loader_options(p)
    p.set_defaults(handler=_cmd_lddtree)

    p = sub.add_parser(
        "platform",
        help="show this machine's libc, architecture and accepted wheel tags",
        description="Describe this machine as a wheel installer sees it: libc family and "
        "version (glibc from confstr, musl from its loader), architecture (from the "
        "interpreter's ELF header), and the manylinux/musllinux tags pip accepts here, most "
        "specific first, honouring a `_manylinux` module (PEPs 513, 600, 656).",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON (see schemas/)")
    p.set_defaults(handler=_cmd_platform)

    p = sub.add_parser(
        "show",
        help="explain which platform tags wheels satisfy, and what blocks the next one",
        description="Audit each WHEEL without installing or running it: the platform tag "
        "its content satisfies now, the tag 'manywheel repair' can reach, and, for the next "
        "more compatible tag, every fact in the way (which file imports which symbol "
        "version from which library, which library is external and where it was found). "
        "Library lookups follow the loader model of 'manywheel lddtree'.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    _add_audit_options(p)
    p.add_argument(
        "--verify-record",
        action="store_true",
        help="also hash every member against RECORD (check always does; without it, show "
        "compares RECORD's names and sizes only)",
    )
    p.set_defaults(handler=_cmd_show)

    p = sub.add_parser(
        "check",
        help="exit 0 only if wheels satisfy the platform tags they claim (CI gate)",
        description="Audit each WHEEL and exit 0 only if every platform tag it claims "
        "(its filename, which must agree with its WHEEL file) is satisfied by its content, "
        "its RECORD matches its members and nothing else is wrong; with --plat, whether "
        "TAG is satisfied instead. Otherwise exit 1 and print the reasons.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    _add_audit_options(p)
    p.add_argument(
        "--plat",
        metavar="TAG",
        help="check this platform tag instead of the claimed ones: a canonical tag "
        "(manylinux_2_17_x86_64), a legacy alias (manylinux2014_x86_64) or a policy name "
        "(the wheel's arch is used); 'manywheel policies' lists them",
    )
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser(
        "repair",
        help="copy external libraries into wheels and relabel them (manylinux/musllinux)",
        description="For each WHEEL, graft every external library the target policy does "
        "not allow into <name>.libs/ under a collision-proof name, rewrite DT_NEEDED, "
        "DT_SONAME and $ORIGIN-relative RUNPATHs so the loader finds them, set the new "
        "platform tags and write exactly one wheel to DIR. The output is audited again "
        "before the command returns; the input is never modified. --plat defaults to "
        "MANYWHEEL_PLAT, then AUDITWHEEL_PLAT, then auto (the most compatible tag the "
        "content can reach). See docs/repair.md.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    _add_audit_options(p, verb="repair")
    p.add_argument(
        "-w",
        "--wheel-dir",
        metavar="DIR",
        default="wheelhouse",
        help="directory for the repaired wheels, created if missing (default: wheelhouse)",
    )
    p.add_argument(
        "--plat",
        metavar="TAG",
        help="target platform tag, or 'auto' (default: $MANYWHEEL_PLAT, $AUDITWHEEL_PLAT, "
        "auto); 'manywheel policies' lists them",
    )
    p.add_argument(
        "--only-plat",
        action="store_true",
        help="tag the wheel with the target tag (and its aliases) only, not also with the "
        "more compatible tags the content satisfies",
    )
    p.add_argument(
        "-L",
        "--lib-sdir",
        metavar="LIB_SDIR",
        default=".libs",
        help="suffix of the library directory at the wheel root, after the distribution "
        "name (default: .libs, giving <name>.libs/)",
    )
    p.add_argument(
        "--strip",
        action="store_true",
        help="strip symbol tables and debug information from the ELF files (before patching)",
    )
    p.add_argument(
        "-z",
        "--zip-compression-level",
        metavar="LEVEL",
        type=int,
        choices=range(10),
        default=6,
        help="deflate level 0-9 of the rewritten members (default: 6); unchanged members "
        "are copied as they are",
    )
    p.add_argument(
        "--no-update-tags",
        action="store_true",
        help="keep the input's filename and WHEEL tags (graft anyway)",
    )
    p.add_argument(
        "--verify-record",
        action="store_true",
        help="hash every member of the input against RECORD and refuse a mismatch; without "
        "it, a member copied unchanged keeps its RECORD hash from the input when the row "
        "names sha256 and the right size (not re-hashed; check does)",
    )
    p.set_defaults(handler=_cmd_repair)

    p = sub.add_parser(
        "policies",
        help="list the known manylinux/musllinux policies",
        description="List every known policy, most compatible first within each family: "
        "aliases, libc version, architectures and the newest GLIBC/GLIBCXX symbol versions "
        "it allows; --json prints everything (libraries, all versions, blacklists).",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("--json", action="store_true", help="print every policy in full as JSON")
    p.add_argument(
        "--policy-file",
        metavar="FILE",
        action="append",
        default=[],
        help="extra policy file, repeatable (see docs/policies.md)",
    )
    p.set_defaults(handler=_cmd_policies)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of raising SystemExit."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except ManywheelError as err:
        sys.stdout.flush()
        print(f"manywheel: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # The reader went away (`manywheel lddtree x | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("manywheel: interrupted", file=sys.stderr)
        return 130


#: Generation thresholds for :func:`console_main` (CPython's default: 700, 10, 10).
_GC_THRESHOLDS: Final = (50_000, 20, 20)


def console_main() -> int:
    """The ``manywheel`` console script and ``python -m manywheel``: :func:`main`, then
    the process ends with :func:`os._exit` once stdout and stderr are flushed.

    A big report is millions of small objects; letting the interpreter free them one by
    one at exit costs tens of milliseconds (torch: about 40) and serves nobody. Nothing
    else is pending when :func:`main` returns (files are written and closed, temporary
    directories removed, worker threads idle). When a flush fails (the reader of a pipe
    went away), the exit code is returned and the interpreter exits the ordinary way, as
    it always did. Library callers use :func:`main`, which returns normally.

    The cyclic garbage collector runs 70 times less often than by default: a run
    allocates 10^5-10^6 objects that live until the end (a report is a tree, freed by
    reference counting), and each default collection walks all of them again (torch's
    show: ~60 ms of 0.8 s; numpy's: ~10 ms of 0.12 s). Cycles are still collected.
    """
    gc.set_threshold(*_GC_THRESHOLDS)
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream: exit as before
        return code
    os._exit(code)
