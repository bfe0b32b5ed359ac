"""Egress: allowed to what a rule names, refused (and audited, naming the grant) otherwise;
a granted name that resolves to a private, loopback or metadata address is refused unless a
rule names the address itself. Through host calls on every backend; where the module has
sockets of its own, also through the egress proxy (an ordinary HTTP client), and not at all
without it."""

import json

from .backends import SOCKETS


def get(url: str) -> dict:
    return {"method": "GET", "url": url}


async def test_egress_to_a_granted_address_is_allowed_and_audited(backend, install, origin):
    granted = f"http://127.0.0.1:{origin.port}"
    probe = install(capabilities={"egress": [granted]})
    reply = await probe("http", get(origin.url("/x")))
    assert reply["status"] == 0 and reply["result"]["status"] == 200
    assert json.loads(reply["result"]["body"]) == {"path": "/x"}
    if SOCKETS in backend.offers:
        allowed = await probe("proxy_get", origin.url("/granted"))
        assert (allowed["status"], json.loads(allowed["body"])) == (200, {"path": "/granted"})
        # Without the proxy nothing is reachable: its loopback is its own, not the host's, even for a granted address.
        for target in ({"host": "1.1.1.1", "port": 80}, {"host": "10.255.255.1", "port": 80}, {"host": "172.17.0.1", "port": 2375}):
            assert (await probe("tcp_out", target))["error"] == "ENETUNREACH", target
        assert (await probe("tcp_out", {"host": "127.0.0.1", "port": origin.port}))["error"] == "ECONNREFUSED"
        assert (await probe("resolve", "example.com"))["ok"] is False  # no resolver either
    assert origin.hits == (["/x", "/granted"] if SOCKETS in backend.offers else ["/x"])
    assert {(e["decision"], e["target"], e["request_id"]) for e in probe.events("egress")} == {("allow", granted, "req-conformance")}
    await probe.still_serving()


async def test_egress_not_granted_is_refused_naming_the_grant(backend, install, origin):
    port = origin.port
    probe = install(capabilities={"egress": [f"http://localhost:{port}", "http://metadata.probe:80", "https://*.example.com:443"]})
    cases = {
        "http://not-granted.example.net/": "no egress rule matches",
        f"http://localhost:{port}/": "resolves to 127.0.0.1",  # a granted name, a loopback address
        "http://metadata.probe/latest/meta-data": "resolves to 169.254.169.254",
        "https://a.b.example.com/": "no egress rule matches",  # * is one label, never two
        f"http://127.0.0.1:{port}/": "no egress rule matches",  # the address the granted name resolves to
    }
    for url, reason in cases.items():
        reply = await probe("http", get(url))
        assert reply["status"] == 1 and reply["result"]["capability"] == "egress", (url, reply)
        assert reason in reply["result"]["reason"], (url, reply)
    denials = [e for e in probe.events("egress") if e["decision"] == "deny"]
    assert len(denials) == len(cases) and all(e["request_id"] == "req-conformance" for e in denials)
    not_granted = next(e for e in denials if "not-granted" in e["target"])
    assert not_granted["grant"] == '[capabilities] egress = ["http://not-granted.example.net:80"]'
    metadata = next(e for e in denials if "169.254.169.254" in e["target"])
    assert metadata["grant"] == '[capabilities] egress = ["http://169.254.169.254:80"]'
    if SOCKETS in backend.offers:
        denied = await probe("proxy_get", "http://example.org/")
        # The proxy's refusal reaches the module as a host call's does (the SDK raises it), naming the grant.
        assert (denied["error"], denied["grant"]) == ("capability_denied", '[capabilities] egress = ["http://example.org:80"]')
        https = await probe("proxy_get", "https://example.org/")  # CONNECT is checked the same way
        assert (https["error"], https["grant"]) == ("capability_denied", '[capabilities] egress = ["https://example.org:443"]')
        assert [(e["decision"], e["target"], e["request_id"]) for e in probe.events("egress")][-2:] == [
            ("deny", "http://example.org:80", "req-conformance"), ("deny", "https://example.org:443", "req-conformance"),
        ]
    assert origin.hits == []
    await probe.still_serving()


async def test_granted_names_resolving_to_private_addresses_are_refused(backend, install, origin):
    # Names only the address check can refuse: the manager resolves them to 127.0.0.1 and 169.254.169.254.
    probe = install(capabilities={"egress": [f"http://private.probe:{origin.port}", "http://metadata.probe:80"]})
    cases = [(f"http://private.probe:{origin.port}/", "127.0.0.1", origin.port), ("http://metadata.probe/latest/meta-data", "169.254.169.254", 80)]
    for url, address, port in cases:
        reply = await probe("http", get(url))
        assert reply["status"] == 1 and address in reply["result"]["target"], reply
        assert reply["result"]["grant"] == f'[capabilities] egress = ["http://{address}:{port}"]'
        if SOCKETS in backend.offers:
            denied = await probe("proxy_get", url)
            assert denied["error"] == "capability_denied", denied
            assert denied["grant"] == f'[capabilities] egress = ["http://{address}:{port}"]'
    assert origin.hits == []
    refusals = [e for e in probe.events("egress") if e["decision"] == "deny"]
    tries = 2 if SOCKETS in backend.offers else 1  # through the host, and through the proxy
    assert [e["reason"].split(" resolves to ")[1].split(",")[0] for e in refusals] == ["127.0.0.1"] * tries + ["169.254.169.254"] * tries
    assert all(e["request_id"] == "req-conformance" for e in refusals)
    # the name matched its rule (allowed); its address did not (refused)
    assert {e["target"] for e in probe.events("egress") if e["decision"] == "allow"} == {f"http://private.probe:{origin.port}", "http://metadata.probe:80"}


async def test_allow_all_still_refuses_private_addresses(install, origin):
    probe = install(capabilities={"egress": ["insecure:allow-all"]})
    reply = await probe("http", get(f"http://localhost:{origin.port}/"))
    assert reply["status"] == 1 and "resolves to 127.0.0.1" in reply["result"]["reason"]
    assert origin.hits == []
