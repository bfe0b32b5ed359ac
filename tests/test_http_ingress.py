"""Ingress over real loopback HTTP: API keys and JWTs (401/403), rate limits (429), body limits (413), headers."""

import asyncio
import hashlib
import json
import os
import time

import jwt
import pytest

from runtime.http.ratelimit import Rate, RateLimited, RateLimiter

JWT_KEY = "a-test-signing-key-of-at-least-32-bytes!"
AUTH_TOML = """
[auth]
jwt_secret = "jwt_key"
jwt_audience = "gati-test"

[auth.api_keys.ci-bot]
secret = "ci_bot_key"
roles = ["deploy"]

[auth.api_keys.viewer]
secret = "viewer_key"
"""
WHO = """
async def handler(req, res, gctx, lctx):
    a = lctx.auth
    return {"subject": a.subject, "roles": sorted(a.roles), "method": a.method} if a else {"subject": None}
"""


def token(key=JWT_KEY, **claims):
    claims = {"sub": "ann", "aud": "gati-test", "exp": int(time.time()) + 60, **claims}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


@pytest.fixture
def auth_project(make_project, monkeypatch):
    monkeypatch.setenv("GATI_SECRET_CI_BOT_KEY", "k-ci-123")
    monkeypatch.setenv("GATI_SECRET_JWT_KEY", JWT_KEY)
    root = make_project(
        {
            "admin.py": 'AUTH = {"roles": ["admin"]}\n' + WHO,
            "deploy.py": 'AUTH = {"roles": ["deploy"]}\n' + WHO,
            "me.py": "AUTH = True\n" + WHO,
            "public.py": WHO,
        },
        toml=AUTH_TOML,
    )
    (root / "secrets.toml").write_text('viewer_key = "k-view-456"\n')
    return root


async def test_api_keys_and_roles(auth_project, serve):
    client = await serve(auth_project)

    r = await client.get("/deploy")
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")

    r = await client.get("/deploy", headers={"X-API-Key": "wrong"})
    assert r.status == 401

    r = await client.get("/deploy", headers={"X-API-Key": "k-ci-123"})
    assert (r.status, await r.json()) == (200, {"subject": "ci-bot", "roles": ["deploy"], "method": "api_key"})

    r = await client.get("/deploy", headers={"X-API-Key": "k-view-456"})  # a key from the secrets file
    assert r.status == 403
    error = (await r.json())["error"]
    assert (error["code"], error["missing"]) == ("forbidden", ["deploy"])

    r = await client.get("/me", headers={"X-API-Key": "k-view-456"})
    assert (await r.json())["subject"] == "viewer"

    r = await client.get("/public")
    assert (r.status, await r.json()) == (200, {"subject": None})
    r = await client.get("/public", headers={"X-API-Key": "k-ci-123"})  # public routes still learn who calls
    assert (await r.json())["subject"] == "ci-bot"


