"""One NATS connection for an instance's shared state, on an event loop of its own.

Callers come from everywhere: handlers and the gRPC host service on the server's event loop,
WASM calls on worker threads, registration and the CLI with no loop at all. The connection
lives on a thread of its own so that each of them can wait the way it must: `call` from a
coroutine on any loop (the loop keeps serving meanwhile), `run` from plain code (it blocks).

Every operation is bounded by `timeout_s`. A server that is down, a JetStream that does not
answer, a connection being re-established: each is StateUnavailable (HTTP 503), raised at once
when the connection is known to be down. Nothing is buffered while reconnecting (nats-py's
pending buffer is off), so an operation reported as failed is never applied later behind the
caller's back; one that timed out in flight may have been, as with any network store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

import nats
import nats.errors
import nats.js.errors

from runtime.core.errors import GatiError, StateUnavailable

log = logging.getLogger("gati.cluster")

T = TypeVar("T")

# What the network (not the data) answered: the operation did not happen as far as we know.
TRANSPORT_ERRORS = (
    asyncio.TimeoutError,
    TimeoutError,
    OSError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.NoServersError,
    nats.js.errors.ServiceUnavailableError,
)


class Cluster:
    def __init__(self, url: str, namespace: str = "default", *, timeout_s: float = 2.0, connect_timeout_s: float = 5.0, name: str = "gati"):
        self.url = url
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.name = name
        self.nc: Any = None
        self.js: Any = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gati-cluster", daemon=True)
        self._closed = False

    # names of what this namespace keeps in JetStream (bucket names allow [A-Za-z0-9_-])
    def bucket(self, what: str) -> str:
        return f"gati_{self.namespace}_{what}"

    def connect(self) -> "Cluster":
        """Connect (blocking, bounded); GatiError naming the server and the fix when it cannot."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(self.connect_timeout_s + 1)
        except (nats.errors.Error, *TRANSPORT_ERRORS) as exc:
            self.close()
            raise GatiError(
                f"cannot reach the NATS server of [cluster] at {self.url}: {exc or type(exc).__name__}",
                fix="start nats-server with JetStream there (nats-server -js), or fix [cluster] nats in gati.toml",
            ) from None
        return self

    async def _connect(self) -> None:
        # nats-py keeps retrying the first connect too when reconnects are unlimited: bound start-up here
        async with asyncio.timeout(self.connect_timeout_s):
            self.nc = await nats.connect(
                self.url,
                name=self.name,
                connect_timeout=self.connect_timeout_s,
                allow_reconnect=True,
                max_reconnect_attempts=-1,  # keep trying: operations fail with 503 meanwhile, readiness says down
                reconnect_time_wait=0.25,
                pending_size=0,  # nothing buffered while disconnected: a failed write stays unwritten
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        self.js = self.nc.jetstream(timeout=self.timeout_s)
        try:  # JetStream must be on: a plain nats-server answers no request of it
            await self.js.account_info()
        except nats.errors.NoRespondersError:
            raise GatiError(
                f"the NATS server at {self.url} has no JetStream",
                fix="start it with JetStream on (nats-server -js, or jetstream {} in its configuration)",
            ) from None

    def healthy(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def unavailable(self, what: str, exc: BaseException | None = None) -> StateUnavailable:
        why = f": {type(exc).__name__} {exc}".rstrip() if exc is not None else ""
        return StateUnavailable(
            f"shared state is unavailable: {what} at {self.url}{why}",
            fix="retry shortly; the NATS server of [cluster] must be up (gati reconnects by itself)",
        )

    # running work on the connection's loop -----------------------------------------------------
    async def _guarded(self, coro: Coroutine[Any, Any, T], timeout_s: float | None) -> T:
        if not self.healthy():
            coro.close()
            raise self.unavailable("not connected to NATS")
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await coro
        except TRANSPORT_ERRORS as exc:
            raise self.unavailable("NATS did not answer", exc) from None

    def submit(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> Future:
        if self._closed:
            coro.close()
            raise self.unavailable("the connection is closed")
        return asyncio.run_coroutine_threadsafe(self._guarded(coro, timeout_s), self.loop)

    async def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Await coro on the connection's loop from any other loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(self.submit(coro, timeout_s))

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run coro on the connection's loop and wait for it (plain code, never the connection's own loop)."""
        future = self.submit(coro, timeout_s)
        try:
            return future.result((timeout_s or self.timeout_s) + 1)
        except TimeoutError:
            future.cancel()
            raise self.unavailable("NATS did not answer in time") from None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Future:
        """Start a long-running task on the connection's loop (a mirror, a refresher), unbounded."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def keep_fresh(self, refresh: Callable[[], Awaitable[None]], *, every_s: float, timeout_s: float, logger: logging.Logger, what: str, meanwhile: str) -> Future:
        """refresh() every every_s on the connection's loop while NATS is up, each bounded by timeout_s:
        what keeps a replica (the registry's, the versions') fresh. It lives through any outage and
        says so once per outage ("WHAT: error (MEANWHILE)"); cancel the future to stop it."""

        async def forever() -> None:
            failing = False
            while True:
                try:
                    if self.healthy():
                        async with asyncio.timeout(timeout_s):
                            await refresh()
                        failing = False
                except Exception as exc:  # kept alive through any outage; said once per outage
                    if not failing:
                        logger.warning("%s: %s: %s (%s)", what, type(exc).__name__, exc, meanwhile)
                    failing = True
                await asyncio.sleep(every_s)

        return self.spawn(forever())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            if self.nc is not None and not self.nc.is_closed:
                try:
                    asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(self.timeout_s + 1)
                except Exception as exc:  # closing: nothing left to tell anyone
                    log.debug("closing the NATS connection: %s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=self.timeout_s + 1)
        if not self.loop.is_running():
            self.loop.close()

    # connection events ------------------------------------------------------------------------------
    async def _error(self, exc: Exception) -> None:
        log.warning("NATS %s: %s", self.url, exc)

    async def _disconnected(self) -> None:
        if not self._closed:
            log.warning("NATS %s: disconnected; shared state answers 503 until it is back", self.url)

    async def _reconnected(self) -> None:
        log.warning("NATS %s: reconnected", self.url)
