"""Kubernetes: the operator's custom resources, what they render to, and the operator itself.

    crds.py      the CustomResourceDefinitions: GatiApp (the runtime, its handler versions and
                 the NATS connection) and GatiModule (one module: where it runs, its egress)
    spec.py      those resources' specs as typed values; both made from a project on disk
    netpol.py    NetworkPolicies from modules' egress grants
    render.py    a GatiApp and its GatiModules -> Deployments, Services, NetworkPolicies
    operator.py  kopf handlers that reconcile the rendered objects into a cluster

`gati deploy k8s --out DIR` (runtime/cli/deploy.py) writes the same objects without a cluster.
docs/kubernetes.md says what was run against a cluster and what was not.
"""
