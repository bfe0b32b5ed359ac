"""The playground: a web UI over a running app, served by `gati dev` and, with [playground]
enabled = true, by `gati serve` (docs/playground.md).

    routes.py    the page and its JSON API under [playground] path (default /_gati/playground)
    access.py    loopback without a token, beyond it only with one; changes need X-Gati-Playground
    live.py      server-sent events: requests as they are stored, requests paused at gates
    timeline.py  a request's hooks, handler, module calls and capability decisions in order
    replay.py    a stored request sent again, against any version, modules real or recorded
    diff.py      two executions side by side
    gates.py     debug gates: pause a route's requests at a hook, edit lctx state, resume or fail
    static/      the page: plain HTML, JS and CSS shipped in the package (no build, no CDN)

The requests it shows are the recorder's snapshots (runtime.http.recorder): serving the
playground turns them on.
"""

from runtime.http.playground.routes import add_playground

__all__ = ["add_playground"]
