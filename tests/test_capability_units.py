"""The capability units: what a sandbox is handed at start is audited, reserved env names,
the bounds of [limits], and the one vocabulary of limit stops."""

import os
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.capabilities.limits import BOUNDS, LimitHit, Limits
from runtime.core.errors import CapabilityDenied, ManifestError
from runtime.core.host import Host, Resolver
from runtime.core.manifest import LoadedManifest, parse_manifest
from runtime.core.secrets import EnvProvider, Secrets
from runtime.reports.learn import least_privilege
from runtime.reports.usage import Usage

OWN = CallContext(caller="module:m")


def manifest_text(capabilities: str = "", limits: str = "") -> str:
    return f"""
name = "m"
version = "1.0.0"
kind = "wasm"
[artifact]
path = "m.wasm"
[methods.run]
[capabilities]
{capabilities}
[limits]
{limits}
"""


def host_for(state, base_dir, capabilities: str, environ=None, secrets=None) -> Host:
    loaded = LoadedManifest(parse_manifest(manifest_text(capabilities)), "module.toml", str(base_dir))
    return Host(
        loaded, audit=state.audit, environ=environ or {}, secrets=secrets or Secrets(), kv=state.kv,
        resolver=Resolver(), call_module=None,
    )


def records(state, capability):
    return [e for e in read_events(state.audit_path) if e["capability"] == capability]


# what a sandbox is handed at start ----------------------------------------------------------


def test_env_handed_at_start_is_audited_name_by_name(state, tmp_path):
    host = host_for(state, tmp_path, 'env = ["LANG", "REGION", "UNSET"]', environ={"LANG": "C.UTF-8", "REGION": "eu", "HOME": "/root"})
    assert host.start_environ(OWN) == {"LANG": "C.UTF-8", "REGION": "eu"}
    started = records(state, "env")
    assert [(e["target"], e["decision"], e["caller"], e["rule"]) for e in started] == [
        ("LANG", "allow", "module:m", "env: LANG"),
        ("REGION", "allow", "module:m", "env: REGION"),
    ]
    assert all(e["reason"] == "handed over at sandbox start" for e in started)


def test_mounts_handed_at_start_are_audited_and_come_from_the_files_capability(state, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "config.json").write_text("{}")
    host = host_for(state, tmp_path, 'files = { "data" = "ro", "out" = "rw", "config.json" = "ro" }')
    mounts = host.start_mounts(OWN)
    assert [(m.guest, m.host, m.writable) for m in mounts] == [
        ("/data", tmp_path / "data", False), ("/out", tmp_path / "out", True), ("/config.json", tmp_path / "config.json", False),
    ]
    assert [(e["target"], e["decision"], e["rule"], e["reason"]) for e in records(state, "file.mount")] == [
        ("/data", "allow", '"data" = "ro"', "mounted read-only at sandbox start"),
        ("/out", "allow", '"out" = "rw"', "mounted read-write at sandbox start"),
        ("/config.json", "allow", '"config.json" = "ro"', "mounted read-only at sandbox start"),
    ]
    # WASI preopens directories only: a file grant is neither handed over nor recorded as one.
    assert [m.guest for m in host.start_mounts(OWN, directories_only=True)] == ["/data", "/out"]
    assert len(records(state, "file.mount")) == 5


