"""Secrets, reachable by modules only through the host's `secret_get` (capability `secrets`).

Providers are tried in order: the environment (`GATI_SECRET_<NAME>`, the name upper-cased
with non-alphanumerics as `_`) and a TOML file of `name = "value"` pairs.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path


class Secrets:
    def __init__(self, file: str | Path | None = None, env_prefix: str = "GATI_SECRET_"):
        self.file = Path(file) if file else None
        self.env_prefix = env_prefix

    def get(self, name: str) -> str | None:
        value = os.environ.get(self.env_prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper())
        if value is None and self.file and self.file.is_file():
            value = tomllib.loads(self.file.read_text()).get(name)
        return None if value is None else str(value)
