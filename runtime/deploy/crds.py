"""The CustomResourceDefinitions of group gati.dev: GatiApp and GatiModule (v1alpha1).

    apiVersion: gati.dev/v1alpha1
    kind: GatiApp
    spec:
      image: registry.example/shop:1.4.0     # the runtime image holding the project
      replicas: 2
      nats: nats://nats.gati.svc:4222        # [cluster] nats: needed past one replica
      versions: [{name: v1, image: ...}, {name: v2}]   # handler versions, each its own Deployment
      active: v2                             # the one the Service sends traffic to
      drainSeconds: 300                      # then a version that is no longer active scales to zero

    kind: GatiModule
    spec: {app: shop, module: thumbs, kind: oci, image: ..., placement: sidecar, egress: [...]}
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION = "gati.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 40}

APP_SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["image", "versions", "active"],
    "properties": {
        "image": {"type": "string", "minLength": 1},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 2},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8080},
        "nats": {"type": "string", "pattern": "^(nats|tls)://\\S+$"},
        "clusterNamespace": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
        "versions": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "required": ["name"], "properties": {"name": _NAME, "image": {"type": "string"}}},
        },
        "active": _NAME,
        "drainSeconds": {"type": "integer", "minimum": 0, "default": 300},
    },
}

MODULE_SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["app", "module", "kind"],
    "properties": {
        "app": _NAME,
        "module": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"},
        "kind": {"type": "string", "enum": ["wasm", "native", "oci"]},
        "image": {"type": "string"},
        "placement": {"type": "string", "enum": ["inProcess", "sidecar", "pod"]},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 50051},
        "egress": {"type": "array", "items": {"type": "string"}},
    },
}

STATUS: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(kind: str, plural: str, short: str, spec: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "shortNames": [short]},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {"spec": spec, "status": STATUS}}},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def definitions() -> list[dict[str, Any]]:
    return [
        _crd("GatiApp", "gatiapps", "gapp", APP_SPEC, [
            {"name": "Active", "type": "string", "jsonPath": ".spec.active"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        ]),
        _crd("GatiModule", "gatimodules", "gmod", MODULE_SPEC, [
            {"name": "App", "type": "string", "jsonPath": ".spec.app"},
            {"name": "Kind", "type": "string", "jsonPath": ".spec.kind"},
            {"name": "Placement", "type": "string", "jsonPath": ".spec.placement"},
        ]),
    ]
