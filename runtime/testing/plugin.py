"""The pytest plugin of gati's testing kit (entry point `gati` in pytest11; `gati test` loads it).

Fixtures:

    gati_project     the project's folder: --gati-project, else the nearest folder holding
                     gati.toml above the test file
    gati_client      a GatiClient on the project's real app (runtime.testing.client), fresh state
    gati_app         a factory: `await gati_app(modules=[...], faults=[...])` for clients with
                     simulated modules and faults
    gati_simulate    `gati_simulate("greet", hello={...})`: simulate the project's module by name
    gati_module      `await gati_module("greet")`: the project's real module (built), in its sandbox
    gati_modules     the ProjectModules behind gati_module (its .doubles take faults)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.http.project import CONFIG_FILE
from runtime.testing.client import app_client
from runtime.testing.modules import module_folder, project_modules
from runtime.testing.simulate import SimulatedModule


def pytest_addoption(parser):
    parser.addoption("--gati-project", default=None, help="the gati project the gati_* fixtures serve (default: the nearest gati.toml above each test)")


@pytest.fixture
def gati_project(request) -> Path:
    given = request.config.getoption("--gati-project")
    if given:
        return Path(given).resolve()
    start = Path(str(request.path)).resolve().parent
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    pytest.fail(f"no {CONFIG_FILE} above {start}: pass --gati-project DIR (gati test does)", pytrace=False)


@pytest_asyncio.fixture
async def gati_app(gati_project, tmp_path):
    async with contextlib.AsyncExitStack() as stack:
        count = 0

        async def make(modules=(), faults=()):
            nonlocal count
            count += 1
            return await stack.enter_async_context(app_client(gati_project, modules=modules, faults=faults, state_dir=tmp_path / f"state-{count}"))

        yield make


@pytest_asyncio.fixture
async def gati_client(gati_app):
    return await gati_app()


@pytest.fixture
def gati_simulate(gati_project):
    def make(name: str, **answers) -> SimulatedModule:
        """A simulation of the project's module called name (by its manifest), answering as given."""
        return SimulatedModule(module_folder(gati_project, name), **answers)

    return make


@pytest_asyncio.fixture
async def gati_modules(gati_project, tmp_path):
    async with project_modules(gati_project, state_dir=tmp_path / "modules-state") as modules:
        yield modules


@pytest_asyncio.fixture
async def gati_module(gati_modules):
    return gati_modules.module
