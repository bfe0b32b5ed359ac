"""`gati audit diff`: added and removed grants are exactly the set difference, for any pair of
manifests (hypothesis), whether given as files or as registered versions.
"""

import json
import re
import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from runtime.cli.audit import audit_app
from runtime.core.manifest import (
    Artifact,
    Capabilities,
    Limits,
    Manifest,
    Method,
    parse_manifest,
)
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.reports.diff import diff, diff_pins, diff_versions, resolve
from runtime.reports.learn import render
from tests.versions_support import greet_sample

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"

RULES = ["https://api.example.com:443", "https://*.example.com:443", "http://10.0.0.7:8080", "tcp://db.internal:5432", "insecure:allow-all", "*://cdn.example.org:*"]
PATHS = ["data", "/tmp/scratch", "out/", "config.json"]
NAMES = ["A", "B", "LANG", "api_key", "cache", "greet"]

capabilities = st.builds(
    Capabilities,
    egress=st.lists(st.sampled_from(RULES), unique=True),
    files=st.dictionaries(st.sampled_from(PATHS), st.sampled_from(["ro", "rw"])),
    env=st.lists(st.sampled_from(NAMES), unique=True),
    secrets=st.lists(st.sampled_from(NAMES), unique=True),
    kv=st.lists(st.sampled_from(NAMES), unique=True),
    modules=st.lists(st.sampled_from(NAMES[-2:]), unique=True),
)
limits = st.builds(Limits, memory_mb=st.sampled_from([16, 64, 256]), timeout_ms=st.sampled_from([1000, 5000]), fuel=st.sampled_from([None, 10**6]))


def manifest(caps: Capabilities, lim: Limits = Limits()) -> Manifest:
    return Manifest("m", "1.0.0", "wasm", Artifact(path="m.wasm"), {"run": Method()}, capabilities=caps, limits=lim)


def declared(caps: Capabilities) -> set[tuple]:
    """Independently of the code under test: one tuple per declared entry."""
    out = {(field, v, "") for field in ("egress", "env", "secrets", "kv", "modules") for v in getattr(caps, field)}
    return out | {("files", p, mode) for p, mode in caps.files.items()}


@settings(max_examples=300)
@given(capabilities, capabilities, limits, limits)
def test_added_and_removed_are_the_set_difference(old, new, old_limits, new_limits):
    d = diff(manifest(old, old_limits), manifest(new, new_limits))
    assert {tuple(g) for g in d.added} == declared(new) - declared(old)
    assert {tuple(g) for g in d.removed} == declared(old) - declared(new)
    assert len(d.added) == len(set(d.added)) and len(d.removed) == len(set(d.removed))
    changed = {c.name for c in d.limits}
    assert changed == {f for f in ("memory_mb", "timeout_ms", "fuel") if getattr(old_limits, f) != getattr(new_limits, f)}
    assert d.widened == (bool(declared(new) - declared(old)) or any(
        getattr(new_limits, f) > getattr(old_limits, f) for f in ("memory_mb", "timeout_ms")
    ) or (old_limits.fuel is not None and new_limits.fuel is None))


@settings(max_examples=100)
@given(capabilities, capabilities)
def test_diff_of_manifest_files_matches(tmp_path_factory, old, new):
    # Through the text a reviewer edits: render, parse back, diff the files by path.
    folder = tmp_path_factory.mktemp("diff")
    for name, caps in (("old.toml", old), ("new.toml", new)):
        text = 'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wasm"\n[methods.run]\n[capabilities]\n' + render(caps)
        (folder / name).write_text(text)
        assert parse_manifest(text).capabilities == caps
    (_, a), (_, b) = resolve(str(folder / "old.toml"), None), resolve(str(folder / "new.toml"), None)
    d = diff(a, b)
    assert {tuple(g) for g in d.added} == declared(new) - declared(old)
    assert {tuple(g) for g in d.removed} == declared(old) - declared(new)


def test_mode_change_shows_as_removed_and_added():
    d = diff(manifest(Capabilities(files={"data": "ro"})), manifest(Capabilities(files={"data": "rw"})))
    assert [g.line for g in d.added] == ['[capabilities] files = { "data" = "rw" }']
    assert [g.line for g in d.removed] == ['[capabilities] files = { "data" = "ro" }']


