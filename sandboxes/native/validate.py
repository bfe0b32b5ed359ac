"""Whether a native artifact can run: an executable file, a binary (ELF) or a script with a `#!` line.

Asked at registration, so that a file the sandbox cannot exec is refused there with the
manifest key to change, not at the module's first call as a start-up failure.
"""

from __future__ import annotations

import stat
from pathlib import Path

from runtime.core.errors import ManifestError
from runtime.core.manifest import LoadedManifest

ELF_MAGIC = b"\x7fELF"


def validate(loaded: LoadedManifest, artifact: Path) -> None:
    declared = loaded.manifest.artifact.path
    with open(artifact, "rb") as f:
        head = f.read(len(ELF_MAGIC))
    if not head.startswith((ELF_MAGIC, b"#!")):
        raise ManifestError(
            loaded.file,
            "artifact.path",
            f"{declared} is neither an executable binary (ELF) nor a script starting with #!",
            "point [artifact] path at the binary your build writes, or start the script with its interpreter, e.g. #!/usr/bin/python3",
        )
    if not artifact.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        raise ManifestError(loaded.file, "artifact.path", f"{declared} is not executable", f"chmod +x {artifact}")
