"""GET / : a greeting from gati.toml [config]; add modules with `gati new module NAME --lang L`."""


async def handler(req, res, gctx, lctx):
    return {"message": f"{gctx.config['greeting']}, {req.query.get('name', 'world')}"}
