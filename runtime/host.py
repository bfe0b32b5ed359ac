"""The host side of a module: everything a module may ask for, checked, audited, then done.

One Host per running module. Every backend calls it: the WASM host functions, and the
gRPC Host service that container and native modules reach through their socket. Each
operation asks the module's Policy, writes one audit event with the decision, and
either acts or raises CapabilityDenied naming the grant that is missing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from runtime.call import CallContext
from runtime.capabilities.policy import Decision, Policy
from runtime.capabilities.egress import IPAddress, Target, _ip_or_none
from runtime.errors import CapabilityDenied, GatiError
from runtime.manifest import LoadedManifest

if TYPE_CHECKING:
    from runtime.modules import ModuleManager

log = logging.getLogger("gati.module")

EGRESS_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 10 << 20


class EgressError(GatiError):
    code = "egress_failed"
    http_status = 502


class Host:
    def __init__(self, loaded: LoadedManifest, manager: "ModuleManager"):
        self.manifest = loaded.manifest
        self.policy = Policy(loaded)
        self.manager = manager
        self.state = manager.state

    # the one gate ---------------------------------------------------------
    def decide(self, ctx: CallContext, decision: Decision) -> Decision:
        """Audit the decision; raise CapabilityDenied when it is a denial."""
        self.state.audit.record(
            module=self.manifest.name,
            version=self.manifest.version,
            caller=ctx.caller,
            request_id=ctx.request_id,
            trace_id=ctx.trace_id,
            capability=decision.capability,
            target=decision.target,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            grant=decision.grant,
            reason=decision.reason or None,
        )
        if not decision.allowed:
            raise CapabilityDenied(
                self.manifest.name, decision.capability, decision.target, decision.grant or "(no grant can allow this)", decision.reason
            )
        return decision

    # env, secrets, files, kv -------------------------------------------------
    def env_get(self, ctx: CallContext, name: str) -> str | None:
        self.decide(ctx, self.policy.env(name))
        return self.manager.environ.get(name)

    def secret_get(self, ctx: CallContext, name: str) -> str | None:
        self.decide(ctx, self.policy.secret(name))
        return self.manager.secrets.get(name)

    def file_read(self, ctx: CallContext, path: str) -> bytes | None:
        decision, host_path = self.policy.file(path, write=False)
        self.decide(ctx, decision)
        try:
            return host_path.read_bytes()
        except FileNotFoundError:
            return None

    def file_write(self, ctx: CallContext, path: str, data: bytes) -> None:
        decision, host_path = self.policy.file(path, write=True)
        self.decide(ctx, decision)
        host_path.write_bytes(data)

    def kv_get(self, ctx: CallContext, store: str, key: str) -> bytes | None:
        self.decide(ctx, self.policy.kv(store, write=False))
        return self.state.kv.get(store, key)

    def kv_put(self, ctx: CallContext, store: str, key: str, value: bytes) -> None:
        self.decide(ctx, self.policy.kv(store, write=True))
        self.state.kv.put(store, key, value)

    def log(self, ctx: CallContext, level: int, message: str) -> None:
        levels = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
        log.log(levels.get(level, logging.INFO), "[%s %s] %s", self.manifest.name, ctx.request_id or "-", message)

    # module -> module ------------------------------------------------------------
    async def call_module(self, ctx: CallContext, module: str, method: str, payload: Any) -> Any:
        self.decide(ctx, self.policy.module_call(module))
        nested = ctx.nested(f"module:{self.manifest.name}", self.manifest.limits.timeout_ms / 1000)
        return await self.manager.call(module, method, payload, ctx=nested)

    # egress ---------------------------------------------------------------------
    async def egress(self, ctx: CallContext, url: str) -> tuple[Target, list[IPAddress]]:
        """Decide on a URL by name, then by each resolved address; returns the addresses to connect to.

        Used by the HTTP host call and by the egress proxy of container and native modules.
        """
        decision, target = self.policy.egress(url)
        self.decide(ctx, decision)
        assert target is not None
        return target, await self._resolve(ctx, target)

    async def http(self, ctx: CallContext, request: dict[str, Any]) -> dict[str, Any]:
        """Make one HTTP request for the module, pinned to addresses the policy allowed."""
        url = request.get("url")
        if not isinstance(url, str):
            raise EgressError("http request needs a string 'url'", fix='send {"method": "GET", "url": "https://..."}')
        target, addresses = await self.egress(ctx, url)
        timeout = aiohttp.ClientTimeout(total=ctx.remaining(EGRESS_TIMEOUT_S))
        connector = aiohttp.TCPConnector(resolver=_PinnedResolver(addresses), use_dns_cache=False, force_close=True)
        body = request.get("body")
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
                async with session.request(
                    str(request.get("method", "GET")).upper(),
                    url,
                    headers={str(k): str(v) for k, v in (request.get("headers") or {}).items()},
                    data=body.encode() if isinstance(body, str) else body,
                    allow_redirects=False,  # every hop must pass the policy: the module follows redirects itself
                ) as resp:
                    content = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                    if len(content) > MAX_RESPONSE_BYTES:
                        raise EgressError(f"response from {target} is over {MAX_RESPONSE_BYTES} bytes")
                    return {"status": resp.status, "headers": dict(resp.headers), "body": content.decode("utf-8", "replace")}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise EgressError(f"request to {target} failed: {exc.__class__.__name__}: {exc}") from None

    async def _resolve(self, ctx: CallContext, target: Target) -> list[IPAddress]:
        """Resolve the name, then allow only the addresses the policy allows (each decision audited)."""
        literal = _ip_or_none(target.host)
        if literal is not None:
            candidates = [literal]
        elif target.host in self.manager.egress_hosts:
            candidates = [_ip_or_none(self.manager.egress_hosts[target.host])]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise EgressError(f"cannot resolve {target.host}: {exc}") from None
            candidates = list(dict.fromkeys(_ip_or_none(info[4][0].split("%")[0]) for info in infos))
        allowed, refusal = [], None
        for ip in candidates:
            decision = self.policy.egress_address(target, ip)
            if decision.allowed:
                allowed.append(ip)
            else:
                refusal = decision
        if not allowed:
            self.decide(ctx, refusal)  # raises, with the grant that would name the address
        return allowed


class _PinnedResolver(AbstractResolver):
    """Gives aiohttp only the addresses that passed the policy, so DNS cannot be asked twice."""

    def __init__(self, addresses: list[IPAddress]):
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host=str(ip), port=port, family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST,
            )
            for ip in self.addresses
        ]

    async def close(self) -> None:
        pass
