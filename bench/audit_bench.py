"""`gati audit` over a large audit log, against a bare JSON loop over the same file, in one run.

    .venv/bin/python bench/audit_bench.py [--events 1000000] [--repeat 2]

Writes a keyed, hash-chained log of N events (a realistic mix: a dozen modules, kv-heavy,
egress to many hosts, file reads over thousands of paths, ~8% denials) into a temp
state directory with those modules registered, then times:

    baseline   for line in f: json.loads(line)
    report     build_report(state) + JSON encoding: what `gati audit --format json` computes
               (one pass: chain check, per-module counters, findings)
    verify     runtime.core.audit_log.verify (`gati audit verify`: chain, macs, head), for reference

Peak memory is measured with tracemalloc in separate runs (it slows what it traces,
so it never overlaps the timing) and shown against the log's size. Goal: report <= 3x
the baseline time, and peak memory bounded by the distinct (module, capability,
target) counted, not by the number of events: the report never holds the file.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

import msgspec

from runtime.core.audit_chain import GENESIS, digest
from runtime.core.audit_head import Head, head_path, open_head, write_head
from runtime.core.audit_key import AuditKey, key_path, publish_key_file
from runtime.core.audit_log import verify
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.reports.report import build_report
from runtime.reports.usage import scan

MODULES = ["thumbs", "mailer", "search", "billing", "auth", "geo", "pdf", "feeds", "chat", "ocr", "translate", "metrics"]
ROUTES = ["/", "/users/{id}", "/thumbs", "/search", "/checkout", "/feeds/{name}", "/api/v1/chat"]

# capability, decision, weight
MIX = [
    ("kv.read", "allow", 28),
    ("kv.write", "allow", 10),
    ("egress", "allow", 20),
    ("file.read", "allow", 14),
    ("file.write", "allow", 3),
    ("env", "allow", 6),
    ("secret", "allow", 5),
    ("module.call", "allow", 6),
    ("egress", "deny", 3),
    ("file.read", "deny", 2),
    ("env", "deny", 1),
    ("secret", "deny", 1),
    ("module.call", "deny", 1),
]


def manifest(name: str) -> str:
    return f"""name = "{name}"
