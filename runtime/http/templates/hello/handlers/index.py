"""GET / : calls the hello WebAssembly module in modules/hello."""


async def handler(req, res, gctx, lctx):
    name = req.query.get("name", "world")
    reply = await gctx.modules.hello.hello({"name": name})
    return {"greeting": gctx.config["greeting"], "module": reply, "request_id": lctx.request_id}
