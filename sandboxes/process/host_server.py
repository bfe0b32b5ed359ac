"""The host service one module process reaches through its own Unix socket.

The socket is the identity: a request arriving here is from this module, whatever it
says. The request id a module sends only attributes the request to one of its calls in
flight (for the audit log); an id that is not in flight is ignored. Every operation
goes through runtime.core.host.Host, the same gate the WASM host functions use.
"""

from __future__ import annotations

import json
import os

import grpc
from gati_sdk.protocol.gati.host.v1 import host_pb2, host_pb2_grpc
from gati_sdk.protocol.gati.module.v1 import module_pb2

from runtime.core.call import CallContext
from runtime.core.errors import GatiError
from runtime.core.host import Host


def _error(err: GatiError) -> module_pb2.Error:
    return module_pb2.Error(code=err.code, message=err.message, fix=err.fix or "", details={k: str(v) for k, v in err.details.items()})


def _value(value: bytes | str | None) -> host_pb2.ValueResponse:
    if value is None:
        return host_pb2.ValueResponse(found=False)
    return host_pb2.ValueResponse(found=True, value=value.encode() if isinstance(value, str) else value)


class HostServer(host_pb2_grpc.HostServiceServicer):
    def __init__(self, host: Host, socket_path: str):
        self.host = host
        self.socket_path = socket_path
        self.calls: dict[str, CallContext] = {}  # request id -> context of this module's calls in flight
        self._server: grpc.aio.Server | None = None

    def context(self, request_id: str = "") -> CallContext:
        """The context of one call in flight, or, for traffic we cannot attribute, the module's own."""
        ctx = self.calls.get(request_id)
        if ctx is None and len(self.calls) == 1:
            ctx = next(iter(self.calls.values()))
        return ctx or CallContext(caller=f"module:{self.host.manifest.name}")

    async def start(self) -> None:
        self._server = grpc.aio.server()
        host_pb2_grpc.add_HostServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"unix:{self.socket_path}")
        await self._server.start()
        os.chmod(self.socket_path, 0o666)  # the module runs as an unprivileged user

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0.5)

    async def _guard(self, reply_type, op):
        try:
            return await op()
        except GatiError as err:
            return reply_type(error=_error(err))

    async def HttpRequest(self, request, context):
        async def op():
            result = await self.host.http(
                self.context(request.request_id),
                {"method": request.method or "GET", "url": request.url, "headers": dict(request.headers), "body": request.body},
            )
            return host_pb2.HttpResponseMessage(status=result["status"], headers=result["headers"], body=result["body"].encode())

        return await self._guard(host_pb2.HttpResponseMessage, op)

    async def KvGet(self, request, context):
        async def op():
            return _value(self.host.kv_get(self.context(request.request_id), request.store, request.key))

        return await self._guard(host_pb2.ValueResponse, op)

    async def KvPut(self, request, context):
        async def op():
            self.host.kv_put(self.context(request.request_id), request.store, request.key, request.value)
            return host_pb2.ValueResponse(found=True)

        return await self._guard(host_pb2.ValueResponse, op)

    async def SecretGet(self, request, context):
        async def op():
            return _value(self.host.secret_get(self.context(request.request_id), request.name))

        return await self._guard(host_pb2.ValueResponse, op)

    async def EnvGet(self, request, context):
        async def op():
            return _value(self.host.env_get(self.context(request.request_id), request.name))

        return await self._guard(host_pb2.ValueResponse, op)

    async def FileRead(self, request, context):
        async def op():
            return _value(self.host.file_read(self.context(request.request_id), request.path))

        return await self._guard(host_pb2.ValueResponse, op)

    async def FileWrite(self, request, context):
        async def op():
            self.host.file_write(self.context(request.request_id), request.path, request.data)
            return host_pb2.ValueResponse(found=True)

        return await self._guard(host_pb2.ValueResponse, op)

    async def CallModule(self, request, context):
        async def op():
            payload = json.loads(request.payload) if request.payload else None
            result = await self.host.call_module(self.context(request.request_id), request.module, request.method, payload)
            return module_pb2.CallResponse(payload=json.dumps(result).encode())

        return await self._guard(module_pb2.CallResponse, op)

    async def Log(self, request, context):
        self.host.log(self.context(request.request_id), request.level, request.message)
        return host_pb2.ValueResponse(found=True)
