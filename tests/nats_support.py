"""A real nats-server with JetStream for tests: on loopback, its own port and store, killable and restartable."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, folder: Path):
        binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
        if binary is None:
            pytest.skip("nats-server is not installed (Debian package nats-server; scripts/install-system-deps.sh installs it)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = folder / "nats.conf"
        folder.mkdir(parents=True, exist_ok=True)
        # max_payload 2MB: a 1 MiB kv value (the store's limit) fits with its headers
        self.config.write_text(
            f'listen: "127.0.0.1:{self.port}"\nmax_payload: 2MB\njetstream {{ store_dir: "{folder / "store"}" }}\n'
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NatsServer":
        log = open(self.folder / "nats.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"nats-server did not start: {(self.folder / 'nats.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush: what a crash looks like to the instances."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def jetstream(tmp_path):
    """A nats-server with JetStream on loopback for this test; its .url, .kill(), .start()."""
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()
