"""The host service one module process reaches through its own Unix socket.

The socket is the identity: a request arriving here is from this module, whatever it
says. Which of the module's calls it serves is named by the call token it presents
(call_tokens.py): a request with no token of a call in flight is refused and audited.
Every operation goes through runtime.core.host.Host, the same gate the WASM host
functions use.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os

import grpc
from gati_sdk.protocol import wire
from gati_sdk.protocol.gati.host.v1 import host_pb2, host_pb2_grpc
from gati_sdk.protocol.gati.module.v1 import module_pb2

from runtime.core.errors import GatiError
from runtime.core.host import Host
from sandboxes.process.call_tokens import CallTokens


def _value(value: bytes | str | None) -> host_pb2.ValueResponse:
    if value is None:
        return host_pb2.ValueResponse(found=False)
    return host_pb2.ValueResponse(found=True, value=value.encode() if isinstance(value, str) else value)


class HostServer(host_pb2_grpc.HostServiceServicer):
    def __init__(self, host: Host, socket_path: str, calls: CallTokens):
        self.host = host
        self.socket_path = socket_path
        self.calls = calls
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        # grpc.aio serves every RPC in a task made from the context its server started in. Started
        # in a context of its own, not in the one of the request whose call started the instance:
        # otherwise every later host call would run as that request (its log fields, its spans).
        await asyncio.create_task(self._start(), context=contextvars.Context())

    async def _start(self) -> None:
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
            return reply_type(error=wire.error_message(err.to_dict()))

    async def HttpRequest(self, request, context):
        async def op():
            result = await self.host.http(
                self.calls.context(request.call_token, "egress", request.url),
                {"method": request.method or "GET", "url": request.url, "headers": dict(request.headers), "body": request.body},
            )
            return host_pb2.HttpResponseMessage(status=result["status"], headers=result["headers"], body=result["body"].encode())

        return await self._guard(host_pb2.HttpResponseMessage, op)

    async def KvGet(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.read", request.store)
            return _value(await self.host.kv_get(ctx, request.store, request.key))

        return await self._guard(host_pb2.ValueResponse, op)

    async def KvPut(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.write", request.store)
            await self.host.kv_put(ctx, request.store, request.key, request.value)
            return host_pb2.ValueResponse(found=True)

        return await self._guard(host_pb2.ValueResponse, op)

    async def KvGetEntry(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.read", request.store)
            entry = await self.host.kv_entry(ctx, request.store, request.key)
            if entry is None:
                return host_pb2.KvEntryResponse(found=False)
            return host_pb2.KvEntryResponse(found=True, value=entry.value, revision=entry.revision)

        return await self._guard(host_pb2.KvEntryResponse, op)

    async def KvCompareAndSet(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.write", request.store)
            revision = await self.host.kv_cas(ctx, request.store, request.key, request.value, request.revision)
            return host_pb2.KvEntryResponse(found=True, revision=revision)

        return await self._guard(host_pb2.KvEntryResponse, op)

    async def KvIncrement(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.write", request.store)
            return host_pb2.KvCounterResponse(value=await self.host.kv_increment(ctx, request.store, request.key, request.delta))

        return await self._guard(host_pb2.KvCounterResponse, op)

    async def KvDelete(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "kv.write", request.store)
            return host_pb2.KvEntryResponse(found=await self.host.kv_delete(ctx, request.store, request.key, request.revision))

        return await self._guard(host_pb2.KvEntryResponse, op)

    async def SecretGet(self, request, context):
        async def op():
            return _value(self.host.secret_get(self.calls.context(request.call_token, "secret", request.name), request.name))

        return await self._guard(host_pb2.ValueResponse, op)

    async def EnvGet(self, request, context):
        async def op():
            return _value(self.host.env_get(self.calls.context(request.call_token, "env", request.name), request.name))

        return await self._guard(host_pb2.ValueResponse, op)

    async def FileRead(self, request, context):
        async def op():
            return _value(self.host.file_read(self.calls.context(request.call_token, "file.read", request.path), request.path))

        return await self._guard(host_pb2.ValueResponse, op)

    async def FileWrite(self, request, context):
        async def op():
            self.host.file_write(self.calls.context(request.call_token, "file.write", request.path), request.path, request.data)
            return host_pb2.ValueResponse(found=True)

        return await self._guard(host_pb2.ValueResponse, op)

    async def CallModule(self, request, context):
        async def op():
            ctx = self.calls.context(request.call_token, "module.call", request.module)
            payload = json.loads(request.payload) if request.payload else None
            result = await self.host.call_module(ctx, request.module, request.method, payload)
            return module_pb2.CallResponse(payload=json.dumps(result).encode())

        return await self._guard(module_pb2.CallResponse, op)

    async def Log(self, request, context):
        async def op():
            self.host.log(self.calls.context(request.call_token, "log", ""), request.level, request.message)
            return host_pb2.ValueResponse(found=True)

        return await self._guard(host_pb2.ValueResponse, op)
