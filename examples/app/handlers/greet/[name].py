"""GET /greet/{name} : the greet module (hand-written WAT) says hello."""


async def handler(req, res, gctx, lctx):
    return await gctx.modules.greet.hello({"name": req.params["name"]})
