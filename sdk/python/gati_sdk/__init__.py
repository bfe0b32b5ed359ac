"""The gati module SDK for Python: depends only on grpcio and protobuf.

    from gati_sdk import Module

    module = Module("thumbs")

    @module.method
    def resize(payload, ctx):
        page = ctx.host.http("GET", "https://api.example.com/x")
        return {"ok": page["status"] == 200}

    if __name__ == "__main__":
        module.serve()

`serve()` listens on the Unix socket the runtime names (GATI_MODULE_SOCKET), serves
the module service and grpc.health.v1, and prints the handshake line. `ctx.host`
reaches the host service (GATI_HOST_SOCKET): egress, kv (with compare-and-set, increment
and delete by revision), secrets, env, files, log and calling other modules, each checked
against the module's manifest. Ordinary HTTP clients (urllib, requests) go through the egress proxy; a refusal raises CapabilityDenied
there too (proxy.py). Every request, to the host or through the proxy, is made for the
call it serves (call.py): the SDK presents that call's token for you. `ctx.trace` is the
W3C trace context of the call (trace.py); with opentelemetry-api installed, the module's own
spans continue the request's trace.
"""

from gati_sdk.errors import CapabilityDenied, HostError, KvConflict, ModuleError
from gati_sdk.host import HostClient
from gati_sdk.server import HANDSHAKE_VERSION, Context, Module

__all__ = ["Module", "Context", "HostClient", "ModuleError", "CapabilityDenied", "HostError", "KvConflict", "HANDSHAKE_VERSION"]
