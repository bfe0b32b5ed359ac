"""The playground in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven
by selenium against `gati dev` serving a project with a real WASM module.

On failure each test writes a screenshot to build/test-screenshots/<test>.png. With
GATI_DOC_SCREENSHOTS=1 the tests also take docs/playground.md's pictures into docs/img/.
"""

import json
import os
import shutil
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from playground_support import write_project
from serving_support import Server

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 90  # bound of every wait: generous, the machine may be busy
SHOTS = ROOT / "build" / "test-screenshots"
DOCS = ROOT / "docs" / "img"



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = write_project(tmp_path_factory.mktemp("browser") / "app", versions=True)
    port = free_port()
    server = Server("dev", root, "--port", port, cwd=root)
    try:
        server.wait_for("the playground is on")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def driver():
    # No skip: on a machine without them this must fail, not pass quietly
    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), "needs Debian's chromium and chromium-driver: run scripts/install-system-deps.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(DRIVER))
    browser.set_page_load_timeout(WAIT_S)
    yield browser
    browser.quit()


@pytest.fixture
def page(driver, app, request):
    """The playground open in the browser; a screenshot of it when the test fails."""
    driver.get(app + "/_gati/playground/")
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    yield driver
    _remove_gates(app)  # a gate left by a failed test would hold the next tests' requests
    report = getattr(request.node, "report_call", None)  # tests/conftest.py keeps it
    if report is not None and report.failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{request.node.name}.png"
        driver.save_screenshot(str(path))
        print(f"screenshot of the failure: {path}")


def wait(driver):
    return WebDriverWait(driver, WAIT_S)


