"""Env: a module sees, and may ask the host for, only the names it declared."""

from runtime.core.audit_log import verify

from .backends import ENVIRON, ENVIRON_LIST

INTERPRETER_NAMES = {"LC_CTYPE"}  # the Python probe's own (PEP 538 locale coercion)


async def test_only_declared_env_names_are_given_and_the_rest_refused(backend, install):
    probe = install()
    assert await probe("env", "PROBE_ALLOWED") == {"status": 0, "result": "yes"}
    for name in ("HOME", "GATI_TEST_HIDDEN"):  # both in the runtime's environment
        denied = await probe("env", name)
        assert denied["status"] == 1 and denied["result"]["capability"] == "env"
        assert denied["result"]["grant"] == f'[capabilities] env = ["{name}"]'
    assert [(e["target"], e["decision"], e["request_id"]) for e in probe.asked("env")] == [
        ("PROBE_ALLOWED", "allow", "req-conformance"), ("HOME", "deny", "req-conformance"), ("GATI_TEST_HIDDEN", "deny", "req-conformance"),
    ]
    # What the sandbox was handed at start is audited like what the module asked for later; the wasm
    # probe imports no WASI, so it is handed no environment.
    handed_env = [(e["target"], e["decision"]) for e in probe.handed() if e["capability"] == "env"]
    assert handed_env == ([("PROBE_ALLOWED", "allow")] if ENVIRON_LIST in backend.offers else [])
    if ENVIRON_LIST in backend.offers:  # its own environment holds the declared names and nothing of ours
        assert await probe("environ", "PROBE_ALLOWED") == {"present": True, "value": "yes"}
        assert await probe("environ", "GATI_TEST_HIDDEN") == {"present": False, "value": None}
        assert (await probe("environ", "HOME"))["value"] != ENVIRON["HOME"]  # a sandbox may set its own HOME, never pass ours
        names = set((await probe("whoami"))["environ"])
        runtime_names = {n for n in names if n.startswith(("GATI_", "PYTHON")) or n.lower().endswith("_proxy")}
        assert names - runtime_names <= {"PROBE_ALLOWED"} | INTERPRETER_NAMES | backend.own_environ, names
        assert "GATI_TEST_HIDDEN" not in names and not any(n.startswith("GATI_SECRET") for n in names)
        assert len(probe.asked("env")) == 3  # reading its own environment asks nothing of the host
    assert verify(probe.state.audit_path).ok
