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
