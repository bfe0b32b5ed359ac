"""A gRPC server in front of one registered module: what `gati module serve` runs.

It serves the ModuleService of proto/ plus grpc.health.v1, so any gRPC client in any
language can call a module of any kind (a WASM module included) with the contract
container and native modules speak. Calls go through the ModuleManager: the same
registry lookup, capability checks, limits and audit as a call from a handler, under
the caller's deadline (CallContext.timeout_ms, or the gRPC deadline if it is sooner).
The modules' own servers are the other side of this contract: gati_sdk/server.py, the
samples' Go and Node servers.
"""

from __future__ import annotations

import asyncio
import json
import time

import grpc
from gati_sdk.protocol import wire
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from gati_sdk.protocol.grpc.health.v1 import health_pb2, health_pb2_grpc

from runtime.core.call import CallContext, TraceContext
from runtime.core.errors import BadPayload, GatiError
from runtime.modules.manager import ModuleManager


def call_context(request: module_pb2.CallRequest, grpc_remaining: float | None, metadata=()) -> CallContext:
    """The runtime's context of a call a gRPC client made: its ids, its W3C trace context (metadata), and the sooner of its two deadlines."""
    ctx = request.context
    budgets = [s for s in (ctx.timeout_ms / 1000 if ctx.timeout_ms else None, grpc_remaining) if s is not None]
    deadline = time.monotonic() + min(budgets) if budgets else None
    given = {key: value for key, value in metadata or () if key in ("traceparent", "tracestate", "baggage")}
    trace = TraceContext(**given) if "traceparent" in given else None  # passed on to the module as it came
    return CallContext(request_id=ctx.request_id, trace_id=ctx.trace_id, caller=ctx.caller or "grpc", deadline=deadline, trace=trace)


class RegisteredModuleServicer(module_pb2_grpc.ModuleServiceServicer):
    def __init__(self, manager: ModuleManager, name: str):
        self.manager = manager
        self.name = name

    async def Call(self, request: module_pb2.CallRequest, context) -> module_pb2.CallResponse:
        call_ctx = call_context(request, context.time_remaining(), context.invocation_metadata())
        try:
            try:
                payload = json.loads(request.payload) if request.payload else None
            except ValueError:
                raise BadPayload("payload is not JSON", module=self.name, method=request.method) from None
            result = await self.manager.call(self.name, request.method, payload, ctx=call_ctx)
        except GatiError as err:
            return module_pb2.CallResponse(error=wire.error_message(err.to_dict()))
        return module_pb2.CallResponse(payload=json.dumps(result).encode())

    async def Describe(self, request, context) -> module_pb2.DescribeResponse:
        m = self.manager.state.registry.get(self.name).manifest
        return module_pb2.DescribeResponse(name=m.name, version=m.version, kind=m.kind, methods=sorted(m.methods))


class ServingHealth(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 for a server that is ready as soon as it listens."""

    async def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(self, request, context):
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        await asyncio.Event().wait()  # until the client goes away


async def serve_module(manager: ModuleManager, name: str, listen: str) -> None:
    """Serve until cancelled. `listen` is `unix:/path/to.sock` or `host:port`."""
    manager.state.registry.get(name)  # fail now, with the list of known modules, if it is not registered
    server = grpc.aio.server()
    module_pb2_grpc.add_ModuleServiceServicer_to_server(RegisteredModuleServicer(manager, name), server)
    health_pb2_grpc.add_HealthServicer_to_server(ServingHealth(), server)
    server.add_insecure_port(listen)
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(grace=1.0)
