"""`gati audit`: the report (the default command), `gati audit diff OLD NEW`, `gati audit verify`.

    gati audit [MODULE...] [--since 24h] [--until T] [--learn] [--probe] [--cluster]
               [--format table|json|sarif] [--fail-on high|medium|low] [--project DIR]
    gati audit diff OLD NEW      OLD/NEW: module.toml, a module folder, or name[@version or @constraint]
    gati audit verify [--expect-head SEQ:HASH] [--cluster]
                                 check the log's chain, macs and head; exit 1 naming the first break
    gati audit head              print the log's signed head (SEQ:HASH), to keep off the machine

--cluster (with [cluster] nats in gati.toml): over every instance's log as mirrored to
JetStream (runtime/cluster/audit.py), each chain verified on its own with the key the
instances share ([audit] key_secret).

Exit status: 0, or 1 when --fail-on finds a finding that severe, a probe fails, a
diff widens permissions under --fail-on-added, or the chain is broken (verify).
"""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup

from runtime.cli.common import ProjectOpt, err, open_state, out, user_errors
from runtime.core.audit_chain import GENESIS, Anchor
from runtime.core.audit_log import read_head_checked
from runtime.core.audit_log import verify as verify_chain
from runtime.core.errors import GatiError
from runtime.cluster.audit import fetch_logs
from runtime.cluster.state import ClusterState
from runtime.reports.cluster import verify_logs
from runtime.reports import probe as probes
from runtime.reports.diff import diff as permission_diff
from runtime.reports.diff import resolve
from runtime.reports.report import build_report, render, to_json, to_sarif
from runtime.reports.usage import parse_when


class _ReportByDefault(TyperGroup):
    """`gati audit ...` runs the report unless the first word names a subcommand."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["report", *args]
        return super().parse_args(ctx, args)


audit_app = typer.Typer(
    cls=_ReportByDefault,
    help="What modules may do, did do and tried to do; least-privilege proposals; sandbox probes. "
    "Without a subcommand, runs `report` (gati audit [MODULE...] [OPTIONS]).",
    add_completion=False,
    pretty_exceptions_enable=False,
)



ClusterOpt = Annotated[bool, typer.Option("--cluster", help="Every instance's log, as mirrored to the cluster's JetStream ([cluster] nats).")]


def cluster_logs(state) -> dict[str, Path]:
    """Every instance's mirrored log, fetched into the state directory (cluster/audit/INSTANCE.log)."""
    if not isinstance(state, ClusterState):
        raise GatiError("--cluster needs a cluster: this project's gati.toml has no [cluster] nats", fix='add [cluster] nats = "nats://..." (docs/scaling.md), or drop --cluster')
    return fetch_logs(state.cluster, state.path / "cluster" / "audit")


class Format(str, Enum):
    table = "table"
    json = "json"
    sarif = "sarif"


class Severity(str, Enum):
    high = "high"
    medium = "medium"
    low = "low"








