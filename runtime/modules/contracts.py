"""Payload contracts: every call's payload and answer checked against the method's declared schemas.

The manager asks before it sends a payload (`check_input`) and after the module answers
(`check_output`), whatever the backend, so a module with schemas never sees a payload outside
them and no caller gets an answer outside them. A mismatch is BadPayload (`bad_payload`) with
`direction` and `errors`: every mismatch as {"path", "expected", "actual"}, as handler validation
reports. Methods without schemas are not checked. Schemas are compiled once per registration.
"""

from __future__ import annotations

from typing import Any

from runtime.core.errors import BadPayload
from runtime.core.issues import show
from runtime.core.payload_schema import PayloadSchema
from runtime.core.registry import Registration

MAX_KEPT = 1024  # compiled registrations kept; a long-lived runtime re-registering often starts over

# A method's (input, output) schemas, None where it declares none.
Schemas = tuple[PayloadSchema | None, PayloadSchema | None]
NONE: Schemas = (None, None)


class Contracts:
    def __init__(self) -> None:
        # (name, version, registered_at) names one registration: a re-registration compiles anew
        self._compiled: dict[tuple, dict[str, Schemas]] = {}
        # The last registration asked for and its schemas: the registry hands out the same Registration
        # object call after call, so one identity check replaces building the key (both checks of a call: 1.4 -> 1.0 µs).
        self._last: tuple[Registration, dict[str, Schemas]] | None = None

    def check_input(self, registration: Registration, method: str, payload: Any) -> None:
        schema = self._of(registration).get(method, NONE)[0]
        if schema is not None:
            self._check(schema, registration, method, "input", payload)

    def check_output(self, registration: Registration, method: str, result: Any) -> None:
        schema = self._of(registration).get(method, NONE)[1]
        if schema is not None:
            self._check(schema, registration, method, "output", result)

    def _of(self, registration: Registration) -> dict[str, Schemas]:
        """Each method of registration that declares a schema: (input schema or None, output schema or None)."""
        last = self._last
        if last is not None and last[0] is registration:
            return last[1]
        key = (registration.name, registration.manifest.version, registration.registered_at)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = {}
            for name, spec in registration.manifest.methods.items():
                # registered manifests hold the schema itself, never a path
                schemas = tuple(PayloadSchema(s) if isinstance(s, dict) else None for s in (spec.input, spec.output))
                if schemas != NONE:
                    compiled[name] = schemas
            if len(self._compiled) >= MAX_KEPT:
                self._compiled.clear()
            self._compiled[key] = compiled
        self._last = (registration, compiled)
        return compiled

    @staticmethod
    def _check(schema: PayloadSchema, registration: Registration, method: str, direction: str, value: Any) -> None:
        issues = schema.issues(value)
        if not issues:
            return
        name, first = registration.name, issues[0]
        what = "payload for" if direction == "input" else "answer of"
        fix = (
            f"send what [methods.{method}] input in {name}'s module.toml describes (`gati codegen python` writes typed stubs for it)"
            if direction == "input"
            else f"the module answered outside [methods.{method}] output of its module.toml: fix the module or its schema"
        )
        raise BadPayload(
            f"the {what} {name}.{method} does not match its {direction} schema: {first.path}: expected {first.expected}, got {show(first.actual)}",
            fix=fix,
            module=name,
            method=method,
            direction=direction,
            errors=[i.to_dict() for i in issues],
        )
