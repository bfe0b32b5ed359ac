"""secrets: the names a module may read through the host's `secret_get`, and nothing else.

Manifest section: `[capabilities] secrets = ["api_token"]`. A secret is never handed over
at start (no environment variable, no file): the module asks for it, by name, each time,
and each ask is audited. The values come from the runtime's secrets manager
(runtime/core/secrets.py: its providers and cache).

The environment variables a secrets provider reads (`GATI_SECRET_<NAME>` by default) are
reserved: an env grant of one would hand a secret over without a secrets grant, so the env
capability refuses them (env.py asks `reserved_env_prefixes`).
"""

from __future__ import annotations

import re

from runtime.core.capabilities.decision import Decision, named
from runtime.core.errors import ManifestError
from runtime.core.secrets import DEFAULT_ENV_PREFIX, EnvProvider, Secrets

FIELD = "secrets"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def check(names: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, name in enumerate(names):
        if not NAME_RE.fullmatch(name):
            raise ManifestError(file, f"capabilities.{FIELD}[{i}]", f"{name!r} is not a valid secret name", "use letters, digits, _, . and -")


def reserved_env_prefixes(secrets: Secrets | None = None) -> tuple[str, ...]:
    """The environment names a secrets provider reads: the default prefix, and each configured one."""
    prefixes = {DEFAULT_ENV_PREFIX}
    for provider in secrets.providers if secrets is not None else ():
        if isinstance(provider, EnvProvider) and provider.prefix:
            prefixes.add(provider.prefix)
    return tuple(sorted(prefixes))


def secret_name_for(variable: str, prefix: str) -> str:
    """The secret name a reserved variable stands for (`GATI_SECRET_DB_PASSWORD` -> `db_password`)."""
    return variable[len(prefix):].lower() or "name"


class SecretsCapability:
    """The declared secret names (config) and the secrets manager (runtime state)."""

    def __init__(self, declared: list[str], secrets: Secrets | None):
        self.declared = list(declared)
        self.secrets = secrets

    def decide(self, name: str) -> Decision:
        return named("secret", FIELD, name, self.declared)

    def value(self, name: str) -> str | None:
        return self.secrets.get(name) if self.secrets is not None else None
