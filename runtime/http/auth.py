"""Who is calling: API keys and JWTs, and the roles a route asks for (401 / 403).

A handler file opts in:

    AUTH = {"roles": ["admin"]}   # authenticated and holding every role listed
    AUTH = True                   # authenticated, any roles

gati.toml says how to check credentials; the key material lives in secrets:

    [auth]
    jwt_secret = "jwt_key"        # secret holding the HS256 key, or a PEM public key for RS*/ES*
    jwt_algorithms = ["HS256"]
    jwt_audience = "my-api"       # when set, tokens must name it in `aud`
    jwt_issuer = ""               # when set, tokens must name it in `iss`
    roles_claim = "roles"         # a list of strings, or a space-separated string (OAuth `scope`)

    [auth.api_keys.ci-bot]        # a client; its key is the value of secret ci_bot_key
    secret = "ci_bot_key"
    roles = ["deploy"]

Credentials: `Authorization: Bearer <jwt>` or the API key header (default `X-API-Key`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Mapping

import jwt

from runtime.core.errors import GatiError
from runtime.core.secrets import Secrets


class Unauthorized(GatiError):
    code = "unauthorized"
    http_status = 401


class Forbidden(GatiError):
    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class Principal:
    subject: str  # the JWT `sub`, or the API key's client name
    roles: frozenset[str]
    method: str  # "jwt" | "api_key"
    claims: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "roles": sorted(self.roles), "method": self.method}


@dataclass(frozen=True)
class AuthRule:
    """What a route asks for: an authenticated caller with all of `roles`."""

    roles: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: Any) -> "AuthRule | None":
        """From a handler file's AUTH: None/False (public), True, or {"roles": [...]}; ValueError otherwise."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Mapping) and set(value) <= {"roles"}:
            roles = value.get("roles", [])
            if isinstance(roles, (list, tuple, set, frozenset)) and all(isinstance(r, str) for r in roles):
                return cls(frozenset(roles))
        raise ValueError(f"AUTH = {value!r} is neither True nor {{'roles': [...]}}")


class Authenticator:
    def __init__(self, settings: Any, secrets: Secrets, api_key_header: str = "X-API-Key"):
        self.settings = settings  # runtime.http.project.Auth
        self.secrets = secrets
        self.api_key_header = api_key_header

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller these headers prove, None when they carry no credentials; Unauthorized when they are bad."""
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._jwt(token.strip())
        key = headers.get(self.api_key_header)
        if key:
            return self._api_key(key)
        if authorization:
            raise _unauthorized("the Authorization header is not `Bearer <token>`", "send Authorization: Bearer <jwt>")
        return None

    def require(self, rule: AuthRule, principal: Principal | None) -> None:
        if principal is None:
            raise _unauthorized(
                "this route needs credentials and the request has none",
                f"send Authorization: Bearer <jwt> or {self.api_key_header}: <key>",
            )
        missing = rule.roles - principal.roles
        if missing:
            raise Forbidden(
                f"{principal.subject} lacks the role(s) {', '.join(sorted(missing))} this route needs",
                fix="use credentials that carry these roles",
                missing=sorted(missing),
            )

    def _jwt(self, token: str) -> Principal:
        s = self.settings
        if not s.jwt_secret:
            raise _unauthorized("this server does not accept JWTs", "set [auth] jwt_secret in gati.toml, or use an API key")
        key = self.secrets.get(s.jwt_secret)
        if key is None:
            raise GatiError(f"the JWT key (secret {s.jwt_secret!r}) is not set", fix=self.secrets.where(s.jwt_secret))
        options = {"require": ["exp"] + (["aud"] if s.jwt_audience else []) + (["iss"] if s.jwt_issuer else [])}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(s.jwt_algorithms),
                audience=s.jwt_audience or None,
                issuer=s.jwt_issuer or None,
                options=options,
                leeway=s.jwt_leeway_s,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired", "get a new token", error="invalid_token") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(f"the token is not for this audience ({s.jwt_audience})", "get a token for it", error="invalid_token") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"the token is not valid: {exc}", "send a token this server signed", error="invalid_token") from None
        roles = claims.get(s.roles_claim, [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list):
            roles = []
        return Principal(str(claims.get("sub", "")), frozenset(r for r in roles if isinstance(r, str)), "jwt", claims)

    def _api_key(self, key: str) -> Principal:
        found = None
        for client, entry in self.settings.api_keys.items():
            expected = self.secrets.get(entry.secret)
            # compare with every key, in constant time, so timing tells nothing about which one nearly matched
            if expected is not None and hmac.compare_digest(expected.encode(), key.encode()) and found is None:
                found = Principal(client, frozenset(entry.roles), "api_key")
        if found is None:
            raise _unauthorized("the API key is not known", f"send a valid key in {self.api_key_header}")
        return found


def _unauthorized(message: str, fix: str, error: str | None = None) -> Unauthorized:
    err = Unauthorized(message, fix=fix)
    challenge = 'Bearer realm="gati"' + (f', error="{error}"' if error else "")
    err.http_headers = {"WWW-Authenticate": challenge}
    return err
