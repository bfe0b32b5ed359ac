"""The wasmtime C API calls of the per-call path, called directly through wasmtime-py's own library.

wasmtime-py's Python objects cost more than the WebAssembly they run: a `Store()` is 6 µs,
`Func.__call__` asks for the function's type and boxes every value, and each host call builds
a `Caller`, a `Val` per argument and a `Memory` per access (about 60 µs for greet.hello's three
host calls, against 11 µs here; docs/performance.md). This file is the thin layer under
sandbox.py and abi.py: stores, instantiation, export look-up, calls and host functions over
plain ints (addresses), with the same C functions wasmtime-py calls, loaded from the same
library. Prototypes are our own function objects (`dll[name]` makes a new one), so wasmtime-py's
are never changed.

What it gives up: type checks. `call_unchecked` trusts the export's type, so sandbox.py checks
every method's type once, when the module is prepared.
"""

from __future__ import annotations

import ctypes
import struct
from ctypes import c_bool, c_char_p, c_int64, c_size_t, c_uint64, c_void_p
from typing import Callable

import wasmtime
from wasmtime import _ffi as ffi

P = c_void_p


def _fn(name: str, restype, *argtypes):
    f = ffi.dll[name]  # a new function object: wasmtime-py's own prototype of it stays as it is
    f.restype, f.argtypes = restype, list(argtypes)
    return f


_store_new = _fn("wasmtime_store_new", P, P, P, P)
_store_context = _fn("wasmtime_store_context", P, P)
_store_delete = _fn("wasmtime_store_delete", None, P)
_store_limiter = _fn("wasmtime_store_limiter", None, P, c_int64, c_int64, c_int64, c_int64, c_int64)
_set_epoch_deadline = _fn("wasmtime_context_set_epoch_deadline", None, P, c_uint64)
_set_fuel = _fn("wasmtime_context_set_fuel", P, P, c_uint64)
_set_wasi = _fn("wasmtime_context_set_wasi", P, P, P)
_instantiate = _fn("wasmtime_instance_pre_instantiate", P, P, P, P, P)
_export_get = _fn("wasmtime_instance_export_get", c_bool, P, P, c_char_p, c_size_t, P)
_call_unchecked = _fn("wasmtime_func_call_unchecked", P, P, P, P, c_size_t, P)
_memory_data = _fn("wasmtime_memory_data", P, P, P)
_memory_size = _fn("wasmtime_memory_data_size", c_size_t, P, P)
_caller_export_get = _fn("wasmtime_caller_export_get", c_bool, P, c_char_p, c_size_t, P)
_caller_context = _fn("wasmtime_caller_context", P, P)
_trap_new = _fn("wasmtime_trap_new", P, c_char_p, c_size_t)
_define_unchecked = _fn("wasmtime_linker_define_func_unchecked", P, P, c_char_p, c_size_t, c_char_p, c_size_t, P, P, P, P)

# (env, caller, args_and_results, count) -> trap or 0: every host function has this C shape.
HostCallback = ctypes.CFUNCTYPE(c_size_t, P, P, P, c_size_t)

_OF = ffi.wasmtime_extern_t.of.offset  # where the func/memory inside a wasmtime_extern_t starts
_KIND_FUNC, _KIND_MEMORY = ffi.WASMTIME_EXTERN_FUNC.value, ffi.WASMTIME_EXTERN_MEMORY.value
_VAL = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # 16: each argument and result is one raw value
_I32 = struct.Struct("<i")


def address(pointer) -> int:
    """The address held by a wasmtime-py pointer (an Engine's, a Linker's, an InstancePre's)."""
    return ctypes.cast(pointer, c_void_p).value or 0


def _raise(error: int | None, trap: int | None) -> None:
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
    if trap:
        raise wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)))


class Store:
    """One store, made for one call and closed after it (with the pooling allocator, closing frees its slot)."""

    __slots__ = ("ptr", "ctx")

    def __init__(self, engine: int):
        self.ptr = _store_new(engine, None, None)
        self.ctx = _store_context(self.ptr)

    def set_limits(self, memory_size: int = -1, table_elements: int = -1, instances: int = -1, tables: int = -1, memories: int = -1) -> None:
        _store_limiter(self.ptr, memory_size, table_elements, instances, tables, memories)

    def set_epoch_deadline(self, ticks_after_current: int) -> None:
        _set_epoch_deadline(self.ctx, ticks_after_current)

    def set_fuel(self, fuel: int) -> None:
        _raise(_set_fuel(self.ctx, fuel), None)

    def set_wasi(self, wasi: wasmtime.WasiConfig) -> None:
        _raise(_set_wasi(self.ctx, address(wasi._consume())), None)

    def close(self) -> None:
        if self.ptr:
            _store_delete(self.ptr)
            self.ptr = self.ctx = None


