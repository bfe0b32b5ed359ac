"""What a GatiApp and its GatiModules become in a cluster: pure functions, no API server needed.

    <app>-<version>        Deployment per handler version: the runtime (gati serve) with its
                           in-process (WASM, native) modules and container modules as sidecars
    <app>                  Service to the active version's pods
    <app>-runtime          NetworkPolicy: HTTP in; out only NATS, DNS, module pods and what the
                           modules running in the pod were granted (netpol.py)
    <app>-mod-<module>     for a module placed in a pod of its own: Deployment (gati module serve
                           on gRPC), Service, NetworkPolicy (in: the app's runtime pods; out: its grants)

Every pod is hardened: non-root, read-only root file system, no privilege escalation, every
capability dropped, seccomp RuntimeDefault, no service account token; state and /tmp are
emptyDirs. Versions: the active one runs `replicas`; one that stopped being active keeps its
replicas for `drainSeconds` (requests pinned to it finish, clients move) and then is scaled to
zero; it is never deleted, so rolling back is setting `active` again.
"""

from __future__ import annotations

from typing import Any

from runtime.deploy.netpol import egress_rules, nats_rule, policy
from runtime.deploy.spec import AppSpec, ModuleSpec

STATE_DIR = "/var/lib/gati"
PROJECT_DIR = "/app"  # where the runtime image holds the project
MODULE_SOCKETS = "/run/gati/modules"
RUN_AS = 10001


def labels(app: str, **more: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "gati", "app.kubernetes.io/instance": app, "app.kubernetes.io/managed-by": "gati-operator", **more}


def _meta(name: str, namespace: str, lbls: dict[str, str]) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {}), "labels": lbls}


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


def replicas_of(app: AppSpec, version: str, deactivated: dict[str, float], now: float) -> int:
    """The active version runs app.replicas; another keeps them while it drains, then none."""
    if version == app.active:
        return app.replicas
    since = deactivated.get(version)
    return app.replicas if since is None or now - since < app.drain_seconds else 0


def deactivations(app: AppSpec, previous: dict[str, float], now: float) -> dict[str, float]:
    """When each version that is not active stopped being active (kept from the last reconcile)."""
    return {v.name: previous.get(v.name, now) for v in app.versions if v.name != app.active}


def cluster_env(name: str, app: AppSpec) -> list[dict[str, str]]:
    env = [{"name": "GATI_HOME", "value": STATE_DIR}]
    if app.nats:  # overrides [cluster] in the image's gati.toml (runtime/http/project.py)
        env += [{"name": "GATI_CLUSTER_NATS", "value": app.nats}, {"name": "GATI_CLUSTER_NAMESPACE", "value": app.cluster_namespace or name}]
    return env


def _volumes(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "emptyDir": {}} for n in names]


def runtime_deployment(name: str, namespace: str, app: AppSpec, version: str, replicas: int, sidecars: list[ModuleSpec]) -> dict[str, Any]:
    lbls = labels(name, **{"gati.dev/component": "runtime", "gati.dev/version": version})
    mounts = [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    if sidecars:
        mounts.append({"name": "module-sockets", "mountPath": MODULE_SOCKETS})
    containers = [
        {
            "name": "gati",
            "image": app.image_of(version),
            "args": ["serve", PROJECT_DIR, "--host", "0.0.0.0", "--port", str(app.port)],
            "env": cluster_env(name, app),
            "ports": [{"name": "http", "containerPort": app.port, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 6},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": container_security(),
            "volumeMounts": mounts,
        }
    ]
    for m in sidecars:  # the module's own image, speaking the host protocol over sockets in a shared emptyDir
        folder = f"{MODULE_SOCKETS}/{m.module}"
        containers.append(
            {
                "name": f"mod-{m.module}"[:63],
                "image": m.image,
                "env": [{"name": "GATI_MODULE_SOCKET", "value": f"{folder}/module.sock"}, {"name": "GATI_HOST_SOCKET", "value": f"{folder}/host.sock"}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                "securityContext": container_security(),
                "volumeMounts": [{"name": "module-sockets", "mountPath": MODULE_SOCKETS}, {"name": "tmp", "mountPath": "/tmp"}],
            }
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(f"{name}-{version}", namespace, lbls),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": name, "gati.dev/component": "runtime", "gati.dev/version": version}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": lbls},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    "containers": containers,
                    "volumes": _volumes("state", "tmp", *(["module-sockets"] if sidecars else [])),
                },
            },
        },
    }


