"""The host gate: everything a module may ask for, checked, audited, then done.

One Host per running module. Every backend calls it: the WASM host functions, and the
gRPC Host service that container and native modules reach through their socket. Each
operation asks the module's Policy (one unit per capability, runtime/core/capabilities/),
writes one audit event with the decision, and either acts or raises CapabilityDenied
naming the grant that is missing. What a sandbox is handed at start (`start_environ`,
`start_mounts`) and a limit a sandbox enforced (`limit_hit`) are audited the same way.

A Host is handed its collaborators and reaches nothing else: the audit log, the
environment and secrets it may hand out, the kv stores, the egress resolver, a `call_module`
callable and the registered versions of a module (both the module manager's, which the core
does not know).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from runtime.core.audit_log import AuditLog
from runtime.core.call import CallContext
from runtime.core.capabilities.egress import EgressError, IPAddress, Resolver, Target
from runtime.core.capabilities.files import FileGrant, PathRefused
from runtime.core.capabilities.limits import LimitHit
from runtime.core.capabilities.modules import CallModule, ModuleVersions
from runtime.core.policy import Decision, Policy
from runtime.core.errors import CapabilityDenied
from runtime.core.kv import Entry, KvStore
from runtime.core.manifest import LoadedManifest
from runtime.core.secrets import Secrets

__all__ = ["CallModule", "EgressError", "Host", "Resolver"]

log = logging.getLogger("gati.module")

EGRESS_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 10 << 20


class Host:
    def __init__(
        self,
        loaded: LoadedManifest,
        *,
        audit: AuditLog,
        environ: Mapping[str, str],
        secrets: Secrets,
        kv: KvStore,
        resolver: Resolver,
        call_module: CallModule,
        module_versions: ModuleVersions | None = None,
    ):
        self.manifest = loaded.manifest
        self.policy = Policy(
            loaded, environ=environ, secrets=secrets, kv=kv, resolver=resolver, call_module=call_module, module_versions=module_versions
        )
        self.audit = audit

    # the one gate ---------------------------------------------------------
    def decide(self, ctx: CallContext, decision: Decision) -> Decision:
        """Audit the decision; raise CapabilityDenied when it is a denial."""
        self._record(ctx, decision)
        if not decision.allowed:
            raise CapabilityDenied(
                self.manifest.name, decision.capability, decision.target, decision.grant or "(no grant can allow this)", decision.reason
            )
        return decision

    def _record(self, ctx: CallContext, decision: Decision) -> None:
        self.audit.record(
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

    def refuse(self, ctx: CallContext, capability: str, target: str, reason: str) -> None:
        """Audit a request refused before its capability was weighed (e.g. it named no call in flight)."""
        self._record(ctx, Decision(capability, target, False, reason=reason))

    def limit_hit(self, ctx: CallContext, hit: LimitHit) -> None:
        """Audit a limit the sandbox enforced (runtime/core/capabilities/limits.py) beside the refused capabilities."""
        self._record(ctx, Decision(hit.capability, hit.target, False, grant=hit.grant, reason=hit.reason))

    # what a sandbox is handed at start ------------------------------------------
    def start_environ(self, ctx: CallContext) -> dict[str, str]:
        """The declared env names that are set: what a sandbox hands its module at start (each audited)."""
        environ = {}
        for decision, value in self.policy.env_cap.at_start():
            self._record(ctx, decision)
            if decision.allowed:
                environ[decision.target] = value
        return environ

    def start_mounts(self, ctx: CallContext, *, directories_only: bool = False) -> list[FileGrant]:
        """The file grants a sandbox mounts at start (WASI preopens only directories), each audited."""
        mounts = []
        for decision, grant in self.policy.files_cap.at_start(directories_only):
            self._record(ctx, decision)
            if decision.allowed:
                mounts.append(grant)
        return mounts

    # env, secrets, files, kv -------------------------------------------------
    def env_get(self, ctx: CallContext, name: str) -> str | None:
        self.decide(ctx, self.policy.env(name))
        return self.policy.env_cap.value(name)

    def secret_get(self, ctx: CallContext, name: str) -> str | None:
        self.decide(ctx, self.policy.secret(name))
        return self.policy.secrets_cap.value(name)

    def file_read(self, ctx: CallContext, path: str) -> bytes | None:
        decision, located = self.policy.file(path, write=False)
        data = None
        if decision.allowed:
            try:  # the open is part of the decision: a link met there is a denial, audited as one
                data = self.policy.files_cap.read(located)
            except PathRefused as refused:
                decision = Decision(decision.capability, path, False, reason=str(refused))
        self.decide(ctx, decision)
        return data

    def file_write(self, ctx: CallContext, path: str, data: bytes) -> None:
        decision, located = self.policy.file(path, write=True)
        if decision.allowed:
            try:
                self.policy.files_cap.write(located, data)
            except PathRefused as refused:
                decision = Decision(decision.capability, path, False, reason=str(refused))
        self.decide(ctx, decision)

    # kv operations are coroutines (a store may be across the network); `kv_local` says they never
    # suspend, so a WASM call on a worker thread drives them in place (kv.run_now).
    @property
    def kv_local(self) -> bool:
        return self.policy.kv_cap.local

    async def kv_get(self, ctx: CallContext, store: str, key: str) -> bytes | None:
        self.decide(ctx, self.policy.kv(store, write=False))
        return await self.policy.kv_cap.get(store, key)

    async def kv_entry(self, ctx: CallContext, store: str, key: str) -> Entry | None:
        self.decide(ctx, self.policy.kv(store, write=False))
        return await self.policy.kv_cap.entry(store, key)

    async def kv_put(self, ctx: CallContext, store: str, key: str, value: bytes) -> int:
        self.decide(ctx, self.policy.kv(store, write=True))
        return await self.policy.kv_cap.put(store, key, value)

    async def kv_cas(self, ctx: CallContext, store: str, key: str, value: bytes, revision: int) -> int:
        """Write only if the entry is at `revision` (0: absent); the new revision, or KvConflict."""
        self.decide(ctx, self.policy.kv(store, write=True))
        return await self.policy.kv_cap.cas(store, key, value, revision)

    async def kv_increment(self, ctx: CallContext, store: str, key: str, delta: int) -> int:
        self.decide(ctx, self.policy.kv(store, write=True))
        return await self.policy.kv_cap.increment(store, key, delta)

    async def kv_delete(self, ctx: CallContext, store: str, key: str, revision: int = 0) -> bool:
        self.decide(ctx, self.policy.kv(store, write=True))
        return await self.policy.kv_cap.delete(store, key, revision)

    def log(self, ctx: CallContext, level: int, message: str) -> None:
        levels = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
        log.log(levels.get(level, logging.INFO), "[%s %s] %s", self.manifest.name, ctx.request_id or "-", message)

    # module -> module ------------------------------------------------------------
    async def call_module(self, ctx: CallContext, module: str, method: str, payload: Any) -> Any:
        self.decide(ctx, self.policy.module_call(module))
        return await self.policy.modules_cap.call(ctx, module, method, payload)

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
        candidates = await self.policy.egress_cap.resolve(target)
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
