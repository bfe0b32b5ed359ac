"""`gati serve --workers N`: N real processes on one port (SO_REUSEPORT), sharing the state on disk.

Every test starts the real `gati` command, sends real HTTP over 127.0.0.1 (bounded in count
and time) and stops it with a signal, as an operator would.
"""

import asyncio
import ctypes
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from runtime.core.audit_log import read_events, verify
from runtime.core.state import StateDir
from runtime.http.executions import read_records

GATI = str(Path(sys.executable).parent / "gati")
PROBE = Path(__file__).resolve().parents[1] / "runtime" / "reports" / "probes" / "wasm"

HANDLER = '''
import os

async def handler(req, res, gctx, lctx):
    reply = await gctx.modules.probe.kv_put(f"probe/{req.params['key']}=from-{os.getpid()}")
    return {"pid": os.getpid(), "status": reply["status"]}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def ctrl_c_reaches_the_servers():
    """The servers these tests start take Ctrl+C as a terminal's foreground job does. A test run
    started in the background by a script ignores SIGINT, and a child inherits an ignored signal
    (Python then never turns it into KeyboardInterrupt): handling it here gives them the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "app"
    (root / "handlers" / "put").mkdir(parents=True)
    (root / "handlers" / "put" / "[key].py").write_text(HANDLER)
    shutil.copytree(PROBE, root / "modules" / "probe")
    (root / "gati.toml").write_text('[modules]\npaths = ["modules/probe"]\n')
    return root


class Server:
    def __init__(self, project: Path, home: Path, *args: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [GATI, "serve", str(project), "--port", str(self.port), *args],
            env={**os.environ, "GATI_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group, as a terminal gives it: Ctrl+C reaches every worker
        )

    def wait_serving(self, timeout: float = 60.0) -> str:
        """The banner line, read from its output (it comes after every worker serves)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "gati: serving" in line:
                # From now on the output is drained as it comes: a full pipe would stall the server's logging.
                self.rest: list[str] = []
                self.reader = threading.Thread(target=lambda: self.rest.extend(self.proc.stdout), daemon=True)
                self.reader.start()
                return line
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError(f"gati serve did not start (exit {self.proc.poll()})")

    def stop(self, sig=signal.SIGTERM, group=False) -> str:
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            if getattr(self, "reader", None) is None:
                output, _ = self.proc.communicate(timeout=60)
                return output
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # say what was still running and what the server wrote, then leave nothing behind
            still = subprocess.run(["ps", "-o", "pid,stat,wchan:20,args", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
            if getattr(self, "reader", None) is None:
                output = self.proc.stdout.read()
            else:
                self.reader.join(timeout=10)
                output = "".join(self.rest)
            raise AssertionError(f"gati serve did not stop within 60 s of {sig!r}; still running:\n{still}\nits output:\n{output}") from None
        self.reader.join(timeout=60)
        return "".join(self.rest)


async def put_all(port: int, keys: list[str], concurrency: int = 16) -> list[dict]:
    # A new connection per request, so the kernel spreads them over the workers.
    connector = aiohttp.TCPConnector(force_close=True, limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def put(key: str) -> dict:
            async with session.get(f"http://127.0.0.1:{port}/put/{key}") as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        return await asyncio.gather(*(put(k) for k in keys))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_gone(pids, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


async def test_two_workers_share_the_port_and_the_state_under_load(project, tmp_path):
    home = tmp_path / "home"
    server = Server(project, home, "--workers", "2")
    try:
        assert "with 2 workers" in server.wait_serving()
        keys = [f"k{i}" for i in range(400)]
        replies = await put_all(server.port, keys)
    finally:
        server.stop()
    pids = {r["pid"] for r in replies}
    assert len(pids) == 2, "both workers served"
    assert all(r["status"] == 0 for r in replies)
    assert wait_gone(pids), "SIGTERM to the parent stops every worker"

    state = StateDir(home)
    try:
        values = {k: await state.kv.get("probe", k) for k in keys}
    finally:
        state.close()
    assert all(v is not None for v in values.values()), "every put from either worker is in the shared kv store"
    assert {v.decode().removeprefix("from-") for v in values.values()} == {str(p) for p in pids}
    chain = verify(home / "audit.log")
    assert chain.ok, chain.problem
    writes = [e for e in read_events(home / "audit.log") if e["capability"] == "kv.write"]
    assert len(writes) == len(keys)
    records = list(read_records(home / "executions.jsonl"))  # whole lines only: none torn by the other worker
    assert sum(r["route"] == "/put/{key}" for r in records) == len(keys)


async def test_ctrl_c_stops_every_worker(project, tmp_path):
    server = Server(project, tmp_path / "home", "--workers", "2")
    try:
        server.wait_serving()
        replies = await put_all(server.port, [f"k{i}" for i in range(40)])
    finally:
        output = server.stop(signal.SIGINT, group=True)
    assert server.proc.returncode == 0, output
    assert wait_gone({r["pid"] for r in replies})
    assert "Traceback" not in output, output


TGKILL = {"x86_64": 234, "aarch64": 131}  # the syscall's number: Python has no call for a signal to another process's thread


async def test_ctrl_c_given_to_another_thread_of_the_parent_stops_it(project, tmp_path):
    # The kernel may hand Ctrl+C to any thread of the parent (it passes over a main thread that has
    # a signal pending already); Python runs the handler in the main one, which sat in wait() and
    # never learned of it: the server did not stop.
    if platform.machine() not in TGKILL:
        pytest.skip(f"tgkill's number on {platform.machine()} is not known here")
    server = Server(project, tmp_path / "home", "--workers", "2")
    try:
        server.wait_serving()
        others = [int(t) for t in os.listdir(f"/proc/{server.proc.pid}/task") if int(t) != server.proc.pid]
        assert others, "the parent runs another thread (the drift watch's): the case this test is about"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(TGKILL[platform.machine()], server.proc.pid, others[0], signal.SIGINT) == 0, os.strerror(ctypes.get_errno())
        server.proc.wait(timeout=60)
    finally:
        output = server.stop(signal.SIGKILL, group=True) if server.proc.poll() is None else server.stop(signal.SIGINT)
    assert server.proc.returncode == 0, output
    assert "Traceback" not in output, output


async def test_a_worker_that_dies_is_replaced(project, tmp_path):
    server = Server(project, tmp_path / "home", "--workers", "2")
    try:
        server.wait_serving()
        first = {r["pid"] for r in await put_all(server.port, [f"a{i}" for i in range(60)])}
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while not (seen - first) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            seen |= {r["pid"] for r in await put_all(server.port, [f"b{i}" for i in range(20)])}
    finally:
        server.stop()
    assert victim not in seen and seen - first, "a new worker serves in place of the one killed"


def test_a_broken_project_is_reported_once_without_traceback(project, tmp_path):
    manifest = project / "modules" / "probe" / "module.toml"
    manifest.write_text(manifest.read_text().replace('kind = "wasm"', 'kind = "vm"'))
    proc = subprocess.run(
        [GATI, "serve", str(project), "--port", str(free_port()), "--workers", "2"],
        env={**os.environ, "GATI_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("error:") == 1 and "kind" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_port_in_use_is_refused_before_any_worker_starts(project, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [GATI, "serve", str(project), "--port", str(port), "--workers", "2"],
            env={**os.environ, "GATI_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "fix:" in proc.stderr
    assert "worker" not in proc.stdout + proc.stderr


def test_registering_the_same_module_again_changes_nothing(state):
    from runtime.modules import register_module

    first = register_module(state, PROBE)
    again = register_module(state, PROBE)
    assert again == first and state.registry.get("probe") == first
    assert len(state.registry.versions("probe")) == 1


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_access_lines_are_logged_unless_turned_off(project, tmp_path, workers):
    outputs = {}
    for flag in ("--access-log", "--no-access-log"):
        server = Server(project, tmp_path / "home", "--workers", workers, flag)
        try:
            server.wait_serving()
            await put_all(server.port, [f"{flag}-{i}" for i in range(3)])
        finally:
            outputs[flag] = server.stop()
    assert '"GET /put/--access-log-0 HTTP/1.1" 200' in outputs["--access-log"]
    assert "GET /put/" not in outputs["--no-access-log"]
