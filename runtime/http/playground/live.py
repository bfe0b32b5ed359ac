"""The playground's live feed: server-sent events to every open page.

    event: request   a snapshot was stored (its summary)
    event: paused    a request waits at a debug gate (id, route, when, hook, state)
    event: resumed   it went on (or failed)
    event: gates     the gates changed

Each page has a bounded queue: a page that does not keep up misses events (it reloads the lists
when it reconnects) rather than holding the server's memory.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

QUEUE = 256
PING_S = 15.0  # a comment line now and then: a closed page is noticed, proxies keep the stream open


class Live:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue] = set()

    def publish(self, kind: str, data: Any) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                pass

    async def stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(QUEUE)
        self._queues.add(queue)
        try:
            await resp.write(b": connected\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), PING_S)
                except TimeoutError:
                    await resp.write(b": ping\n\n")
                    continue
                if item is None:
                    break
                kind, data = item
                await resp.write(f"event: {kind}\ndata: {json.dumps(data, default=repr)}\n\n".encode())
        except ConnectionResetError:
            pass  # the page was closed
        finally:
            self._queues.discard(queue)
        return resp

    def close(self) -> None:
        """End every stream: the server is stopping and must not wait for the pages."""
        for queue in self._queues:
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                queue.get_nowait()
                queue.put_nowait(None)
