"""`python -m manywheel` runs the command-line interface."""

from __future__ import annotations

from manywheel.cli import console_main

raise SystemExit(console_main())
