"""The module's client of the host service: its only way to reach anything outside.

Every request presents the call token of the call it serves (the one this client was made
for, else the call the current thread works for: call.py); the host bounds what it does by
that call's deadline. Every method may raise CapabilityDenied, whose `details["grant"]` is
the manifest line that would allow the request.

kv entries carry a revision that changes on every write and is never reused, so an update
made from what was read cannot overwrite a change made since:

    entry = host.kv_entry("cart", user)             # (value, revision), or None
    try:
        host.kv_cas("cart", user, add(entry), entry.revision if entry else 0)
    except KvConflict:
        ...                                          # someone wrote first: read again, retry
    host.kv_increment("visits", "count")            # one atomic step, the new value
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import grpc

from gati_sdk.call import current_token
from gati_sdk.errors import HostError, from_error
from gati_sdk.protocol.gati.host.v1 import host_pb2, host_pb2_grpc


class KvEntry(NamedTuple):
    value: bytes
    revision: int


class HostClient:
    def __init__(self, socket_path: str | None, call_token: str = "", _stub=None):
        self.socket_path = socket_path
        self.call_token = call_token
        self._stub = _stub
        if _stub is None and socket_path:
            self._stub = host_pb2_grpc.HostServiceStub(grpc.insecure_channel(f"unix:{socket_path}"))

    def for_call(self, call_token: str) -> "HostClient":
        """The same connection, presenting one call's token (what attributes a request to its call)."""
        return HostClient(self.socket_path, call_token, self._stub)

    def _call(self, rpc: str, request) -> Any:
        if self._stub is None:
            raise HostError("no host service: GATI_HOST_SOCKET is not set")
        reply = getattr(self._stub, rpc)(request)
        if reply.HasField("error"):
            raise from_error(reply.error)
        return reply

    @property
    def _token(self) -> str:
        return self.call_token or current_token()

    def _value(self, rpc: str, request) -> bytes | None:
        reply = self._call(rpc, request)
        return reply.value if reply.found else None

    def http(self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes | str = b"") -> dict:
        """One HTTP request through the host's egress policy: {"status", "headers", "body"}."""
        reply = self._call(
            "HttpRequest",
            host_pb2.HttpRequestMessage(
                call_token=self._token, method=method, url=url, headers=headers or {},
                body=body.encode() if isinstance(body, str) else body,
            ),
        )
        return {"status": reply.status, "headers": dict(reply.headers), "body": reply.body}

    def kv_get(self, store: str, key: str) -> bytes | None:
        return self._value("KvGet", host_pb2.KvGetRequest(call_token=self._token, store=store, key=key))

    def kv_put(self, store: str, key: str, value: bytes | str) -> None:
        value = value.encode() if isinstance(value, str) else value
        self._call("KvPut", host_pb2.KvPutRequest(call_token=self._token, store=store, key=key, value=value))

    def kv_entry(self, store: str, key: str) -> KvEntry | None:
        """The value with its revision, or None when absent."""
        reply = self._call("KvGetEntry", host_pb2.KvGetRequest(call_token=self._token, store=store, key=key))
        return KvEntry(reply.value, reply.revision) if reply.found else None

    def kv_cas(self, store: str, key: str, value: bytes | str, revision: int) -> int:
        """Write only if the entry is at `revision` (0: only if absent); the new revision. KvConflict otherwise."""
        value = value.encode() if isinstance(value, str) else value
        request = host_pb2.KvCompareAndSetRequest(call_token=self._token, store=store, key=key, value=value, revision=revision)
        return self._call("KvCompareAndSet", request).revision

    def kv_increment(self, store: str, key: str, delta: int = 1) -> int:
        """Add delta to the counter at key (absent: 0) in one step; the new value."""
        return self._call("KvIncrement", host_pb2.KvIncrementRequest(call_token=self._token, store=store, key=key, delta=delta)).value

    def kv_delete(self, store: str, key: str, revision: int = 0) -> bool:
        """Delete the entry (only at `revision` unless 0); False when there was none. KvConflict otherwise."""
        request = host_pb2.KvDeleteRequest(call_token=self._token, store=store, key=key, revision=revision)
        return self._call("KvDelete", request).found

    def secret(self, name: str) -> str | None:
        value = self._value("SecretGet", host_pb2.NameRequest(call_token=self._token, name=name))
        return None if value is None else value.decode()

    def env(self, name: str) -> str | None:
        value = self._value("EnvGet", host_pb2.NameRequest(call_token=self._token, name=name))
        return None if value is None else value.decode()

    def file_read(self, path: str) -> bytes | None:
        return self._value("FileRead", host_pb2.FileRequest(call_token=self._token, path=path))

    def file_write(self, path: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        self._call("FileWrite", host_pb2.FileRequest(call_token=self._token, path=path, data=data))

    def call(self, module: str, method: str, payload: Any = None) -> Any:
        reply = self._call(
            "CallModule",
            host_pb2.CallModuleRequest(call_token=self._token, module=module, method=method, payload=json.dumps(payload).encode()),
        )
        return json.loads(reply.payload)

    def log(self, message: str, level: int = 1) -> None:
        self._call("Log", host_pb2.LogRequest(call_token=self._token, level=level, message=message))
