"""Atomic kv: compare-and-set by revision, increment and delete-if-revision, on the embedded
SQLite store (across processes), from WASM (host functions) and over the gRPC host service (SDK),
each checked against the manifest and audited like every other kv access.

The store contract (kv_contract.py) runs on every backend of runtime.core.kv.KvStore: here
SQLite; the JetStream backend runs the same contract in tests/test_cluster_state.py.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.errors import GatiError
from kv_contract import check_contract

from runtime.core.kv import Entry, KvConflict, KvInvalid, SqliteKvStore, run_now
from runtime.modules import register_module

ROOT = Path(__file__).resolve().parents[1]
KVATOMIC = ROOT / "tests" / "modules" / "kvatomic"
U64 = struct.Struct("<Q")
CTX = CallContext(request_id="req-kv", trace_id="trace-kv", caller="test")


@pytest.fixture
def sqlite_kv(tmp_path):
    kv = SqliteKvStore(tmp_path / "kv.db")
    yield kv
    kv.close()


async def test_sqlite_store_keeps_the_contract(sqlite_kv):
    await check_contract(sqlite_kv)


def test_sqlite_store_never_suspends(sqlite_kv):
    # What lets a WASM worker thread drive it in place (kv.run_now) instead of hopping to the loop.
    assert sqlite_kv.local
    assert run_now(sqlite_kv.increment("s", "n", 2)) == 2
    assert run_now(sqlite_kv.entry("s", "n")).value == b"2"


def test_run_now_refuses_a_coroutine_that_suspends():
    async def waits():
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_now(waits())


def test_sqlite_store_opens_a_file_from_before_revisions(tmp_path):
    old = sqlite3.connect(tmp_path / "kv.db")
    old.execute("CREATE TABLE kv (store TEXT, key TEXT, value BLOB, PRIMARY KEY (store, key))")
    old.execute("INSERT INTO kv VALUES ('visits', 'count', ?)", (b"7",))
    old.commit()
    old.close()
    kv = SqliteKvStore(tmp_path / "kv.db")
    try:
        assert run_now(kv.entry("visits", "count")) == Entry(b"7", 1)
        assert run_now(kv.increment("visits", "count", 1)) == 8
        assert run_now(kv.entry("visits", "count")).revision == 2
    finally:
        kv.close()


INCREMENTS = """
import sys
from runtime.core.kv import SqliteKvStore, run_now
kv = SqliteKvStore(sys.argv[1])
for _ in range(int(sys.argv[2])):
    run_now(kv.increment("counts", "hits", 1))
