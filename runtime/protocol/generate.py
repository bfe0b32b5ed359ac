"""Generate the Python code of proto/ into runtime/protocol/ (run: make proto).

protoc names imports after the proto paths (`from gati.module.v1 import ...`); they are
rewritten to `runtime.protocol.gati...` so that no top-level `gati` package is needed.
tests/test_protocol.py fails when the checked-in code is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PROTOS = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out_dir.rglob("*_pb2*.py*"):
        text = path.read_text()
        path.write_text(re.sub(r"^from gati\.", "from runtime.protocol.gati.", text, flags=re.M))
    for package in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        while package != out_dir:
            (package / "__init__.py").touch()
            package = package.parent


if __name__ == "__main__":
    generate(ROOT / "runtime" / "protocol")
    sys.exit(0)
