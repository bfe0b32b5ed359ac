"""What the walls tests share (tests/test_walls_*.py): the walls probe installed as a native or a
container module, with a manifest written for the test."""

import shutil
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WALLS_PROBE = ROOT / "tests" / "modules" / "walls_probe"
METHODS = ("echo", "sleep", "environs", "open_for_write", "peek", "fill")
# What /proc tells of the whole machine: masked in both kinds of sandbox (Docker's masked paths).
MACHINE_WIDE_PROC = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/scsi", "/proc/asound")
SLEEP_TIMEOUT_MS = 300  # [methods.sleep]: a longer sleep is killed and its instance replaced


def install_walls_probe(tmp_path: Path, kind: str, *, name: str = "walls", env: tuple[str, ...] = (), warm: int = 1) -> Path:
    target = tmp_path / "modules" / name
    shutil.copytree(WALLS_PROBE, target)
    artifact = 'path = "probe.py"' if kind == "native" else 'build = "."'
    methods = "\n".join(f"[methods.{m}]" for m in METHODS).replace("[methods.sleep]", f"[methods.sleep]\ntimeout_ms = {SLEEP_TIMEOUT_MS}")
    (target / "module.toml").write_text(textwrap.dedent(f"""\
        name = "{name}"
        version = "1.0.0"
        kind = "{kind}"

        [artifact]
        {artifact}

        {methods}

        [capabilities]
        env = {list(env)!r}

        [limits]
        memory_mb = 128
        processes = 32
        timeout_ms = 10000
        warm = {warm}
        """).replace("'", '"'))
    return target


def mount_of(path: Path) -> tuple[str, str] | None:
    """(file system type, source) of the mount whose mount point is exactly path, from the host's view."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[4] == str(path):
            return fields[sep + 1], fields[sep + 2]
    return None


def readable_machine_wide(seen: dict) -> dict:
    """What the probe's peek at MACHINE_WIDE_PROC could read (bytes or entries)."""
    return {path: r for path, r in seen.items() if r["ok"] and (r.get("bytes") or r.get("entries"))}