@audit_app.command("report")
@user_errors
def report(
    modules: Annotated[Optional[list[str]], typer.Argument(help="Modules to audit (default: all registered or logged).")] = None,
    since: Annotated[Optional[str], typer.Option(help='Start of the window: "24h", "7d" ago, an ISO time, or epoch seconds.')] = None,
    until: Annotated[Optional[str], typer.Option(help="End of the window (same forms).")] = None,
    learn: Annotated[bool, typer.Option("--learn", help="Propose a least-privilege module.toml (a diff) from what was used.")] = False,
    probe: Annotated[bool, typer.Option("--probe", help="Start a probe module in each backend present and check it refuses what it must.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table for people, json for machines, sarif for code scanning.")] = Format.table,
    fail_on: Annotated[Optional[Severity], typer.Option("--fail-on", help="Exit 1 when a finding is at least this severe.")] = None,
    cluster: ClusterOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """The audit report: permissions, usage, refusals, unused grants, findings."""
    window = parse_when(since), parse_when(until)
    with open_state(project) as state:  # first: outside a project, refuse before probing anything
        logs = cluster_logs(state) if cluster else None
        results = probes.run() if probe else None
        result = build_report(state, modules or (), *window, learn=learn, probes=results, logs=logs)
    if format is Format.json:
        print(to_json(result))
    elif format is Format.sarif:
        print(json.dumps(to_sarif(result, project), indent=2, ensure_ascii=False))
    else:
        render(result, out)
    if result.failed(fail_on.value if fail_on else None):
        raise typer.Exit(1)


@audit_app.command("diff")
@user_errors
def diff(
    old: Annotated[str, typer.Argument(help="module.toml, a module folder, or a registered name[@version or @constraint].")],
    new: Annotated[str, typer.Argument(help="The same forms.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    fail_on_added: Annotated[bool, typer.Option("--fail-on-added", help="Exit 1 when NEW grants anything OLD did not (or widens a limit).")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """The permission difference between two manifests or two registered versions."""
    if Path(old).exists() and Path(new).exists():  # two manifests on disk: no project needed
        (old_label, old_m), (new_label, new_m) = resolve(old, None), resolve(new, None)
    else:
        with open_state(project) as state:
            (old_label, old_m), (new_label, new_m) = resolve(old, state.registry), resolve(new, state.registry)
    d = permission_diff(old_m, new_m, old_label, new_label)
    if as_json:
        print(json.dumps(d.to_dict(), indent=2, ensure_ascii=False))
    else:
        out.print(f"[bold]{escape(d.old)}[/] -> [bold]{escape(d.new)}[/]", highlight=False)
        for g in d.added:
            out.print(f"[green]+ {escape(g.line)}[/]\n    {escape(g.sentence)}", highlight=False)
        for g in d.removed:
            out.print(f"[red]- {escape(g.line)}[/]\n    {escape(g.sentence)}", highlight=False)
        for c in d.changed:
            how = {True: "wider", False: "narrower", None: "changed: review"}[c.wider]
            out.print(f"[{'yellow' if c.wider is not False else 'cyan'}]~ {escape(c.old.line)} -> {escape(c.new.line)} ({how})[/]", highlight=False)
        for c in d.limits:
            out.print(f"[{'yellow' if c.wider else 'cyan'}]~ [limits] {c.name}: {c.old} -> {c.new} ({'wider' if c.wider else 'narrower'})[/]", highlight=False)
        if not (d.added or d.removed or d.limits):
            out.print("no permission changes")
        elif d.added:
            out.print(f"[bold]{len(d.added)} added grant(s) to approve[/]")
    if fail_on_added and d.widened:
        raise typer.Exit(1)


@audit_app.command("verify")
@user_errors
def verify(
    expect_head: Annotated[
        Optional[str], typer.Option("--expect-head", help="SEQ:HASH from an earlier `gati audit head`, kept off this machine: the log must still hold it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    cluster: ClusterOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Check the audit log: hash chain, every record's mac, the head checkpoint; name the first break (exit 1)."""
    anchor = parse_anchor(expect_head) if expect_head is not None else None
    with open_state(project) as state:
        path, key = state.audit_path, state.audit_key
        if cluster:
            return _verify_cluster(cluster_logs(state), key, as_json)
    result = verify_chain(path, key, anchor)
    if as_json:
        print(json.dumps({"log": str(path), **vars(result)}, indent=2))
    elif result.ok:
        head = f", head {result.head['seq']}" if result.head else ""
        anchored = f", holds the expected head {anchor.seq}" if anchor else ""
        out.print(f"audit log intact: {result.records} records{head}{anchored} ({path})", highlight=False)
    else:
        where = "" if result.broken_line is None else f" at line {result.broken_line} (record seq {result.broken_seq})"
        err.print(f"[bold red]audit log broken[/]{where}: {escape(result.problem)}", highlight=False)
        err.print(f"{result.records} records before it verify; {path}", highlight=False)
    if not as_json:
        for note in result.notes:
            (out if result.ok else err).print(f"note: {escape(note)}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("head")
@user_errors
def head(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Print the audit log's signed head (SEQ:HASH): keep it off this machine, give it back to `verify --expect-head`."""
    with open_state(project) as state:
        checkpoint = read_head_checked(state.audit_path, state.audit_key)
    if as_json:
        print(json.dumps({"seq": checkpoint.seq, "hash": checkpoint.hash, "anchor": checkpoint.anchor()}, indent=2))
    else:
        print(checkpoint.anchor())


def parse_anchor(text: str) -> Anchor:
    m = re.fullmatch(r"([0-9]{1,19}):([0-9a-f]{64})", text.strip())
    if m is None:
        raise GatiError(f"--expect-head {text!r} is not SEQ:HASH", fix="give what `gati audit head` printed, e.g. 1234:9f2c...(64 hex digits)")
    seq, digest = m.groups()
    if int(seq) == 0 and digest != GENESIS:
        raise GatiError("--expect-head 0:... names the empty log, whose hash is 64 zeros", fix="give what `gati audit head` printed")
    return Anchor(int(seq), digest)


def _verify_cluster(logs: dict[str, Path], key, as_json: bool) -> None:
    if key is None and logs:
        raise GatiError(
            "verifying every instance's audit log needs the key they all sign with",
            fix="set [audit] key_secret (one secret for every instance) in gati.toml: each instance's own key file stays on its machine",
        )
    results = verify_logs(logs, key)
    if as_json:
        print(json.dumps({"instances": [{"instance": i, "log": str(logs[i]), **vars(r)} for i, r in results.items()]}, indent=2))
    elif not results:
        out.print("no instance has mirrored an audit record yet")
    for instance, result in results.items() if not as_json else ():
        if result.ok:
            out.print(f"{escape(instance)}: audit log intact, {result.records} records", highlight=False)
        else:
            err.print(
                f"[bold red]{escape(instance)}: audit log broken[/] at line {result.broken_line} (record seq {result.broken_seq}): {escape(result.problem)}",
                highlight=False,
            )
    if not all(r.ok for r in results.values()):
        raise typer.Exit(1)
