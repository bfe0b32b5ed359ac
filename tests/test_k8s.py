"""Kubernetes without a cluster: every rendered object validated against the API's own schemas
(kubernetes-validate ships them), custom resources against their CRDs, hardened pods,
NetworkPolicies from egress grants, and the operator's reconcile logic by calling its kopf
handlers directly. No API server runs here (docs/kubernetes.md says what was not run).
"""

from __future__ import annotations

import ipaddress
import shutil
import textwrap
from pathlib import Path

import jsonschema
import kopf
import kubernetes_validate
import pytest
import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from runtime.cli.main import app as cli
from runtime.deploy import operator
from runtime.deploy.crds import definitions
from runtime.deploy.netpol import NOT_PUBLIC_V4, egress_rules
from runtime.deploy.render import render
from runtime.deploy.spec import app_spec, from_project, module_spec

ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = kubernetes_validate.latest_version()
CRD_SCHEMAS = {c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for c in definitions()}


def validate(doc: dict) -> None:
    """Against the Kubernetes API's schema (strict: no unknown field), or a CRD's for our own kinds."""
    if doc["apiVersion"].startswith("gati.dev/"):
        jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "shop"
    (root / "handlers").mkdir(parents=True)
    (root / "handlers" / "index.py").write_text("async def handler(req, res, gctx, lctx):\n    return {}\n")
    (root / "gati.toml").write_text('[cluster]\nnamespace = "shop"\n')
    shutil.copytree(ROOT / "tests" / "modules" / "kvatomic", root / "modules" / "kvatomic")
    shutil.copytree(ROOT / "sample_modules" / "pagesum-py-oci", root / "modules" / "pagesum", ignore=shutil.ignore_patterns("__pycache__"))
    fetcher = root / "modules" / "fetcher"
    shutil.copytree(ROOT / "tests" / "modules" / "kvatomic", fetcher)
    manifest = (fetcher / "module.toml").read_text().replace('name = "kvatomic"', 'name = "fetcher"')
    (fetcher / "module.toml").write_text(manifest.replace('kv = ["counts"]', 'kv = ["counts"]\negress = ["https://api.example.com:443", "tcp://10.0.0.7:5432"]'))
    return root


def write(project, out, *extra) -> list[dict]:
    result = CliRunner().invoke(cli, ["deploy", "k8s", "--image", "registry.example/shop:1.0", "--out", str(out), "--project", str(project), *extra])
    assert result.exit_code == 0, result.output
    return [doc for f in sorted(out.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text())]


def test_gati_deploy_k8s_writes_objects_that_validate(project, tmp_path):
    docs = write(project, tmp_path / "k8s", "--replicas", "3", "--nats", "nats://nats.gati.svc:4222", "--namespace", "shop")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("CustomResourceDefinition") == 2 and kinds.count("GatiApp") == 1 and kinds.count("GatiModule") == 3
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == {"shop-v1"}
    for doc in docs:
        validate(doc)  # raises naming the field
    runtime = next(d for d in docs if d["kind"] == "Deployment")
    pod = runtime["spec"]["template"]["spec"]
    assert runtime["spec"]["replicas"] == 3
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["GATI_CLUSTER_NATS"] == "nats://nats.gati.svc:4222" and env["GATI_CLUSTER_NAMESPACE"] == "shop"
    # the container module runs as a sidecar speaking the host protocol over the shared socket folder
    sidecar = next(c for c in pod["containers"] if c["name"] == "mod-pagesum")
    assert sidecar["image"] == "gati-module/pagesum:1.0.0"
    assert {e["name"] for e in sidecar["env"]} == {"GATI_MODULE_SOCKET", "GATI_HOST_SOCKET"}


def test_a_bad_object_fails_validation():
    # the check can fail: a field the API does not know is refused
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 80, "bogus": 1}]}})
    with pytest.raises(jsonschema.ValidationError):
        validate({"apiVersion": "gati.dev/v1alpha1", "kind": "GatiModule", "metadata": {"name": "x"}, "spec": {"app": "a", "module": "m", "kind": "jvm"}})


def test_every_container_is_hardened(project, tmp_path):
    docs = write(project, tmp_path / "k8s")
    app, modules = from_project(project, image="img", replicas=1)
    # a module in a pod of its own too, so that every kind of workload is looked at
    mods = [module_spec(m["spec"]) for m in modules]
    mods = [module_spec({**m["spec"], "placement": "pod"}) if m["spec"]["module"] == "fetcher" else mod for m, mod in zip(modules, mods)]
    objects = docs + render("shop", "default", app_spec(app["spec"]), mods)
    pods = [d["spec"]["template"]["spec"] for d in objects if d["kind"] == "Deployment"]
    assert len(pods) == 3
    for pod in pods:
        validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod})
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and not sc["privileged"]
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "limits" in c["resources"]


