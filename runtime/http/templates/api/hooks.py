"""Hooks for every route: each response says which API version answered it."""


def api_version(req, res, gctx, lctx):
    res.header("X-Api-Version", "1")


AFTER = [api_version]
