"""pagesum: fetch a page and summarise it.

The fetch is plain urllib, which honours HTTP_PROXY/HTTPS_PROXY: inside the container
that is gati's egress proxy, so only the hosts in module.toml's egress answer, and
every attempt is in the audit log. A refusal raises the SDK's CapabilityDenied, which
reaches the caller as is, naming the grant. Summaries are cached in the "pagesum" kv store.
"""

import collections
import html.parser
import json
import re
import time
import urllib.error
import urllib.request

from gati_sdk import Module, ModuleError

module = Module("pagesum", "1.0.0")
CACHE_S = 3600
MAX_BYTES = 2 << 20
STOPWORDS = set("the a an and or of to in on for is are was were be by with as at from that this it its not".split())


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title, self.headings, self.links, self.text = "", [], 0, []
        self._in = []

    def handle_starttag(self, tag, attrs):
        self._in.append(tag)
        if tag == "a" and any(k == "href" for k, _ in attrs):
            self.links += 1

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in.pop() != tag:
                pass

    def handle_data(self, data):
        where = self._in[-1] if self._in else ""
        if where in ("script", "style"):
            return
        if where == "title":
            self.title += data.strip()
        elif where in ("h1", "h2") and data.strip():
            self.headings.append(data.strip())
        self.text.append(data)


def summarise(body: str) -> dict:
    page = _Page()
    page.feed(body)
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", " ".join(page.text))]
    common = collections.Counter(w for w in words if w not in STOPWORDS).most_common(5)
    return {"title": page.title, "headings": page.headings[:10], "words": len(words), "top_words": [w for w, _ in common], "links": page.links}


@module.method
def summarize(payload, ctx):
    url = (payload or {}).get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ModuleError("summarize needs {\"url\": \"https://...\"}", code="bad_payload")
    cached = ctx.host.kv_get("pagesum", url)
    if cached:
        entry = json.loads(cached)
        if time.time() - entry["at"] < CACHE_S:
            return {**entry["summary"], "cached": True}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "gati-pagesum/1"}), timeout=10) as reply:
            charset = reply.headers.get_content_charset() or "utf-8"
            body = reply.read(MAX_BYTES).decode(charset, "replace")
            status = reply.status
    except urllib.error.HTTPError as err:
        raise ModuleError(f"{url} answered {err.code}", code="upstream_error", status=str(err.code))
    except (urllib.error.URLError, OSError) as err:
        raise ModuleError(f"cannot fetch {url}: {err}", code="upstream_error")
    summary = {"url": url, "status": status, **summarise(body)}
    ctx.host.kv_put("pagesum", url, json.dumps({"at": time.time(), "summary": summary}))
    return {**summary, "cached": False}


if __name__ == "__main__":
    module.serve()