"""


def test_increments_from_several_processes_sum_exactly(tmp_path):
    # Each process has its own connection: only SQLite's write lock (BEGIN IMMEDIATE) orders them.
    SqliteKvStore(tmp_path / "kv.db").close()
    procs = [subprocess.Popen([sys.executable, "-c", INCREMENTS, str(tmp_path / "kv.db"), "150"], cwd=ROOT) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    kv = SqliteKvStore(tmp_path / "kv.db")
    assert run_now(kv.get("counts", "hits")) == b"600"
    kv.close()


def test_compare_and_set_from_threads_loses_no_update(sqlite_kv):
    # A read-modify-write loop on cas: every update lands exactly once.
    def add(times: int) -> None:
        for _ in range(times):
            while True:
                entry = run_now(sqlite_kv.entry("s", "total"))
                value = int(entry.value) + 1 if entry else 1
                try:
                    run_now(sqlite_kv.cas("s", "total", str(value).encode(), entry.revision if entry else 0))
                    break
                except KvConflict:
                    continue

    threads = [threading.Thread(target=add, args=(100,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert run_now(sqlite_kv.get("s", "total")) == b"400"


# property: the store behaves like a map whose revisions only grow ---------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.binary(max_size=8)),
        st.tuples(st.just("cas"), KEYS, st.binary(max_size=8), st.sampled_from(["current", "stale", "zero"])),
        st.tuples(st.just("increment"), KEYS, st.integers(-1000, 1000)),
        st.tuples(st.just("delete"), KEYS, st.sampled_from(["current", "stale", "zero"])),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPS)
def test_sqlite_store_matches_a_model_for_any_operations(ops):
    with tempfile.TemporaryDirectory() as tmp:
        kv = SqliteKvStore(Path(tmp) / "kv.db")
        try:
            model: dict[str, tuple[bytes, int]] = {}
            last_revision = 0
            for op, key, *args in ops:
                at = model.get(key, (None, 0))[1]
                pick = {"current": at, "stale": at + 7, "zero": 0}
                if op == "put":
                    revision = run_now(kv.put("s", key, args[0]))
                    model[key] = (args[0], revision)
                elif op == "cas":
                    expected = pick[args[1]]
                    try:
                        revision = run_now(kv.cas("s", key, args[0], expected))
                    except KvConflict as conflict:
                        assert expected != at and conflict.current == at
                        continue
                    assert expected == at
                    model[key] = (args[0], revision)
                elif op == "increment":
                    old = model.get(key, (b"0", 0))[0]
                    try:
                        value = run_now(kv.increment("s", key, args[0]))
                    except KvInvalid:
                        assert not old.lstrip(b"-").isdigit() or not old or len(old.lstrip(b"-")) > 19
                        continue
                    assert value == int(old) + args[0]
                    model[key] = (str(value).encode(), run_now(kv.entry("s", key)).revision)
                else:
                    expected = pick[args[0]]
                    try:
                        deleted = run_now(kv.delete("s", key, expected))
                    except KvConflict as conflict:
                        assert expected and expected != at and conflict.current == at
                        continue
                    assert deleted == (key in model)
                    model.pop(key, None)
                    continue
                assert model[key][1] > last_revision  # revisions only grow, so none is ever reused
                last_revision = model[key][1]
            for key in ("a", "b", "c"):
                entry = run_now(kv.entry("s", key))
                assert (entry.value, entry.revision) == model[key] if key in model else entry is None
        finally:
            kv.close()


# from WASM --------------------------------------------------------------------------------------------


def install(tmp_path: Path, declared: str = '"counts"') -> Path:
    target = tmp_path / "modules" / "kvatomic"
    shutil.copytree(KVATOMIC, target)
    manifest = target / "module.toml"
    manifest.write_text(manifest.read_text().replace('kv = ["counts"]', f"kv = [{declared}]"))
    return target


async def wasm(manager, method, payload=None) -> tuple[int, bytes]:
    answer = await manager.call("kvatomic", method, payload, ctx=CTX)
    return answer["status"], bytes.fromhex(answer["result"])


def revision_arg(revision: int, value: str | None = None) -> str:
    return U64.pack(revision).hex() + ("" if value is None else ":" + value)


async def test_wasm_host_functions_are_atomic_and_audited(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    assert await wasm(manager, "entry") == (2, b"")  # not found
    status, result = await wasm(manager, "cas", revision_arg(0, "first"))
    assert status == 0
    created = U64.unpack(result)[0]
    status, result = await wasm(manager, "entry")
    assert status == 0 and U64.unpack(result[:8])[0] == created and result[8:] == b"first"
    # a stale revision: status 4 (conflict) with the current revision
    status, result = await wasm(manager, "cas", revision_arg(created + 5, "second"))
    assert (status, U64.unpack(result)[0]) == (4, created)
    status, result = await wasm(manager, "delete", revision_arg(created + 5))
    assert (status, U64.unpack(result)[0]) == (4, created)
    assert await wasm(manager, "delete", revision_arg(created)) == (0, b"")
    assert await wasm(manager, "delete", revision_arg(0)) == (2, b"")
    assert await wasm(manager, "increment") == (0, b"1")
    assert await wasm(manager, "decrement") == (0, b"-4")
    assert await state.kv.get("counts", "k") == b"-4"
    # a value that is no counter: an error status, the store unchanged
    await state.kv.put("counts", "k", b"text")
    status, result = await wasm(manager, "increment")
    assert status == 3 and b"kv_invalid" in result
    kv = [(e["capability"], e["target"], e["decision"], e["request_id"]) for e in read_events(state.audit_path) if e["capability"].startswith("kv")]
    assert [k[:3] for k in kv] == [("kv.read", "counts", "allow"), ("kv.write", "counts", "allow"), ("kv.read", "counts", "allow")] + [
        ("kv.write", "counts", "allow")
    ] * 7
    assert {k[3] for k in kv} == {"req-kv"}


async def test_wasm_atomic_operations_need_the_store_declared(state, manager, tmp_path):
    register_module(state, install(tmp_path, declared='"elsewhere"'))
    for method, payload in (("entry", None), ("increment", None), ("cas", revision_arg(0, "x")), ("delete", revision_arg(0))):
        status, result = await wasm(manager, method, payload)
        assert status == 1 and b'[capabilities] kv = [\\"counts\\"]' in result, method
    assert await state.kv.get("counts", "k") is None
    denied = [(e["capability"], e["decision"]) for e in read_events(state.audit_path)]
    assert denied == [("kv.read", "deny"), ("kv.write", "deny"), ("kv.write", "deny"), ("kv.write", "deny")]


async def test_wasm_increments_from_concurrent_calls_sum_exactly(state, manager, tmp_path):
    register_module(state, install(tmp_path))
    results = await asyncio.gather(*(wasm(manager, "increment") for _ in range(60)))
    assert sorted(int(r[1]) for r in results) == list(range(1, 61))


# over the gRPC host service, through the Python SDK ----------------------------------------------------


@pytest.fixture
async def host_client(state, tmp_path):
    """The module SDK's HostClient on a real HostServer socket, gating kv store "counts"."""
    from gati_sdk.host import HostClient

    from runtime.core.host import Host, Resolver
    from runtime.core.manifest import load_manifest
    from runtime.core.secrets import Secrets
    from sandboxes.process.call_tokens import CallTokens
    from sandboxes.process.host_server import HostServer

    host = Host(load_manifest(install(tmp_path)), audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv, resolver=Resolver(), call_module=None)
    calls = CallTokens(host)
    server = HostServer(host, str(tmp_path / "host.sock"), calls)
    await server.start()
    with calls.issued(CTX) as token:  # the module's requests serve this call
        yield HostClient(str(tmp_path / "host.sock"), token)
    await server.stop()


