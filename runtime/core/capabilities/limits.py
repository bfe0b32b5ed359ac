"""limits: what a module may use up (memory, time, CPU, processes, calls), and how a stop is told.

Manifest section: `[limits]` (the `Limits` struct). Each value has a documented lower and
upper bound (docs/manifest.md), checked at parse: a limit past its bound would make every
call fail (`fuel` past 2**64 overflows wasmtime) or run without a real deadline.

A limit is not asked for like a capability: the sandbox enforces it. When it stops a
module, every backend reports the stop the same way, as one audit record next to the
refused capabilities: `Host.limit_hit(ctx, hit)` with a `LimitHit` made here, so that
the capability (`limit.timeout`, `limit.memory`, `limit.processes`, `limit.fuel`), the
target's format and the setting to raise are the same for wasm, oci and native.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from runtime.core.errors import ManifestError


class Limits(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    memory_mb: int = 64
    timeout_ms: int = 10_000
    fuel: int | None = None  # wasm: instructions per call (deterministic CPU budget)
    cpu: float = 1.0  # oci/native: CPU cores
    processes: int = 32  # oci/native: pids limit
    concurrency: int = 4  # calls in flight; more wait, up to queue
    warm: int = 1  # oci/native: instances kept running
    queue: int = 64  # calls waiting beyond `concurrency`; past that a call is refused as busy


# (lowest, highest) accepted value of each limit; docs/manifest.md states the same table.
BOUNDS: dict[str, tuple[int | float, int]] = {
    "memory_mb": (1, 65_536),  # 64 GiB
    "timeout_ms": (1, 3_600_000),  # one hour: a call, not a job
    "fuel": (1, 10**15),  # ~ days of instructions, far inside wasmtime's u64
    "cpu": (0.01, 1024),
    "processes": (1, 4096),
    "concurrency": (1, 1024),  # wasm runs one thread per call in flight
    "queue": (0, 100_000),
    "warm": (1, 64),
}
UNITS = {"memory_mb": "MiB", "timeout_ms": "milliseconds", "fuel": "instructions", "cpu": "cores"}


def check_value(key: str, field: str, value: float | None, file: str) -> None:
    """One limit within its bounds (None: not set); raises ManifestError naming the bound."""
    if value is None:
        return
    low, high = BOUNDS[field]
    unit = f" {UNITS[field]}" if field in UNITS else ""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise ManifestError(
            file, key, f"{value!r} is outside {low}..{high}{unit}",
            f"set {field} between {low} and {high}{unit} (the bounds are in docs/manifest.md)",
        )


def check(limits: Limits, file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for field in BOUNDS:
        check_value(f"limits.{field}", field, getattr(limits, field), file)


def method_timeout(method: str, timeout_ms: int | None, file: str) -> None:
    """A method's own timeout_ms has the bounds of [limits] timeout_ms."""
    check_value(f"methods.{method}.timeout_ms", "timeout_ms", timeout_ms, file)


@dataclass(frozen=True)
class LimitHit:
    """A sandbox stopped a module at a limit: what its audit record says. Made by the constructors below."""

    limit: str  # timeout | memory | processes | fuel
    target: str
    setting: str  # the manifest key to raise
    reason: str

    @property
    def capability(self) -> str:
        return f"limit.{self.limit}"

    @property
    def grant(self) -> str:
        return f"raise {self.setting} in module.toml"

    @classmethod
    def deadline(cls, method: str, timeout_s: float, reason: str) -> "LimitHit":
        """A call stopped at its deadline (epoch interruption, or its instance killed and replaced)."""
        return cls("timeout", f"{method}: {timeout_s * 1000:.0f} ms", f"[methods.{method}] timeout_ms", reason)

    @classmethod
    def memory(cls, limits: Limits, reason: str) -> "LimitHit":
        """A module stopped past its memory limit (the kernel's OOM killer, or wasmtime's store limit)."""
        return cls("memory", f"{limits.memory_mb} MB", "[limits] memory_mb", reason)

    @classmethod
    def processes(cls, limits: Limits, refused: int) -> "LimitHit":
        """Forks refused at the pids limit."""
        return cls("processes", f"{limits.processes} processes", "[limits] processes", f"{refused} forks refused at the pids limit")

    @classmethod
    def fuel(cls, limits: Limits, method: str) -> "LimitHit":
        """A wasm call that used up its instructions."""
        return cls("fuel", f"{method}: {limits.fuel} instructions", "[limits] fuel", "stopped when its fuel ran out")
