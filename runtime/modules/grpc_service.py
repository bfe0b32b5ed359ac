"""Serve a registered module over gRPC: the ModuleService of proto/ plus grpc.health.v1.

`gati module serve NAME --listen unix:PATH` uses this, so any gRPC client in any
language can call a WASM module with the same contract container and native modules
speak. Calls go through the ModuleManager: the same registry lookup, capability
checks, limits and audit as a call from a handler.
"""

from __future__ import annotations

import asyncio
import json

import grpc
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from gati_sdk.protocol.grpc.health.v1 import health_pb2, health_pb2_grpc

from runtime.core.call import CallContext
from runtime.core.errors import GatiError
from runtime.modules.manager import ModuleManager


def error_message(err: GatiError) -> module_pb2.Error:
    return module_pb2.Error(
        code=err.code, message=err.message, fix=err.fix or "", details={k: str(v) for k, v in err.details.items()}
    )


class ModuleServicer(module_pb2_grpc.ModuleServiceServicer):
    def __init__(self, manager: ModuleManager, name: str):
        self.manager = manager
        self.name = name

    async def Call(self, request: module_pb2.CallRequest, context) -> module_pb2.CallResponse:
        ctx = request.context
        call_ctx = CallContext(request_id=ctx.request_id, trace_id=ctx.trace_id, caller=ctx.caller or "grpc")
        try:
            payload = json.loads(request.payload) if request.payload else None
        except ValueError:
            return module_pb2.CallResponse(error=module_pb2.Error(code="bad_payload", message="payload is not JSON"))
        try:
            result = await self.manager.call(self.name, request.method, payload, ctx=call_ctx)
        except GatiError as err:
            return module_pb2.CallResponse(error=error_message(err))
        return module_pb2.CallResponse(payload=json.dumps(result).encode())

    async def Describe(self, request, context) -> module_pb2.DescribeResponse:
        m = self.manager.state.registry.get(self.name).manifest
        return module_pb2.DescribeResponse(name=m.name, version=m.version, kind=m.kind, methods=sorted(m.methods))


class ServingHealth(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 for an adapter that is ready as soon as it listens."""

    async def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(self, request, context):
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        await asyncio.Event().wait()  # until the client goes away


async def serve_module(manager: ModuleManager, name: str, listen: str) -> None:
    """Serve until cancelled. `listen` is `unix:/path/to.sock` or `host:port`."""
    manager.state.registry.get(name)  # fail now, with the list of known modules, if it is not registered
    server = grpc.aio.server()
    module_pb2_grpc.add_ModuleServiceServicer_to_server(ModuleServicer(manager, name), server)
    health_pb2_grpc.add_HealthServicer_to_server(ServingHealth(), server)
    server.add_insecure_port(listen)
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(grace=1.0)