def test_a_grant_swapped_for_a_link_is_not_mounted(state, tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    host = host_for(state, tmp_path, 'files = { "out" = "rw", "out/sub" = "ro" }')
    # The module owns out/ (rw): it replaces sub with a link to /, which a bind mount would follow.
    os.rmdir(tmp_path / "out" / "sub")
    os.symlink("/", tmp_path / "out" / "sub")
    assert [m.guest for m in host.start_mounts(OWN)] == ["/out"]
    denied = [e for e in records(state, "file.mount") if e["decision"] == "deny"]
    assert [e["target"] for e in denied] == ["/out/sub"] and "symbolic link" in denied[0]["reason"]


# env names a secrets provider reads ----------------------------------------------------------


@pytest.mark.parametrize("name", ["GATI_SECRET_DB_PASSWORD", "GATI_SECRET_X", "gati_secret_x"])
def test_an_env_grant_of_a_secret_variable_is_refused_at_parse(name):
    with pytest.raises(ManifestError) as err:
        parse_manifest(manifest_text(f'env = ["{name}"]'), "mods/m/module.toml")
    assert err.value.details["key"] == "capabilities.env[0]"
    assert "secrets" in err.value.fix and "secret_get" in err.value.fix
    assert "secrets provider" in err.value.details["problem"]


def test_a_configured_secret_prefix_is_reserved_at_run_time(state, tmp_path):
    # gati.toml [secrets] env_prefix = "APP_SECRET_": a manifest cannot know it; the Host refuses it.
    secrets = Secrets(providers=[EnvProvider("APP_SECRET_")])
    environ = {"APP_SECRET_DB": "s3cret", "LANG": "C"}
    host = host_for(state, tmp_path, 'env = ["APP_SECRET_DB", "LANG"]', environ=environ, secrets=secrets)
    assert host.start_environ(OWN) == {"LANG": "C"}
    with pytest.raises(CapabilityDenied) as denied:
        host.env_get(CallContext(request_id="r1"), "APP_SECRET_DB")
    assert '[capabilities] secrets = ["db"]' in denied.value.fix
    with pytest.raises(CapabilityDenied) as undeclared:
        host.env_get(CallContext(request_id="r2"), "GATI_SECRET_OTHER")
    assert '[capabilities] secrets = ["other"]' in undeclared.value.fix  # never "add it to env"
    assert [(e["target"], e["decision"]) for e in records(state, "env")] == [
        ("APP_SECRET_DB", "deny"), ("LANG", "allow"), ("APP_SECRET_DB", "deny"), ("GATI_SECRET_OTHER", "deny"),
    ]


# limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_each_limit_has_an_upper_bound_named_in_the_fix(field):
    low, high = BOUNDS[field]
    over = high * 2 if field == "cpu" else int(high) + 1
    with pytest.raises(ManifestError) as err:
        parse_manifest(manifest_text(limits=f"{field} = {over}"))
    assert err.value.details["key"] == f"limits.{field}"
    assert str(high) in err.value.fix
    assert getattr(parse_manifest(manifest_text(limits=f"{field} = {high!r}")).limits, field) == high


@pytest.mark.parametrize("text", ["timeout_ms = 1000000000000000000000000000000", "memory_mb = 4611686018427387904",
                                  "fuel = 1180591620717411303424", "cpu = inf", "cpu = nan"])
def test_the_limits_of_the_issue_are_refused(text):
    with pytest.raises(ManifestError):
        parse_manifest(manifest_text(limits=text))


def test_a_method_timeout_has_the_same_bound():
    text = manifest_text().replace("[methods.run]", "[methods.run]\ntimeout_ms = 3600001")
    with pytest.raises(ManifestError) as err:
        parse_manifest(text)
    assert err.value.details["key"] == "methods.run.timeout_ms" and "3600000" in err.value.fix


@given(st.sampled_from(sorted(f for f in BOUNDS if f != "cpu")), st.integers(-(2**70), 2**70))
def test_a_limit_parses_exactly_when_within_its_bounds(field, value):
    low, high = BOUNDS[field]
    try:
        parse_manifest(manifest_text(limits=f"{field} = {value}"))
        accepted = True
    except ManifestError as err:
        accepted = False
        assert err.details["key"] == f"limits.{field}"
    assert accepted == (low <= value <= high)


def test_one_vocabulary_for_limit_stops():
    limits = Limits(memory_mb=96, processes=8, fuel=500)
    hits = [
        LimitHit.deadline("spin", 0.5, "killed"),
        LimitHit.memory(limits, "oom"),
        LimitHit.processes(limits, 3),
        LimitHit.fuel(limits, "spin"),
    ]
    assert [(h.capability, h.target, h.grant) for h in hits] == [
        ("limit.timeout", "spin: 500 ms", "raise [methods.spin] timeout_ms in module.toml"),
        ("limit.memory", "96 MB", "raise [limits] memory_mb in module.toml"),
        ("limit.processes", "8 processes", "raise [limits] processes in module.toml"),
        ("limit.fuel", "spin: 500 instructions", "raise [limits] fuel in module.toml"),
    ]


def test_limit_hit_is_one_audit_record(state, tmp_path):
    host = host_for(state, tmp_path, "")
    host.limit_hit(CallContext(request_id="r9", caller="test"), LimitHit.deadline("run", 2.0, "stopped"))
    [record] = records(state, "limit.timeout")
    assert (record["decision"], record["target"], record["request_id"], record["reason"]) == ("deny", "run: 2000 ms", "r9", "stopped")


# the audit report over start records --------------------------------------------------------


def test_learn_keeps_the_mode_of_a_mounted_grant():
    caps = parse_manifest(manifest_text('files = { "out" = "rw", "data" = "rw" }\nenv = ["LANG", "UNUSED"]')).capabilities
    usage = Usage("m", allowed=Counter({
        ("file.mount", "/out", '"out" = "rw"'): 1,  # writes through a mount are not seen: keep rw
        ("file.read", "/data/a", '"data" = "rw"'): 1,  # only read through the host: narrowed to ro
        ("env", "LANG", "env: LANG"): 1,  # handed over at start: used
    }))
    proposed = least_privilege(caps, usage)
    assert proposed.files == {"out": "rw", "data": "ro"} and proposed.env == ["LANG"]