async def test_jwt_signature_expiry_audience_and_roles(auth_project, serve):
    client = await serve(auth_project)

    async def get(path, tok):
        r = await client.get(path, headers={"Authorization": f"Bearer {tok}"})
        return r.status, await r.json()

    status, body = await get("/admin", token(roles=["admin", "ops"]))
    assert (status, body) == (200, {"subject": "ann", "roles": ["admin", "ops"], "method": "jwt"})

    status, body = await get("/admin", token(roles=["ops"]))
    assert status == 403 and body["error"]["missing"] == ["admin"]

    status, body = await get("/admin", token(scope="admin read"))  # roles claim absent -> none
    assert status == 403

    for bad, why in [
        (token(key="another-key-that-is-also-32-bytes-long!!", roles=["admin"]), "Signature"),
        (token(exp=int(time.time()) - 5, roles=["admin"]), "expired"),
        (token(aud="someone-else", roles=["admin"]), "audience"),
        (token(aud=None, roles=["admin"]), "aud"),
        (token(exp=None, roles=["admin"]), "exp"),
        ("not.a.jwt", "not valid"),
    ]:
        status, body = await get("/admin", bad)
        assert status == 401, why
        assert why.lower() in body["error"]["message"].lower(), (why, body)

    r = await client.get("/admin", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status == 401

    r = await client.get("/admin", headers=[("Authorization", f"Bearer {token(roles=['admin'])}"), ("Authorization", "Bearer x")])
    assert r.status == 400  # two Authorization headers are ambiguous


async def test_rate_limits_per_route_and_client(make_project, serve, monkeypatch):
    monkeypatch.setenv("GATI_SECRET_CI_BOT_KEY", "k-ci-123")
    root = make_project(
        {
            "limited.py": 'RATE_LIMIT = "3/s"\nasync def handler(req, res, gctx, lctx):\n    return {"ok": True}\n',
            "other.py": "async def handler(req, res, gctx, lctx):\n    return {'ok': True}\n",
        },
        toml='[ingress]\nrate_limit = "100/m"\n[auth.api_keys.ci-bot]\nsecret = "ci_bot_key"\n',
    )
    client = await serve(root)

    statuses = [(await client.get("/limited")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = await client.get("/limited")
    assert r.status == 429
    assert r.headers["Retry-After"] == "1"
    assert (await r.json())["error"]["code"] == "rate_limited"

    r = await client.get("/limited", headers={"X-API-Key": "k-ci-123"})  # another client has its own bucket
    assert r.status == 200
    assert (await client.get("/other")).status == 200  # and another route too (100/m from gati.toml)

    await asyncio.sleep(0.4)  # 3/s refills one token every 1/3 s
    assert (await client.get("/limited")).status == 200


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    rate = Rate.parse("5/10s")
    for _ in range(5):
        limiter.hit("/r", "c", rate)
    with pytest.raises(RateLimited) as caught:
        limiter.hit("/r", "c", rate)
    assert caught.value.http_headers["Retry-After"] == "2"
    now[0] = 2.0
    limiter.hit("/r", "c", rate)
    with pytest.raises(RateLimited):
        limiter.hit("/r", "c", rate)
    assert Rate.parse("100/m").period_s == 60 and Rate.parse("7 / hour").count == 7
    for bad in ("10", "0/s", "ten/s", "5/0s"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


async def test_body_size_limits(make_project, serve):
    root = make_project(
        {
            "small.py": 'METHODS = ["POST"]\nMAX_BODY_BYTES = 100\nasync def handler(req, res, gctx, lctx):\n    return {"n": len(await req.body())}\n',
            "big.py": 'METHODS = ["POST"]\nasync def handler(req, res, gctx, lctx):\n    return {"n": len(await req.body())}\n',
        },
        toml="[ingress]\nmax_body_bytes = 2000\n",
    )
    client = await serve(root)

    assert await (await client.post("/small", data=b"x" * 100)).json() == {"n": 100}
    r = await client.post("/small", data=b"x" * 101)
    assert r.status == 413
    error = (await r.json())["error"]
    assert error["code"] == "payload_too_large" and error["limit"] == 100 and "MAX_BODY_BYTES" in error["fix"]

    async def chunked(n):  # no Content-Length: the limit holds while reading
        yield b"y" * n

    r = await client.post("/small", data=chunked(500))
    assert r.status == 413
    assert await (await client.post("/big", data=chunked(1500))).json() == {"n": 1500}
    assert (await client.post("/big", data=b"z" * 2001)).status == 413


async def test_headers_are_normalised(make_project, serve):
    root = make_project(
        {
            "index.py": """
                async def handler(req, res, gctx, lctx):
                    return {"headers": sorted(req.headers.keys()), "custom": req.headers["x-custom"], "flags": list(lctx.meta["flags"])}
            """
        }
    )
    client = await serve(root)
    r = await client.get("/", headers={"X-Custom": "  padded  ", "Connection": "keep-alive, X-Hop", "X-Hop": "1", "X-Gati-Flags": "Debug, snapshot, bad flag!"})
    body = await r.json()
    assert body["custom"] == "padded"
    assert all(h == h.lower() for h in body["headers"])
    assert "connection" not in body["headers"] and "x-hop" not in body["headers"]
    assert body["flags"] == ["debug", "snapshot"]


async def test_a_body_read_whole_is_the_body_sent_and_stays_readable(make_project, serve):
    """A small body is taken as it lies in aiohttp's buffer (it came with the headers), a big one is read as it
    arrives: either way req.body() is the body sent, and the aiohttp request (req.raw, snapshots) reads it again."""
    root = make_project(
        {
            "echo.py": (
                'import hashlib\nMETHODS = ["POST"]\nMAX_BODY_BYTES = 8_000_000\n'
                "async def handler(req, res, gctx, lctx):\n"
                "    body = await req.body()\n"
                '    return {"n": len(body), "sha": hashlib.sha256(body).hexdigest(), "again": hashlib.sha256(await req.raw.read()).hexdigest(),'
                ' "json": (await req.json()) if len(body) < 100 else None}\n'
            ),
        },
    )
    client = await serve(root)

    for body in (b'{"name": "ann", "qty": 3}', b"{}", os.urandom(3_000_000)):
        sha = hashlib.sha256(body).hexdigest()
        r = await client.post("/echo", data=body, headers={"Content-Type": "application/json"})
        got = await r.json()
        assert (got["n"], got["sha"], got["again"]) == (len(body), sha, sha)
        if len(body) < 100:
            assert got["json"] == json.loads(body)