def doc_shot(driver, name: str) -> None:
    if os.environ.get("GATI_DOC_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(DOCS / name))


def send(app: str, path: str, body=None) -> tuple[str, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(app + path, data=data, method="POST" if data else "GET", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT_S) as resp:
        return resp.headers["X-Request-Id"], json.loads(resp.read())


def test_a_request_appears_live_and_opens_to_its_timeline(page, app):
    rid, _ = send(app, "/visit?user=ada", {"name": "bob"})
    wait(page).until(lambda d: _click(d, f'#request-list li[data-id="{rid}"] .path'))
    wait(page).until(EC.presence_of_element_located((By.CSS_SELECTOR, 'table.timeline tr[data-label="module greet.count"]')))
    labels = [tr.get_attribute("data-label") for tr in page.find_elements(By.CSS_SELECTOR, "table.timeline tr[data-label]")]
    assert labels.index("hook before:load_user") < labels.index("handler") < labels.index("hook after:audit_trail")
    assert "capability greet kv.read visits" in labels and "module greet.hello" in labels
    assert '"message":"hello, bob"' in page.find_element(By.ID, "answer").text
    doc_shot(page, "playground-timeline.png")


def test_a_replay_shows_its_diff(page, app):
    rid, _ = send(app, "/visit?user=ada", {"name": "bob"})
    wait(page).until(lambda d: _click(d, f'#request-list li[data-id="{rid}"] .path'))
    Select(wait(page).until(EC.presence_of_element_located((By.ID, "replay-mode")))).select_by_value("real")
    page.find_element(By.ID, "replay-btn").click()
    verdict = wait(page).until(EC.presence_of_element_located((By.ID, "diff-verdict")))
    assert verdict.text == "the answers differ"  # the module ran again: one visit more
    udiff = page.find_element(By.CSS_SELECTOR, ".udiff").text
    assert '"visits":' in udiff and "+" in udiff
    doc_shot(page, "playground-diff.png")

    wait(page).until(lambda d: _click(d, f'#request-list li[data-id="{rid}"] .path'))
    Select(wait(page).until(EC.presence_of_element_located((By.ID, "replay-mode")))).select_by_value("recorded")
    page.find_element(By.ID, "replay-btn").click()
    wait(page).until(EC.text_to_be_present_in_element((By.ID, "diff-verdict"), "same answer"))


def test_a_replay_against_another_version_shows_its_diff(page, app):
    rid, answer = send(app, "/visit?user=ada", {"name": "bob"})
    assert answer["message"] == "hello, bob"  # version 1, the default
    wait(page).until(lambda d: _click(d, f'#request-list li[data-id="{rid}"] .path'))
    Select(wait(page).until(EC.presence_of_element_located((By.ID, "replay-version")))).select_by_value("2")
    Select(page.find_element(By.ID, "replay-mode")).select_by_value("recorded")
    page.find_element(By.ID, "replay-btn").click()
    wait(page).until(EC.text_to_be_present_in_element((By.ID, "diff-verdict"), "the answers differ"))
    heads = [th.text for th in page.find_elements(By.CSS_SELECTOR, "#diff table.side th")]
    assert "version 1" in heads[0] and "version 2" in heads[1] and "replay (recorded)" in heads[1]
    udiff = page.find_element(By.CSS_SELECTOR, ".udiff").text
    assert '-  "message": "hello, bob",' in udiff and '+  "message": "HELLO, BOB",' in udiff
    doc_shot(page, "playground-diff-versions.png")


def test_a_gate_holds_a_request_until_resumed(page, app):
    page.find_element(By.ID, "tab-gates").click()
    wait(page).until(EC.presence_of_element_located((By.CSS_SELECTOR, '#gate-route option[value="/visit"]')))
    Select(page.find_element(By.ID, "gate-route")).select_by_value("/visit")
    Select(page.find_element(By.ID, "gate-when")).select_by_visible_text("after")
    Select(page.find_element(By.ID, "gate-hook")).select_by_value("load_user")
    page.find_element(By.ID, "gate-set").click()
    wait(page).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#gates li")))

    answer: dict = {}
    client = threading.Thread(target=lambda: answer.update(send(app, "/visit?user=ada")[1]), daemon=True)
    client.start()
    state = wait(page).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#paused li textarea.state")))
    assert json.loads(state.get_attribute("value")) == {"user": "ada"}
    assert client.is_alive()  # the request waits at the gate
    state.clear()
    state.send_keys('{"user": "grace", "flag": "edited in the browser"}')
    wait(page).until(lambda d: _click(d, "#paused li .save-state"))
    wait(page).until(lambda d: _paused_state(app) == {"user": "grace", "flag": "edited in the browser"})
    doc_shot(page, "playground-gate.png")
    wait(page).until(lambda d: _click(d, "#paused li .resume"))
    client.join(WAIT_S)
    assert (answer["user"], answer["flag"]) == ("grace", "edited in the browser")
    wait(page).until(lambda d: _click(d, "#gates li .remove"))
    wait(page).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#gates li"))


def test_routes_and_modules_views(page, app):
    send(app, "/visit")
    page.find_element(By.ID, "tab-routes").click()
    wait(page).until(lambda d: "load_user → handler → audit_trail" in _text(d, '.route[data-route="/visit"]'))
    doc_shot(page, "playground-routes.png")
    page.find_element(By.ID, "tab-modules").click()
    wait(page).until(lambda d: "kv.read visits" in _text(d, '.module[data-module="greet"] ul.did'))
    doc_shot(page, "playground-modules.png")


def _text(driver, selector: str) -> str:
    """Its text ("" while absent, or re-drawn under us: the views reload as they are opened)."""
    try:
        return driver.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent")
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def _click(driver, selector: str) -> bool:
    """Click it; False (try again) when the page re-drew it in between (it follows the live feed)."""
    try:
        driver.find_element(By.CSS_SELECTOR, selector).click()
        return True
    except (StaleElementReferenceException, NoSuchElementException):
        return False


def _gates(app: str) -> dict:
    with urllib.request.urlopen(app + "/_gati/playground/api/gates", timeout=WAIT_S) as resp:
        return json.loads(resp.read())


def _paused_state(app: str) -> dict | None:
    """The waiting request's state as the server now holds it."""
    paused = _gates(app)["paused"]
    return paused[0]["state"] if paused else None


def _remove_gates(app: str) -> None:
    for gate in _gates(app)["gates"]:
        req = urllib.request.Request(f"{app}/_gati/playground/api/gates/{gate['id']}", method="DELETE", headers={"X-Gati-Playground": "1"})
        urllib.request.urlopen(req, timeout=WAIT_S).close()
