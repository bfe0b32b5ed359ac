"""The specs of GatiApp and GatiModule as typed values, from a resource or from a project on disk.

A resource's spec is checked against its CRD's schema by the API server; here it is decoded
again (the operator must not trust a spec a CRD of another version let through) into values
with the CRD's defaults. `from_project` makes both resources from a gati project: one
GatiModule per module of the project, with its kind and egress grants from its module.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest
from runtime.deploy.crds import API_VERSION
from runtime.http.project import load_project


class Version(msgspec.Struct, frozen=True):
    name: str
    image: str = ""


class AppSpec(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    image: str
    versions: list[Version]
    active: str
    replicas: int = 2
    port: int = 8080
    nats: str = ""
    cluster_namespace: str = ""
    drain_seconds: int = 300

    def image_of(self, version: str) -> str:
        return next((v.image for v in self.versions if v.name == version and v.image), self.image)


class ModuleSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    app: str
    module: str
    kind: Literal["wasm", "native", "oci"]
    image: str = ""
    placement: Literal["inProcess", "sidecar", "pod", ""] = ""
    replicas: int = 1
    port: int = 50051
    egress: list[str] = []

    @property
    def where(self) -> str:
        """inProcess (WASM, native: in the runtime's own sandboxes), sidecar (a container module's default) or pod."""
        return self.placement or ("sidecar" if self.kind == "oci" else "inProcess")


class SpecError(GatiError):
    code = "spec_invalid"
    http_status = 400


def app_spec(spec: dict[str, Any], name: str = "") -> AppSpec:
    try:
        app = msgspec.convert(spec, AppSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"GatiApp {name}: {exc}", fix="fix the resource's spec (kubectl explain gatiapp.spec)") from None
    if app.active not in {v.name for v in app.versions}:
        raise SpecError(f"GatiApp {name}: active version {app.active!r} is not one of spec.versions", fix="add it to versions, or name one that is there")
    if app.replicas > 1 and not app.nats:
        raise SpecError(
            f"GatiApp {name}: {app.replicas} replicas need shared state, and spec.nats is empty",
            fix="set spec.nats to a NATS server with JetStream (docs/scaling.md), or run 1 replica",
        )
    return app


def module_spec(spec: dict[str, Any], name: str = "") -> ModuleSpec:
    try:
        module = msgspec.convert(spec, ModuleSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"GatiModule {name}: {exc}", fix="fix the resource's spec (kubectl explain gatimodule.spec)") from None
    if module.kind == "oci" and not module.image:
        raise SpecError(f"GatiModule {name}: a container module needs spec.image", fix="name the module's image, pushed where the cluster pulls from")
    if module.kind != "oci" and module.where == "sidecar":
        raise SpecError(f"GatiModule {name}: only a container module runs as a sidecar", fix='use placement "inProcess" or "pod"')
    if module.kind == "oci" and module.where != "sidecar":
        # no container engine in a hardened pod: a container module runs from its own image, beside the runtime
        raise SpecError(f"GatiModule {name}: a container module runs as a sidecar of the runtime", fix='use placement "sidecar" (or leave it out)')
    return module


def resource(kind: str, name: str, spec: Any, namespace: str = "") -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": msgspec.to_builtins(spec)}


def from_project(project_dir: str | Path, *, image: str, name: str = "", version: str = "v1", replicas: int = 1, nats: str = "") -> tuple[dict, list[dict]]:
    """A GatiApp and its GatiModules for a project: what `gati deploy k8s` renders."""
    project = load_project(project_dir)
    app_name = name or _k8s_name(project.dir.name)
    nats = nats or project.settings.cluster.nats
    app = AppSpec(image=image, versions=[Version(version)], active=version, replicas=replicas, nats=nats, cluster_namespace=project.settings.cluster.namespace)
    app_spec(msgspec.to_builtins(app), app_name)  # the same checks as the operator's
    modules = []
    for folder in project.module_dirs():
        m = load_manifest(folder).manifest
        image_name = f"gati-module/{m.name}:{m.version}" if m.kind == "oci" else ""
        placement = "sidecar" if m.kind == "oci" else "inProcess"
        spec = ModuleSpec(app=app_name, module=m.name, kind=m.kind, image=image_name, placement=placement, egress=list(m.capabilities.egress))
        modules.append(resource("GatiModule", f"{app_name}-{_k8s_name(m.name)}", spec))
    return resource("GatiApp", app_name, app), modules


def _k8s_name(text: str) -> str:
    """A DNS label from a folder or module name (lower case, - for anything else)."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return out[:40].strip("-") or "gati"
