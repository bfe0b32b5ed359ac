"""Secrets: providers, a short-TTL cache, and access only as declared.

Providers are tried in order (gati.toml [secrets] providers, default env then file):
- env: `GATI_SECRET_<NAME>`, the name upper-cased with non-alphanumerics as `_`
- file: a TOML file of `name = "value"` pairs (default secrets.toml in the project; keep it 0600
  and out of version control)

A value is cached for ttl_s seconds (default 30), so rotating a secret takes effect within
that time without a restart, and a provider is not read on every request.

Who may read what:
- a handler reads `gctx.secrets.get(name)` for the names its file declares: `SECRETS = ["db_password"]`
  (global hooks: SECRETS in hooks.py, granted to every request)
- a module reads through the host's `secret_get`, for the names its module.toml grants
- the runtime itself (JWT keys, API keys) reads Secrets.get directly.
"""

from __future__ import annotations

import logging
import os
import re
import time
import tomllib
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import msgspec

from runtime.core.errors import GatiError

log = logging.getLogger("gati.secrets")

DEFAULT_TTL_S = 30.0
DEFAULT_ENV_PREFIX = "GATI_SECRET_"  # reserved: no env grant may name a variable under it


class SecretDenied(GatiError):
    code = "secret_denied"
    http_status = 500  # the code asked for what it did not declare: the server's bug, not the client's


class SecretMissing(GatiError):
    code = "secret_missing"
    http_status = 500


class Provider(Protocol):
    name: str

    def get(self, name: str) -> str | None: ...


class EnvProvider:
    name = "env"

    def __init__(self, prefix: str = DEFAULT_ENV_PREFIX):
        self.prefix = prefix

    def variable(self, name: str) -> str:
        return self.prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    def get(self, name: str) -> str | None:
        return os.environ.get(self.variable(name))


class FileProvider:
    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def get(self, name: str) -> str | None:
        if not self.path.is_file():
            return None
        try:
            value = tomllib.loads(self.path.read_text()).get(name)
        except tomllib.TOMLDecodeError as exc:
            raise GatiError(f"{self.path} is not valid TOML: {exc}", fix="fix the secrets file's syntax") from None
        return None if value is None else str(value)


class Secrets:
    """The secrets manager: providers in order, a TTL cache. `get` is unchecked: callers check grants."""

    def __init__(
        self,
        file: str | Path | None = None,
        env_prefix: str = DEFAULT_ENV_PREFIX,
        *,
        providers: Iterable[Provider] | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if providers is None:
            providers = [EnvProvider(env_prefix)] + ([FileProvider(file)] if file else [])
        self.providers = list(providers)
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    def get(self, name: str) -> str | None:
        now = self.clock()
        hit = self._cache.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = None
        for provider in self.providers:
            value = provider.get(name)
            if value is not None:
                break
        self._cache[name] = (now + self.ttl_s, value)
        return value

    def where(self, name: str) -> str:
        """How to provide name, for error messages."""
        ways = []
        for p in self.providers:
            if isinstance(p, EnvProvider):
                ways.append(f"set {p.variable(name)}")
            elif isinstance(p, FileProvider):
                ways.append(f"add {name} = \"...\" to {p.path}")
        return " or ".join(ways) or "configure a provider in gati.toml [secrets]"


class SecretsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """gati.toml [secrets]: which providers, in order, and how long a value is cached."""

    providers: list[str] = msgspec.field(default_factory=lambda: ["env", "file"])
    env_prefix: str = "GATI_SECRET_"
    file: str = "secrets.toml"  # relative to the project
    ttl_s: float = DEFAULT_TTL_S


def configured(settings: SecretsSettings, project_dir: str | Path) -> Secrets:
    """The secrets manager a project's settings describe; `gati serve`, `gati call` and `gati module serve` alike."""
    made = {"env": lambda: EnvProvider(settings.env_prefix), "file": lambda: FileProvider(Path(project_dir) / settings.file)}
    return Secrets(providers=[made[name]() for name in settings.providers], ttl_s=settings.ttl_s)


@dataclass(frozen=True)
class Grant:
    """Which secret names the running code may read, and who it is (for messages and events)."""

    names: frozenset[str]
    who: str
    where: str  # how to grant more: "add {name} to SECRETS in handlers/users.py" ({name}: the secret asked for)
    on_read: Callable[[str], None] | None = None


# Set by the request pipeline to the route's grant; gctx.secrets is shared by all requests.
current_grant: ContextVar[Grant | None] = ContextVar("gati_secret_grant", default=None)


class SecretAccess:
    """gctx.secrets: `get(name)` for the names the current handler (or hooks.py) declared."""

    __slots__ = ("_secrets", "_default")

    def __init__(self, secrets: Secrets, default: Grant):
        self._secrets = secrets
        self._default = default  # outside a request: what hooks.py declared (startup, shutdown)

    def get(self, name: str) -> str:
        grant = current_grant.get() or self._default
        if name not in grant.names:
            raise SecretDenied(
                f"{grant.who} may not read secret {name!r}: it is not declared",
                fix=grant.where.replace("{name}", repr(name)),
                secret=name,
            )
        value = self._secrets.get(name)
        if value is None:
            raise SecretMissing(f"secret {name!r} is declared but no provider has it", fix=self._secrets.where(name), secret=name)
        if grant.on_read is not None:
            grant.on_read(name)
        return value

    def names(self) -> list[str]:
        """The names the current code may read."""
        return sorted((current_grant.get() or self._default).names)

    def __repr__(self) -> str:
        return f"<secrets: {', '.join(self.names()) or 'none'} readable here>"
