"""Generate the Python code of proto/ into the module SDK (run: make proto).

The generated code lives in `gati_sdk.protocol` (sdk/python), which both the module
SDK and the runtime import, so there is one copy. protoc names imports after the proto
paths (`from gati.module.v1 import ...`); they are rewritten to
`gati_sdk.protocol.gati...` so that no top-level `gati` or `grpc` package is shadowed.
tests/test_protocol.py fails when the checked-in code is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "sdk" / "python" / "gati_sdk" / "protocol"
PROTOS = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))
PACKAGE = "gati_sdk.protocol"


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out_dir.rglob("*_pb2*.py*"):
        text = path.read_text()
        path.write_text(re.sub(r"^from (gati|grpc\.health)\.", rf"from {PACKAGE}.\1.", text, flags=re.M))
    for package in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        while package != out_dir.parent:
            (package / "__init__.py").touch()
            package = package.parent


if __name__ == "__main__":
    generate(OUT_DIR)
    sys.exit(0)
