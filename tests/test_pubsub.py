"""Global publish/subscribe: the in-process bus (bounded queues, backpressure) and NATS against a real nats-server."""

import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from runtime.http.pubsub import Backpressure, MemoryBus, TopicInvalid, check_pattern, check_topic, matches


def test_topic_patterns_match_like_nats():
    assert matches("orders.*", "orders.created")
    assert not matches("orders.*", "orders.created.eu")
    assert matches("orders.>", "orders.created.eu")
    assert not matches("orders.>", "orders")
    assert matches(">", "a.b")
    assert not matches("orders.created", "orders.created.x")


@pytest.mark.parametrize("bad", ["orders.created\n", "orders\n", "\n"])
def test_a_topic_or_pattern_with_a_line_break_is_refused(bad):
    # `$` matches before a final newline; a topic must be the words and nothing after them.
    with pytest.raises(TopicInvalid):
        check_topic(bad)
    with pytest.raises(TopicInvalid):
        check_pattern(bad)


async def test_every_subscriber_gets_each_message_in_order():
    bus = MemoryBus()
    a, b, other = await bus.subscribe("orders.*"), await bus.subscribe("orders.created"), await bus.subscribe("users.>")
    for i in range(5):
        assert await bus.publish("orders.created", {"i": i}) == 2
    for sub in (a, b):
        got = [(await sub.get(1)).data["i"] for _ in range(5)]
        assert got == [0, 1, 2, 3, 4]
    assert other.queue.empty()
    with pytest.raises(TopicInvalid):
        await bus.publish("bad topic", 1)
    await a.close()
    assert await bus.publish("orders.created", {}) == 1


async def test_a_full_queue_slows_then_refuses_the_publisher():
    bus = MemoryBus(queue_size=2, publish_timeout_s=0.05)
    sub = await bus.subscribe("t")
    await bus.publish("t", 1)
    await bus.publish("t", 2)

    async def consume_soon():
        await asyncio.sleep(0.02)
        return (await sub.get()).data

    consumer = asyncio.create_task(consume_soon())
    start = time.monotonic()
    await bus.publish("t", 3)  # waits until the consumer makes room
    assert time.monotonic() - start >= 0.015
    assert await consumer == 1

    with pytest.raises(Backpressure) as caught:
        await bus.publish("t", 4)  # nobody consumes now: refused after publish_timeout
    assert caught.value.http_status == 503 and "queue_size" in caught.value.fix
    assert [(await sub.get()).data for _ in range(2)] == [2, 3]


async def test_messages_cross_requests_through_gctx(make_project, serve):
    root = make_project(
        {
            "wait.py": """
                async def handler(req, res, gctx, lctx):
                    async with await gctx.subscribe("chat.>") as sub:
                        lctx.set("ready", True)
                        gctx.config  # noqa
                        await gctx.publish("chat.ready", {"from": lctx.request_id})
                        while True:
                            m = await sub.get(5)
                            if m.topic == "chat.message":
                                return {"got": m.data}
            """,
            "say.py": """
                async def handler(req, res, gctx, lctx):
                    return {"delivered": await gctx.publish("chat.message", {"text": req.query["text"]})}
            """,
        }
    )
    client = await serve(root)
    waiting = asyncio.create_task(client.get("/wait"))
    await asyncio.sleep(0.1)
    r = await client.get("/say?text=hi")
    assert (await r.json())["delivered"] == 1
    r = await waiting
    assert (r.status, await r.json()) == (200, {"got": {"text": "hi"}})


# -- NATS --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def nats_url(tmp_path):
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.skip("nats-server is not installed (Debian package nats-server; scripts/install-system-deps.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # -V traces each command the server reads, in the order it read them, to nats.log
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-V"], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nats.log", "w"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"nats-server did not start: {(tmp_path / 'nats.log').read_text()}")
            time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


async def test_nats_backend_delivers_across_instances(nats_url):
    from runtime.http.pubsub_nats import NatsBus

    one = await NatsBus(nats_url).connect()
    two = await NatsBus(nats_url).connect()
    try:
        sub_one, sub_two = await one.subscribe("orders.*"), await two.subscribe("orders.>")
        for i in range(20):
            await one.publish("orders.created", {"i": i})
        await one.flush()
        for sub in (sub_one, sub_two):
            got = [await sub.get(30) for _ in range(20)]  # bounded; 5 s once ran out on a loaded machine
            assert [m.data["i"] for m in got] == list(range(20))
            assert {m.topic for m in got} == {"orders.created"}
        assert one.healthy() and two.healthy()
    finally:
        await one.close()
        await two.close()


def pinged_after(folder, command: str) -> bool:
    """nats-server read `command`, then a PING (from its -V trace): its PONG proves the command was taken."""
    read = [line.split("<<- [", 1)[1].rstrip("]") for line in (folder / "nats.log").read_text().splitlines() if "<<- [" in line]
    return command in read and "PING" in read[read.index(command):]


async def test_nats_subscribe_and_flush_return_once_the_server_has_the_commands(nats_url, tmp_path):
    # nats-py's flush() writes its PING ahead of the commands still in its buffer: a subscribe() or a
    # flush() that had returned had not always reached the server, and under load messages were lost
    from runtime.http.pubsub_nats import NatsBus

    bus = await NatsBus(nats_url).connect()
    try:
        await bus.subscribe("orders.*")
        assert pinged_after(tmp_path, "SUB gati.orders.*  1")
        await bus.publish("orders.created", 1)
        await bus.flush()
        assert pinged_after(tmp_path, "PUB gati.orders.created  1")
    finally:
        await bus.close()


async def test_nats_slow_subscriber_drops_instead_of_stalling(nats_url):
    from runtime.http.pubsub_nats import NatsBus

    bus = await NatsBus(nats_url, queue_size=5).connect()
    try:
        slow, fast = await bus.subscribe("t"), await bus.subscribe("t")
        got = []
        for i in range(50):  # the fast subscriber takes each message; the slow one never does
            await bus.publish("t", i)
            got.append((await fast.get(5)).data)
        assert got == list(range(50))  # one slow subscriber stalled nobody
        assert slow.queue.qsize() == 5 and slow.dropped == 45  # it kept 5 and counted its losses
    finally:
        await bus.close()


async def test_app_with_nats_backend(nats_url, make_project, serve):
    root = make_project(
        {"pub.py": 'async def handler(req, res, gctx, lctx):\n    return {"n": await gctx.publish("events.x", {"a": 1})}\n'},
        toml=f'[pubsub]\nbackend = "nats"\nurl = "{nats_url}"\n',
    )
    from runtime.http.pubsub_nats import NatsBus

    watcher = await NatsBus(nats_url).connect()
    sub = await watcher.subscribe("events.>")
    try:
        client = await serve(root)
        assert (await (await client.get("/readyz")).json())["pubsub"] == "ok"
        assert (await client.get("/pub")).status == 200
        message = await sub.get(5)
        assert (message.topic, message.data) == ("events.x", {"a": 1})
    finally:
        await watcher.close()


async def test_unreachable_nats_stops_start_up_with_a_fix(make_project):
    from aiohttp.test_utils import TestServer

    from runtime.core.errors import GatiError
    from runtime.http.app import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = make_project({"index.py": "async def handler(req, res, gctx, lctx):\n    return 1\n"},
                        toml=f'[pubsub]\nbackend = "nats"\nurl = "nats://127.0.0.1:{port}"\n')
    server = TestServer(build_app(root), host="127.0.0.1")
    with pytest.raises(GatiError) as caught:
        await server.start_server()
    assert "nats-server" in caught.value.fix
    await server.close()
