"""The version of manywheel: the one place it is written.

pyproject.toml reads it from here (``[tool.setuptools.dynamic]``, parsed without importing),
so the installed distribution's metadata and ``manywheel --version`` cannot disagree, and
``import manywheel`` does not need :mod:`importlib.metadata` (about 26 ms of imports, a
quarter of the fixed cost of a ``manywheel show``).
"""

__version__ = "0.1.0.dev0"
