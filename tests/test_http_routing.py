"""File-based routes: file names become paths, [params] become req.params, 404 and 405 are JSON."""

import pytest

from runtime.http.routing import MethodNotAllowed, NotFound, RouteError, load_routes

OK = "def handler(req, res, gctx, lctx):\n    return {'file': __file__.rsplit('handlers/', 1)[1], 'params': req.params}\n"


def write(root, files):
    for rel, source in files.items():
        f = root / "handlers" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(source)
    return root / "handlers"


def test_paths_from_file_names(tmp_path):
    router = load_routes(
        write(
            tmp_path,
            {
                "index.py": OK,
                "users/index.py": OK,
                "users/[id].py": OK,
                "users/me.py": OK,
                "users/[id]/posts/[post].py": OK,
                "files/[...path].py": OK,
                "_shared.py": "x = 1\n",  # not a route
            },
        )
    )
    assert sorted(r.pattern for r in router.routes) == sorted(
        ["/", "/users", "/users/{id}", "/users/me", "/users/{id}/posts/{post}", "/files/{path}"]
    )
    assert router.match("GET", "/").route.pattern == "/"
    assert router.match("GET", "/users/").route.pattern == "/users"
    assert router.match("GET", "/users/me").route.pattern == "/users/me"  # static beats [id]
    m = router.match("GET", "/users/42/posts/7")
    assert (m.route.pattern, m.params) == ("/users/{id}/posts/{post}", {"id": "42", "post": "7"})
    assert router.match("GET", "/users/a%20b").params == {"id": "a b"}
    assert router.match("GET", "/files/a/b/c.txt").params == {"path": "a/b/c.txt"}


def test_not_found_and_method_not_allowed(tmp_path):
    source = 'METHODS = ["POST", "put"]\nasync def handler(req, res, gctx, lctx):\n    pass\n'
    router = load_routes(write(tmp_path, {"items/[id].py": source}))
    assert router.match("PUT", "/items/1").route.methods == {"POST", "PUT"}
    with pytest.raises(NotFound):
        router.match("GET", "/items")
    with pytest.raises(MethodNotAllowed) as exc:
        router.match("GET", "/items/1")
    assert exc.value.details["allow"] == "POST, PUT"


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"a.py": "x = 1\n"}, "exports no handler"),
        ({"a.py": "METHODS = 'GET'\ndef handler(*a): pass\n"}, "METHODS"),
        ({"a.py": "METHODS = ['FETCH']\ndef handler(*a): pass\n"}, "METHODS"),
        ({"a.py": "TIMEOUT_MS = -1\ndef handler(*a): pass\n"}, "TIMEOUT_MS"),
        ({"a.py": "def handler(:\n"}, "SyntaxError"),
        ({"[a].py": OK, "[b].py": OK}, "same paths"),
        ({"a.py": OK, "a/index.py": OK}, "same paths"),
        ({"x[y].py": OK}, "neither a plain name"),
    ],
)
def test_bad_handler_files_stop_start_up(tmp_path, files, problem):
    with pytest.raises(RouteError) as exc:
        load_routes(write(tmp_path, files))
    assert problem in exc.value.message
    assert exc.value.fix


async def test_http_404_405_are_json(make_project, serve):
    root = make_project({"index.py": OK, "users/[id].py": 'METHODS = ["GET", "DELETE"]\n' + OK})
    client = await serve(root)

    r = await client.get("/users/7")
    assert r.status == 200
    assert await r.json() == {"file": "users/[id].py", "params": {"id": "7"}}
    assert (await client.delete("/users/7")).status == 200

    r = await client.get("/nowhere")
    assert r.status == 404
    body = await r.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["request_id"] == r.headers["X-Request-Id"]

    r = await client.post("/users/7")
    assert r.status == 405
    assert r.headers["Allow"] == "DELETE, GET"
    assert (await r.json())["error"]["code"] == "method_not_allowed"

    r = await client.head("/")  # HEAD is served by a GET route, without a body
    assert r.status == 200


# --- Router.match's index against the plain scan, for any routes and any path --------------------

from pathlib import Path  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from runtime.http.routing import Match, Route, Router, _compile  # noqa: E402

SEGMENT = st.sampled_from(["a", "b", "users", "me", "x.y"])
FILE_PART = st.one_of(SEGMENT, st.sampled_from(["[id]", "[name]"]))


@st.composite
def route_files(draw):
    """Handler file names: static parts, [params], an optional [...rest] last; index files too."""
    parts = draw(st.lists(FILE_PART, max_size=4))
    if draw(st.booleans()):
        parts.append("[...rest]")
    if len(set(parts)) != len(parts):  # a parameter name twice is refused at load
        parts = list(dict.fromkeys(parts))
    return "/".join(parts or ["index"]) + ".py"


def _routes(files: list[str], methods: list[frozenset]) -> list[Route]:
    routes, shapes = [], set()
    for rel, allowed in zip(files, methods):
        pattern, regex, rank, shape = _compile(Path(rel))
        if shape in shapes:  # two files serving the same paths are refused at load
            continue
        shapes.add(shape)
        routes.append(Route(pattern, Path(rel), None, allowed, None, regex, rank))
    return routes


def _scan(router: Router, method: str, raw_path: str):
    """The rule as documented: the first route in rank order matching the path and allowing the method."""
    path = raw_path.rstrip("/") or "/"
    allowed = set()
    for route in router.routes:
        m = route.regex.match(path)
        if m is not None:
            if route.allows(method):
                return Match(route, {k: v for k, v in m.groupdict().items()})
            allowed |= route.methods
    return ("405", frozenset(allowed)) if allowed else "404"


@settings(max_examples=300, deadline=None)
@given(
    files=st.lists(route_files(), max_size=12),
    methods=st.lists(st.sampled_from([frozenset({"GET"}), frozenset({"POST"}), frozenset({"GET", "POST"})]), min_size=12, max_size=12),
    path=st.lists(st.one_of(SEGMENT, st.just("")), max_size=6).map(lambda ps: "/" + "/".join(ps)),
    method=st.sampled_from(["GET", "POST", "HEAD", "DELETE"]),
)
def test_the_indexed_match_is_the_plain_scan(files, methods, path, method):
    router = Router(_routes(files, methods))
    expected = _scan(router, method, path)
    for _ in range(2):  # the second time from the filled index
        try:
            got = router.match(method, path)
        except MethodNotAllowed as err:
            got = ("405", frozenset(err.details["allow"].split(", ")))
        except NotFound:
            got = "404"
        assert got == expected
