"""docs/workflow.md, run: every command in its order, every file written as shown, every
`# =>` output checked. A step the page shows that does not work fails here."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from serving_support import Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "workflow.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def steps():
    """("file", path, text) and ("sh", line) in the page's order; "expect" follows what it checks."""
    for m in BLOCK.finditer(DOC.read_text()):
        if m["file"]:
            yield ("file", m["file"], m["body"])
        elif m["lang"] == "sh":
            for line in m["body"].splitlines():
                if line.startswith("# => "):
                    yield ("expect", line[5:])
                elif line.strip() and not line.startswith("#"):
                    yield ("sh", line.strip())


def test_the_workflow_page_runs_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk" / "python")])}
    env.pop("GATI_HOME", None)  # as a user runs it: the project's own .gati/
    cwd, last, servers, ran = tmp_path, "", [], []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        for step in steps():
            if step[0] == "file":
                (cwd / step[1]).parent.mkdir(parents=True, exist_ok=True)
                (cwd / step[1]).write_text(step[2])
                continue
            if step[0] == "expect":
                assert json.loads(last) == json.loads(step[1]), (ran[-1], last)
                continue
            line = step[1]
            ran.append(line)
            words = shlex.split(line)
            if words[0] == "cd":
                cwd = cwd / words[1]
            elif words[:2] == ["gati", "dev"]:
                server = Server("dev", "--port", port, cwd=cwd)
                servers.append(server)
                server.wait_for(r"watching .* for changes")
            elif words[0] == "curl":
                url = words[-1].replace(":8080", f":{port}")
                with urllib.request.urlopen(url, timeout=30) as resp:
                    last = resp.read().decode()
            else:
                assert words[0] == "gati", f"the page runs something other than gati: {line}"
                proc = subprocess.run([sys.executable, "-m", "runtime.cli.main", *words[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
                assert proc.returncode == 0, f"{line}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                last = proc.stdout
                if words[1] == "test":
                    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout
    finally:
        for server in servers:
            server.stop()
    commands = {shlex.split(line)[1] for line in ran if line.startswith("gati ")}
    assert commands >= {"doctor", "init", "test", "new", "build", "dev", "module", "call", "audit"}, commands
