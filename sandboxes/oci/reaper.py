"""No container outlives its runtime, even one killed with SIGKILL: a watcher process ends them.

A container is a child of containerd, not of the runtime: nothing stops it when the runtime
dies without closing it (kill -9, the OOM killer, a crash). So the OCI backend starts one
watcher (this file run as a script: `python -P reaper.py PID START STATE`, which imports
only docker) whose stdin is a pipe whose write
end only the runtime holds (close-on-exec: no other child inherits it). However the runtime
ends, the kernel closes that end; the watcher reads EOF, removes every container labelled
with the runtime's pid, start time and state (containers.labels), and exits. A runtime that
closes normally first writes CLOSING: the watcher then sweeps once, at once. After EOF without
it, the watcher sweeps again a few times, for a container whose creation was in flight when
the runtime died.

The watcher runs in a session of its own, so a Ctrl-C at the terminal or a signal to the
runtime's process group does not end it first. If it is killed too, what is left is removed
by the next runtime on the same state (containers.remove_orphans), as before.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors

log = logging.getLogger("gati.oci")

CLOSING = b"closing\n"
SWEEPS_AFTER_DEATH = (0.0, 1.0, 3.0)  # seconds after EOF: in-flight creations show up late


class Reaper:
    """The runtime's side: the watcher process and the write end of its pipe."""

    def __init__(self, runtime_pid: int, runtime_start: str, state_label: str):
        # -P: the script's folder is not put on sys.path (its files would shadow modules).
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).resolve()), str(runtime_pid), runtime_start, state_label],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )

    def close(self, timeout_s: float = 10.0) -> None:
        """The runtime is closing: have the watcher sweep once now and exit (blocking)."""
        try:
            self.proc.stdin.write(CLOSING)
            self.proc.stdin.close()
        except OSError:  # it is gone already
            pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def watch(runtime_pid: str, runtime_start: str, state_label: str) -> None:
    """The watcher's side: wait for the runtime's end, then remove its containers."""
    said = sys.stdin.buffer.read()  # until EOF: the runtime closed, or is dead
    sweeps = (0.0,) if said == CLOSING else SWEEPS_AFTER_DEATH
    filters = {"label": [f"gati.state={state_label}", f"gati.runtime-pid={runtime_pid}", f"gati.runtime-start={runtime_start}"]}
    client = docker.from_env()
    started = time.monotonic()
    for at in sweeps:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        try:
            for container in client.containers.list(all=True, filters=filters):
                try:
                    container.remove(force=True)
                    log.warning("removed container %s of runtime %s, which is gone", container.name, runtime_pid)
                except docker.errors.NotFound:
                    pass
        except docker.errors.DockerException as exc:
            log.error("cannot remove the containers of runtime %s: %s", runtime_pid, exc)
    client.close()


if __name__ == "__main__":
    logging.basicConfig(format="gati reaper: %(message)s")
    watch(*sys.argv[1:4])
