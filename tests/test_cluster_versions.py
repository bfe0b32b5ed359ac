"""Timescape's store shared through a real nats-server with JetStream (runtime/http/versions/cluster_store.py).

Two ClusterStates are two instances (own connection, own state directory). A row written on
one is read on the other; served times merge to the earliest and latest over all of them,
concurrent writers losing nothing; manifests are written once; the store answers as
versions.db does for any sequence of writes. Then two apps on one NATS: a retire made with
`gati versions retire` (cluster config) is a 410 on both, and what one served the other lists.
Waits are bounded loops on what is read, never on time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats_support import NatsServer, free_port, jetstream  # noqa: F401 (fixture)
from typer.testing import CliRunner

from runtime.cli.main import app as cli
from runtime.cluster.state import ClusterState
from runtime.core.errors import StateUnavailable
from runtime.http.state import open_version_store
from runtime.http.versions.cluster_store import ClusterVersionStore
from runtime.http.versions.service import Timescape
from runtime.http.versions.store import VersionStore, served_times

WAIT_S = 60.0  # bounded; generous for a loaded machine


@pytest.fixture
def instance(tmp_path, jetstream):  # noqa: F811
    """instance(name) -> (ClusterState, its version store), connected to this test's NATS."""
    opened = []

    def make(name: str = "a"):
        state = ClusterState.connect(tmp_path / name, jetstream.url, namespace="t")
        store = open_version_store(state)
        opened.append((state, store))
        return state, store

    yield make
    for state, store in opened:
        store.close()
        state.close()


def eventually(check, what: str):
    """Call check() until it returns something truthy without raising; bounded."""
    deadline, last = time.monotonic() + WAIT_S, None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {WAIT_S} s (last error: {last!r})")


def graph(route: str, *fingerprints: str) -> dict:
    return {"route": route, "default": "1", "versions": [{"version": str(i + 1), "fingerprint": fp} for i, fp in enumerate(fingerprints)]}


