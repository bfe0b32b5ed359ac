"""The module side of the module service: dispatch calls to Python functions.

Start-up follows hashicorp/go-plugin: the module binds its Unix socket, marks itself
SERVING in grpc.health.v1, then prints the handshake line of protocol/wire.py on stdout,

    GATI|2|unix|/run/gati/module.sock

and the runtime checks the version and connects to the socket the line names (grpc.health.v1
stays served for probes; the line is what says the module is ready).

Each call runs under its deadline (CallContext.timeout_ms, or the gRPC deadline if it is
sooner): past it the caller is answered module_timeout. Python cannot stop a thread, so a
method still running then goes on, but acts for no one: its call token is refused.
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

from gati_sdk import call, proxy
from gati_sdk.trace import Trace, continued, from_metadata
from gati_sdk.errors import ModuleError
from gati_sdk.health import SERVING, HealthServicer
from gati_sdk.host import HostClient
from gati_sdk.protocol import wire
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc
from gati_sdk.protocol.grpc.health.v1 import health_pb2_grpc

HANDSHAKE_VERSION = wire.PROTOCOL_VERSION


@dataclass
class Context:
    request_id: str
    trace_id: str
    caller: str
    deadline: float | None  # time.monotonic() by which the call must end
    host: HostClient
    call_token: str = ""  # names this call to the host; the SDK presents it for you
    trace: Trace = Trace()  # the W3C trace context the runtime sent (gati_sdk/trace.py)

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    @property
    def proxy_url(self) -> str | None:
        """The egress proxy's URL with this call's token, for HTTP clients not built on http.client."""
        return proxy.proxy_url(self.call_token)


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
        call.carry_into_threads()
        proxy.install()
        host = HostClient(host_socket or os.environ.get("GATI_HOST_SOCKET"))
        workers = int(os.environ.get("GATI_CONCURRENCY", "4"))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        servicer = _Servicer(self, host, futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gati-method"))
        module_pb2_grpc.add_ModuleServiceServicer_to_server(servicer, server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        server.add_insecure_port(f"unix:{socket_path}")
        server.start()
        health.set(SERVING)
        print(wire.handshake_line(socket_path), flush=True)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        stopped.wait()
        server.stop(grace=1.0).wait()


class _Servicer(module_pb2_grpc.ModuleServiceServicer):
    def __init__(self, module: Module, host: HostClient, methods: futures.Executor):
        self.module = module
        self.host = host
        self.methods = methods  # where methods run, so that a call past its deadline can be answered

    def Call(self, request, context):
        fn = self.module.methods.get(request.method)
        if fn is None:
            return _error("method_not_found", f"module {self.module.name} has no method {request.method!r}")
        ctx = request.context
        budgets = [s for s in (ctx.timeout_ms / 1000 if ctx.timeout_ms else None, context.time_remaining()) if s is not None]
        deadline = time.monotonic() + min(budgets) if budgets else None
        call_ctx = Context(
            ctx.request_id, ctx.trace_id, ctx.caller, deadline, self.host.for_call(ctx.call_token), ctx.call_token,
            from_metadata(context.invocation_metadata()),
        )
        if deadline is None:
            return _run(fn, request, call_ctx)
        running = self.methods.submit(_run, fn, request, call_ctx)
        try:
            return running.result(timeout=call_ctx.remaining())
        except futures.TimeoutError:
            return _error(
                "module_timeout",
                f"{self.module.name}.{request.method} ran past its {min(budgets) * 1000:.0f} ms deadline",
                "make it faster, or give it more time",
                {"module": self.module.name, "method": request.method},
            )

    def Describe(self, request, context):
        return module_pb2.DescribeResponse(name=self.module.name, version=self.module.version, methods=sorted(self.module.methods))


def _run(fn: Callable, request, ctx: Context):
    """One method call, working for its call (call.py) from first to last line."""
    with call.working_for(ctx.call_token), continued(ctx.trace):
        try:
            payload = json.loads(request.payload) if request.payload else None
            result = fn(payload, ctx)
            return module_pb2.CallResponse(payload=json.dumps(result).encode())
        except ModuleError as err:
            return module_pb2.CallResponse(error=wire.error_message(err.to_dict()))
        except (TypeError, ValueError) as err:
            return _error("bad_payload", f"{request.method}: {err}")
        except Exception as err:  # the module's own bug: report it, keep serving
            traceback.print_exc()
            return _error("module_error", f"{request.method} raised {err.__class__.__name__}: {err}")


def _error(code: str, message: str, fix: str = "", details: dict | None = None):
    return module_pb2.CallResponse(error=wire.error_message({"code": code, "message": message, "fix": fix, **(details or {})}))
