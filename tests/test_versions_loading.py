"""Loading versions of a route: the layout, the default, the chains, and what is refused at start."""

import pytest

from runtime.core.errors import GatiError
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.routing import load_routes

H = "async def handler(req, res, gctx, lctx):\n    return {}\n"
TYPED = """
from typing import TypedDict, NotRequired
class In(TypedDict):
    {fields}
METHODS = ["GET", "POST"]
REQUEST = In
async def handler(req, res, gctx, lctx):
    return {{}}
"""
T = "def up(body):\n    return body\n\ndef down(body):\n    return body\n"


def typed(fields):
    return TYPED.format(fields="\n    ".join(fields))


def write(root, files):
    for rel, source in files.items():
        f = root / "handlers" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(source)
    return root / "handlers"


def versions_of(tmp_path, files, path="/u"):
    router = load_routes(write(tmp_path, files))
    return router.match("POST" if "POST" in router.match("GET", path).route.methods else "GET", path).route.versions


def test_layout_and_default(tmp_path):
    vs = versions_of(
        tmp_path,
        {
            "u.py": typed(["a: str"]),
            "u@2.py": typed(["a: str", "b: NotRequired[str]"]),  # optional field added: not breaking
            "u@3.py": typed(["a: str", "b: str"]),  # b now required: breaking, no transformer
            "u@4.py": typed(["a: str", "b: str"]),  # same as 3, but the default stopped at 2
        },
    )
    assert [v.label for v in vs.versions] == ["1", "2", "3", "4"]
    assert vs.default == "2"
    steps = {s.label: s for s in vs.steps}
    assert not steps["2"].compat.breaking and steps["3"].compat.breaking and not steps["4"].compat.breaking
    assert "request $.b: field became required" in steps["3"].compat.reasons
    assert {k: r.rel for k, r in vs.serve.items()} == {"1": "u.py", "2": "u@2.py", "3": "u@3.py", "4": "u@4.py"}
    # the router's entry (what OpenAPI and codegen describe) is the default version's
    [entry] = load_routes(tmp_path / "handlers").routes
    assert (entry.rel, entry.version, entry.versions.default) == ("u@2.py", "2", "2")


def test_chains_reach_the_newest_transformed_version(tmp_path):
    vs = versions_of(
        tmp_path,
        {
            "u.py": typed(["a: str"]),
            "u@2.py": typed(["b: str"]),
            "u@2.transform.py": T,
            "u@3.py": typed(["c: str"]),
            "u@3.transform.py": T,
            "u@4.py": typed(["d: str"]),  # breaking, no transformer: the chains stop at 3
        },
    )
    assert vs.default == "3"
    runs = {k: (r.rel, r.pinned.runs if r.pinned else None, len(r.pinned.chain.steps) if r.pinned else 0) for k, r in vs.serve.items()}
    assert runs == {"1": ("u@3.py", "3", 2), "2": ("u@3.py", "3", 1), "3": ("u@3.py", None, 0), "4": ("u@4.py", None, 0)}
    assert vs.describe()["versions"][0] == {"version": "1", "file": "u.py", "since": None, "served_by": "3"}


