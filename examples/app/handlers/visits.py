"""POST /visits : the greet module counts visits in its kv store (a capability it declares)."""

from typing import TypedDict

METHODS = ["POST"]


class Visits(TypedDict):
    visits: int


async def handler(req, res, gctx, lctx) -> Visits:
    return await gctx.modules.greet.count({})
