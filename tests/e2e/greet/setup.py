"""The demo extension as a wheel: ``_greet`` (demo/src/_greet.c) linking ``libgreet.so.1``.

Built by tests/e2e/run.py inside a build root, which first copies demo/src into ``src/``
next to this file and builds ``libgreet.so.1`` into ``$GREET_PREFIX/lib``. The extension
links it through an RPATH to that prefix, as demo/run.sh does: the unrepaired wheel only
works where that prefix exists.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

prefix = os.environ["GREET_PREFIX"]

setup(
    name="greet-demo",
    version="1.0",
    description="manywheel's demo extension, packaged for the end-to-end tier",
    ext_modules=[
        Extension(
            "_greet",
            sources=["src/_greet.c"],
            include_dirs=["src"],
            libraries=["greet"],
            library_dirs=[f"{prefix}/lib"],
            runtime_library_dirs=[f"{prefix}/lib"],
        )
    ],
)
