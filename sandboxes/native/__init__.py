"""Native modules: an executable (compiled, or a script with its interpreter) in bubblewrap.

    backend.py   NativeBackend: the runtime's cgroups and run directories
    sandbox.py   NativeSandbox: the ProcessSandbox lifecycle plus what is native, limit audits
    bwrap.py     the bwrap command line: namespaces, the read-only view, env
    limits.py    [limits] as cgroups v1 and rlimits; cleanup of what dead runtimes left
    process.py   one sandboxed process: born confined, held until its proxy listens, handshake, kill
    python.py    the SDK and grpcio for Python scripts, bound read-only

See docs/native.md.
"""

from sandboxes.native.backend import NativeBackend
from sandboxes.native.sandbox import NativeSandbox

__all__ = ["NativeBackend", "NativeSandbox"]
