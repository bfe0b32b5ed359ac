"""The access log: one line per request, written in batches, never out of order with other lines."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from aiohttp import web

from runtime.http import logs


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    logs._worker_tag = None


async def served(log_format: str, capsys) -> list[str]:
    """Serve two requests (the second logs a warning), wait (bounded) for both access lines; stderr's lines."""
    logs.setup_logging(log_format)

    async def ok(request):
        return web.json_response({"ok": True}, headers={"X-Request-Id": "r-1"})

    async def warn(request):
        logging.getLogger("app").warning("inside warn")
        return web.json_response({"ok": True}, headers={"X-Request-Id": "r-2"})

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/warn", warn)
    runner = web.AppRunner(app, **logs.access_log_options(True, log_format))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    err = ""
    try:
        async with aiohttp.ClientSession() as client:
            for path in ("/ok", "/warn"):
                async with client.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.status == 200
        for _ in range(100):  # the batch is written within FLUSH_S while the server runs on
            err += capsys.readouterr().err
            if "r-2" in err:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    return err.splitlines()


async def test_text_access_lines_are_written_while_serving_and_before_later_lines(capsys, root_logging):
    lines = await served("text", capsys)
    first = next(i for i, line in enumerate(lines) if "request=r-1" in line)
    warning = next(i for i, line in enumerate(lines) if "inside warn" in line)
    second = next(i for i, line in enumerate(lines) if "request=r-2" in line)
    assert first < warning < second  # the /ok line was still in the batch when the warning came: written first
    assert ' INFO aiohttp.access: 127.0.0.1 "GET /ok HTTP/1.1" 200 ' in lines[first]


async def test_json_access_lines_are_json_objects_with_the_request_id(capsys, root_logging):
    entries = [json.loads(line) for line in await served("json", capsys)]
    access = [e for e in entries if e["logger"] == "aiohttp.access"]
    assert [(e["path"], e["status"], e["request_id"], e["level"]) for e in access] == [("/ok", 200, "r-1", "info"), ("/warn", 200, "r-2", "info")]
    assert [e["logger"] for e in entries].index("app") < [e.get("request_id") for e in entries].index("r-2")
