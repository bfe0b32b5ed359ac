"""GET or POST /hello/{name} : the route parameter goes to the module; a POST body is passed along."""

METHODS = ["GET", "POST"]
TIMEOUT_MS = 5000


async def handler(req, res, gctx, lctx):
    payload = {"name": req.params["name"]}
    if req.method == "POST":
        payload["body"] = await req.json()
    reply = await gctx.modules["hello"].call("hello", payload)
    res.status(200).header("X-Handled-By", "hello/[name].py").json(reply)
