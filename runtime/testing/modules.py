"""Real modules of a project, outside the HTTP app: for a module's own tests.

    async with project_modules("myproject") as modules:
        greet = await modules.module("greet")          # registers modules/greet as it is built
        assert await greet.hello({"name": "ada"}) == {...}

The module runs in its real sandbox, registered into a fresh state (the project's .gati/ is
left alone); faults injected into `modules.doubles` apply to its calls.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import AsyncIterator

from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest
from runtime.core.secrets import configured as configured_secrets
from runtime.core.state import StateDir
from runtime.http.project import load_project
from runtime.modules import ModuleHandle, ModuleManager, register_module
from runtime.testing.doubles import ModuleDoubles


class ProjectModules:
    def __init__(self, project_dir: Path, manager: ModuleManager, doubles: ModuleDoubles):
        self.project = load_project(project_dir)
        self.manager = manager
        self.doubles = doubles

    async def module(self, name: str) -> ModuleHandle:
        """Register the module as built now (a fresh registration each time) and hand back its handle."""
        register_module(self.manager.state, module_folder(self.project.dir, name))
        return ModuleHandle(self.manager, name)


def module_folder(project_dir: Path, name: str) -> Path:
    """The folder of the project's module called name (its manifest's name, not the folder's)."""
    dirs = load_project(project_dir).module_dirs()
    for d in dirs:
        if load_manifest(d, built=False).name == name:
            return d
    known = ", ".join(sorted(load_manifest(d, built=False).name for d in dirs)) or "none"
    raise GatiError(f"the project {project_dir} has no module named {name!r} (it has: {known})", fix="create it: gati new module NAME --lang L")


@contextlib.asynccontextmanager
async def project_modules(project_dir: str | Path, *, state_dir: str | Path | None = None) -> AsyncIterator[ProjectModules]:
    project = load_project(project_dir)
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gati-test-state-"))
        state = StateDir(state_dir)
        stack.callback(state.close)
        settings = project.settings
        manager = ModuleManager(state, egress_hosts=dict(settings.egress.hosts), secrets=configured_secrets(settings.secrets, project.dir))
        doubles = ModuleDoubles()
        manager.intercept = doubles
        try:
            yield ProjectModules(project.dir, manager, doubles)
        finally:
            await manager.close()
