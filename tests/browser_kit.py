"""What every browser test shares: headless Chromium through Playwright, the app on a loopback port, waits,
screenshots and the vega-lite plot reader.

    def test_x(playwright_api, studio, tmp_path):   # fixtures, registered in tests/conftest.py
        with open_page(playwright_api, studio[0], problems) as page: ...

Headless Chromium (Debian's `chromium` package) driven by Playwright for Python; no `playwright install`.
Skipped when either is missing, except under CI (the CI variable set), where that is a failure.
Screenshots go to the test's folder and to $STUDIO_TEST_ARTIFACTS when set.
"""

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000

# Every vega-lite plot rendered as SVG: its axes (aria-label says "linear" or "discrete" scale) and its line
# marks (the path, and the stroke colour; a line without a stroke is invisible).
PLOTS_JS = """() => Array.from(document.querySelectorAll('svg.marks')).map(svg => ({
  title: (svg.querySelector('[aria-label^="Title text"]') || {getAttribute: () => ''}).getAttribute('aria-label'),
  axes: Array.from(svg.querySelectorAll('[aria-roledescription="axis"]')).map(a => a.getAttribute('aria-label')),
  lines: Array.from(svg.querySelectorAll('path[aria-roledescription="line mark"]')).map(p => ({
    label: p.getAttribute('aria-label'), d: p.getAttribute('d') || '', stroke: p.getAttribute('stroke')})),
}))"""


@pytest.fixture
def playwright_api():
    """Playwright's sync API, or a skip (outside CI) / failure (in CI) when it or Chromium is missing."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install them (.ci/run)")
        pytest.skip(message)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _loss_plot(page) -> dict | None:
    return next((p for p in page.evaluate(PLOTS_JS) if p["title"] == "Title text 'Loss'"), None)


def _train_line(plot: dict | None) -> dict | None:
    """The Loss plot's train curve once it joins at least two points (a path with a segment: 'L')."""
    lines = [ln for ln in (plot or {}).get("lines", []) if "series: train" in (ln["label"] or "")]
    return next((ln for ln in lines if "L" in ln["d"]), None)


def _renders_correctly(plot: dict | None) -> bool:
    """Numeric axes and a visible (stroked) train curve: what a person looking at the plot needs."""
    line = _train_line(plot)
    axes = (plot or {}).get("axes", [])
    return bool(line and line["stroke"] and axes and all("linear scale" in a for a in axes))


def _wait(predicate, timeout, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def _save(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    artifacts = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", tmp_path))
    if artifacts.resolve() != tmp_path.resolve():
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, artifacts / name)
    return shot


@pytest.fixture
def studio(home, monkeypatch):
    """The app on a free loopback port with its own STUDIO_HOME and run worker; yields (url, ctx)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the page preselects the offline demo model and data

    import app

    ctx = app.make_context()
    assert ctx.home == home.resolve() and not ctx.online
    stop = threading.Event()  # app.start_worker without a way to stop it; this one stops at teardown
    worker = threading.Thread(target=ctx.worker.run, kwargs={"stop": stop.is_set}, name="run-worker", daemon=True)
    worker.start()
    demo = app.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        yield demo.local_url, ctx
    finally:
        for run in ctx.queue.list("local"):
            if run.status in ("queued", "running"):
                ctx.queue.cancel(run.id, "local")
        _wait(lambda: all(r.status not in ("queued", "running", "cancelling") for r in ctx.queue.list("local")), 60)
        stop.set()
        worker.join(timeout=10)
        demo.close()


save = _save  # public names for other browser test modules
wait = _wait


# What the page being left logs while it is torn down: its in-flight requests (a timer tick) are aborted. Not the
# app's errors, and only dropped when they come during a navigation the test itself made.
LEAVING_NOISE = ("AbortError: signal is aborted", "Connection errored out")


def navigate(page, problems: list[str], url: str | None = None) -> None:
    """Reload the page (or go to `url`) without counting the old page's aborted requests as problems."""
    before = len(problems)
    page.reload() if url is None else page.goto(url)
    problems[before:] = [p for p in problems[before:] if not any(noise in p for noise in LEAVING_NOISE)]


@contextmanager
def open_page(playwright_api, url: str, problems: list[str], width: int = 1400, height: int = 1000, dark=False):
    """A Chromium page on the app; uncaught page errors and console errors are appended to `problems`."""
    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
            page.goto(url + ("?__theme=dark" if dark else ""))
            yield page
        finally:
            browser.close()
