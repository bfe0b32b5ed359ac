"""`gati dev`: a changed handler is reloaded, a changed module rebuilt and registered again, a
broken file leaves the last good version serving, and requests flowing meanwhile never fail.
`gati serve` names a module whose artifact on disk differs from the registered one."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from serving_support import Server, gati_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 90  # bound of every wait below: generous, the machine may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path: Path, text: str) -> None:
    """As an editor saves: a temporary file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "app"
    for args in (["init", root], ["new", "module", "greeter", "--lang", "c", "--project", root]):
        subprocess.run([sys.executable, "-m", "runtime.cli.main", *map(str, args)], env=gati_env(), check=True, capture_output=True)
    (root / "handlers" / "c.py").write_text('async def handler(req, res, gctx, lctx):\n    return {"v": 1, "module": await gctx.modules.greeter.hello({})}\n')
    return root


async def test_dev_reloads_handlers_and_modules_while_requests_flow(project):
    port = free_port()
    server = Server("dev", project, "--port", port, cwd=project)
    try:
        server.wait_for(r"watching .* for changes")
        url = f"http://127.0.0.1:{port}/c"
        seen: list[dict] = []
        failures: list[str] = []
        stop = asyncio.Event()

        async def traffic(session):
            while not stop.is_set():
                try:
                    async with session.get(url) as resp:
                        body = await resp.json()
                        (seen.append(body) if resp.status == 200 else failures.append(f"{resp.status} {body}"))
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

        async def until(predicate, what):
            deadline = time.monotonic() + WAIT_S
            while not (seen and predicate(seen[-1])):
                assert time.monotonic() < deadline, f"never saw {what}; last {seen[-1:]}\n" + "\n".join(server.lines)
                await asyncio.sleep(0.05)

        async with aiohttp.ClientSession() as session:
            clients = [asyncio.create_task(traffic(session)) for _ in range(4)]
            await until(lambda b: b["v"] == 1 and b["module"]["message"] == "hello from C", "the first version")

            handler = project / "handlers" / "c.py"
            write(handler, handler.read_text().replace('"v": 1', '"v": 2'))
            await until(lambda b: b["v"] == 2, "the edited handler")

            write(handler, "def handler(:\n")  # broken: the last good version keeps serving
            server.wait_for(r"handlers not reloaded, still serving the last good version: .*c\.py")
            assert seen[-1]["v"] == 2

            source = project / "modules" / "greeter" / "greeter.c"
            write(source, source.read_text().replace("hello from C", "hello again from C"))
            await until(lambda b: b["module"]["message"] == "hello again from C", "the rebuilt module")

            write(source, source.read_text() + "\nthis is not C;\n")  # a failing build: the module keeps serving
            server.wait_for(r"module greeter not reloaded, still serving the last good version: .*build command .* failed")
            count = len(seen)
            await until(lambda b: len(seen) > count + 20, "requests after the failed build")
            assert seen[-1]["module"]["message"] == "hello again from C"

            write(handler, 'async def handler(req, res, gctx, lctx):\n    return {"v": 3, "module": await gctx.modules.greeter.hello({})}\n')
            await until(lambda b: b["v"] == 3, "the mended handler")
            stop.set()
            await asyncio.gather(*clients)

        assert failures == [], failures[:5]
        assert len(seen) > 100
        # one log line per reload: two handler reloads and one module reload succeeded
        assert len(server.wait_for(r"reloaded handlers: \d+ routes")) == 2, "\n".join(server.lines)
        assert len(server.wait_for(r"reloaded module greeter 0\.1\.0: built, registered")) == 1
    finally:
        server.stop()
    assert server.proc.returncode == 0, "\n".join(server.lines)


async def test_serve_warns_when_a_module_artifact_differs_from_the_registered_one(project):
    subprocess.run([sys.executable, "-m", "runtime.cli.main", "build", "--project", project], env=gati_env(), check=True, capture_output=True)
    source = project / "modules" / "greeter" / "greeter.c"
    source.write_text(source.read_text().replace("hello from C", "hello, changed"))
    port = free_port()
    server = Server("serve", project, "--port", port, "--workers", 1, cwd=project)  # one process: the warmed sandbox serves the next call
    try:
        server.wait_for(r"module greeter: its sources changed since its last build")
        server.wait_for(r"serving .* on http")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/c") as resp:  # the module's sandbox starts
                assert (await resp.json())["module"]["message"] == "hello from C"
            subprocess.run(["sh", "build.sh"], cwd=project / "modules" / "greeter", check=True, capture_output=True)
            line = server.wait_for(r"module greeter: its artifact on disk \(\w+\) differs from the registered one")[0]
            assert "still serving the registered one" in line and "gati module register" in line
            async with session.get(f"http://127.0.0.1:{port}/c") as resp:
                assert (await resp.json())["module"]["message"] == "hello from C"  # the registered one
    finally:
        server.stop()
