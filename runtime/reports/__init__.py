"""The audit reports (`gati audit`): what each module may do, did do, tried to do, and proof it is enforced.

They read the manifests and the audit log (runtime.core.audit_log), never the per-request
execution records (runtime.http.executions).

One concept per file:
    permissions  grants, the unit every audit speaks in, in plain words
    chain        the audit log's hash-chain check, one record at a time
    usage        exercised / refused counters from one streaming pass over the log
    findings     severity findings, each naming the manifest line and the fix
    learn        a least-privilege module.toml proposal, as a diff
    diff         the permission difference between two manifests or versions
    probe        active verification: probe modules in each backend present (probes/<kind>)
    report       assembles the above; table, JSON and SARIF output
    endpoint     the same report as an admin endpoint (`add_audit_routes`)

The `gati audit` command itself is runtime/cli/audit.py.
"""
