"""Several real `gati serve` processes sharing one real nats-server (JetStream, loopback).

Each instance has its own project folder, state directory and port, as on separate machines;
only instance A's project holds the module. Counters incremented through all of them sum
exactly, a rate limit holds across them, a module registered through one is called through
another, `gati audit --cluster` verifies every instance's chain, and killing NATS mid-load
gives 503s that say why (no acknowledged write lost) until it is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
from nats_support import free_port, jetstream  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
GATI = str(Path(sys.executable).parent / "gati")
KVATOMIC = ROOT / "tests" / "modules" / "kvatomic"
START_S = 60.0  # bound on an instance's start on a loaded machine

HANDLERS = {
    "count.py": """
        METHODS = ["POST"]

        async def handler(req, res, gctx, lctx):
            return {"value": await gctx.modules.kvatomic.count({})}
    """,
    "other.py": """
        async def handler(req, res, gctx, lctx):
            return {"value": await gctx.modules.kvother.count({})}
    """,
    "per_minute.py": """
        RATE_LIMIT = "10/m"

        async def handler(req, res, gctx, lctx):
            return {"ok": True}
    """,
    "per_second.py": """
        RATE_LIMIT = "10/s"

        async def handler(req, res, gctx, lctx):
            return {"ok": True}
    """,
}


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GATI_HOME"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}"
    env["GATI_SECRET_AUDIT_KEY"] = "k" * 48  # [audit] key_secret: every instance signs with it, so any verifies all
    return env


def make_project(folder: Path, toml: str, with_module: bool) -> Path:
    for rel, source in HANDLERS.items():
        (folder / "handlers").mkdir(parents=True, exist_ok=True)
        (folder / "handlers" / rel).write_text(textwrap.dedent(source))
    (folder / "gati.toml").write_text(toml)
    if with_module:
        shutil.copytree(KVATOMIC, folder / "modules" / "kvatomic")
    return folder


class Instance:
    def __init__(self, project: Path, log: Path):
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [GATI, "serve", str(project), "--port", str(self.port)], env=environ(), stdout=open(log, "wb"), stderr=subprocess.STDOUT
        )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gati serve {self.project.name} exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                async with session.get(self.url + "/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        pytest.fail(f"gati serve {self.project.name} not ready within {START_S} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
async def cluster(tmp_path, jetstream):  # noqa: F811
    """cluster(n) starts n instances (A holds the module) on this test's NATS; returns them, ready."""
    instances: list[Instance] = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def start(n: int) -> list[Instance]:
        toml = f'[cluster]\nnats = "{jetstream.url}"\nnamespace = "t"\ntimeout_ms = 1500\n[audit]\nkey_secret = "audit_key"\n'
        for i, name in enumerate("abc"[:n]):
            project = make_project(tmp_path / name, toml, with_module=i == 0)
            instances.append(Instance(project, tmp_path / f"{name}.log"))
            await instances[-1].ready(session)  # A first: it registers the module the others serve
        return instances

    start.session = session
    yield start
    for instance in instances:
        instance.stop()
    await session.close()


async def post_count(session, instance) -> tuple[int, dict]:
    async with session.post(instance.url + "/count") as r:
        return r.status, await r.json()


