"""POST /visits : the greet module counts visits in its kv store (a capability it declares)."""

METHODS = ["POST"]


async def handler(req, res, gctx, lctx):
    return await gctx.modules.greet.count({})
