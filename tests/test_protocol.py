"""The gRPC contracts: generated code is fresh, and a WASM module answers a plain grpcio client."""

import asyncio
import filecmp
import importlib.util
import json
from pathlib import Path

import grpc
import pytest
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from gati_sdk.protocol.grpc.health.v1 import health_pb2, health_pb2_grpc

from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.modules.grpc_module_server import serve_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)

ECHO_WAT = """
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (call $input_read (i32.const 0))
    (call $output (i32.const 0) (call $input_len))
    (i32.const 0))
  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"""


def test_generated_code_is_fresh(tmp_path):
    generate.generate(tmp_path)
    checked_in = generate.OUT_DIR
    for fresh in tmp_path.rglob("*_pb2*.py*"):
        ours = checked_in / fresh.relative_to(tmp_path)
        assert ours.exists() and filecmp.cmp(fresh, ours, shallow=False), f"{ours} is stale: run make proto"


@pytest.fixture
def echo_module(tmp_path):
    mod = tmp_path / "echo"
    mod.mkdir()
    (mod / "echo.wat").write_text(ECHO_WAT)
    (mod / "module.toml").write_text(
        'name = "echo"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "echo.wat"\n[methods.echo]\n'
        "[methods.spin]\ntimeout_ms = 60000\n[limits]\ntimeout_ms = 60000\nconcurrency = 1\n"
    )
    state = StateDir(tmp_path / "state")
    register_module(state, mod)
    return state


@pytest.fixture
async def served(echo_module, tmp_path):
    """The socket of `gati module serve echo`'s server."""
    manager = ModuleManager(echo_module)
    sock = tmp_path / "echo.sock"
    server = asyncio.create_task(serve_module(manager, "echo", f"unix:{sock}"))
    try:
        for _ in range(100):  # bounded wait for the socket
            if sock.exists():
                break
            await asyncio.sleep(0.02)
        yield sock
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await manager.close()


async def test_plain_grpc_client_calls_a_wasm_module(served):
    async with grpc.aio.insecure_channel(f"unix:{served}") as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = module_pb2_grpc.ModuleServiceStub(channel)
        reply = await stub.Call(module_pb2.CallRequest(method="echo", payload=b'{"x": [1, 2]}'))
        assert json.loads(reply.payload) == {"x": [1, 2]}
        missing = await stub.Call(module_pb2.CallRequest(method="nope", payload=b"null"))
        assert missing.WhichOneof("outcome") == "error" and missing.error.code == "method_not_found"
        described = await stub.Describe(module_pb2.DescribeRequest())
        assert described.name == "echo" and list(described.methods) == ["echo", "spin"]


@pytest.mark.parametrize("context, grpc_timeout", [(module_pb2.CallContext(timeout_ms=200), 20.0), (module_pb2.CallContext(), 0.5)])
async def test_the_callers_deadline_stops_the_work(served, context, grpc_timeout):
    """CallContext.timeout_ms, or the gRPC deadline, whichever is sooner, ends the call: not the module's 60 s."""
    async with grpc.aio.insecure_channel(f"unix:{served}") as channel:
        stub = module_pb2_grpc.ModuleServiceStub(channel)
        try:
            reply = await stub.Call(module_pb2.CallRequest(method="spin", payload=b"null", context=context), timeout=grpc_timeout)
            assert reply.error.code == "module_timeout"
        except grpc.aio.AioRpcError as exc:  # the client gave up at its own deadline: the server must stop the work too
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not context.timeout_ms
        # The module runs one call at a time (concurrency = 1): the next call is served only if the spin stopped.
        reply = await stub.Call(module_pb2.CallRequest(method="echo", payload=b'"next"'), timeout=10)
        assert json.loads(reply.payload) == "next"