async def test_sdk_atomic_kv_through_the_host_service(state, host_client):
    from gati_sdk import KvConflict as SdkConflict
    from gati_sdk.errors import CapabilityDenied as SdkDenied
    from gati_sdk.errors import HostError as SdkHostError

    def module_side():  # the SDK is synchronous: a module's own thread
        assert host_client.kv_entry("counts", "k") is None
        first = host_client.kv_cas("counts", "k", "one", 0)
        entry = host_client.kv_entry("counts", "k")
        assert entry == (b"one", first)
        with pytest.raises(SdkConflict) as conflict:
            host_client.kv_cas("counts", "k", "two", first + 9)
        assert conflict.value.current_revision == first and conflict.value.code == "kv_conflict"
        second = host_client.kv_cas("counts", "k", b"two", first)
        with pytest.raises(SdkConflict) as conflict:
            host_client.kv_delete("counts", "k", first)
        assert conflict.value.current_revision == second
        assert host_client.kv_delete("counts", "k", second) is True
        assert host_client.kv_delete("counts", "k") is False
        assert [host_client.kv_increment("counts", "n") for _ in range(3)] == [1, 2, 3]
        assert host_client.kv_increment("counts", "n", -10) == -7
        with pytest.raises(SdkDenied) as denied:
            host_client.kv_increment("other", "n")
        assert denied.value.details["grant"] == '[capabilities] kv = ["other"]'
        host_client.kv_put("counts", "k2", "not a number")
        with pytest.raises(SdkHostError) as invalid:
            host_client.kv_increment("counts", "k2", 1)
        assert invalid.value.code == "kv_invalid" and invalid.value.fix

    await asyncio.to_thread(module_side)
    assert await state.kv.get("counts", "n") == b"-7"
    decisions = [(e["capability"], e["target"], e["decision"]) for e in read_events(state.audit_path)]
    assert decisions.count(("kv.write", "other", "deny")) == 1
    assert len([d for d in decisions if d[0].startswith("kv")]) == 15


async def test_sdk_increments_from_many_threads_sum_exactly(state, host_client):
    def add(times):
        for _ in range(times):
            host_client.kv_increment("counts", "n")

    await asyncio.gather(*(asyncio.to_thread(add, 25) for _ in range(4)))
    assert await state.kv.get("counts", "n") == b"100"


def test_conflict_and_invalid_are_gati_errors_with_a_fix():
    for err in (KvConflict("s", "k", 3, 5), KvConflict("s", "k", 0, 5), KvConflict("s", "k", 3, 0), KvInvalid("x", fix="y")):
        assert isinstance(err, GatiError) and err.fix and err.message
    assert GatiError.from_dict(KvConflict("s", "k", 3, 5).to_dict()).code == "kv_conflict"
