"""Version 2 of /users/{id}: the name is one object (breaking; [id]@2.transform.py serves version 1 clients)."""

from typing import TypedDict

METHODS = ["PUT"]
SINCE = "2026-11-01"


class Name(TypedDict):
    first: str
    last: str


class NewUser(TypedDict):
    name: Name


class User(TypedDict):
    id: str
    name: Name


REQUEST, RESPONSE = NewUser, User


async def handler(req, res, gctx, lctx):
    return {"id": req.params["id"], "name": req.data["name"]}
