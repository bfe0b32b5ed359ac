"""The audit log's key: what makes its records and head checkpoint impossible to forge without it.

A key is 32 random bytes in a 0600 file beside the log (`audit.key`, made on first use), or,
when the project sets `[audit] key_secret`, a value from the secrets manager (kept off the
machine's disk). Records carry `key_id` (a fingerprint, never the key) so that a log read
with the wrong key says so instead of calling every record forged.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from runtime.core.errors import GatiError
from runtime.core.secrets import Secrets

MIN_SECRET_CHARS = 32  # a key_secret shorter than this is refused: it could be guessed offline from any record


class AuditKeyError(GatiError):
    code = "audit_key"


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    where: str  # for messages: the key file's path, or "secret <name>"

    @cached_property
    def id(self) -> str:
        return hmac.digest(self.secret, b"gati audit key id", "sha256").hex()[:16]

    def mac(self, record_hash: str) -> str:
        """A record's mac: its hash already covers its content and its place in the chain."""
        return hmac.digest(self.secret, record_hash.encode(), "sha256").hex()

    def head_mac(self, seq: int, record_hash: str) -> str:
        # A different message shape from mac(): a record's mac can never pass for a head's.
        return hmac.digest(self.secret, f"head:{seq}:{record_hash}".encode(), "sha256").hex()

    @classmethod
    def generate(cls, where: str) -> AuditKey:
        return cls(secrets.token_bytes(32), where)

    @classmethod
    def from_secret(cls, name: str, value: str | None, how_to_set: str) -> AuditKey:
        if value is None:
            raise AuditKeyError(f"the audit key secret {name!r} ([audit] key_secret) has no value", fix=how_to_set)
        if len(value) < MIN_SECRET_CHARS:
            raise AuditKeyError(
                f"the audit key secret {name!r} is {len(value)} characters; it needs {MIN_SECRET_CHARS} or more",
                fix="make a new one, e.g. openssl rand -hex 32 (a new key starts a new log: see docs/audit.md)",
            )
        return cls(value.encode(), f"secret {name!r}")


def configured_key(secret_name: str, secrets: Secrets) -> AuditKey | None:
    """The key `[audit] key_secret` names, from the secrets manager; None when unset (the key file is used).

    `gati serve` and every CLI verb that opens the state must use the same one, or they would sign with two."""
    if not secret_name:
        return None
    how = f"{secrets.where(secret_name)}, or remove [audit] key_secret from gati.toml"
    return AuditKey.from_secret(secret_name, secrets.get(secret_name), how_to_set=how)


def key_path(log_path: Path) -> Path:
    return log_path.with_suffix(".key")


def load_key_file(path: Path) -> AuditKey | None:
    """The key in path, or None when there is no such file. Refuses a key others may read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key {path}: {exc.strerror}", fix=f"make it a regular file you own, mode 0600: chmod 600 {path}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise AuditKeyError(
                f"the audit key {path} may be read or changed by others (mode {stat.filemode(info.st_mode)})",
                fix=f"chmod 600 {path}; if others could read it, its records could be forged: see docs/audit.md",
            )
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < 32:
        raise AuditKeyError(
            f"the audit key {path} is not 64 hex digits",
            fix="restore it from a backup; without it the log's records cannot be checked (see docs/audit.md)",
        )
    return AuditKey(secret, str(path))


def publish_key_file(key: AuditKey, path: Path) -> AuditKey:
    """Write key to path (0600, fsynced) unless another process got there first: then theirs is the key."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, key.secret.hex().encode() + b"\n")
        os.fsync(fd)  # a key lost after a power cut would leave every record unverifiable
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if the file exists: never overwrite a key
    except FileExistsError:
        return load_key_file(path) or key
    finally:
        os.unlink(tmp)
    return AuditKey(key.secret, str(path))