# One buffer per instance holds every C structure a call needs, at fixed offsets: the instance,
# the trap slot, the looked-up function and memory, and the call's value. One allocation per
# call instead of five, and no ctypes object per structure.
_AT_TRAP = (ctypes.sizeof(ffi.wasmtime_instance_t) + 7) // 8 * 8
_AT_FUNC = _AT_TRAP + 8
_AT_MEMORY = _AT_FUNC + ctypes.sizeof(ffi.wasmtime_extern_t)
_AT_VALUE = _AT_MEMORY + ctypes.sizeof(ffi.wasmtime_extern_t)
_SIZE = _AT_VALUE + _VAL
_U64 = struct.Struct("<Q")


class Instance:
    """An instance in a Store, and the memory and functions of it a call uses."""

    __slots__ = ("store", "_buffer", "_at")

    def __init__(self, pre: int, store: Store):
        self.store = store
        self._buffer = ctypes.create_string_buffer(_SIZE)
        self._at = at = ctypes.addressof(self._buffer)
        error = _instantiate(pre, store.ctx, at, at + _AT_TRAP)
        _raise(error, _U64.unpack_from(self._buffer, _AT_TRAP)[0])

    def func(self, name: bytes) -> int:
        """The address of the function export `name` (valid until the next func()), or 0."""
        at = self._at + _AT_FUNC
        if not _export_get(self.store.ctx, self._at, name, len(name), at) or self._buffer[_AT_FUNC][0] != _KIND_FUNC:
            return 0
        return at + _OF

    def memory(self) -> "Memory | None":
        at = self._at + _AT_MEMORY
        if not _export_get(self.store.ctx, self._at, b"memory", 6, at) or self._buffer[_AT_MEMORY][0] != _KIND_MEMORY:
            return None
        return Memory(self.store.ctx, at + _OF, self._buffer)

    def call_i32(self, func: int) -> int:
        """Call a () -> i32 export (its type was checked when the module was prepared)."""
        self._call(func, 1)
        return _I32.unpack_from(self._buffer, _AT_VALUE)[0]

    def call_void(self, func: int) -> None:
        """Call a () -> () export (_initialize)."""
        self._call(func, 0)

    def _call(self, func: int, results: int) -> None:
        at = self._at
        error = _call_unchecked(self.store.ctx, func, at + _AT_VALUE, results, at + _AT_TRAP)
        _raise(error, _U64.unpack_from(self._buffer, _AT_TRAP)[0])


class Memory:
    """A linear memory, read and written in place; its base is asked for on each access (memory.grow may move it)."""

    __slots__ = ("ctx", "_at", "_owner")

    def __init__(self, ctx: int, at: int, owner: object):
        self.ctx, self._at = ctx, at
        self._owner = owner  # what holds the wasmtime_memory_t at `at`: it must live as long as this object

    @classmethod
    def of_caller(cls, caller: int) -> "Memory | None":
        """The calling instance's memory, for a host call made before its exports are known (a start function)."""
        item = ffi.wasmtime_extern_t()
        if not _caller_export_get(caller, b"memory", 6, ctypes.addressof(item)) or item.kind != _KIND_MEMORY:
            return None
        return cls(_caller_context(caller), ctypes.addressof(item) + _OF, item)

    def size(self) -> int:
        return _memory_size(self.ctx, self._at)

    def read(self, ptr: int, length: int) -> bytes:
        if length < 0 or ptr < 0 or ptr + length > _memory_size(self.ctx, self._at):
            raise wasmtime.WasmtimeError(f"gati ABI: range {ptr}+{length} is outside the module's memory")
        return ctypes.string_at(_memory_data(self.ctx, self._at) + ptr, length)

    def write(self, ptr: int, data: bytes) -> None:
        if ptr < 0 or ptr + len(data) > _memory_size(self.ctx, self._at):
            raise wasmtime.WasmtimeError(f"gati ABI: range {ptr}+{len(data)} is outside the module's memory")
        ctypes.memmove(_memory_data(self.ctx, self._at) + ptr, data, len(data))


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


def define(linker: wasmtime.Linker, module: str, name: str, params: int, returns: bool, callback: HostCallback) -> None:
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32] * params, [i32] if returns else [])
    m, n = module.encode(), name.encode()
    error = _define_unchecked(address(linker.ptr()), m, len(m), n, len(n), address(ty.ptr()), ctypes.cast(callback, c_void_p).value, None, None)
    _raise(error, None)


def func_type(module: wasmtime.Module, name: str) -> tuple[list[str], list[str]] | None:
    """(params, results) of a function export by name, as type names ("i32"), or None when it is not a function."""
    for export in module.exports:
        if export.name == name:
            ty = export.type
            if not isinstance(ty, wasmtime.FuncType):
                return None
            return [str(p) for p in ty.params], [str(r) for r in ty.results]
    return None


