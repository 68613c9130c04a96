"""Session-wide pytest fixtures: ELF files compiled once per session per toolchain.

* ``native_fixtures`` -- host gcc (glibc); its ``ext`` is a real, importable extension.
* ``cross_fixtures``  -- parametrized over the Debian cross toolchains (ids: aarch64,
  armhf, ppc64el, ppc64, s390x, riscv64); skips with the reason when one is missing.
* ``musl_fixtures``   -- musl-gcc.
* ``any_fixtures``    -- parametrized over all of the above.
* ``fixture_builder`` -- ``fixture_builder(toolchain) -> FixtureSet``, memoized, for
  tests that pick toolchains themselves (a missing compiler skips the test).

A compiler that exists but fails to build a fixture is an error, not a skip.
"""

from __future__ import annotations

import pytest

from fixtures import (
    FixtureBuilder,
    FixtureSet,
    Toolchain,
    all_toolchains,
    build_fixture_set,
    cross_toolchains,
    musl_toolchain,
    native_toolchain,
)


@pytest.fixture(scope="session")
def fixture_builder(tmp_path_factory: pytest.TempPathFactory) -> FixtureBuilder:
    built: dict[str, FixtureSet] = {}

    def build(toolchain: Toolchain) -> FixtureSet:
        missing = toolchain.missing
        if missing is not None:
            pytest.skip(missing)
        if toolchain.name not in built:
            outdir = tmp_path_factory.mktemp(f"elf-{toolchain.name}", numbered=True)
            built[toolchain.name] = build_fixture_set(toolchain, outdir)
        return built[toolchain.name]

    return build


@pytest.fixture(scope="session")
def native_fixtures(fixture_builder: FixtureBuilder) -> FixtureSet:
    return fixture_builder(native_toolchain())


@pytest.fixture(scope="session")
def musl_fixtures(fixture_builder: FixtureBuilder) -> FixtureSet:
    return fixture_builder(musl_toolchain())


@pytest.fixture(scope="session", params=cross_toolchains(), ids=lambda tc: tc.name)
def cross_fixtures(request: pytest.FixtureRequest, fixture_builder: FixtureBuilder) -> FixtureSet:
    toolchain: Toolchain = request.param
    return fixture_builder(toolchain)


@pytest.fixture(scope="session", params=all_toolchains(), ids=lambda tc: tc.name)
def any_fixtures(request: pytest.FixtureRequest, fixture_builder: FixtureBuilder) -> FixtureSet:
    toolchain: Toolchain = request.param
    return fixture_builder(toolchain)