def test_base_file_declares_its_version(tmp_path):
    vs = versions_of(tmp_path, {"u.py": 'VERSION = "3"\n' + H, "u@5.py": H})
    assert [v.label for v in vs.versions] == ["3", "5"]


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"u.py": H, "u@two.py": H}, "not a positive integer"),
        ({"u.py": H, "u@0.py": H}, "not a positive integer"),
        ({"u.py": H, "u.transform.py": T}, "must name the version"),
        ({"u.py": H, "u@2.py": 'VERSION = "3"\n' + H}, "its name says @2"),
        ({"u.py": 'VERSION = "2"\n' + H, "u@2.py": H}, "and so is"),
        ({"u.py": 'VERSION = "beta"\n' + H, "u@2.py": H}, "numbers them"),
        ({"u.py": 'SINCE = "2026-05-01"\n' + H, "u@2.py": 'SINCE = "2026-01-01"\n' + H}, "before an older version"),
        ({"u.py": 'SINCE = "May 1st"\n' + H, "u@2.py": H}, "not a date"),
        ({"u.py": 'MODULES = "greet"\n' + H}, "MODULES"),
        ({"u.py": H, "u@2.py": "ROLLOUT = 150\n" + H}, "not a percentage"),
        ({"u.py": "ROLLOUT = 10\n" + H, "u@2.py": H}, "is not the default"),
        ({"u.py": "ROLLOUT = 10\n" + H}, "one version"),
        ({"u@1.py": "ROLLOUT = 10\n" + H}, "is the oldest"),
        ({"[a].py": H, "[b]@2.py": H}, "same paths"),
        ({"u.py": 'HEALTH = {"interval_s": 1}\n' + H}, "no health(gctx) function"),
        ({"u.py": 'HEALTH = {"every": 1}\ndef health(gctx):\n    pass\n' + H}, "is not a mapping of interval_s"),
        ({"u.py": 'HEALTH = {"failures": 0}\ndef health(gctx):\n    pass\n' + H}, "failures = 0 is not a positive integer"),
        ({"u.py": 'DEPRECATED = "soon"\n' + H}, "DEPRECATED = 'soon' is not a date"),
        ({"u.py": 'DEPRECATED = "2027-01-01"\nSUNSET = "2026-01-01"\n' + H}, "is before DEPRECATED"),
    ],
)
def test_bad_versions_stop_start_up(tmp_path, files, problem):
    with pytest.raises(GatiError) as exc:
        load_routes(write(tmp_path, files))
    assert problem in exc.value.message
    assert exc.value.fix


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"u.py": H, "u@2.py": H, "u@1.transform.py": T}, "nothing to transform from"),
        ({"u.py": H, "u@2.py": H, "u@3.transform.py": T}, "version 3 of /u, which has no handler file"),
        ({"v.py": H, "u@2.transform.py": T}, "no handler file"),
        ({"u.py": H, "u@2.py": H, "u@2.transform.py": "def up(body):\n    return body\n"}, "defines no down(body)"),
        ({"u.py": H, "u@2.py": H, "u@2.transform.py": "up = 1\n"}, "defines no up and no down"),
        # version 1 serves POST; its requests would go up to version 2, which does not
        ({"u.py": 'METHODS = ["GET", "POST"]\n' + H, "u@2.py": H, "u@2.transform.py": T}, "does not serve POST"),
    ],
)
def test_chains_that_cannot_complete_are_refused(tmp_path, files, problem):
    with pytest.raises(GatiError) as exc:
        load_routes(write(tmp_path, files))
    assert problem in exc.value.message
    assert exc.value.fix


HOOKED = """
from runtime.http.hooks import hook
MODULES = ["mailer", "greet"]
SINCE = "2026-11-01"
AUTH = {"roles": ["admin"]}
RATE_LIMIT = "10/s"
SECRETS = ["db"]

async def audit(req, res, gctx, lctx):
    pass

BEFORE = [hook(audit, timeout_ms=100, retries=2)]
AFTER = [audit]

async def handler(req, res, gctx, lctx):
    # a comment
    return await gctx.modules.greet.hello({"name": "x"})
"""


def manifest(tmp_path, source, name="m"):
    [route] = load_routes(write(tmp_path / name, {"m.py": source})).routes
    return HandlerManifest.of(route)


def test_manifest_holds_hooks_dependencies_policies(tmp_path):
    d = manifest(tmp_path, HOOKED).to_dict()
    assert d["hooks"] == [
        {"name": "audit", "level": "route", "phase": "before", "timeout_ms": 100, "retries": 2, "backoff_ms": 50},
        {"name": "audit", "level": "route", "phase": "after", "timeout_ms": None, "retries": 0, "backoff_ms": 50},
    ]
    assert d["dependencies"] == ["greet", "mailer"]  # found in the source, and declared
    assert (d["auth"], d["rate_limit"], d["secrets"], d["since"]) == ({"roles": ["admin"]}, "10/s", ["db"], "2026-11-01")


def test_fingerprint_is_stable_and_changes_with_the_contract(tmp_path):
    fp = manifest(tmp_path, HOOKED).fingerprint()
    assert len(fp) == 64
    # the same file again, elsewhere; and one where only comments, the docstring and line numbers moved
    assert manifest(tmp_path, HOOKED, "again").fingerprint() == fp
    assert manifest(tmp_path, '"""Docs."""\n\n' + HOOKED.replace("# a comment", "# another"), "moved").fingerprint() == fp
    changes = [('"10/s"', '"11/s"'), ("retries=2", "retries=3"), ('"mailer", ', ""), ('["db"]', '["db", "x"]'), ("2026-11-01", "2026-11-02"),
               ('"greet"]', '"greet@^2"]')]  # a module version pin
    for old, new in changes:
        assert old in HOOKED
        assert manifest(tmp_path, HOOKED.replace(old, new), f"changed{hash(new)}").fingerprint() != fp, (old, new)
