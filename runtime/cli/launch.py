"""The `gati` command's entry point.

Importing the CLI takes most of a second (aiohttp, grpc, wasmtime, OpenTelemetry). A Ctrl+C in
that second would end in a KeyboardInterrupt traceback, before typer's own handling exists; here
it ends quietly with status 130, as a Ctrl+C does once the command runs.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from runtime.cli.main import app  # inside the try: the import is what a Ctrl+C interrupts
    except KeyboardInterrupt:
        sys.exit(130)
    app()
