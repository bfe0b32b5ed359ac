"""End to end: `gati serve examples/app` (what `make run` serves) answers from real WASM modules and audits."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runtime.core.audit_log import read_events, verify

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "app"
GATI = str(Path(sys.executable).parent / "gati")


def request(url, method="GET", timeout=20.0):
    """(status, headers, JSON body); retries while the server is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
                return r.status, r.headers, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, json.loads(exc.read())
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def app_url(gati_home, tmp_path):
    for artifact in ("greet-wat/build/greet.wasm", "thumbs-c/build/thumbs.wasm"):
        assert (ROOT / "sample_modules" / artifact).is_file(), f"{artifact} is not built: run `make modules`"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([GATI, "serve", APP, "--port", str(port)], env={**os.environ, "GATI_HOME": str(gati_home)}, stdout=log, stderr=log)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def test_sample_app_end_to_end(app_url, gati_home):
    status, _, body = request(f"{app_url}/greet/ada")
    assert (status, body) == (200, {"message": "hello, ada"})

    status, _, body = request(f"{app_url}/thumbs/resize?width=1920&height=1080&max=256")
    assert (status, body) == (200, {"width": 256, "height": 144, "scale": pytest.approx(256 / 1920)})

    status, _, body = request(f"{app_url}/thumbs/formats")
    assert status == 200 and "png" in body["formats"]

    status, _, body = request(f"{app_url}/thumbs/resize?width=wide&height=1")
    assert (status, body["error"]["code"]) == (400, "bad_request")

    visits = []
    for _ in range(2):
        status, headers, body = request(f"{app_url}/visits", method="POST")
        assert status == 200
        visits.append((body["visits"], headers["X-Request-Id"]))
    assert [v for v, _ in visits] == [1, 2]

    # every kv access of the second visit is in the audit log, under that request's id
    events = [e for e in read_events(gati_home / "audit.log") if e["request_id"] == visits[1][1]]
    assert [(e["capability"], e["decision"]) for e in events] == [("kv.read", "allow"), ("kv.write", "allow")]
    assert all(e["module"] == "greet" and e["caller"] == "handler:/visits" and e["target"] == "visits" for e in events)
    assert verify(gati_home / "audit.log").ok
