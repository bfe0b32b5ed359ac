"""Every module template (`gati new module`) builds with the machine's toolchains, registers,
answers, and passes its own test under `gati test`; and the project templates' tests pass."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli.new import templates
from sandboxes.oci import available

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCKER = available()
TEMPLATES = [(t["lang"], t["kind"], t["greeting"]) for t in templates()]


def gati(*args, cwd=None, check=True, timeout=900):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk" / "python")])}
    proc = subprocess.run([sys.executable, "-m", "runtime.cli.main", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"gati {' '.join(map(str, args))} exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def module_name(lang, kind):
    return f"t-{lang}-{kind}"


def usable(kind):
    if kind == "oci" and DOCKER is not None:
        return f"container modules need a Docker engine: {DOCKER}"
    if kind == "native" and shutil.which("bwrap") is None:
        return "native modules need bubblewrap"
    return None


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project holding a module of every template, built once (the builds are the slow part)."""
    root = tmp_path_factory.mktemp("templates") / "app"
    gati("init", root, "--template", "minimal")
    for lang, kind, _ in TEMPLATES:
        if usable(kind) is None:
            gati("new", "module", module_name(lang, kind), "--lang", lang, "--kind", kind, "--project", root)
    built = json.loads(gati("build", "--json", "--project", root).stdout)
    # every module's own test (tests/test_NAME.py, from its template) in one gati test run
    tested = gati("test", "--no-build", "--project", root, "--", "-v", check=False)
    return root, {r["name"]: r for r in built}, tested.stdout


@pytest.mark.parametrize(("lang", "kind", "greeting"), TEMPLATES, ids=[f"{lang}-{kind}" for lang, kind, _ in TEMPLATES])
def test_template_builds_registers_and_passes_its_own_test(project, lang, kind, greeting):
    if usable(kind):
        pytest.skip(usable(kind))
    root, built, tested = project
    name = module_name(lang, kind)
    assert built[name]["status"] in ("built", "nothing-to-build"), built[name]
    # its own test registered it as built and called it in its sandbox
    assert f"modules/{name}/tests/test_{name}.py::test_hello_answers_with_its_input PASSED" in tested, tested
    # and so does the command line, as a user would
    if lang in ("c", "rust"):
        gati("module", "register", root / "modules" / name, "--project", root)
        reply = json.loads(gati("call", name, "hello", '{"n": [1, "two"]}', "--project", root).stdout)
        assert reply == {"message": greeting, "input": {"n": [1, "two"]}}


def test_a_second_build_skips_what_is_up_to_date(project):
    root = project[0]
    one = gati("test", "t-c-wasm", "--no-build", "--project", root)  # a module's name stands for its tests
    assert "1 passed" in one.stdout, one.stdout
    again = json.loads(gati("build", "--json", "--project", root).stdout)
    assert {r["status"] for r in again} <= {"up-to-date", "nothing-to-build"}, again


def test_a_template_the_language_lacks_is_refused_with_the_choices(tmp_path):
    gati("init", tmp_path / "p", "--template", "minimal")
    for args, words in (
        (["--lang", "cobol"], "--lang with one of: wat, c, rust"),
        (["--lang", "python"], "add --kind with one of: oci, native"),
        (["--lang", "go", "--kind", "wasm"], "use --kind native with --lang go"),
    ):
        proc = gati("new", "module", "m", *args, "--project", tmp_path / "p", check=False)
        assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    bad = gati("new", "module", "Bad Name", "--project", tmp_path / "p", check=False)
    assert bad.returncode == 1 and "not a valid module name" in bad.stderr


@pytest.mark.parametrize("template", ["hello", "minimal", "api"])
def test_project_templates_pass_their_own_tests(tmp_path, template):
    gati("init", tmp_path / "p", "--template", template)
    run = gati("test", "--project", tmp_path / "p")
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout
