"""The gati operator: kopf handlers that keep a cluster at what GatiApps and GatiModules render to.

    kopf run -m runtime.deploy.operator      (in the cluster: the operator's Deployment, its RBAC)

A GatiApp is reconciled when it is created, changed or resumed, when one of its GatiModules
is, and every DRAIN_CHECK_S (a version that stopped being active is scaled to zero once its
drainSeconds are over). Reconciling renders every object (render.py), owns each by the
GatiApp (deleting the app deletes them), applies them with server-side apply, deletes what it
made earlier and no longer renders (a removed module's workload), and records in the status
when each version stopped being active. The handlers take the Applier as an argument, so the
reconcile logic runs without a cluster (tests call them directly); `ApiApplier` is the one
that talks to the API server from inside a pod.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kopf

from runtime.deploy.crds import GROUP, VERSION
from runtime.deploy.render import render
from runtime.deploy.spec import ModuleSpec, SpecError, app_spec, module_spec

DRAIN_CHECK_S = 30.0
MANAGER = "gati-operator"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# kind -> (API path prefix, plural): everything render.py makes, and nothing else is ever deleted
KINDS = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
}


class Applier(Protocol):
    async def apply(self, obj: dict[str, Any]) -> None: ...
    async def owned(self, namespace: str, app: str) -> list[tuple[str, str]]: ...
    async def delete(self, namespace: str, kind: str, name: str) -> None: ...


async def reconcile(
    name: str, namespace: str, body: dict[str, Any], modules: list[ModuleSpec], applier: Applier, now: float, logger=None
) -> dict[str, Any]:
    """Apply what the app renders to, delete what it no longer does; returns the status to record."""
    try:
        app = app_spec(dict(body.get("spec") or {}), name)
    except SpecError as err:
        raise kopf.PermanentError(f"{err.message} ({err.fix})") from None  # retrying a bad spec changes nothing
    status = body.get("status") or {}
    deactivated = _deactivations(app, status.get("deactivated") or {}, now)
    objects = render(name, namespace, app, [m for m in modules if m.app == name], deactivated=deactivated, now=now)
    kopf.append_owner_reference(objects, owner=body)
    for obj in objects:
        await applier.apply(obj)
    wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for kind, obj_name in await applier.owned(namespace, name):
        if (kind, obj_name) not in wanted:
            await applier.delete(namespace, kind, obj_name)
            if logger:
                logger.info(f"deleted {kind} {obj_name}: no longer rendered")
    drained = sorted(v for v, since in deactivated.items() if now - since >= app.drain_seconds)
    return {"deactivated": deactivated, "drained": drained, "active": app.active, "objects": len(objects)}


def _deactivations(app, previous: dict[str, float], now: float) -> dict[str, float]:
    return {v.name: float(previous.get(v.name, now)) for v in app.versions if v.name != app.active}


def modules_of(index: Any, namespace: str, app: str) -> list[ModuleSpec]:
    """The app's modules from the operator's index of GatiModules (invalid ones are skipped, their handler said why)."""
    found = []
    for spec in index.get((namespace, app), []) if index is not None else []:
        try:
            found.append(module_spec(dict(spec)))
        except SpecError:
            continue
    return found


# the kopf handlers ------------------------------------------------------------------------------------
# Each takes `applier` (ApiApplier in a cluster: see main()) and `now`, so that tests can call it.


@kopf.index(GROUP, VERSION, "gatimodules")
def module_index(namespace, spec, **_):
    return {(namespace, spec.get("app")): dict(spec)}


@kopf.index(GROUP, VERSION, "gatiapps")
def app_index(namespace, name, body, **_):
    return {(namespace, name): {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": dict(body.get("metadata", {})), "spec": dict(body.get("spec", {})), "status": dict(body.get("status", {}))}}


@kopf.on.resume(GROUP, VERSION, "gatiapps")
@kopf.on.create(GROUP, VERSION, "gatiapps")
@kopf.on.update(GROUP, VERSION, "gatiapps")
async def app_changed(name, namespace, body, patch, module_index=None, applier: Applier | None = None, now: float | None = None, logger=None, **_):
    status = await reconcile(name, namespace, dict(body), modules_of(module_index, namespace, name), applier or APPLIER, time.time() if now is None else now, logger)
    patch.setdefault("status", {}).update(status)
    return status


@kopf.timer(GROUP, VERSION, "gatiapps", interval=DRAIN_CHECK_S, idle=DRAIN_CHECK_S)
async def drain_check(name, namespace, body, patch, module_index=None, applier: Applier | None = None, now: float | None = None, logger=None, **_):
    """Scale versions whose drain time is over to zero (nothing else changes them meanwhile)."""
    return await app_changed(name=name, namespace=namespace, body=body, patch=patch, module_index=module_index, applier=applier, now=now, logger=logger)


@kopf.on.create(GROUP, VERSION, "gatimodules")
@kopf.on.update(GROUP, VERSION, "gatimodules")
@kopf.on.delete(GROUP, VERSION, "gatimodules", optional=True)
async def module_changed(name, namespace, spec, module_index=None, app_index=None, applier: Applier | None = None, now: float | None = None, logger=None, **_):
    """Check the module's spec, then reconcile the app it belongs to (if it exists yet)."""
    try:
        module_spec(dict(spec), name)
    except SpecError as err:
        raise kopf.PermanentError(f"{err.message} ({err.fix})") from None
    app = spec.get("app")
    apps = app_index.get((namespace, app), []) if app_index is not None else []
    for body in apps:
        patch: dict[str, Any] = {}
        await app_changed(name=app, namespace=namespace, body=body, patch=patch, module_index=module_index, applier=applier, now=now, logger=logger)
        return {"reconciled": app}
    return {"waiting for GatiApp": app}


# talking to the API server ------------------------------------------------------------------------------


class ApiApplier:
    """Server-side apply over the API server's REST interface, as the pod's service account.

    Not run against a cluster on the machines gati is built on (docs/kubernetes.md); its requests
    are checked against a recording HTTP server in tests/test_k8s.py."""

    def __init__(self, host: str | None = None, token: str | None = None, ca_file: str | None = None):
        self.base = host or f"https://{os.environ.get('KUBERNETES_SERVICE_HOST', 'kubernetes.default.svc')}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
        self.token = token if token is not None else (SERVICE_ACCOUNT / "token").read_text().strip()
        self.ssl = ssl.create_default_context(cafile=ca_file) if ca_file else (ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt")) if self.base.startswith("https") else None)

    def _url(self, namespace: str, kind: str, name: str = "") -> str:
        prefix, plural = KINDS[kind]
        return f"{self.base}{prefix}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")

    async def _request(self, method: str, url: str, **kw) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, headers=headers, ssl=self.ssl, **kw) as resp:
                if resp.status == 404 and method == "DELETE":
                    return None
                if resp.status >= 400:
                    raise kopf.TemporaryError(f"{method} {url}: {resp.status} {(await resp.text())[:300]}", delay=10)
                return await resp.json()

    async def apply(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        await self._request(
            "PATCH",
            self._url(meta["namespace"], obj["kind"], meta["name"]),
            params={"fieldManager": MANAGER, "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )

    async def owned(self, namespace: str, app: str) -> list[tuple[str, str]]:
        selector = f"app.kubernetes.io/instance={app},app.kubernetes.io/managed-by={MANAGER}"
        found = []
        for kind in KINDS:
            listing = await self._request("GET", self._url(namespace, kind), params={"labelSelector": selector})
            found += [(kind, item["metadata"]["name"]) for item in listing.get("items", [])]
        return found

    async def delete(self, namespace: str, kind: str, name: str) -> None:
        await self._request("DELETE", self._url(namespace, kind, name))


class _InCluster:
    """The applier the handlers use when run by kopf: made on first use, inside the cluster."""

    def __init__(self):
        self._applier: ApiApplier | None = None

    def __getattr__(self, attr):
        if self._applier is None:
            self._applier = ApiApplier()
        return getattr(self._applier, attr)


APPLIER: Applier = _InCluster()
