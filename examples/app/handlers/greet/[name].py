"""GET /greet/{name} : the greet module (hand-written WAT) says hello."""

from typing import TypedDict


class Greeting(TypedDict):
    message: str


async def handler(req, res, gctx, lctx) -> Greeting:
    return await gctx.modules.greet.hello({"name": req.params["name"]})
