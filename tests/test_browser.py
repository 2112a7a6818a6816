"""The app in a real browser: build a config on the Train tab, Start it, watch the Loss curve on the Runs tab.

Fixtures and helpers: tests/browser_kit.py.
"""

import re

import yaml
from browser_kit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _loss_plot,
    _renders_correctly,
    _save,
    _train_line,
    _wait,
    navigate,
)

from ui import api_names

MAX_STEPS = 60
LOGGING_STEPS = 2


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

            # Train tab: the form (offline demo defaults); Max steps through its field writes into the YAML shown.
            page.get_by_role("tab", name="Train").click()
            assert page.get_by_label("Base model (Hub id or local path)").input_value() == "demo-tiny"
            max_steps = page.get_by_label("Max steps (0 = use epochs)")
            max_steps.fill(str(MAX_STEPS))
            max_steps.press("Tab")
            editor = page.locator("#train-config .cm-content")
            page.wait_for_function(
                "n => (document.querySelector('#train-config .cm-content') || {}).innerText?.includes('max_steps: ' + n)",
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
            queued.wait_for(timeout=60_000)  # the data check and the tokenizer run first
            run_id = re.search(r"Queued (\S+) —", queued.inner_text()).group(1)
            assert ctx.queue.get(run_id, "local").status in ("queued", "running", "succeeded")

            # Runs tab: the timer (2 s) selects the run and draws its curves while it trains.
            page.get_by_role("tab", name="Runs").click()
            run_box = page.get_by_label("Selected run id")
            assert _wait(lambda: run_box.input_value() == run_id, 30), run_box.input_value()

            def progressed():
                state = client.predict(run_id, api_name="/" + api_names.RUN_STATUS)
                return state if state["step"] >= 2 * LOGGING_STEPS else None

            state = _wait(progressed, 75, every=1.0)
            assert state, (
                f"the run did not log two points: {client.predict(run_id, api_name='/' + api_names.RUN_STATUS)}"
            )
            assert state["status"] in ("running", "succeeded") and state["max_steps"] == MAX_STEPS, state
            assert state["latest"]["loss"] > 0 and 0 < state["progress"] <= 1, state
            drawn = _wait(lambda: _train_line(_loss_plot(page)), 45)
            live = _loss_plot(page)
            assert drawn, f"the Loss plot drew no train curve: {live}"
            page.get_by_text(re.compile(rf"(running|succeeded) — step \d+ of {MAX_STEPS}")).first.wait_for()
            shot = _save(page, tmp_path, "runs_tab.png")
            assert shot.stat().st_size > 10_000

            # A fresh page whose plot starts with data must render it right (numeric axes, visible line).
            navigate(page, problems)
            page.get_by_role("tab", name="Runs").click()
            fresh = _wait(lambda: _renders_correctly(_loss_plot(page)) and _loss_plot(page), 45)
            _save(page, tmp_path, "runs_tab_reloaded.png")
            assert fresh, f"the Loss plot of a reloaded page is wrong: {_loss_plot(page)}"
        finally:
            browser.close()

    assert not problems, problems
    after = client.predict(run_id, api_name="/" + api_names.RUN_STATUS)
    assert after["step"] >= state["step"] and after["status"] in ("running", "succeeded"), after
    # The live plot (the run started while the page was open) has numeric axes and a visible train line.
    assert _renders_correctly(live), f"Loss plot wrong while the run trains: {live['axes']}, {_train_line(live)}"