def manifest(route: str, version: str, file: str, field: str = "a") -> dict:
    schema = {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    return {"path": route, "version": version, "file": file, "methods": ["GET"], "request": schema, "response": None}


def test_the_cluster_state_gets_the_shared_store(instance):
    _, store = instance()
    assert isinstance(store, ClusterVersionStore)


def test_a_retire_on_one_instance_is_read_on_the_other(instance):
    _, a = instance("a")
    _, b = instance("b")
    a.record([graph("/u", "f1", "f2")], {"f1": manifest("/u", "1", "u.py")}, 100.0)
    row = eventually(lambda: b.versions().get(("/u", "1")), "B reads the row A recorded")
    assert (row.fingerprint, row.known_since, row.state, row.first_served) == ("f1", 100.0, "live", None)
    assert set(b.versions("/u")) == {("/u", "1"), ("/u", "2")} and b.versions("/other") == {}
    before = b.data_version()
    assert a.set_state("/u", "1", "retired", "moved to 2", 200.0) is True
    assert a.versions()[("/u", "1")].state == "retired"  # the writer reads its own write at once
    row = eventually(lambda: (r := b.versions()[("/u", "1")]).state == "retired" and r, "B reads the retire")
    assert (row.reason, row.state_at) == ("moved to 2", 200.0) and b.data_version() != before
    assert b.set_state("/u", "9", "retired", "", 200.0) is False  # a version the store does not know
    assert b.set_state("/u", "1", "live", "", 300.0) is True
    row = eventually(lambda: (r := a.versions()[("/u", "1")]).state == "live" and r, "A reads the restore")
    assert row.last_served == 300.0  # restoring starts the drain clock again
    # what the CLI reads: graphs, manifests, their gtypes and history, from either instance
    assert b.graph("/u")["versions"][1]["fingerprint"] == "f2" and b.graph("/none") is None
    stored = b.manifest("f1")
    assert stored["file"] == "u.py" and b.manifest("nope") is None
    assert b.manifest_history("/u", "1") == [("f1", 100.0)]


def test_manifests_by_fingerprint_are_written_once(instance):
    _, a = instance("a")
    _, b = instance("b")
    a.record([graph("/u", "f1")], {"f1": manifest("/u", "1", "u.py")}, 100.0)
    b.record([graph("/u", "f1")], {"f1": manifest("/u", "1", "other.py")}, 200.0)  # the same fingerprint again
    assert a.manifest("f1")["file"] == "u.py" and a.manifest_history("/u", "1") == [("f1", 100.0)]
    b.record([graph("/u", "f3")], {"f3": manifest("/u", "1", "u.py", field="b")}, 300.0)  # the file changed
    assert b.manifest_history("/u", "1") == [("f1", 100.0), ("f3", 300.0)]
    row = eventually(lambda: (r := a.versions()[("/u", "1")]).fingerprint == "f3" and r, "A reads the new fingerprint")
    assert row.known_since == 100.0  # a fingerprint changed keeps the version's times and state


def test_gtypes_are_shared_by_digest_as_in_versions_db(instance, tmp_path):
    _, a = instance("a")
    local = VersionStore(tmp_path / "versions.db")
    m = {"f1": manifest("/u", "1", "u.py")}
    a.record([graph("/u", "f1")], m, 100.0)
    local.record([graph("/u", "f1")], m, 100.0)
    digest = local._db.execute("SELECT request_gtype FROM manifests").fetchone()[0]
    assert a.gtype(digest) == local.gtype(digest) == m["f1"]["request"]
    local.close()


def test_served_times_merge_over_instances(instance):
    _, a = instance("a")
    _, b = instance("b")
    a.record([graph("/u", "f1")], {}, 10.0)
    eventually(lambda: ("/u", "1") in b.versions(), "B reads the row")
    a.served([("/u", "1")], 100.0)
    b.served([("/u", "1"), ("/u", "9")], 50.0)  # B's clock is behind; /u@9 is unknown: nothing written
    b.served([("/u", "1")], 200.0)
    a.served([("/u", "1")], 150.0)  # a late batch moves neither end
    for store in (a, b):
        row = eventually(lambda: (r := store.versions()[("/u", "1")]).last_served == 200.0 and r, "both read the merged times")
        assert (row.first_served, row.last_served) == (50.0, 200.0)
    assert ("/u", "9") not in a.versions()


def test_concurrent_writers_lose_no_update(instance):
    """Two instances write served times to the same rows at once (one's times only rise, the other's only
    fall, so a lost write shows at one end) while a third retires one of them: nothing is lost."""
    stores = [instance(name)[1] for name in ("a", "b", "c")]
    stores[0].record([graph("/u", "f1", "f2")], {}, 10.0)
    for s in stores:
        eventually(lambda: len(s.versions()) == 2, "every instance reads the rows")
    rounds, start = 40, threading.Barrier(3)
    errors = []

    def serve(store, times):
        try:
            start.wait(WAIT_S)
            for t in times:
                store.served([("/u", "1"), ("/u", "2")], t)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    def retire():
        try:
            start.wait(WAIT_S)
            stores[2].set_state("/u", "2", "retired", "by hand", 5000.0)
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=serve, args=(stores[0], [1000.0 + i for i in range(rounds)])),
        threading.Thread(target=serve, args=(stores[1], [999.0 - i for i in range(rounds)])),
        threading.Thread(target=retire),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 2)
    assert not errors, errors
    for store in stores:
        rows = eventually(lambda: (r := store.versions())[("/u", "1")].last_served == 1000.0 + rounds - 1 and r, "the last batch read")
        rows = eventually(lambda: (r := store.versions())[("/u", "2")].first_served == 999.0 - (rounds - 1) and r, "the first batch read")
        for label in ("1", "2"):
            assert (rows[("/u", label)].first_served, rows[("/u", label)].last_served) == (999.0 - (rounds - 1), 1000.0 + rounds - 1)
        assert rows[("/u", "2")].state == "retired" and rows[("/u", "1")].state == "live"


async def test_served_times_wait_out_an_outage_of_nats(instance, jetstream):  # noqa: F811
    state, store = instance("a")
    store.record([graph("/u", "f1", "f2")], {}, 10.0)
    timescape = Timescape(store, clock=lambda: 100.0)
    jetstream.kill()
    eventually(lambda: not state.cluster.healthy(), "the instance notices NATS is gone")
    with pytest.raises(StateUnavailable):
        timescape.sync([("/u", "1")])  # what the background round does; it logs this and carries on
    assert store.versions()[("/u", "1")].state == "live"  # the states known stay in force
    jetstream.start()
    eventually(state.cluster.healthy, "the instance reconnects")
    eventually(lambda: timescape.sync([("/u", "2")]) or True, "a round writes again")
    rows = store.versions()
    assert rows[("/u", "1")].last_served == rows[("/u", "2")].last_served == 100.0  # the batch of the outage too
    jetstream.kill()
    await timescape.close()  # what was served last is not written, and the shutdown goes on (the store closed)
    assert store._refresher.cancelled()  # closed: its replica no longer refreshes


