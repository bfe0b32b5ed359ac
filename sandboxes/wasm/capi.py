"""wasmtime's C API as gati's WASM calls use it: the C call path, bound to wasmtime-py's own library.

A call is one C call (`Callee.call`, sandboxes/wasm/_callpath.c): store, limits, epoch deadline,
fuel, WASI, instance, `memory` and method look-ups, the call, the store dropped, with the GIL
released while WebAssembly runs; the hot imports (input_len, input_read, output, result_len,
result_read) are C functions too. Through ctypes the same call made ~20 transitions between
Python and C, which cost more than wasmtime's own work (docs/performance.md). The extension is not linked against wasmtime:
bind() below hands it the addresses of wasmtime-py's libwasmtime functions, and the sizes and
offsets of wasmtime-py's declarations of the structures it shares, which it checks against its
own (a wasmtime that changed them fails here, at import, naming the difference).

What stays here is what the imports written in Python (abi.py) need: a host function as a C
callback over raw i32 values, defined on a linker; the caller's memory, read and written through
the extension (bounds-checked); the running call's epoch deadline (CallState.commit) and the
result buffer its host calls fill (set_result).

What it gives up: type checks. The unchecked call trusts each export's type, so validate.py
checks every method's type once, when the module is prepared.
"""

from __future__ import annotations

import ctypes
import struct
from ctypes import c_size_t, c_void_p
from typing import Callable

import wasmtime
from wasmtime import _ffi as ffi

from runtime.core.errors import GatiError


class CallPathMissing(GatiError, ImportError):
    """The compiled WASM call path is not built: gati runs no WASM call without it (no second, slower path)."""


try:
    from sandboxes.wasm import _callpath
except ImportError as exc:
    raise CallPathMissing(
        f"gati's WASM call path (the C extension sandboxes/wasm/_callpath) is not built: {exc}",
        fix="run `make setup` (or `pip install -e .`), which compiles sandboxes/wasm/_callpath.c; it needs gcc and the Python headers",
    ) from None

P = c_void_p
_trap_new = ffi.dll["wasmtime_trap_new"]  # a new function object: wasmtime-py's own prototype stays as it is
_trap_new.restype, _trap_new.argtypes = P, [ctypes.c_char_p, c_size_t]
_define_unchecked = ffi.dll["wasmtime_linker_define_func_unchecked"]
_define_unchecked.restype, _define_unchecked.argtypes = P, [P, ctypes.c_char_p, c_size_t, ctypes.c_char_p, c_size_t, P, P, P, P]


def _address(name: str) -> int:
    return ctypes.cast(getattr(ffi.dll, name), c_void_p).value or 0


FUNCTIONS = {  # what the C call path calls, by name: their addresses in wasmtime-py's libwasmtime
    name: _address(name)
    for name in (
        "wasmtime_store_new", "wasmtime_store_context", "wasmtime_store_delete", "wasmtime_store_limiter",
        "wasmtime_context_set_epoch_deadline", "wasmtime_context_set_fuel", "wasmtime_context_set_wasi",
        "wasi_config_delete", "wasmtime_context_get_data", "wasmtime_instance_pre_instantiate",
        "wasmtime_instance_export_get", "wasmtime_func_call_unchecked", "wasmtime_memory_data",
        "wasmtime_memory_data_size", "wasmtime_caller_context", "wasmtime_caller_export_get", "wasmtime_trap_new",
    )
}
LAYOUT = {  # the structures it shares with wasmtime, as wasmtime-py declares them (checked against the C ones)
    "wasmtime_instance_t": ctypes.sizeof(ffi.wasmtime_instance_t),
    "wasmtime_func_t": ctypes.sizeof(ffi.wasmtime_func_t),
    "wasmtime_memory_t": ctypes.sizeof(ffi.wasmtime_memory_t),
    "wasmtime_extern_t": ctypes.sizeof(ffi.wasmtime_extern_t),
    "wasmtime_extern_t.of": ffi.wasmtime_extern_t.of.offset,
    "wasmtime_val_raw_t": ctypes.sizeof(ffi.wasmtime_val_raw_t),
    "WASMTIME_EXTERN_FUNC": ffi.WASMTIME_EXTERN_FUNC.value,
    "WASMTIME_EXTERN_MEMORY": ffi.WASMTIME_EXTERN_MEMORY.value,
}
_callpath.bind(FUNCTIONS, LAYOUT, wasmtime.WasmtimeError)  # WasmtimeError: what read and write raise on a bad range

Callee = _callpath.Callee  # Callee(owner, engine, pre, *limits, fuel, initialize).call(method, input, ticks, wasi)
C_IMPORTS: dict[str, int] = _callpath.imports()  # name -> address of the imports written in C
read: Callable[[int, int, int], bytes] = _callpath.read  # read(caller, ptr, length): the caller's memory
write: Callable[[int, int, bytes], None] = _callpath.write  # write(caller, ptr, data)
set_epoch_deadline: Callable[[int], None] = _callpath.set_epoch_deadline  # of the call running on this thread
set_result: Callable[[bytes], None] = _callpath.set_result  # what result_len/result_read give that call

# (env, caller, args_and_results, count) -> trap or 0: every host function has this C shape.
HostCallback = ctypes.CFUNCTYPE(c_size_t, P, P, P, c_size_t)

_VAL = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # 16: each argument and result is one raw value
_I32 = struct.Struct("<i")


def address(pointer) -> int:
    """The address held by a wasmtime-py pointer (an Engine's, a Linker's, an InstancePre's)."""
    return ctypes.cast(pointer, c_void_p).value or 0


def failure(error: int, trap: int) -> wasmtime.WasmtimeError | wasmtime.Trap:
    """The error or trap a failed Callee.call handed over, as wasmtime-py's exception (which owns it)."""
    if error:
        return wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
    return wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)))


def host_function(impl: Callable[..., int | None], params: int, returns: bool, on_error: Callable[[BaseException], None]) -> HostCallback:
    """The C callback of one host function: i32 arguments in, impl(caller, *args), an i32 result out.

    An exception in impl becomes a trap (the instance stops there); on_error is told of it first,
    so that the call can raise the exception itself rather than a bare "trap"."""
    unpack = struct.Struct("<" + "i12x" * params).unpack_from if params else None

    def callback(env, caller, values, count):
        try:
            args = unpack(ctypes.string_at(values, params * _VAL)) if unpack else ()
            result = impl(caller, *args)
            if returns:
                ctypes.memmove(values, _I32.pack(result), 4)
            return 0
        except BaseException as exc:  # noqa: BLE001 - nothing may unwind through wasm frames
            on_error(exc)
            message = f"{type(exc).__name__}: {exc}".encode()
            return _trap_new(message, len(message)) or 0

    return HostCallback(callback)


def define(linker: wasmtime.Linker, module: str, name: str, params: int, returns: bool, callback: HostCallback | int) -> None:
    """Define an import of i32s on the linker: a Python host_function, or the address of a C one."""
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32] * params, [i32] if returns else [])
    m, n = module.encode(), name.encode()
    at = callback if isinstance(callback, int) else ctypes.cast(callback, c_void_p).value
    error = _define_unchecked(address(linker.ptr()), m, len(m), n, len(n), address(ty.ptr()), at, None, None)
    if error:
        raise failure(error, 0)
