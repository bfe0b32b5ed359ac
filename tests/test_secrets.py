"""The secrets manager: providers in order, a short-TTL cache, and access only as declared."""

import pytest

from runtime.core.secrets import (
    EnvProvider,
    FileProvider,
    Grant,
    SecretAccess,
    SecretDenied,
    SecretMissing,
    Secrets,
    current_grant,
)


def test_providers_in_order_and_ttl_cache(tmp_path, monkeypatch):
    file = tmp_path / "secrets.toml"
    file.write_text('db_password = "from-file"\napi_token = "file-token"\n')
    monkeypatch.setenv("GATI_SECRET_API_TOKEN", "env-token")
    now = [0.0]
    secrets = Secrets(providers=[EnvProvider(), FileProvider(file)], ttl_s=10, clock=lambda: now[0])

    assert secrets.get("api_token") == "env-token"  # env first
    assert secrets.get("db_password") == "from-file"
    assert secrets.get("nope") is None

    file.write_text('db_password = "rotated"\n')
    now[0] = 9.9
    assert secrets.get("db_password") == "from-file"  # cached within the TTL
    now[0] = 10.1
    assert secrets.get("db_password") == "rotated"  # and re-read after it

    # the old constructor still works (runtime.core.host and the module manager use it)
    assert Secrets(file).get("db_password") == "rotated"
    assert EnvProvider().variable("db.password-x") == "GATI_SECRET_DB_PASSWORD_X"


def test_access_only_as_declared(monkeypatch):
    monkeypatch.setenv("GATI_SECRET_DB_PASSWORD", "s3cret")
    read = []
    access = SecretAccess(Secrets(), Grant(frozenset(), "hooks.py", "add {name} to SECRETS in hooks.py"))
    with pytest.raises(SecretDenied) as caught:
        access.get("db_password")
    assert "add 'db_password' to SECRETS in hooks.py" in caught.value.fix

    token = current_grant.set(Grant(frozenset({"db_password", "missing"}), "handler users.py", "-", on_read=read.append))
    try:
        assert access.get("db_password") == "s3cret"
        assert read == ["db_password"]
        with pytest.raises(SecretMissing) as caught:
            access.get("missing")
        assert "GATI_SECRET_MISSING" in caught.value.fix
        assert access.names() == ["db_password", "missing"]
    finally:
        current_grant.reset(token)


async def test_handlers_reach_only_their_declared_secrets(make_project, serve, monkeypatch, gati_home):
    monkeypatch.setenv("GATI_SECRET_DB_PASSWORD", "s3cret")
    monkeypatch.setenv("GATI_SECRET_SIGNING_KEY", "k")
    root = make_project(
        {
            "db.py": 'SECRETS = ["db_password"]\nasync def handler(req, res, gctx, lctx):\n    return {"len": len(gctx.secrets.get("db_password"))}\n',
            "greedy.py": 'async def handler(req, res, gctx, lctx):\n    return {"v": gctx.secrets.get("db_password")}\n',
            "global.py": 'async def handler(req, res, gctx, lctx):\n    return {"n": len(gctx.secrets.get("signing_key"))}\n',
        }
    )
    (root / "hooks.py").write_text('SECRETS = ["signing_key"]\n')
    client = await serve(root)

    assert await (await client.get("/db")).json() == {"len": 6}
    r = await client.get("/greedy")
    assert r.status == 500
    error = (await r.json())["error"]
    assert error["code"] == "secret_denied" and "greedy.py" in error["fix"]
    assert "s3cret" not in await r.text()
    assert await (await client.get("/global")).json() == {"n": 1}  # hooks.py grants to every route

    from runtime.http.appstate import RUNTIME
    from runtime.http.executions import read_records

    client.app[RUNTIME].executions.flush()  # records are written in batches (within FLUSH_S)
    events = [e for rec in read_records(gati_home / "executions.jsonl") if rec["handler"] == "db.py" for e in rec["events"]]
    assert {"type": "secret:read", "name": "db_password"}.items() <= next(e for e in events if e["type"] == "secret:read").items()
