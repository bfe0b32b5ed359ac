#!/usr/bin/python3
"""linkcheck: checks links and reads page titles, as a native gati module in Python.

It uses nothing but the standard library's urllib, as ordinary code would: the runtime
sets HTTP_PROXY/HTTPS_PROXY to the egress proxy inside the sandbox, which lets through
only what `[capabilities] egress` grants. A refusal raises the SDK's CapabilityDenied,
naming the grant; the SDK also makes the pool's requests for the call that started them.

    check {"urls": ["https://...", ...]} -> [{"url", "ok", "status", "ms", "error"?, "grant"?}, ...]
    title {"url": "https://..."}          -> {"url", "status", "title"}
"""

import html.parser
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from gati_sdk import CapabilityDenied, Module, ModuleError

module = Module("linkcheck", "1.0.0")

MAX_URLS = 50
MAX_PAGE_BYTES = 1 << 20
USER_AGENT = "gati-linkcheck/1.0"


def fetch(url: str, method: str, timeout: float):
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)


def check_one(url: str, timeout: float) -> dict:
    started = time.monotonic()
    result = {"url": url}
    try:
        with fetch(url, "HEAD", timeout) as resp:
            result.update(ok=resp.status < 400, status=resp.status)
    except CapabilityDenied as denied:
        result.update(ok=False, status=None, error="egress not granted", grant=denied.details.get("grant"))
    except urllib.error.HTTPError as exc:
        result.update(ok=False, status=exc.code)
    except (OSError, ValueError) as exc:
        result.update(ok=False, status=None, error=str(getattr(exc, "reason", exc)))
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@module.method
def check(payload, ctx):
    urls = payload.get("urls") if isinstance(payload, dict) else None
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ModuleError('check needs {"urls": ["https://...", ...]}', code="bad_payload")
    if len(urls) > MAX_URLS:
        raise ModuleError(f"at most {MAX_URLS} urls per call", code="bad_payload", fix="split the list")
    timeout = max(1.0, (ctx.remaining() or 10.0) - 0.5)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda u: check_one(u, timeout), urls))


class _Title(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.parts = False, []

    def handle_starttag(self, tag, attrs):
        self.inside = self.inside or tag == "title"

    def handle_endtag(self, tag):
        if tag == "title":
            self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.parts.append(data)


@module.method
def title(payload, ctx):
    url = payload.get("url") if isinstance(payload, dict) else None
    if not isinstance(url, str):
        raise ModuleError('title needs {"url": "https://..."}', code="bad_payload")
    try:
        with fetch(url, "GET", max(1.0, (ctx.remaining() or 10.0) - 0.5)) as resp:
            status, page = resp.status, resp.read(MAX_PAGE_BYTES)
    except urllib.error.HTTPError as exc:
        raise ModuleError(f"{url} answered {exc.code}", code="fetch_failed", status=exc.code) from None
    except (OSError, ValueError) as exc:
        raise ModuleError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}", code="fetch_failed") from None
    parser = _Title()
    parser.feed(page.decode("utf-8", "replace"))
    return {"url": url, "status": status, "title": " ".join("".join(parser.parts).split())}


if __name__ == "__main__":
    module.serve()
