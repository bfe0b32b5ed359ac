"""A project for the snapshot and playground tests: a route calling a real WASM module (greet-wat's
kv counter, so a real call and a recorded one answer differently), hooks to gate at, lctx state."""

import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GREET = ROOT / "sample_modules" / "greet-wat"

HOOKS = '''
def load_user(req, res, gctx, lctx):
    lctx.set("user", req.query.get("user", "anon"))
'''

VISIT = '''
"""POST /visit: counts a visit in the greet module's kv store and greets."""
METHODS = ["GET", "POST"]
VERSION = "1"
TIMEOUT_MS = 60000

def audit_trail(req, res, gctx, lctx):
    lctx.set("after", True)

BEFORE = []
AFTER = [audit_trail]

async def handler(req, res, gctx, lctx):
    body = await req.json() if req.method == "POST" else {}
    visits = await gctx.modules.greet.count()
    hello = await gctx.modules.greet.hello({"name": body.get("name", "world")})
    return {"visits": visits["visits"], "message": hello["message"], "user": lctx.get("user"), "flag": lctx.get("flag")}
'''


# Version 2 of /visit (docs/versions.md): shouts, and serves POST only, a breaking step, so
# version 1 stays the default and version 2 answers only the requests that ask for it.
VISIT_2 = '''
"""POST /visit, version 2: the greeting in capitals."""
METHODS = ["POST"]
TIMEOUT_MS = 60000

async def handler(req, res, gctx, lctx):
    body = await req.json()
    visits = await gctx.modules.greet.count()
    hello = await gctx.modules.greet.hello({"name": body.get("name", "world")})
    return {"visits": visits["visits"], "message": hello["message"].upper(), "user": lctx.get("user"), "flag": lctx.get("flag"), "version": 2}
'''


def write_project(root: Path, toml: str = "", versions: bool = False) -> Path:
    """The project; versions: with version 2 of /visit beside version 1."""
    (root / "handlers").mkdir(parents=True, exist_ok=True)
    (root / "handlers" / "visit.py").write_text(textwrap.dedent(VISIT))
    if versions:
        (root / "handlers" / "visit@2.py").write_text(textwrap.dedent(VISIT_2))
    (root / "hooks.py").write_text(textwrap.dedent(HOOKS) + "\nBEFORE = [load_user]\n")
    (root / "gati.toml").write_text(f'[modules]\npaths = ["{GREET}"]\n' + textwrap.dedent(toml))
    return root
