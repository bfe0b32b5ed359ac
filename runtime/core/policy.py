"""The capabilities of one module, composed: every backend asks the Policy before it acts.

A Policy is built from a module's manifest and the runtime state its capabilities hand
out. It holds one unit per capability (egress.py, files.py, env.py, secrets.py, kv.py,
modules.py; limits.py is enforced by the sandboxes) and answers each question with a
Decision from the unit that owns it. Nothing here acts or writes the audit log:
runtime/core/host.py does both around these decisions.
"""

from __future__ import annotations

from typing import Mapping

from runtime.core.capabilities import egress
from runtime.core.capabilities.decision import Decision
from runtime.core.capabilities.env import EnvCapability
from runtime.core.capabilities.files import FilesCapability, Located
from runtime.core.capabilities.kv import KvCapability
from runtime.core.capabilities.modules import CallModule, ModulesCapability, ModuleVersions
from runtime.core.capabilities.secrets import SecretsCapability
from runtime.core.kv import KvStore
from runtime.core.manifest import LoadedManifest
from runtime.core.secrets import Secrets

__all__ = ["Decision", "Policy"]


class Policy:
    def __init__(
        self,
        loaded: LoadedManifest,
        *,
        environ: Mapping[str, str] | None = None,
        secrets: Secrets | None = None,
        kv: KvStore | None = None,
        resolver: egress.Resolver | None = None,
        call_module: CallModule | None = None,
        module_versions: ModuleVersions | None = None,
    ):
        manifest = loaded.manifest  # each unit: its section of the manifest, and its runtime state
        caps = manifest.capabilities
        self.module = manifest.name
        self.egress_cap = egress.EgressCapability(caps.egress, resolver)
        self.files_cap = FilesCapability(caps.files, loaded.base_dir)
        self.env_cap = EnvCapability(caps.env, environ, secrets)
        self.secrets_cap = SecretsCapability(caps.secrets, secrets)
        self.kv_cap = KvCapability(caps.kv, kv)
        self.modules_cap = ModulesCapability(manifest.name, caps.modules, call_module, manifest.limits.timeout_ms / 1000, module_versions)

    # The decisions, one per question a module can ask (tests weaken them one at a time).
    def egress(self, url: str) -> tuple[Decision, egress.Target | None]:
        """Name-level decision; the caller must then check each resolved address."""
        return self.egress_cap.decide(url)

    def egress_address(self, target: egress.Target, ip: egress.IPAddress) -> Decision:
        return self.egress_cap.decide_address(target, ip)

    def file(self, guest_path: str, write: bool) -> tuple[Decision, Located | None]:
        return self.files_cap.decide(guest_path, write)

    def env(self, name: str) -> Decision:
        return self.env_cap.decide(name)

    def secret(self, name: str) -> Decision:
        return self.secrets_cap.decide(name)

    def kv(self, store: str, write: bool) -> Decision:
        return self.kv_cap.decide(store, write)

    def module_call(self, module: str) -> Decision:
        return self.modules_cap.decide(module)
