"""An in-process client for a project: its real app (runtime.http.app.build_app) behind aiohttp's test server.

    async with app_client("myproject", modules=[simulate(...)], faults=[faults.crash("greet")]) as client:
        resp = await client.get("/hello/ada")
        assert resp.status == 502
        client.modules.inject(faults.busy("greet"))      # faults can change while the app runs
        client.modules.calls                              # every module call, real or simulated

Requests take the whole real path: ingress, routing, hooks, validation, auth, the lifecycle,
module calls. Simulated modules are not registered (their artifacts need not be built); the
other modules of the project are registered and run in their sandboxes, as `gati serve` runs
them. The state (registry, kv, audit log) is the state_dir given, a fresh temporary one by default.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

from aiohttp.test_utils import TestClient, TestServer

from runtime.http.app import build_app
from runtime.testing.doubles import ModuleDoubles
from runtime.testing.faults import Fault
from runtime.testing.simulate import SimulatedModule


class GatiClient:
    """aiohttp's TestClient (get, post, request, ...) plus the app's module doubles."""

    def __init__(self, client: TestClient, doubles: ModuleDoubles):
        self.http = client
        self.modules = doubles

    @property
    def app(self):
        return self.http.app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)  # get, post, put, delete, request, ws_connect, make_url ...


@contextlib.contextmanager
def state_home(path: str | Path):
    """GATI_HOME set to path for the block: where build_app keeps the state."""
    old = os.environ.get("GATI_HOME")
    os.environ["GATI_HOME"] = str(path)
    try:
        yield Path(path)
    finally:
        if old is None:
            os.environ.pop("GATI_HOME", None)
        else:
            os.environ["GATI_HOME"] = old


@contextlib.asynccontextmanager
async def app_client(
    project: str | Path,
    *,
    modules: Iterable[SimulatedModule] = (),
    faults: Iterable[Fault] = (),
    state_dir: str | Path | None = None,
) -> AsyncIterator[GatiClient]:
    doubles = ModuleDoubles(modules, faults)
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gati-test-state-"))
        app = build_app(project, intercept=doubles, unregistered=[sim.dir for sim in doubles.simulated.values()])
        client = TestClient(TestServer(app))
        with state_home(state_dir):  # the app opens its state on start-up; the test's environment is left as it was
            await client.start_server()
        try:
            yield GatiClient(client, doubles)
        finally:
            await client.close()
