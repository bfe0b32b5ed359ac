"""`gati publish TOPIC [JSON]`: publish one message on the project's pub/sub, as gctx.publish does.

Only a bus outside the server can be reached from a command: `[pubsub] backend = "nats"`.
The in-memory bus lives inside the server process; publishing to it is refused with the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from runtime.cli.common import JsonOpt, ProjectOpt, out, print_json, run, user_errors
from runtime.core.errors import BadPayload, GatiError
from runtime.http.project import CONFIG_FILE, load_settings
from runtime.http.pubsub_nats import NatsBus


def publish(
    topic: Annotated[str, typer.Argument(help="The topic, e.g. orders.created.")],
    payload: Annotated[Optional[str], typer.Argument(help="The message as JSON (default: null).")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Publish one message on the project's pub/sub ([pubsub] backend = "nats")."""
    settings = load_settings(project).pubsub
    try:
        data = json.loads(payload) if payload is not None else None
    except ValueError as exc:
        raise BadPayload(f"the message is not JSON: {exc}", fix="quote it for the shell, e.g. '{\"id\": 1}'") from None
    if settings.backend != "nats":
        raise GatiError(
            f"the project's pub/sub is in memory ([pubsub] backend = {settings.backend!r}): it lives inside the server, out of a command's reach",
            fix=f'set [pubsub] backend = "nats" (and url) in {Path(project) / CONFIG_FILE} to publish from outside the server',
        )

    async def send() -> None:
        bus = await NatsBus(settings.url, queue_size=settings.queue_size, prefix=settings.subject_prefix).connect()
        try:
            await bus.publish(topic, data)
        finally:
            await bus.close()

    run(send)
    if as_json:
        return print_json({"topic": topic, "backend": "nats", "url": settings.url})
    out.print(f"published to {topic} on {settings.url}", highlight=False)


publish_command = user_errors(publish)
