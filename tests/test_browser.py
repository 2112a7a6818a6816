"""The app in a real browser: build a config on the Train tab, Start it, watch the Loss curve on the Runs tab.

Headless Chromium (Debian's `chromium` package) driven by Playwright for Python; no `playwright install`.
Skipped when either is missing, except under CI (the CI variable set), where that is a failure.
Screenshots go to the test's folder and to $STUDIO_TEST_ARTIFACTS when set.
"""

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from ui import api_names

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
MAX_STEPS = 60
LOGGING_STEPS = 2
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


def test_start_a_run_in_the_browser_and_watch_its_loss_curve(playwright_api, studio, tmp_path):
    from gradio_client import Client

    url, ctx = studio
    client = Client(url, verbose=False)
    problems: list[str] = []  # uncaught page errors and console errors: a handler raising shows up here

    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
            page.goto(url)

            # Train tab: the form (offline demo defaults), Max steps through its field, then Build.
            page.get_by_role("tab", name="Train").click()
            assert page.get_by_label("Base model (Hub id or local path)").input_value() == "demo-tiny"
            max_steps = page.get_by_label("Max steps (0 = use epochs)")
            max_steps.fill(str(MAX_STEPS))
            max_steps.press("Tab")
            page.get_by_role("button", name="Build config from the form").click()
            editor = page.locator(".cm-content").first
            page.wait_for_function(
                "n => (document.querySelector('.cm-content') || {}).innerText?.includes('max_steps: ' + n)",
                arg=MAX_STEPS,
            )
            built = yaml.safe_load(editor.inner_text())
            assert built["method"] == "sft" and built["model"]["name_or_path"] == "demo-tiny"
            assert built["training"]["max_steps"] == MAX_STEPS

            # Edit the YAML in the editor like a person would: select all, paste the new text.
            built["training"]["logging_steps"] = LOGGING_STEPS  # points appear every 2 steps
            edited = yaml.safe_dump(built, sort_keys=False)
            editor.click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(edited)
            _wait(lambda: yaml.safe_load(editor.inner_text()) == built, 10, every=0.2)
            assert yaml.safe_load(editor.inner_text()) == built, editor.inner_text()

            page.get_by_role("button", name="Start", exact=True).click()
            queued = page.get_by_text(re.compile(r"Queued \S+ — follow it on the Runs tab")).first
            queued.wait_for()
            run_id = re.search(r"Queued (\S+) —", queued.inner_text()).group(1)
            assert ctx.queue.get(run_id, "local").status in ("queued", "running", "succeeded")

            # Runs tab: the timer (2 s) selects the run and draws its curves while it trains.
            page.get_by_role("tab", name="Runs").click()
            run_box = page.get_by_label("Selected run id")
            page.wait_for_function(
                "id => Array.from(document.querySelectorAll('textarea, input')).some(e => e.value === id)",
                arg=run_id,
            )
            assert run_box.input_value() == run_id

            def progressed():
                state = client.predict(run_id, api_name="/" + api_names.RUN_STATUS)
                return state if state["step"] >= 2 * LOGGING_STEPS else None

            state = _wait(progressed, 75, every=1.0)
            assert state, (
                f"the run did not log two points: {client.predict(run_id, api_name='/' + api_names.RUN_STATUS)}"
            )
            assert state["status"] in ("running", "succeeded") and state["max_steps"] == MAX_STEPS, state
            assert state["latest"]["loss"] > 0 and 0 < state["progress"] <= 1, state
            drawn = _wait(lambda: _train_line(_loss_plot(page)), 20)
            live = _loss_plot(page)
            assert drawn, f"the Loss plot drew no train curve: {live}"
            page.get_by_text(re.compile(rf"(running|succeeded) — step \d+ of {MAX_STEPS}")).first.wait_for()
            shot = _save(page, tmp_path, "runs_tab.png")
            assert shot.stat().st_size > 10_000

            # A fresh page whose plot starts with data must render it right (numeric axes, visible line).
            page.reload()
            page.get_by_role("tab", name="Runs").click()
            fresh = _wait(lambda: _renders_correctly(_loss_plot(page)) and _loss_plot(page), 20)
            _save(page, tmp_path, "runs_tab_reloaded.png")
            assert fresh, f"the Loss plot of a reloaded page is wrong: {_loss_plot(page)}"
        finally:
            browser.close()

    assert not problems, problems
    after = client.predict(run_id, api_name="/" + api_names.RUN_STATUS)
    assert after["step"] >= state["step"] and after["status"] in ("running", "succeeded"), after
    # The live plot (the run started while the page was open) has numeric axes and a visible train line.
    assert _renders_correctly(live), f"Loss plot wrong while the run trains: {live['axes']}, {_train_line(live)}"
