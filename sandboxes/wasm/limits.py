"""`[limits] memory_mb` for a WASM call: one budget for everything a store may allocate.

wasmtime's limits are per item (a linear memory's size, a table's element count), so the
budget is split. A module has one linear memory and one table (MEMORIES, TABLES: the
engine's instance pool reserves that much per instance and refuses a module declaring more
when it compiles; each store enforces them again, for an engine without the pool). The
table may hold at most min(TABLE_ELEMENTS, 1/TABLE_SHARE of the budget) elements of
TABLE_ELEMENT_BYTES (a funcref is one pointer in wasmtime); the linear memory gets the rest.
So memory and table, each at its maximum, stay within memory_mb together. Each call has a
store (and one instance) of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20
PAGE = 64 * 1024
MEMORIES = 1
TABLES = 1  # C, Rust and Go toolchains emit one table
TABLE_ELEMENTS = 20_000  # the most any table may hold (the instance pool reserves this per table)
TABLE_SHARE = 16  # a table takes at most 1/16 of memory_mb
TABLE_ELEMENT_BYTES = 8


@dataclass(frozen=True)
class StoreLimits:
    memory_bytes: int  # the linear memory, at most
    table_elements: int  # the table, at most

    @classmethod
    def for_memory_mb(cls, memory_mb: int) -> "StoreLimits":
        budget = memory_mb * MIB
        elements = min(TABLE_ELEMENTS, budget // TABLE_SHARE // TABLE_ELEMENT_BYTES)
        return cls(memory_bytes=(budget - elements * TABLE_ELEMENT_BYTES) // PAGE * PAGE, table_elements=elements)

    def limiter(self) -> tuple[int, int, int, int, int]:
        """wasmtime_store_limiter's arguments: memory_size, table_elements, instances, tables, memories."""
        return (self.memory_bytes, self.table_elements, 1, TABLES, MEMORIES)

    def apply(self, store) -> None:
        """Set them on a wasmtime.Store (a call's own store gets limiter() from the C call path)."""
        store.set_limits(*self.limiter())
