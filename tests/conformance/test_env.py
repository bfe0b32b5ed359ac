"""Env: a module sees, and may ask the host for, only the names it declared."""

from runtime.core.audit_log import verify

from .backends import ENVIRON, ENVIRON_LIST, needs

INTERPRETER_NAMES = {"LC_CTYPE"}  # the Python probe's own (PEP 538 locale coercion)


async def test_only_declared_env_names_are_given_and_the_rest_refused(install):
    probe = install()
    assert await probe("env", "PROBE_ALLOWED") == {"status": 0, "result": "yes"}
    for name in ("HOME", "GATI_TEST_HIDDEN"):  # both in the runtime's environment
        denied = await probe("env", name)
        assert denied["status"] == 1 and denied["result"]["capability"] == "env"
        assert denied["result"]["grant"] == f'[capabilities] env = ["{name}"]'
    assert [(e["target"], e["decision"], e["request_id"]) for e in probe.events("env")] == [
        ("PROBE_ALLOWED", "allow", "req-conformance"), ("HOME", "deny", "req-conformance"), ("GATI_TEST_HIDDEN", "deny", "req-conformance"),
    ]
    assert verify(probe.state.audit_path).ok


@needs(ENVIRON_LIST)
async def test_the_module_environment_holds_only_declared_names(backend, install):
    probe = install()
    assert await probe("environ", "PROBE_ALLOWED") == {"present": True, "value": "yes"}
    assert await probe("environ", "GATI_TEST_HIDDEN") == {"present": False, "value": None}
    names = set((await probe("whoami"))["environ"])
    runtime_names = {n for n in names if n.startswith(("GATI_", "PYTHON")) or n.lower().endswith("_proxy")}
    assert names - runtime_names <= {"PROBE_ALLOWED"} | INTERPRETER_NAMES | backend.own_environ, names
    assert (await probe("environ", "HOME"))["value"] != ENVIRON["HOME"]  # a sandbox may set its own HOME, never pass ours
    assert "GATI_TEST_HIDDEN" not in names and not any(n.startswith("GATI_SECRET") for n in names)
    assert probe.events("env") == []  # its own environment: nothing asked of the host
