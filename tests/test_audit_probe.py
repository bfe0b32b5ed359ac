"""`gati audit --probe`: the shipped probe module, in each backend present, is refused everything
its manifest does not allow, and stopped at its limits. With a deliberately weakened policy
installed the probe must fail and name what got through.
"""

import json
import posixpath
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.audit import audit_app
from runtime.core.capabilities.files import FileGrant, Located
from runtime.core.policy import Decision, Policy
from runtime.reports.probe import (
    ATTEMPTS,
    PROBES,
    probe_backend,
    probe_dirs,
    run_probes,
)


def test_every_backend_ships_a_probe():
    assert set(probe_dirs()) == {"wasm", "oci", "native"}


@pytest.mark.parametrize("kind", ["wasm", "oci", "native"])
async def test_each_backend_present_passes_its_probe(kind):
    result = await probe_backend(kind, probe_dirs()[kind])
    if result.status == "skipped":  # only when the backend cannot run on this machine
        assert kind != "wasm" and result.reason
        pytest.skip(result.reason)
    assert result.status == "passed", result
    assert [o.attempt for o in result.outcomes] == [a.name for a in ATTEMPTS]
    assert all(o.ok for o in result.outcomes)
    detail = {o.attempt: o.detail for o in result.outcomes}
    assert "resolves to 127.0.0.1" in detail["egress to a name resolving to 127.0.0.1"]
    assert "resolves to 169.254.169.254" in detail["egress to the metadata address 169.254.169.254"]
    assert {o.observed for o in result.outcomes if o.expected.startswith("refused")} == {"refused, audited"}


class EnvAllowsAnything(Policy):
    def env(self, name):
        return Decision("env", name, True, rule="weakened")


class NoAntiSsrf(Policy):
    def egress_address(self, target, ip):
        return Decision("egress", f"{target} ({ip})", True, rule="weakened")


class FilesIgnoreGrants(Policy):
    def file(self, guest_path, write):
        decision, located = super().file(guest_path, write)
        if decision.allowed:
            return decision, located
        # reads really reach the host path (as if / were granted); writes go nowhere, so the test cannot litter the machine
        root = Path("/nonexistent-gati-probe") if write else Path("/")
        located = Located(FileGrant(str(root), root, True), posixpath.normpath(guest_path).lstrip("/"))
        return Decision(decision.capability, guest_path, True, rule="weakened"), located


class ModuleCallsUnchecked(Policy):
    def module_call(self, module):
        return Decision("module.call", module, True, rule="weakened")


WEAKENED = {
    EnvAllowsAnything: {"read an env name not declared"},
    NoAntiSsrf: {"egress to a name resolving to 127.0.0.1", "egress to the metadata address 169.254.169.254"},
    FilesIgnoreGrants: {"read a file outside its grants", "climb out of a grant with ..", "write to a read-only grant"},
    ModuleCallsUnchecked: {"call a module not granted"},
}


@pytest.mark.parametrize("weakened", WEAKENED, ids=lambda c: c.__name__)
async def test_probe_fails_under_a_weakened_policy(monkeypatch, tmp_path, weakened):
    monkeypatch.setattr("runtime.core.host.Policy", weakened)  # what every Host builds its checks from
    root = tmp_path / "probes"
    shutil.copytree(PROBES / "wasm", root / "wasm")
    [wasm] = await run_probes(root)
    assert wasm.status == "failed"
    failed = {o.attempt for o in wasm.outcomes if not o.ok}
    assert failed == WEAKENED[weakened], [o for o in wasm.outcomes if not o.ok]


def test_cli_probe_exit_status(monkeypatch, tmp_path):
    monkeypatch.delenv("GATI_HOME", raising=False)
    (tmp_path / "gati.toml").write_text("")  # a project: audit refuses to keep state anywhere else
    runner = CliRunner()
    ok = runner.invoke(audit_app, ["--probe", "--format", "json", "--project", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert [p["status"] for p in json.loads(ok.output)["probes"] if p["kind"] == "wasm"] == ["passed"]

    monkeypatch.setattr("runtime.core.host.Policy", EnvAllowsAnything)
    bad = runner.invoke(audit_app, ["--probe", "--project", str(tmp_path)], terminal_width=80)
    assert bad.exit_code == 1
    assert "FAILED" in bad.output and "read an env name not declared" in bad.output


async def test_backend_that_cannot_run_here_is_skipped_with_the_reason(tmp_path):
    # A probe folder for a backend this runtime does not have: found by folder, reported, not fatal.
    folder = tmp_path / "probes" / "nosuchkind"
    shutil.copytree(PROBES / "wasm", folder)
    [result] = await run_probes(tmp_path / "probes")
    assert result.kind == "nosuchkind" and result.status == "skipped"
    assert "no nosuchkind backend" in result.reason


async def test_probe_with_a_different_manifest_is_refused(tmp_path):
    folder = tmp_path / "probes" / "wasm"
    shutil.copytree(PROBES / "wasm", folder)
    manifest = folder / "module.toml"
    manifest.write_text(manifest.read_text().replace('env = ["PROBE_ALLOWED"]', 'env = ["PROBE_ALLOWED", "HOME"]'))
    [result] = await run_probes(tmp_path / "probes")
    assert result.status == "failed" and "known [capabilities]" in result.reason