async def test_three_instances_share_counters_limits_and_modules(cluster, tmp_path, jetstream):  # noqa: F811
    instances = await cluster(3)
    session = cluster.session

    # 1. concurrent increments through all three sum exactly: each value handed out once
    answers = await asyncio.gather(*(post_count(session, instances[i % 3]) for i in range(90)))
    assert [status for status, _ in answers] == [200] * 90, answers
    assert sorted(body["value"] for _, body in answers) == list(range(1, 91))

    # 2. a limit of 10 a minute holds across the instances: exactly 10 of 30 pass
    async def get(instance, path):
        async with session.get(instance.url + path) as r:
            return r.status, r.headers.get("Retry-After")

    results = await asyncio.gather(*(get(instances[i % 3], "/per_minute") for i in range(30)))
    assert sorted(s for s, _ in results) == [200] * 10 + [429] * 20
    assert all(int(after) >= 1 for s, after in results if s == 429)

    # 3. 10 a second: never more than the bucket's 10 plus what refilled while the burst ran
    started = time.monotonic()
    results = await asyncio.gather(*(get(instances[i % 3], "/per_second") for i in range(45)))
    elapsed = time.monotonic() - started
    admitted = sum(s == 200 for s, _ in results)
    assert 10 <= admitted <= 10 + int(elapsed * 10) + 1, (admitted, elapsed)
    assert {s for s, _ in results} <= {200, 429}

    # 4. a module registered through one (the CLI on A's project) is called through another
    other = tmp_path / "other-module"
    shutil.copytree(KVATOMIC, other)
    (other / "module.toml").write_text((other / "module.toml").read_text().replace('name = "kvatomic"', 'name = "kvother"'))
    done = subprocess.run([GATI, "module", "register", str(other), "--project", str(instances[0].project)], env=environ(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(other)  # only the object store has it now

    async def call_other():
        async with session.get(instances[2].url + "/other") as r:
            return r.status, await r.json()

    deadline = time.monotonic() + 20
    while (answer := await call_other())[0] != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert answer == (200, {"value": 91})  # same store and key as kvatomic: the counter is shared too

    # 5. every instance's audit log is in the stream and verifies on its own
    deadline = time.monotonic() + 30  # the mirrors poll every 0.2 s; a loaded machine may take longer
    while True:
        done = subprocess.run(
            [GATI, "audit", "verify", "--cluster", "--json", "--project", str(instances[0].project)], env=environ(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        chains = json.loads(done.stdout)["instances"]
        if (len(chains) == 3 and all(c["records"] > 0 for c in chains)) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert len(chains) == 3 and all(c["ok"] and c["records"] > 0 for c in chains)
    done = subprocess.run(
        [GATI, "audit", "--cluster", "--format", "json", "--project", str(instances[1].project)], env=environ(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    kvatomic = next(m for m in report["modules"] if m["name"] == "kvatomic")
    assert kvatomic["registered"] and report["log"]["chain"]["ok"]
    assert report["log"]["records"] == sum(c["records"] for c in chains)


async def test_nats_outage_gives_clear_503s_and_service_resumes(cluster, jetstream):  # noqa: F811
    instances = await cluster(2)
    session = cluster.session
    acknowledged, refused, stop = [], [], asyncio.Event()

    async def load(instance):
        while not stop.is_set():
            try:
                status, body = await post_count(session, instance)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                continue
            if status == 200:
                acknowledged.append(body["value"])
            else:
                refused.append((status, body))
                await asyncio.sleep(0.05)

    workers = [asyncio.create_task(load(instances[i % 2])) for i in range(6)]
    try:
        while len(acknowledged) < 30:
            await asyncio.sleep(0.05)
        jetstream.kill()
        deadline = time.monotonic() + 30
        while len(refused) < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(refused) >= 10, "no refusals while NATS was down"
        before = len(acknowledged)
        jetstream.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < before + 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(acknowledged) >= before + 30, "service did not resume after NATS came back"
    finally:
        stop.set()
        await asyncio.gather(*workers)
    # the refusals were 503s naming the cause and the fix
    assert {status for status, _ in refused} == {503}
    codes = {body["error"]["code"] for _, body in refused}
    assert codes == {"state_unavailable"}, refused[:3]
    assert all("fix" in body["error"] for _, body in refused)
    # no acknowledged increment was lost: the counter holds every value handed out
    status, body = await post_count(session, instances[0])
    assert status == 200
    assert len(set(acknowledged)) == len(acknowledged)  # no value handed out twice
    assert body["value"] > max(acknowledged) and body["value"] - 1 >= len(acknowledged)


async def test_a_second_serve_on_one_state_dir_is_warned_about(tmp_path):
    project = make_project(tmp_path / "app", "", with_module=False)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    first = Instance(project, tmp_path / "first.log")
    second = None
    try:
        await first.ready(session)
        second = Instance(project, tmp_path / "second.log")
        await second.ready(session)
        warned = second.log.read_text()
        assert "warning:" in warned and f"pid {first.proc.pid}, port {first.port}" in warned and "[cluster] nats" in warned
        assert "warning:" not in first.log.read_text()
    finally:
        for instance in (first, second):
            if instance is not None:
                instance.stop()
        await session.close()


async def test_cluster_instances_on_one_state_dir_are_not_warned_about(tmp_path, jetstream):  # noqa: F811
    project = make_project(tmp_path / "app", f'[cluster]\nnats = "{jetstream.url}"\n', with_module=False)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    instances = []
    try:
        for name in ("first", "second"):
            instances.append(Instance(project, tmp_path / f"{name}.log"))
            await instances[-1].ready(session)
        assert all("warning: another gati serve" not in i.log.read_text() for i in instances)
    finally:
        for instance in instances:
            instance.stop()
        await session.close()
