"""The module side of the module service: dispatch calls to Python functions.

Start-up follows hashicorp/go-plugin: the module binds its Unix socket, marks itself
SERVING in grpc.health.v1, then prints one handshake line on stdout,

    GATI|1|unix|/run/gati/module.sock

(protocol version 1); the runtime checks the version and then the health service.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable

import grpc

from gati_sdk.errors import ModuleError
from gati_sdk.health import SERVING, HealthServicer
from gati_sdk.host import HostClient
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from gati_sdk.protocol.grpc.health.v1 import health_pb2_grpc

HANDSHAKE_VERSION = 1


@dataclass
class Context:
    request_id: str
    trace_id: str
    caller: str
    deadline: float | None  # time.monotonic() by which the call must end
    host: HostClient

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class Module:
    def __init__(self, name: str = "", version: str = "0.0.0"):
        self.name = name or os.environ.get("GATI_MODULE_NAME", "module")
        self.version = version
        self.methods: dict[str, Callable[[Any, Context], Any]] = {}

    def method(self, fn: Callable | None = None, *, name: str | None = None):
        """Register a function `fn(payload, ctx)` as a method (decorator)."""

        def register(f: Callable) -> Callable:
            self.methods[name or f.__name__] = f
            return f

        return register(fn) if fn is not None else register

    def serve(self, socket_path: str | None = None, host_socket: str | None = None) -> None:
        socket_path = socket_path or os.environ.get("GATI_MODULE_SOCKET")
        if not socket_path:
            sys.exit("gati module: GATI_MODULE_SOCKET is not set; run me through the gati runtime")
        host = HostClient(host_socket or os.environ.get("GATI_HOST_SOCKET"))
        workers = int(os.environ.get("GATI_CONCURRENCY", "4"))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        module_pb2_grpc.add_ModuleServiceServicer_to_server(_Servicer(self, host), server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        server.add_insecure_port(f"unix:{socket_path}")
        server.start()
        health.set(SERVING)
        print(f"GATI|{HANDSHAKE_VERSION}|unix|{socket_path}", flush=True)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        stopped.wait()
        server.stop(grace=1.0).wait()


class _Servicer(module_pb2_grpc.ModuleServiceServicer):
    def __init__(self, module: Module, host: HostClient):
        self.module = module
        self.host = host

    def Call(self, request, context):
        fn = self.module.methods.get(request.method)
        if fn is None:
            return _error("method_not_found", f"module {self.module.name} has no method {request.method!r}")
        ctx = request.context
        deadline = time.monotonic() + ctx.timeout_ms / 1000 if ctx.timeout_ms else None
        call_ctx = Context(ctx.request_id, ctx.trace_id, ctx.caller, deadline, self.host.for_request(ctx.request_id))
        try:
            payload = json.loads(request.payload) if request.payload else None
            result = fn(payload, call_ctx)
            return module_pb2.CallResponse(payload=json.dumps(result).encode())
        except ModuleError as err:
            return _error(err.code, err.message, err.fix, err.details)
        except (TypeError, ValueError) as err:
            return _error("bad_payload", f"{request.method}: {err}")
        except Exception as err:  # the module's own bug: report it, keep serving
            traceback.print_exc()
            return _error("module_error", f"{request.method} raised {err.__class__.__name__}: {err}")

    def Describe(self, request, context):
        return module_pb2.DescribeResponse(name=self.module.name, version=self.module.version, methods=sorted(self.module.methods))


def _error(code: str, message: str, fix: str = "", details: dict | None = None):
    return module_pb2.CallResponse(error=module_pb2.Error(code=code, message=message, fix=fix, details=details or {}))