version = "1.2.0"
kind = "wasm"
[artifact]
path = "m.wasm"
[methods.run]
[capabilities]
egress = ["https://*.example.com:443", "https://api.{name}.io:443", "https://unused.example.org:443"]
files = {{ "data" = "rw", "assets" = "ro" }}
env = ["LANG", "TZ", "UNUSED"]
secrets = ["{name}_token"]
kv = ["cache", "sessions"]
modules = ["{MODULES[0] if name != MODULES[0] else MODULES[1]}"]
[limits]
memory_mb = 64
"""


def event(rng: random.Random, module: str, capability: str, decision: str) -> dict:
    peer = MODULES[0] if module != MODULES[0] else MODULES[1]
    allow = decision == "allow"
    if capability == "egress":
        if allow:
            host = rng.choice([f"api-{rng.randrange(200)}.example.com", f"api.{module}.io"])
            target = f"https://{host}:443"
            rule = "https://*.example.com:443" if host.endswith("example.com") else f"https://api.{module}.io:443"
        else:
            target, rule = f"https://tracker-{rng.randrange(50)}.evil.net:443", None
    elif capability.startswith("file"):
        folder = "data" if capability == "file.write" or rng.random() < 0.7 else "assets"
        target = f"/{folder}/img-{rng.randrange(5000)}.jpg" if allow else f"/etc/{rng.choice(['passwd', 'shadow', 'hosts'])}"
        rule = f'"{folder}" = "{"rw" if folder == "data" else "ro"}"' if allow else None
    elif capability == "env":
        target = rng.choice(["LANG", "TZ"]) if allow else rng.choice(["HOME", "PATH", "AWS_SECRET_ACCESS_KEY"])
        rule = f"env: {target}" if allow else None
    elif capability == "secret":
        target = f"{module}_token" if allow else "db_password"
        rule = f"secrets: {target}" if allow else None
    elif capability.startswith("kv"):
        target = rng.choice(["cache", "cache", "sessions"])
        rule = f"kv: {target}"
    else:
        target = peer if allow else rng.choice(MODULES)
        rule = f"modules: {target}" if allow else None
    field = {"egress": "egress", "env": "env", "secret": "secrets", "module.call": "modules"}.get(capability, "files")
    return {
        "module": module,
        "version": "1.2.0",
        "caller": rng.choice([f"handler:{rng.choice(ROUTES)}", f"module:{peer}", "cli"]),
        "request_id": "%032x" % rng.getrandbits(128),
        "trace_id": "%032x" % rng.getrandbits(128),
        "capability": capability,
        "target": target,
        "decision": decision,
        "rule": rule,
        "grant": None if allow else f'[capabilities] {field} = ["{target}"]',
        "reason": None if allow else "not declared",
    }


def generate(root: Path, n: int, seed: int = 7) -> StateDir:
    state = StateDir(root / "state")
    for name in MODULES:
        folder = root / "modules" / name
        for sub in ("data", "assets"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
        (folder / "module.toml").write_text(manifest(name))
        register_module(state, folder)
    rng = random.Random(seed)
    weights = [w for *_, w in MIX]
    module_weights = [1 / (i + 1) for i in range(len(MODULES))]  # a few busy modules, a long tail
    start = time.time() - 7 * 86400
    prev = GENESIS
    # Written as the runtime writes them (keyed: a key file, a mac per record, the head), without
    # the lock and the head rewrite per record, so that a million records take seconds.
    key = publish_key_file(AuditKey.generate("bench"), key_path(state.audit_path))
    with open(state.audit_path, "wb") as f:
        for seq in range(1, n + 1):
            capability, decision, _ = rng.choices(MIX, weights)[0]
            module = rng.choices(MODULES, module_weights)[0]
            body = {"seq": seq, "time": start + seq * (7 * 86400 / n), **event(rng, module, capability, decision), "key_id": key.id, "prev": prev}
            prev = digest(prev, body)
            f.write(msgspec.json.encode({**body, "hash": prev, "mac": key.mac(prev)}) + b"\n")
    fd = open_head(head_path(state.audit_path))
    write_head(fd, Head.sign(n, prev, key))
    os.close(fd)
    return state


def bare_loop(path: Path) -> int:
    count = 0
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
            count += 1
    return count


def report(state: StateDir) -> int:
    return len(json.dumps(build_report(state).to_dict()))


def timed(fn, *args) -> float:
    gc.collect()
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def peak_mib(fn, *args) -> float:
    gc.collect()
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="timing runs per row; the best is kept")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gati-audit-bench-") as tmp:
        t = time.perf_counter()
        state = generate(Path(tmp), args.events)
        size = state.audit_path.stat().st_size / (1 << 20)
        print(f"generated {args.events:,} events ({size:.0f} MiB) in {time.perf_counter() - t:.1f} s")

        rows = {"bare json.loads loop": (bare_loop, state.audit_path), "gati audit (report)": (report, state), "gati audit verify": (verify, state.audit_path)}
        best = {name: float("inf") for name in rows}
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits every row alike
            for name, (fn, arg) in rows.items():
                best[name] = min(best[name], timed(fn, arg))
        peaks = {name: peak_mib(fn, arg) for name, (fn, arg) in rows.items()}
        result = scan(state.audit_path)
        assert result.chain.ok, "the generated log must verify"
        counters = sum(len(u.allowed) + len(u.denied) for u in result.usage.values())
        state.close()

    base_t = best["bare json.loads loop"]
    print(f"\n{'':24} {'time s':>8} {'x bare':>7} {'us/event':>9} {'peak MiB':>9} {'% of log':>9}")
    for name in rows:
        print(
            f"{name:24} {best[name]:8.2f} {best[name] / base_t:7.2f} {best[name] / args.events * 1e6:9.2f}"
            f" {peaks[name]:9.2f} {peaks[name] / size * 100:8.1f}%"
        )
    ratio = best["gati audit (report)"] / base_t
    print(f"\nreport / bare loop: {ratio:.2f}x time (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'});"
          f" peak {peaks['gati audit (report)']:.1f} MiB for a {size:.0f} MiB log,"
          f" holding {counters:,} distinct (module, capability, target) counters")


if __name__ == "__main__":
    main()
