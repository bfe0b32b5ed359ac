"""gati's testing kit: drive a project's handlers and modules from pytest.

    from runtime.testing import simulate, faults, fake_gctx, fake_lctx, fake_request

    async def test_greets(gati_client):                      # the project's real app, in-process
        resp = await gati_client.get("/hello/ada")
        assert resp.status == 200

    async def test_module_down(gati_app, gati_simulate):
        greet = gati_simulate("greet", hello={"message": "hi"})
        client = await gati_app(modules=[greet], faults=[faults.crash("thumbs")])
        ...

The pytest plugin (runtime.testing.plugin) holds the fixtures; `gati test` runs a project's
tests with it. docs/testing.md has the whole kit.
"""

from runtime.testing import faults
from runtime.testing.client import GatiClient, app_client
from runtime.testing.doubles import ModuleDoubles
from runtime.testing.fakes import fake_gctx, fake_lctx, fake_request, load_handler
from runtime.testing.faults import Fault
from runtime.testing.modules import ProjectModules, project_modules
from runtime.testing.simulate import Call, SimulatedModule, simulate

__all__ = [
    "Call",
    "Fault",
    "GatiClient",
    "ModuleDoubles",
    "ProjectModules",
    "SimulatedModule",
    "app_client",
    "fake_gctx",
    "fake_lctx",
    "fake_request",
    "faults",
    "load_handler",
    "project_modules",
    "simulate",
]
