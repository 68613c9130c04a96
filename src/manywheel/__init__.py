"""manywheel: tell which Linux systems a binary wheel runs on, and make it portable."""

from __future__ import annotations

from manywheel._version import __version__

__all__ = ["__version__"]
