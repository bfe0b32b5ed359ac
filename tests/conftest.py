"""Shared fixtures: a state directory per test, projects written on the fly, a served app."""

import textwrap

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the item (item.report_call, ...): fixtures act on a failure (the browser tests' screenshots)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
async def loopback_http():
    """loopback_http(handler) serves handler for every path on 127.0.0.1 (a port of its own); returns the port."""
    runners = []

    async def start(handler) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def origin(loopback_http):
    """An HTTP server on 127.0.0.1 answering every request with {"path": PATH}; its port.

    What egress tests reach, or must not reach: a loopback address needs a rule naming it."""

    async def answer(request):
        return web.json_response({"path": request.path})

    return await loopback_http(answer)


@pytest.fixture
def state(tmp_path):
    """A state directory (registry, audit log, kv) of this test's own."""
    from runtime.core.state import StateDir

    state = StateDir(tmp_path / "state")
    yield state
    state.close()


@pytest.fixture
async def manager(state):
    """A ModuleManager over this test's state directory, closed (its sandboxes stopped) after the test.
    Tests that need egress hosts or an environment define their own."""
    from runtime.modules.manager import ModuleManager

    manager = ModuleManager(state)
    yield manager
    await manager.close()


@pytest.fixture
def gati_home(tmp_path, monkeypatch):
    """A fresh state directory (registry, audit log) for this test only."""
    home = tmp_path / "gati-home"
    monkeypatch.setenv("GATI_HOME", str(home))
    return home


@pytest.fixture
def make_project(tmp_path, gati_home):
    """make_project({"users/[id].py": source, ...}, toml="...") writes a project and returns its path."""

    def make(handlers: dict[str, str], *, toml: str = "", name: str = "project"):
        root = tmp_path / name
        (root / "handlers").mkdir(parents=True, exist_ok=True)
        for rel, source in handlers.items():
            file = root / "handlers" / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        (root / "gati.toml").write_text(textwrap.dedent(toml))
        return root

    return make


@pytest.fixture
async def serve():
    """serve(project_dir) starts build_app(project_dir) on a real loopback port; returns an aiohttp TestClient."""
    from runtime.http.app import build_app

    clients = []

    async def start(project_dir):
        client = TestClient(TestServer(build_app(project_dir), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
