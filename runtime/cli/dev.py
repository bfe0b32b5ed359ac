"""`gati dev [DIR]`: serve a project and follow its edits (watchfiles).

    a handler file changed      handlers/ imported again and swapped in whole (runtime.http.app.reload_handlers)
    a module's file changed     the module rebuilt (gati build) and registered again; calls in flight
                                finish in the old sandbox, new calls go to the new one
    hooks.py or gati.toml       said to need a restart (they shape the whole app)

The playground (runtime/http/playground) is always served, at [playground] path.

What breaks (a handler that does not import, a build that fails, a manifest that does not
validate) is reported and the last good version keeps serving. Every reload is one log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
import watchfiles
from aiohttp import web

from runtime.cli.build import build_all
from runtime.cli.common import LogFormatOpt, Terminated, out, run, user_errors
from runtime.cli.listen import cannot_listen
from runtime.core.errors import GatiError
from runtime.http.app import PROJECT, reload_handlers
from runtime.http.app import build_app as build_http_app
from runtime.http.appstate import STATE
from runtime.http.logs import access_log_options, setup_logging
from runtime.http.project import load_project
from runtime.modules import register_module
from runtime.modules.build import SKIP, build_module

log = logging.getLogger("gati.dev")

DEBOUNCE_MS = 150  # an editor's save is often several writes: one reload for all of them


def _ignored(roots: list[Path], path: str) -> bool:
    """Build outputs, caches, hidden and editors' temporary files: never a reason to reload."""
    p = Path(path)
    root = next((r for r in roots if p.is_relative_to(r)), None)
    parts = p.relative_to(root).parts if root else p.parts
    return any(part in SKIP or part.startswith(".") for part in parts) or path.endswith((".tmp", "~", ".swp", ".pyc"))


class Reloader:
    """Decides what a set of changed paths means for the running app, and does it."""

    def __init__(self, app: web.Application):
        self.app = app
        self.project = app[PROJECT]
        self.modules = {d.resolve(): d for d in self.project.module_dirs()}

    async def changed(self, paths: set[Path]) -> None:
        try:  # a module folder added while serving (gati new module) is built and registered on its first save
            self.modules = {d.resolve(): d for d in self.project.module_dirs()}
        except GatiError as exc:
            log.error("modules not reloaded: %s", exc)
        handlers = self.project.handlers_dir.resolve()
        modules = {m for p in paths for m in self.modules if p.is_relative_to(m)}
        for folder in sorted(modules):
            await self.module(folder)
        if any(p.is_relative_to(handlers) and p.suffix == ".py" for p in paths):
            self.handlers()
        for p in paths:
            if p.name in ("gati.toml", "hooks.py") and p.parent == self.project.dir:
                log.warning("%s changed: restart gati dev to apply it", p.name)

    def handlers(self) -> None:
        start = time.perf_counter()
        try:
            router = reload_handlers(self.app)
        except GatiError as exc:
            log.error("handlers not reloaded, still serving the last good version: %s", exc)
            return
        log.info("reloaded handlers: %d routes in %.0f ms", len(router.routes), (time.perf_counter() - start) * 1000)

    async def module(self, folder: Path) -> None:
        start = time.perf_counter()
        result = await build_module(folder)
        if result.status == "failed":
            tail = "; ".join((result.output or [])[-3:])
            log.error("module %s not reloaded, still serving the last good version: %s%s", result.name, result.error, f" ({tail})" if tail else "")
            return
        try:
            registration = await asyncio.to_thread(register_module, self.app[STATE], folder)
        except GatiError as exc:
            log.error("module %s not reloaded, still serving the last good version: %s", result.name, exc)
            return
        log.info(
            "reloaded module %s %s: %s, registered (sha256 %s) in %.1f s",
            registration.name, registration.manifest.version, result.status, registration.artifact_sha256[:12], time.perf_counter() - start,
        )


async def watch(app: web.Application) -> None:
    reloader = Reloader(app)
    project = app[PROJECT]
    roots = [project.dir.resolve(), *[d for d in reloader.modules if not d.is_relative_to(project.dir.resolve())]]
    watching = False
    changes_seen = watchfiles.awatch(
        *roots, watch_filter=lambda change, path: not _ignored(roots, path), debounce=DEBOUNCE_MS, yield_on_timeout=True, rust_timeout=500
    )
    async for changes in changes_seen:
        if not watching:
            watching = True  # the first tick: the watcher is up, an edit from now on is seen
            log.info("watching %s for changes", ", ".join(str(r) for r in roots))
        if changes:
            await reloader.changed({Path(p).resolve() for _, p in changes})


def dev(
    directory: Annotated[Path, typer.Argument(help="The project to serve.")] = Path("."),
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default: host in gati.toml).")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="TCP port (default: port in gati.toml).")] = None,
    log_format: LogFormatOpt = "text",
) -> None:
    """Serve a project and reload what changes: handlers at once, modules rebuilt and registered again."""
    setup_logging(log_format)
    root = Path(directory)

    async def main() -> None:
        from_build = await build_all(load_project(root).module_dirs(), force=False, show=True)
        for r in from_build:
            if r.status == "failed":
                log.error("module %s did not build: %s (fix it; gati dev rebuilds it on save)", r.name, r.error)
        settings = load_project(root).settings
        h, p = host or settings.server.host, port or settings.server.port
        app = build_http_app(root, telemetry=True, playground=True, host=h)
        runner = web.AppRunner(app, **access_log_options(True, log_format))
        await runner.setup()
        try:
            site = web.TCPSite(runner, h, p)
            try:
                await site.start()
            except OSError as exc:
                raise cannot_listen(h, p, exc) from None
            out.print(f"gati dev: serving {app[PROJECT].dir} on http://{h}:{p}, reloading on change (Ctrl+C stops)", highlight=False)
            out.print(f"gati dev: the playground is on http://{h}:{p}{settings.playground.path}/", highlight=False)
            await watch(app)
        finally:
            await runner.cleanup()

    try:
        run(main)
    except (KeyboardInterrupt, Terminated):
        pass  # asked to stop: the server and the modules' sandboxes are closed by now


dev_command = user_errors(dev)
