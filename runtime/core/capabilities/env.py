"""env: the names of the runtime's environment a module is handed, and nothing else of it.

Manifest section: `[capabilities] env = ["LANG", "REGION"]`. What a sandbox gets at start is
the map of the declared names that are set (`at_start`): containers and native processes
as their environment, WASI modules as theirs; each name handed over is audited by the Host
like an `env_get` is. A module can also ask the host for a declared name later (`env_get`).

Names a secrets provider reads (`GATI_SECRET_*`, see secrets.py) are refused: at parse for
the default prefix, and at run time for any prefix the project configured, so that no env
grant hands a secret over without a secrets grant.
"""

from __future__ import annotations

import re
from typing import Mapping

from runtime.core.capabilities import secrets as secrets_capability
from runtime.core.capabilities.decision import Decision, grant_line, named
from runtime.core.errors import ManifestError
from runtime.core.secrets import Secrets

FIELD = "env"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def check(names: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, name in enumerate(names):
        key = f"capabilities.{FIELD}[{i}]"
        if not NAME_RE.fullmatch(name):
            raise ManifestError(file, key, f"{name!r} is not a valid environment variable name", "use letters, digits, _, . and -")
        prefix = _reserved_prefix(name, secrets_capability.reserved_env_prefixes())
        if prefix:
            raise ManifestError(file, key, *_reserved(name, prefix))


class EnvCapability:
    """The declared names (config), the runtime's environment (runtime state), what a sandbox is handed."""

    def __init__(self, declared: list[str], environ: Mapping[str, str] | None, secrets: Secrets | None = None):
        self.declared = list(dict.fromkeys(declared))
        self.environ = environ if environ is not None else {}
        self.reserved = secrets_capability.reserved_env_prefixes(secrets)

    def decide(self, name: str) -> Decision:
        prefix = _reserved_prefix(name, self.reserved)
        if prefix:  # declared or not, the grant to name is a secrets grant
            problem, _ = _reserved(name, prefix)
            secret = secrets_capability.secret_name_for(name, prefix)
            return Decision("env", name, False, grant=grant_line(secrets_capability.FIELD, secret), reason=problem)
        return named("env", FIELD, name, self.declared)

    def value(self, name: str) -> str | None:
        return self.environ.get(name)

    def at_start(self) -> list[tuple[Decision, str | None]]:
        """Each declared name set in the environment, with its decision: what a sandbox is handed.

        A reserved name gets its denial (audited, not handed over); an unset name is not handed over.
        """
        out = []
        for name in self.declared:
            if name not in self.environ:
                continue
            decision = self.decide(name)
            if decision.allowed:
                decision = Decision(decision.capability, name, True, rule=decision.rule, reason="handed over at sandbox start")
            out.append((decision, self.environ[name] if decision.allowed else None))
        return out


def _reserved_prefix(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if name.upper().startswith(p.upper())), None)


def _reserved(name: str, prefix: str) -> tuple[str, str]:
    secret = secrets_capability.secret_name_for(name, prefix)
    return (
        f"{name!r} is read by the secrets provider ({prefix}*): an env grant would hand a secret over",
        f'declare it under secrets instead: [capabilities] secrets = ["{secret}"], and read it with secret_get',
    )
