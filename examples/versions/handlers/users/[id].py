"""Version 1 of /users/{id}: a user's name in two flat fields."""

from typing import TypedDict

METHODS = ["PUT"]
SINCE = "2026-01-01"


class NewUser(TypedDict):
    first: str
    last: str


class User(TypedDict):
    id: str
    first: str
    last: str


REQUEST, RESPONSE = NewUser, User


async def handler(req, res, gctx, lctx):
    return {"id": req.params["id"], **req.data}
