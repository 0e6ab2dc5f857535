"""End to end: the real Streamlit server, driven in a headless Chromium by Playwright.

``streamlit run app.py`` runs as a subprocess with this test's ``KQA_HOME`` (the conftest
fixture), on a free port, and is always killed afterwards. Debian's Chromium
(``apt-get install -y chromium``, done by ``.ci/run``) is used; Playwright's own browser
download is not. Screenshots go to ``tests/_artifacts/`` (git-ignored).

To add a flow: take the ``app`` and ``page`` fixtures, load what the flow needs into the store
first (a fixture named before ``app``, like ``flags``, is ready before the server starts), then
``open_page(page, app, "ask")`` and drive it; see :func:`search_entity` and
:func:`test_ask_about_an_image_in_a_real_browser` for the patterns (upload, type + Enter, wait
for an element, screenshot with :func:`snap`). The server runs torch on one thread
(``OMP_NUM_THREADS=1``): the test models are tiny, and on a busy machine more threads are slower.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
ARTIFACTS = Path(__file__).parent / "_artifacts"
FIXTURES = Path(__file__).parent / "fixtures" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 40
STEP_TIMEOUT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright's Python package is not installed")
expect = sync_api.expect



def _fixture_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"ui_{name}_browser", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


tinykg = _fixture_module("tinykg")
flagskg = _fixture_module("flagskg")
ANSWER_TIMEOUT_MS = 90_000  # the first question loads the model and encoders in the server


# -- helpers: start the app, open a page ------------------------------------------------------


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(log: Path, env: dict[str, str] | None = None) -> RunningApp:
    """``streamlit run app.py`` on a free local port; returns once /_stcore/health says ok."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    out = log.open("wb")
    process = subprocess.Popen(cmd, cwd=REPO, env=env or dict(os.environ), stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    app = RunningApp(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return app
        except OSError:
            pass
        time.sleep(0.25)
    stop_app(app)
    raise RuntimeError(f"streamlit did not answer within {START_TIMEOUT_S} s:\n{app.log_tail()}")


def stop_app(app: RunningApp) -> None:
    """Terminate the server (and its process group), killing it if it lingers."""
    if app.process.poll() is None:
        try:
            os.killpg(app.process.pid, 15)
        except ProcessLookupError:
            pass
        try:
            app.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(app.process.pid, 9)
            app.process.wait(timeout=10)


def open_page(page: Any, app: RunningApp, url_path: str = "", heading: str | None = None) -> None:
    """Open a page of the app by its URL path ("" is Knowledge, or "ask", "models",
    "plugins") and wait until its title is shown."""
    page.goto(f"{app.url}/{url_path}")
    title = heading or (url_path or "knowledge").capitalize()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=STEP_TIMEOUT_MS)


def wait_idle(page: Any) -> None:
    """Wait until Streamlit has finished the current rerun (no "running" status widget)."""
    page.wait_for_timeout(200)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=STEP_TIMEOUT_MS)


def snap(page: Any, name: str) -> Path:
    """Screenshot the whole page into tests/_artifacts/<name>.png. Streamlit scrolls inside
    its main container, so the viewport is stretched to the content's height for the shot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), document.body.scrollHeight)")
    tall = min(max(height, size["height"]), 6000)
    page.set_viewport_size({"width": size["width"], "height": tall})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def search_entity(page: Any, text: str) -> None:
    """Type into the Knowledge page's entity search and press Enter."""
    box = page.get_by_label("Search entities")
    box.fill(text)
    box.press("Enter")
    wait_idle(page)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    """The flags KG (four countries with flag images, their capitals) and its default model,
    trained on questions generated from it, in this test's KQA_HOME; returns the image folder.
    Name it before ``app`` so that it is ready before the server starts."""
    return flagskg.build(tmp_path / "flags")


@pytest.fixture
def app(kqa_home: Path, tmp_path: Path) -> Iterator[RunningApp]:
    """The app served with this test's KQA_HOME; always stopped afterwards."""
    # one torch thread: the test models are tiny, and on a busy machine more threads are slower
    env = dict(os.environ, KQA_HOME=str(kqa_home), OMP_NUM_THREADS="1")
    env.pop("KQA_DATABASE_URL", None)
    running = start_app(tmp_path / "streamlit.log", env)
    try:
        yield running
    finally:
        stop_app(running)


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            tab = context.new_page()
            tab.set_default_timeout(STEP_TIMEOUT_MS)
            yield tab
        finally:
            browser.close()


# -- flows ----------------------------------------------------------------------------------------


def test_browse_entity_in_a_real_browser(app: RunningApp, page: Any, tmp_path: Path) -> None:
    tinykg.load_movies(tmp_path / "src")  # into the KQA_HOME the server reads
    open_page(page, app)
    expect(page.get_by_role("heading", name="Browse")).to_be_visible()
    search_entity(page, "alien")
    expect(page.get_by_role("heading", name="Alien", level=3)).to_be_visible()
    # the facts table
    facts = page.locator('[data-testid="stTable"]').first
    expect(facts).to_be_visible()
    for text in ("Sigourney Weaver", "directed by", "1979"):
        expect(facts.get_by_text(text, exact=True).first).to_be_attached()
    # the neighbourhood picture: an svg drawn by graphviz, with the facts' ends as nodes
    svg = page.locator('[data-testid="stGraphVizChart"] svg')
    expect(svg).to_be_visible()
    expect(svg.locator("g.node")).to_have_count(4)
    expect(svg.locator("g.edge")).to_have_count(3)
    expect(svg.locator("g.node text", has_text="Ridley Scott")).to_be_visible()
    # the entity's image
    expect(page.locator('[data-testid="stImage"] img').first).to_be_visible()
    snap(page, "knowledge")
    # the other pages open without errors
    open_page(page, app, "plugins")
    expect(page.get_by_text("no models yet")).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    snap(page, "plugins")
    assert app.process.poll() is None, app.log_tail()


def test_ask_about_an_image_in_a_real_browser(flags: Path, app: RunningApp, page: Any) -> None:
    open_page(page, app, "ask")
    page.locator("input[type=file]").set_input_files(str(flags / "C.png"))
    expect(page.locator('[data-testid="stImage"] img').first).to_be_visible()  # the preview
    wait_idle(page)
    box = page.get_by_label("Question", exact=True)
    box.fill("which country is this")
    box.press("Enter")
    # the top answer (with so little training the ranking is not the point; the page is)
    top = page.get_by_role("heading", level=3).filter(has_text=re.compile(r"^(Land|City) [A-D]"))
    expect(top).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    wait_idle(page)
    answer = top.inner_text().strip()
    assert answer in flagskg.COUNTRIES + flagskg.CAPITALS
    answers = page.locator('[data-testid="stTable"]').first
    expect(answers.get_by_text(answer, exact=True).first).to_be_attached()
    expect(page.locator('[data-testid="stMetric"]', has_text="confidence")).to_be_visible()
    # the evidence picture: graphviz svg with the answer among its nodes
    svg = page.locator('[data-testid="stGraphVizChart"] svg')
    expect(svg).to_be_visible()
    expect(svg.locator("g.node text", has_text=answer).first).to_be_visible()
    expect(page.get_by_text("Relations followed per hop")).to_be_visible()
    expect(page.get_by_text("What each modality contributed")).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    snap(page, "ask")
    assert app.process.poll() is None, app.log_tail()
