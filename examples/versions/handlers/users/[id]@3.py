"""Version 3 of /users/{id}: an email is required (breaking, no transformer: asked for by name only)."""

from typing import TypedDict

METHODS = ["PUT"]
SINCE = "2027-03-01"


class Name(TypedDict):
    first: str
    last: str


class NewUser(TypedDict):
    name: Name
    email: str


class User(TypedDict):
    id: str
    name: Name
    email: str


REQUEST, RESPONSE = NewUser, User


async def handler(req, res, gctx, lctx):
    return {"id": req.params["id"], **req.data}
