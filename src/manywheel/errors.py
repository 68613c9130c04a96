"""The exceptions manywheel raises on expected failures, each with its exit code.

Every expected failure reaches the user as one line on stderr and a documented exit
code (see docs/exit-codes.md); a traceback reaching the user is a bug.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_ENVIRONMENT = 4


class ManywheelError(Exception):
    """Base of every expected failure; ``str(err)`` is the one line shown to the user."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class UsageError(ManywheelError):
    """A bad option, argument or environment variable."""

    exit_code: ClassVar[int] = EXIT_USAGE


class InputError(ManywheelError):
    """An input that cannot be read: missing file, not a regular file, permission denied."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class ElfError(InputError):
    """A file that is not ELF, or whose ELF structures are truncated or inconsistent."""


class EnvironmentProblem(ManywheelError):
    """The machine lacks something manywheel needs (a tool, a writable directory)."""

    exit_code: ClassVar[int] = EXIT_ENVIRONMENT


class RepairError(ManywheelError):
    """The wheel cannot be repaired to the requested tag (a library not found, the tag
    out of reach, another architecture, a problem repair does not fix, or the output
    failing its verification)."""

    exit_code: ClassVar[int] = EXIT_CHECK_FAILED
