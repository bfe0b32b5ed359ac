"""Between versions 1 and 2 of /users/{id}: requests pinned to version 1 run version 2's handler."""


def up(body):
    """A version-1 request body, as version 2 takes it."""
    return {"name": {"first": body["first"], "last": body["last"]}}


def down(body):
    """A version-2 answer, as version-1 clients read it."""
    return {"id": body["id"], "first": body["name"]["first"], "last": body["name"]["last"]}