@given(st.lists(st.floats(min_value=0, max_value=4e9, allow_nan=False), min_size=1, max_size=20), st.randoms())
def test_served_times_in_any_order_are_the_earliest_and_the_latest(times, rnd):
    shuffled = list(times)
    rnd.shuffle(shuffled)
    first = last = None
    for t in shuffled:
        first, last = served_times(first, last, t)
    assert (first, last) == (min(times), max(times))


# The same answers as versions.db, for any sequence of writes --------------------------------------------

LABELS = ("1", "2", "3")
OPS = st.one_of(
    st.tuples(st.just("record"), st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True), st.sampled_from(("fa", "fb"))),
    st.tuples(st.just("served"), st.lists(st.sampled_from(LABELS), min_size=1, max_size=3)),
    st.tuples(st.just("set_state"), st.sampled_from(LABELS), st.sampled_from(("live", "drained", "retired"))),
    st.tuples(st.just("set_last_served"), st.sampled_from(LABELS)),
)
_routes = itertools.count()


@pytest.fixture(scope="module")
def shared_nats(tmp_path_factory):
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    state = ClusterState.connect(tmp_path_factory.mktemp("a"), server.url, namespace="p")
    store = ClusterVersionStore.open(state.cluster)
    local = VersionStore(tmp_path_factory.mktemp("local") / "versions.db")
    yield store, local
    local.close()
    store.close()
    state.close()
    server.stop()


def apply(s, route: str, op: str, args: list, now: float):
    if op == "record":
        labels, fp = args
        return s.record([{"route": route, "versions": [{"version": label, "fingerprint": fp + label} for label in labels]}], {}, now)
    if op == "served":
        return s.served([(route, label) for label in args[0]], now)
    if op == "set_state":
        return s.set_state(route, args[0], args[1], f"why {now}", now)
    return s.set_last_served(route, args[0], now)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=8), clock=st.lists(st.floats(min_value=1, max_value=1e6, allow_nan=False), min_size=9, max_size=9))
def test_the_shared_store_answers_as_versions_db(shared_nats, ops, clock):
    store, local = shared_nats
    route = f"/r{next(_routes)}"  # a route of its own per example: both stores start empty for it
    ops = [("record", list(LABELS), "fa"), *ops]  # known versions first, or most writes change nothing
    for (op, *args), now in zip(ops, clock):
        assert apply(store, route, op, args, now) == apply(local, route, op, args, now)
    assert store.versions(route) == local.versions(route)


# Two apps on one NATS, and the CLI ---------------------------------------------------------------------

HANDLERS = {
    "v.py": """
        VERSION = "1"

        async def handler(req, res, gctx, lctx):
            return {"v": 1}
    """,
    "v@2.py": """
        async def handler(req, res, gctx, lctx):
            return {"v": 2}
    """,
}


def project(folder: Path, nats_url: str) -> Path:
    (folder / "handlers").mkdir(parents=True)
    for rel, source in HANDLERS.items():
        (folder / "handlers" / rel).write_text(textwrap.dedent(source))
    (folder / "gati.toml").write_text(f'[cluster]\nnats = "{nats_url}"\nnamespace = "t"\n[versions]\ncheck_interval_s = 0.05\n')
    return folder


def versions(*args) -> dict:
    r = CliRunner().invoke(cli, ["versions", *map(str, args)])
    assert r.exit_code == 0, r.output
    return json.loads(r.output) if "--json" in args else {}


