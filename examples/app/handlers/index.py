"""GET / : what this app serves, and one call to the greet module (WAT)."""


async def handler(req, res, gctx, lctx):
    greeting = await gctx.modules.greet.hello({"name": req.query.get("name", "world")})
    return {
        "app": gctx.config["app"],
        "greet": greeting,
        "try": [
            "GET  /greet/{name}",
            "POST /visits",
            "GET  /thumbs/resize?width=1920&height=1080&max=256",
            "GET  /thumbs/formats",
            'POST /thumbs  {"width": 1920, "height": 1080, "max": 256}',
            "GET  /openapi.json",
        ],
        "request_id": lctx.request_id,
    }
