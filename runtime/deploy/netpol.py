"""NetworkPolicies from the egress grants of modules: what a pod may reach, and nothing else.

A NetworkPolicy selects by address and port, never by name, so a grant becomes:

    tcp://10.0.0.7:5432           that address (/32, /128), that port
    https://api.example.com:443   that port on public addresses only: the private, loopback,
                                  link-local and metadata ranges are carved out, as gati's own
                                  anti-SSRF check refuses them; the name is then checked by the
                                  runtime (WASM, native) or the module's egress proxy, as always
    insecure:allow-all            any address and port

plus DNS (port 53 to any) when some grant names a host. No grant: no egress rule, so a
policy selecting the pod with policyTypes Egress denies all of it. The policy is a second
wall under the runtime's own checks, not a replacement for them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from runtime.core.capabilities.egress import ALLOW_ALL, parse_rule

# What a name-based grant never reaches (the same ranges the runtime refuses without a rule naming them).
NOT_PUBLIC_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"]
NOT_PUBLIC_V6 = ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "::ffff:0:0/96", "64:ff9b::/96"]
DNS = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def egress_rules(grants: list[str]) -> list[dict[str, Any]]:
    """The egress rules of a NetworkPolicy for these module.toml egress grants."""
    if ALLOW_ALL in grants:
        return [{}]  # an empty rule: every destination, every port
    rules: list[dict[str, Any]] = []
    named = False
    for text in grants:
        rule = parse_rule(text)
        ports = [{"protocol": "TCP", "port": rule.port}] if rule.port is not None else [{"protocol": "TCP"}]
        address = rule.address
        if address is not None:
            prefix = 32 if address.version == 4 else 128
            rules.append({"to": [{"ipBlock": {"cidr": f"{address}/{prefix}"}}], "ports": ports})
        else:
            named = True
            rules.append({"to": public_blocks(), "ports": ports})
    if named:
        rules.append(DNS)
    return _merged(rules)


def public_blocks() -> list[dict[str, Any]]:
    return [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": NOT_PUBLIC_V4}},
        {"ipBlock": {"cidr": "::/0", "except": NOT_PUBLIC_V6}},
    ]


def _merged(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One rule per destination set: the same `to` with their ports together (no duplicate rules)."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        same = next((r for r in out if r.get("to") == rule.get("to") and "to" in rule), None)
        if same is None:
            out.append({k: list(v) for k, v in rule.items()})
        else:
            same["ports"] += [p for p in rule["ports"] if p not in same["ports"]]
    return out


def nats_rule(url: str) -> dict[str, Any]:
    """Egress to the NATS server of cluster mode: its port, to any address (a Service's address is not known here)."""
    port = 4222
    host_port = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    if ":" in host_port and host_port.rsplit(":", 1)[1].isdigit():
        port = int(host_port.rsplit(":", 1)[1])
    try:
        address = ipaddress.ip_address(host_port.rsplit(":", 1)[0].strip("[]"))
        return {"to": [{"ipBlock": {"cidr": f"{address}/{32 if address.version == 4 else 128}"}}], "ports": [{"protocol": "TCP", "port": port}]}
    except ValueError:
        return {"ports": [{"protocol": "TCP", "port": port}]}


def policy(name: str, namespace: str, selector: dict[str, str], *, ingress: list[dict[str, Any]], egress: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {}), "labels": labels},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress},
    }
