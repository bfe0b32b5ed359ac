"""Host calls other than files, env and egress: secrets, kv stores and calls to other modules,
each allowed only as declared and audited under the caller's request."""

from .backends import CTX


async def test_secrets_and_kv_stores_only_as_declared(install, monkeypatch):
    monkeypatch.setenv("GATI_SECRET_PROBE_TOKEN", "s3cret")
    probe = install()
    assert await probe("secret", "probe_token") == {"status": 0, "result": "s3cret"}
    denied = await probe("secret", "other")
    assert denied["status"] == 1 and denied["result"]["grant"] == '[capabilities] secrets = ["other"]'
    assert (await probe("kv_get", "probe/k"))["status"] == 2  # not found
    assert (await probe("kv_put", "probe/k=v1"))["status"] == 0
    assert await probe("kv_get", "probe/k") == {"status": 0, "result": "v1"}
    assert await probe.state.kv.get("probe", "k") == b"v1"
    for method, target in (("kv_get", "elsewhere/k"), ("kv_put", "elsewhere/k=v")):
        assert (await probe(method, target))["status"] == 1
    assert [(e["capability"], e["decision"]) for e in probe.asked()] == [
        ("secret", "allow"), ("secret", "deny"), ("kv.read", "allow"), ("kv.write", "allow"), ("kv.read", "allow"),
        ("kv.read", "deny"), ("kv.write", "deny"),
    ]


async def test_calls_only_to_declared_modules_under_the_callers_request(install, greet):
    probe = install(capabilities={"modules": ["greet"]})
    called = await probe("call_to", "greet/count")
    assert called == {"status": 0, "result": {"visits": 1}}
    denied = await probe("call_to", "other/run")
    assert denied["status"] == 1 and denied["result"]["capability"] == "module.call"
    assert denied["result"]["grant"] == '[capabilities] modules = ["other"]'
    calls = [(e["target"], e["decision"]) for e in probe.events("module.call")]
    assert calls == [("greet", "allow"), ("other", "deny")]
    nested = [e for e in probe.events() if e["module"] == "greet"]
    assert nested and all(e["caller"] == "module:probe" and e["request_id"] == CTX.request_id for e in nested)
