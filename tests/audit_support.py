"""Writing audit logs for tests, and rewriting them as an attacker without the key would."""

import hashlib
import json

from runtime.core.audit_log import AuditLog


def write_log(path, n=6, **extra):
    log = AuditLog(path, **extra)
    for i in range(n):
        log.record(module="m", version="1.0.0", caller="test", capability="env", target=f"NAME{i}", decision="allow", rule=f"env: NAME{i}")
    log.close()


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_rows(path, records):
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def rehash(record, prev):
    """What anyone can do without the key: recompute a record's chain hash (sha256 over prev + canonical body)."""
    body = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    body["prev"] = prev
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**body, "hash": hashlib.sha256((prev + canonical).encode()).hexdigest(), **({"mac": record["mac"]} if "mac" in record else {})}


def rechain(records, start=0):
    """Recompute every hash from records[start] on, as an attacker rewriting the log would."""
    out = list(records[:start])
    prev = out[-1]["hash"] if out else "0" * 64
    for r in records[start:]:
        r = rehash(r, prev)
        out.append(r)
        prev = r["hash"]
    return out
