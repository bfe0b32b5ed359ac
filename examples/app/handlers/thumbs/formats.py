"""GET /thumbs/formats : the thumbs module reads its data/formats.txt through a read-only file grant."""

from typing import TypedDict


class Formats(TypedDict):
    formats: list[str]


async def handler(req, res, gctx, lctx) -> Formats:
    return {"formats": await gctx.modules.thumbs.describe({})}