def test_cli_diff_between_registered_versions(tmp_path, monkeypatch):
    monkeypatch.delenv("GATI_HOME", raising=False)
    folder = tmp_path / "probe"
    shutil.copytree(PROBE, folder, ignore=shutil.ignore_patterns("build.sh"))
    manifest_file = folder / "module.toml"
    text = re.sub(r"^egress = .*$", "egress = []", manifest_file.read_text(), flags=re.M)
    manifest_file.write_text(text.replace("modules = []", 'modules = ["greet"]'))
    state = StateDir(tmp_path / ".gati")
    register_module(state, folder)
    manifest_file.write_text(
        manifest_file.read_text()
        .replace('version = "1.0.0"', 'version = "1.1.0"')
        .replace("egress = []", 'egress = ["https://api.example.com:443"]')
        .replace('modules = ["greet"]', "modules = []")
        .replace("memory_mb = 16", "memory_mb = 64")
    )
    register_module(state, folder)
    state.close()

    runner = CliRunner()
    result = runner.invoke(audit_app, ["diff", "probe@1.0.0", "probe@1.1.0", "--json", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [g["line"] for g in body["added"]] == ['[capabilities] egress = ["https://api.example.com:443"]']
    assert [g["line"] for g in body["removed"]] == ['[capabilities] modules = ["greet"]']
    assert body["limits"] == [{"name": "memory_mb", "old": 16, "new": 64, "wider": True}] and body["widened"]

    table = runner.invoke(audit_app, ["diff", "probe@1.0.0", "probe", "--fail-on-added", "--project", str(tmp_path)])
    assert table.exit_code == 1
    assert "+ [capabilities] egress" in table.output and "may connect to api.example.com:443 over https" in table.output
    same = runner.invoke(audit_app, ["diff", str(folder), "probe@1.1.0", "--fail-on-added", "--project", str(tmp_path)])
    assert same.exit_code == 0 and "no permission changes" in same.output
    missing = runner.invoke(audit_app, ["diff", "probe@9.9.9", "probe", "--project", str(tmp_path)])
    assert missing.exit_code == 1 and "at version 9.9.9" in missing.output


def test_cli_diff_between_two_registered_versions_of_greet_names_what_the_new_one_grants(tmp_path, monkeypatch):
    """The greet sample at 1.0.0 and a 2.0.0 that widens it: added, removed and changed grants, by name@version or constraint."""
    monkeypatch.delenv("GATI_HOME", raising=False)
    state = StateDir(tmp_path / ".gati")
    one = greet_sample(tmp_path / "greet-1", "1.0.0")
    (one / "data").mkdir()
    toml = one / "module.toml"
    toml.write_text(toml.read_text().replace('kv = ["visits"]', 'kv = ["visits"]\nfiles = { "data" = "ro" }\nmodules = ["thumbs@^1"]'))
    register_module(state, one)
    two = greet_sample(tmp_path / "greet-2", "2.0.0")
    (two / "data").mkdir()
    toml = two / "module.toml"
    toml.write_text(toml.read_text().replace('kv = ["visits"]', 'egress = ["https://api.example.com:443"]\nfiles = { "data" = "rw" }\nmodules = ["thumbs"]'))
    register_module(state, two)

    d = diff_versions(state.registry, "greet@1.0.0", "greet@2.0.0")
    assert [g.line for g in d.added] == [
        '[capabilities] egress = ["https://api.example.com:443"]',
        '[capabilities] files = { "data" = "rw" }',
        '[capabilities] modules = ["thumbs"]',
    ]
    assert [g.line for g in d.removed] == ['[capabilities] files = { "data" = "ro" }', '[capabilities] kv = ["visits"]', '[capabilities] modules = ["thumbs@^1"]']
    assert [(c.old.value, c.new.value, c.wider) for c in d.changed] == [("data", "data", True), ("thumbs@^1", "thumbs", True)]
    # what `gati versions diff` asks: the modules two pin sets reach
    [pinned] = diff_pins(state.registry, {"greet": "^1"}, {"greet": None})
    assert (pinned.old, pinned.new) == ("greet@1.0.0", "greet@2.0.0") and pinned.added == d.added
    assert diff_pins(state.registry, {"greet": "1"}, {"greet": "~1.0"}) == []
    state.close()

    runner = CliRunner()
    table = runner.invoke(audit_app, ["diff", "greet@^1", "greet@2.0.0", "--fail-on-added", "--project", str(tmp_path)])
    assert table.exit_code == 1, table.output
    assert "greet@1.0.0 -> greet@2.0.0" in table.output
    assert '+ [capabilities] egress = ["https://api.example.com:443"]' in table.output
    assert '- [capabilities] kv = ["visits"]' in table.output
    assert '~ [capabilities] files = { "data" = "ro" } -> [capabilities] files = { "data" = "rw" } (wider)' in table.output
    body = json.loads(runner.invoke(audit_app, ["diff", "greet@1.0.0", "greet@2", "--json", "--project", str(tmp_path)]).output)
    assert body["changed"][1] == {"field": "modules", "old": '[capabilities] modules = ["thumbs@^1"]', "new": '[capabilities] modules = ["thumbs"]', "wider": True}
    missing = runner.invoke(audit_app, ["diff", "greet@^3", "greet", "--project", str(tmp_path)])
    assert missing.exit_code == 1 and "no registered version of greet satisfies '^3'" in missing.output and "1.0.0, 2.0.0" in missing.output
