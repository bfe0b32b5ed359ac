"""`gati deploy k8s --out DIR`: the Kubernetes objects of a project, written as YAML, no cluster needed.

    gati deploy k8s --image REGISTRY/APP:TAG [--out k8s] [--name APP] [--version v1]
                    [--replicas 1] [--nats nats://...] [--namespace NS] [--project DIR]

Writes what the operator (runtime/deploy/operator.py) would apply for this project:

    00-crds.yaml                   the GatiApp and GatiModule CustomResourceDefinitions
    10-gatiapp.yaml, 11-*.yaml     the GatiApp and one GatiModule per module of the project
    20-*.yaml                      the Deployments, Services and NetworkPolicies they render to

Apply the first two with a running operator, or all three without one (`kubectl apply -f DIR`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from runtime.cli.common import ProjectOpt, out, user_errors
from runtime.deploy.crds import definitions
from runtime.deploy.render import render
from runtime.deploy.spec import app_spec, from_project, module_spec

deploy_app = typer.Typer(help="Render a project for a platform (Kubernetes).", no_args_is_help=True, pretty_exceptions_enable=False)


@deploy_app.command("k8s")
@user_errors
def k8s(
    image: Annotated[str, typer.Option(help="The runtime image holding this project at /app (gati serve /app).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the YAML files to.")] = Path("k8s"),
    name: Annotated[Optional[str], typer.Option(help="The GatiApp's name (default: the project folder's).")] = None,
    version: Annotated[str, typer.Option(help="The handler version this image is.")] = "v1",
    replicas: Annotated[int, typer.Option(min=0, help="Runtime pods; more than 1 needs --nats (or [cluster] nats).")] = 1,
    nats: Annotated[Optional[str], typer.Option(help="NATS with JetStream for shared state (default: [cluster] nats).")] = None,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace of the objects.")] = "default",
    project: ProjectOpt = Path("."),
) -> None:
    """Write the CRDs, the GatiApp and GatiModules, and the objects they render to (no cluster needed)."""
    app, modules = from_project(project, image=image, name=name or "", version=version, replicas=replicas, nats=nats or "")
    app_name = app["metadata"]["name"]
    for resource in (app, *modules):
        resource["metadata"]["namespace"] = namespace
    objects = render(app_name, namespace, app_spec(app["spec"], app_name), [module_spec(m["spec"]) for m in modules])
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("[0-9][0-9]-*.yaml"):
        old.unlink()  # a module removed since the last run must not linger
    files = {"00-crds.yaml": definitions(), "10-gatiapp.yaml": [app]}
    files.update({f"11-gatimodule-{m['metadata']['name']}.yaml": [m] for m in modules})
    files.update({f"20-{o['kind'].lower()}-{o['metadata']['name']}.yaml": [o] for o in objects})
    for file, docs in files.items():
        (out_dir / file).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    out.print(f"wrote {len(files)} files to {out_dir} ({len(objects)} objects for {app_name}, {len(modules)} module(s))", highlight=False)
