"""Python script modules: the SDK and grpcio, bound read-only, for a script whose `#!` names python.

The kernel runs a script through the interpreter its first line names, so the interpreter
must be inside the sandbox: /usr/bin/python3, under the read-only /usr, is. What the host's
python3 lacks is the SDK. Rather than build a venv per module, the sandbox binds the very
packages the runtime itself imports (gati_sdk, grpc, google.protobuf, typing_extensions) read-only at
/opt/gati/python, and nothing else of the runtime's environment: no other package, no
source of the runtime. grpcio is a C extension built for one Python minor version, so the
script's interpreter must be the same minor version as the runtime's (checked at start).
"""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path

from sandboxes.process.handshake import ModuleStartError

GUEST_SDK_DIR = "/opt/gati/python"
# google: the namespace holding protobuf and its C core; typing_extensions: grpc.aio needs it
SDK_PACKAGES = ("gati_sdk", "grpc", "google", "typing_extensions")


def interpreter(artifact: Path) -> str | None:
    """The interpreter a `#!` line names, or None for a binary."""
    with open(artifact, "rb") as f:
        first = f.readline(256)
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode("utf-8", "replace").split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return parts[1]  # `#!/usr/bin/env python3`: only works if env finds it; see check()
    return parts[0] if parts else None


def sdk_binds(module: str, artifact: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(guest path -> host path, env) a script module needs; empty for anything but Python."""
    interp = interpreter(artifact)
    if interp is None or not os.path.basename(interp).startswith("python"):
        return {}, {}
    _check(module, interp)
    binds = {}
    for name in SDK_PACKAGES:
        package = importlib.import_module(name)
        if hasattr(package, "__path__"):
            binds[f"{GUEST_SDK_DIR}/{name}"] = Path(list(package.__path__)[0]).resolve()
        else:  # a single-file module
            binds[f"{GUEST_SDK_DIR}/{Path(package.__file__).name}"] = Path(package.__file__).resolve()
    env = {"PYTHONPATH": GUEST_SDK_DIR, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
    return binds, env


def _check(module: str, interp: str) -> None:
    fix = f"start the script with #!/usr/bin/python{sys.version_info.major}.{sys.version_info.minor} (a Python under /usr)"
    if not interp.startswith("/usr/"):
        raise ModuleStartError(f"module {module}: its interpreter {interp!r} is not under /usr, the only system path in the sandbox", fix=fix, module=module)
    version = _version(interp)
    if version is None:
        raise ModuleStartError(f"module {module}: cannot run its interpreter {interp}", fix=fix, module=module)
    if version != sys.version_info[:2]:
        raise ModuleStartError(
            f"module {module}: {interp} is Python {'.'.join(map(str, version))}; the SDK's grpcio is built for "
            f"{sys.version_info.major}.{sys.version_info.minor}",
            fix=fix,
            module=module,
        )


@functools.lru_cache(maxsize=None)
def _version(interp: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([interp, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=10)
        return tuple(int(v) for v in out.stdout.split())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