def service(name: str, namespace: str, selector: dict[str, str], port: int, port_name: str, lbls: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, lbls),
        "spec": {"selector": selector, "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}]},
    }


def module_workload(name: str, namespace: str, app: AppSpec, m: ModuleSpec) -> list[dict[str, Any]]:
    """A module in a pod of its own: `gati module serve` on gRPC, reachable only from the app's runtime pods."""
    workload = f"{name}-mod-{m.module.replace('_', '-')}"[:63]
    lbls = labels(name, **{"gati.dev/component": "module", "gati.dev/module": m.module})
    selector = {"app.kubernetes.io/instance": name, "gati.dev/component": "module", "gati.dev/module": m.module}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(workload, namespace, lbls),
        "spec": {
            "replicas": m.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": lbls},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    "containers": [
                        {
                            "name": "module",
                            "image": app.image_of(app.active),
                            "args": ["module", "serve", m.module, "--listen", f"0.0.0.0:{m.port}", "--project", PROJECT_DIR],
                            "env": cluster_env(name, app),
                            "ports": [{"name": "grpc", "containerPort": m.port, "protocol": "TCP"}],
                            "readinessProbe": {"grpc": {"port": m.port}, "periodSeconds": 5},
                            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": container_security(),
                            "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": _volumes("state", "tmp"),
                },
            },
        },
    }
    runtime_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": name, "gati.dev/component": "runtime"}}}
    egress = egress_rules(m.egress) + ([nats_rule(app.nats)] if app.nats else [])
    return [
        deployment,
        service(workload, namespace, selector, m.port, "grpc", lbls),
        policy(workload, namespace, selector, ingress=[{"from": [runtime_pods], "ports": [{"protocol": "TCP", "port": m.port}]}], egress=egress, labels=lbls),
    ]


def render(name: str, namespace: str, app: AppSpec, modules: list[ModuleSpec], *, deactivated: dict[str, float] | None = None, now: float = 0.0) -> list[dict[str, Any]]:
    """Every object of the app, in apply order."""
    deactivated = deactivated or {}
    sidecars = [m for m in modules if m.where == "sidecar"]
    in_pod = [m for m in modules if m.where in ("inProcess", "sidecar")]  # their egress leaves from the runtime's pods
    pods = [m for m in modules if m.where == "pod"]
    objects = [runtime_deployment(name, namespace, app, v.name, replicas_of(app, v.name, deactivated, now), sidecars) for v in app.versions]
    runtime = {"app.kubernetes.io/instance": name, "gati.dev/component": "runtime"}
    objects.append(service(name, namespace, {**runtime, "gati.dev/version": app.active}, app.port, "http", labels(name)))
    egress = egress_rules(sorted({g for m in in_pod for g in m.egress}))
    if app.nats:
        egress.append(nats_rule(app.nats))
    for m in pods:
        module_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": name, "gati.dev/module": m.module}}}
        egress.append({"to": [module_pods], "ports": [{"protocol": "TCP", "port": m.port}]})
    ingress = [{"ports": [{"protocol": "TCP", "port": app.port}]}]
    objects.append(policy(f"{name}-runtime", namespace, runtime, ingress=ingress, egress=egress, labels=labels(name)))
    for m in pods:
        objects += module_workload(name, namespace, app, m)
    return objects