async def until(check, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    pytest.fail(f"{what} did not happen within {WAIT_S} s")


async def test_two_apps_share_retires_and_served_times_with_the_cli(tmp_path, jetstream, serve, monkeypatch):  # noqa: F811
    monkeypatch.delenv("GATI_HOME", raising=False)  # each project keeps its own state directory (.gati), as on two machines
    roots = [project(tmp_path / name, jetstream.url) for name in ("a", "b")]
    a, b = [await serve(root) for root in roots]

    async def status(client, version="1"):
        r = await client.get("/v", headers={"Gati-Version": version})
        return r.status

    assert await status(a) == 200  # served on A only

    def row(root, version="1"):
        (found,) = [v for v in versions("list", "/v", "--project", root, "--json")["versions"] if v["version"] == version]
        return found

    async def listed_from_b():
        return row(roots[1])["last_served"] is not None

    await until(listed_from_b, "B's project lists what A served (the CLI reads the cluster's store)")

    async def b_view():
        view = await (await b.get("/_gati/versions")).json()
        (v1,) = [v for v in view["routes"][0]["versions"] if v["version"] == "1"]
        return v1 if v1["first_served"] is not None else None

    first = (await until(b_view, "B's Timescape reads A's served times"))["first_served"]
    assert await status(b) == 200  # and now B serves it too: the earliest stays, the latest is either's

    async def merged():
        r = row(roots[0])
        return r if r["last_served"] != first else None  # B's batch went in (its time is never the earlier one)

    r = await until(merged, "B's served time merged into the store")
    assert r["first_served"] == first and r["last_served"] > first

    versions("retire", "/v@1", "--reason", "moved to 2", "--project", roots[0])  # the CLI, with the cluster config

    async def gone_on_both():
        return await status(a) == 410 and await status(b) == 410

    await until(gone_on_both, "version 1 retired on both instances: 410")
    body = await (await b.get("/v", headers={"Gati-Version": "1"})).json()
    assert body["error"]["code"] == "version_retired" and "moved to 2" in body["error"]["message"]
    assert row(roots[1])["state"] == "retired"
    assert await status(a, "2") == 200 and await status(b, "2") == 200

    versions("restore", "/v@1", "--project", roots[1])

    async def back_on_both():
        return await status(a) == 200 and await status(b) == 200

    await until(back_on_both, "version 1 restored on both instances")
    assert not (roots[0] / ".gati" / "versions.db").exists()  # nothing kept apart from the cluster


def test_the_cli_says_which_nats_server_it_cannot_reach(tmp_path, monkeypatch):
    monkeypatch.delenv("GATI_HOME", raising=False)
    root = project(tmp_path / "p", f"nats://127.0.0.1:{free_port()}")  # nothing listens there
    r = CliRunner().invoke(cli, ["versions", "retire", "/v@1", "--project", str(root)])
    assert r.exit_code == 1 and "cannot reach the NATS server" in r.output and "Traceback" not in r.output, r.output
    assert not (root / ".gati" / "versions.db").exists()  # not retired somewhere no instance reads


def test_a_row_written_by_a_later_gati_with_more_fields_is_still_read(instance):
    from runtime.cluster.jetstream import token

    state, store = instance()
    row = {"route": "/u", "version": "1", "fingerprint": "f1", "known_since": 100.0, "first_served": None, "last_served": None,
           "state": "live", "reason": "", "state_at": None, "owner": "a field this gati does not know"}
    state.cluster.run(store.bucket.publish(f"v.{token('/u')}.{token('1')}", json.dumps(row).encode(), None))
    got = eventually(lambda: store.versions().get(("/u", "1")), "the row is read")
    assert (got.fingerprint, got.state) == ("f1", "live")


def test_versions_diff_reads_the_modules_from_the_clusters_registry(tmp_path, jetstream):  # noqa: F811
    from versions_support import greet

    from runtime.modules import register_module

    state = ClusterState.connect(tmp_path / "registrar", jetstream.url, namespace="t")
    try:
        register_module(state, greet(tmp_path / "g1", "1.0.0", health=None))
        g2 = greet(tmp_path / "g2", "2.0.0", health=None)
        (g2 / "module.toml").write_text((g2 / "module.toml").read_text() + '[capabilities]\nenv = ["LANG"]\n')
        register_module(state, g2)
    finally:
        state.close()
    root = tmp_path / "app"
    (root / "handlers").mkdir(parents=True)
    (root / "handlers" / "v.py").write_text('MODULES = {"greet": "1.0.0"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n')
    (root / "handlers" / "v@2.py").write_text('MODULES = {"greet": "^2"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n')
    (root / "gati.toml").write_text(f'[cluster]\nnats = "{jetstream.url}"\nnamespace = "t"\n')
    d = versions("diff", "/v@1", "/v@2", "--project", root, "--json")
    assert d["modules_note"] is None
    (m,) = d["modules"]
    assert (m["old"], m["new"], m["widened"]) == ("greet@1.0.0", "greet@2.0.0", True)
