"""GET /thumbs/formats : the thumbs module reads its data/formats.txt through a read-only file grant."""


async def handler(req, res, gctx, lctx):
    return {"formats": await gctx.modules.thumbs.describe({})}