def test_network_policies_follow_the_egress_grants(project, tmp_path):
    app, modules = from_project(project, image="img", replicas=2, nats="nats://10.1.2.3:4222")
    mods = [module_spec({**m["spec"], "placement": "pod"}) if m["spec"]["module"] == "fetcher" else module_spec(m["spec"]) for m in modules]
    objects = render("shop", "default", app_spec(app["spec"]), mods)
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    for name, spec in policies.items():
        validate({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec})
    fetcher = policies["shop-mod-fetcher"]
    assert {"to": [{"ipBlock": {"cidr": "10.0.0.7/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]} in fetcher["egress"]
    public = next(r for r in fetcher["egress"] if r.get("ports") == [{"protocol": "TCP", "port": 443}])
    assert "169.254.0.0/16" in public["to"][0]["ipBlock"]["except"] and "10.0.0.0/8" in public["to"][0]["ipBlock"]["except"]
    assert {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"protocol": "TCP", "port": 4222}]} in fetcher["egress"]  # its NATS
    assert fetcher["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "shop", "gati.dev/component": "runtime"}}}], "ports": [{"protocol": "TCP", "port": 50051}]}]
    # the runtime's pods carry the grants of what runs in them (pagesum's sidecar), not fetcher's
    runtime = policies["shop-runtime"]
    ports = [p.get("port") for r in runtime["egress"] for p in r.get("ports", [])]
    assert 80 in ports and 443 in ports and 5432 not in ports and 53 in ports


def test_no_grant_means_no_egress_and_allow_all_means_any():
    assert egress_rules([]) == []
    assert egress_rules(["insecure:allow-all"]) == [{}]
    assert egress_rules(["https://a.example.com:443", "https://b.example.com:443"])[0]["ports"] == [{"protocol": "TCP", "port": 443}]


@given(st.ip_addresses(v=4), st.integers(1, 65535))
def test_an_address_grant_allows_exactly_that_address_and_port(address, port):
    rules = egress_rules([f"tcp://{address}:{port}"])
    assert rules == [{"to": [{"ipBlock": {"cidr": f"{address}/32"}}], "ports": [{"protocol": "TCP", "port": port}]}]


def test_name_grants_never_reach_private_ranges():
    blocked = [ipaddress.ip_network(n) for n in NOT_PUBLIC_V4]
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
        assert any(ipaddress.ip_address(address) in n for n in blocked), address


# the operator's reconcile, by calling its handlers --------------------------------------------------------


class Recorder:
    """An Applier holding what was applied, as the API server would (no cluster here)."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict] = {}
        self.deleted: list[tuple[str, str]] = []

    async def apply(self, obj):
        validate(obj)
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj

    async def owned(self, namespace, app):
        return [k for k, o in self.objects.items() if o["metadata"]["labels"].get("app.kubernetes.io/instance") == app]

    async def delete(self, namespace, kind, name):
        self.deleted.append((kind, name))
        del self.objects[(kind, name)]

    def replicas(self, name):
        return self.objects[("Deployment", name)]["spec"]["replicas"]


def app_body(active="v1", versions=("v1",), **spec):
    return {
        "apiVersion": "gati.dev/v1alpha1", "kind": "GatiApp",
        "metadata": {"name": "shop", "namespace": "prod", "uid": "1234-uid"},
        "spec": {"image": "registry.example/shop:1", "versions": [{"name": v} for v in versions], "active": active, "replicas": 2,
                 "nats": "nats://nats:4222", "drainSeconds": 300, **spec},
        "status": {},
    }


MODULES = {("prod", "shop"): [{"app": "shop", "module": "fetcher", "kind": "wasm", "placement": "pod", "egress": ["https://api.example.com:443"]}]}


async def test_reconcile_rolls_a_new_version_out_and_drains_the_old_one():
    applier = Recorder()
    body = app_body()
    patch: dict = {}
    await operator.app_changed(name="shop", namespace="prod", body=body, patch=patch, module_index=MODULES, applier=applier, now=1000.0)
    assert applier.replicas("shop-v1") == 2 and ("Deployment", "shop-mod-fetcher") in applier.objects
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == "1234-uid" for o in applier.objects.values())
    assert all(o["metadata"]["namespace"] == "prod" for o in applier.objects.values())

    # v2 becomes active: it runs, v1 keeps its pods while it drains, the Service moves to v2
    body = {**app_body("v2", ("v1", "v2")), "status": patch["status"]}
    patch = {}
    await operator.app_changed(name="shop", namespace="prod", body=body, patch=patch, module_index=MODULES, applier=applier, now=1100.0)
    assert applier.replicas("shop-v2") == 2 and applier.replicas("shop-v1") == 2
    assert applier.objects[("Service", "shop")]["spec"]["selector"]["gati.dev/version"] == "v2"
    assert patch["status"]["deactivated"] == {"v1": 1100.0} and patch["status"]["drained"] == []

    # the timer before the drain time: nothing changes; after it: v1 scaled to zero, not deleted
    body = {**body, "status": patch["status"]}
    patch = {}
    await operator.drain_check(name="shop", namespace="prod", body=body, patch=patch, module_index=MODULES, applier=applier, now=1399.0)
    assert applier.replicas("shop-v1") == 2
    await operator.drain_check(name="shop", namespace="prod", body=body, patch=patch, module_index=MODULES, applier=applier, now=1400.0)
    assert applier.replicas("shop-v1") == 0 and applier.replicas("shop-v2") == 2
    assert patch["status"]["drained"] == ["v1"]

    # rolling back is making v1 active again
    body = {**app_body("v1", ("v1", "v2")), "status": patch["status"]}
    patch = {}
    await operator.app_changed(name="shop", namespace="prod", body=body, patch=patch, module_index=MODULES, applier=applier, now=1500.0)
    assert applier.replicas("shop-v1") == 2 and applier.replicas("shop-v2") == 2 and patch["status"]["deactivated"] == {"v2": 1500.0}

    # a module removed: its workload is deleted, nothing else
    await operator.app_changed(name="shop", namespace="prod", body=body, patch={}, module_index={}, applier=applier, now=1500.0)
    assert sorted(applier.deleted) == [("Deployment", "shop-mod-fetcher"), ("NetworkPolicy", "shop-mod-fetcher"), ("Service", "shop-mod-fetcher")]


async def test_a_module_change_reconciles_its_app():
    applier = Recorder()
    apps = {("prod", "shop"): [app_body()]}
    spec = MODULES[("prod", "shop")][0]
    result = await operator.module_changed(name="shop-fetcher", namespace="prod", spec=spec, module_index=MODULES, app_index=apps, applier=applier, now=1.0)
    assert result == {"reconciled": "shop"} and ("Deployment", "shop-mod-fetcher") in applier.objects
    waiting = await operator.module_changed(name="x", namespace="prod", spec={**spec, "app": "other"}, module_index=MODULES, app_index=apps, applier=applier, now=1.0)
    assert waiting == {"waiting for GatiApp": "other"}


async def test_bad_specs_are_permanent_errors_naming_the_fix():
    with pytest.raises(kopf.PermanentError, match="not one of spec.versions"):
        await operator.app_changed(name="shop", namespace="prod", body=app_body(active="v9"), patch={}, applier=Recorder(), now=0.0)
    with pytest.raises(kopf.PermanentError, match="need shared state"):
        await operator.app_changed(name="shop", namespace="prod", body=app_body(nats=""), patch={}, applier=Recorder(), now=0.0)
    with pytest.raises(kopf.PermanentError, match="runs as a sidecar"):
        await operator.module_changed(name="m", namespace="prod", spec={"app": "shop", "module": "m", "kind": "oci", "image": "i", "placement": "pod"}, applier=Recorder(), now=0.0)


def test_several_replicas_without_nats_is_refused_with_a_fix(project, tmp_path):
    result = CliRunner().invoke(cli, ["deploy", "k8s", "--image", "i", "--replicas", "2", "--out", str(tmp_path / "k"), "--project", str(project)])
    assert result.exit_code == 1 and "need shared state" in result.output and "spec.nats" in result.output


async def test_api_applier_speaks_server_side_apply():
    seen = []

    async def api(request):
        seen.append((request.method, request.path, dict(request.query), request.headers.get("Content-Type"), request.headers.get("Authorization"), await request.text()))
        if request.method == "GET":
            kind = request.path.rsplit("/", 1)[1]
            items = [{"metadata": {"name": "shop-v1"}}] if kind == "deployments" else []
            return web.json_response({"items": items})
        return web.json_response({})

    server = web.Application()
    server.router.add_route("*", "/{tail:.*}", api)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        applier = operator.ApiApplier(host=f"http://127.0.0.1:{port}", token="t0ken")
        obj = render("shop", "prod", app_spec(app_body()["spec"]), [])[0]
        await applier.apply(obj)
        assert await applier.owned("prod", "shop") == [("Deployment", "shop-v1")]
        await applier.delete("prod", "Service", "old")
    finally:
        await runner.cleanup()
    method, path, query, content_type, auth, text = seen[0]
    assert (method, path, content_type, auth) == ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/shop-v1", "application/apply-patch+yaml", "Bearer t0ken")
    assert query == {"fieldManager": "gati-operator", "force": "true"} and yaml.safe_load(text) == obj
    assert seen[1][2]["labelSelector"] == "app.kubernetes.io/instance=shop,app.kubernetes.io/managed-by=gati-operator"
    assert {s[1] for s in seen[1:4]} == {"/apis/apps/v1/namespaces/prod/deployments", "/api/v1/namespaces/prod/services", "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies"}
    assert seen[-1][:2] == ("DELETE", "/api/v1/namespaces/prod/services/old")


def test_crds_validate():
    for crd in definitions():
        validate(crd)


def test_readme_example_is_a_valid_gatiapp():
    example = yaml.safe_load(textwrap.dedent("""
        apiVersion: gati.dev/v1alpha1
        kind: GatiApp
        metadata: {name: shop}
        spec:
          image: registry.example/shop:1.4.0
          replicas: 2
          nats: nats://nats.gati.svc:4222
          versions: [{name: v1}, {name: v2, image: registry.example/shop:1.5.0}]
          active: v2
          drainSeconds: 300
    """))
    validate(example)
    assert app_spec(example["spec"]).image_of("v2") == "registry.example/shop:1.5.0"
