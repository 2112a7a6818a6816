"""A new user's first hour, in one browser session (issue 21's done-when): upload a file and map its columns on
the Data tab, carry it to the Train tab with one click, start two runs, reload the page and find the running run
selected with the next one's place in line, see the finished run's summary, find it in the Playground's list, and
a screenshot of every tab at 1280 px.  The run pauses at a step barrier while the page is checked (never the clock).

Fixtures and helpers: tests/browser_kit.py.
"""

import json
import re

import yaml
from browser_kit import navigate, open_page, save, wait
from helpers import StepBarrier

from core.runfolder import RunFolder

MAX_STEPS = 12
PAUSE_AT = 4
MAPPING = "prompt=question, completion=answer"
# Where the Train tab's YAML editor's last line number and its last line of text end: they must be level
GUTTER_JS = """() => { const e = document.querySelector('#train-config');
  const numbers = Array.from(e.querySelectorAll('.cm-lineNumbers .cm-gutterElement')).filter(g => g.innerText);
  const lines = Array.from(e.querySelectorAll('.cm-line'));
  return [numbers.at(-1).getBoundingClientRect().bottom, lines.at(-1).getBoundingClientRect().bottom]; }"""
EDITOR_JS = "() => (document.querySelector('#train-config .cm-content') || {}).innerText || ''"


def _upload_file(folder):
    """A small Q&A file whose columns the doctor cannot guess (question/answer): it needs the mapping."""
    path = folder / "my_sums.jsonl"
    rows = [
        {"question": f"What is {a} plus {b}?", "answer": f"{a} plus {b} is {a + b}."}
        for a in range(8)
        for b in range(6)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _start(page, known) -> str | None:
    """Press Start; the id of the run it queued (one not in `known`)."""
    page.get_by_role("button", name="Start", exact=True).click()
    info = page.get_by_text(re.compile(r"Queued \S+ — follow it on the Runs tab")).first

    def queued():
        match = re.search(r"Queued (\S+) —", info.inner_text()) if info.count() else None
        return match.group(1) if match and match.group(1) not in known else None

    return wait(queued, 60)


def _status(page) -> str:
    return page.locator("#runs-status").inner_text()


def test_upload_map_carry_train_reload_and_find_the_run_everywhere(playwright_api, studio, tmp_path, monkeypatch):
    url, ctx = studio
    barrier = StepBarrier(tmp_path / "barrier", PAUSE_AT)  # the runs pause after step 4 until released
    for key, value in barrier.env.items():
        monkeypatch.setenv(key, value)
    upload = _upload_file(tmp_path)
    problems: list[str] = []
    with open_page(playwright_api, url, problems, width=1280, height=900) as page:
        # Data tab: upload, map, check; the doctor says trainable and offers to carry it.
        page.get_by_role("tab", name="Data").first.click()
        page.locator("#data-upload input[type=file]").set_input_files(str(upload))
        page.wait_for_function("n => document.querySelector('#data-upload')?.innerText.includes(n)", arg=upload.stem)
        page.get_by_label("Column mapping when detection is unsure", exact=False).fill(MAPPING)
        page.get_by_role("button", name="Check data").click()
        page.locator("#data-use").wait_for(state="visible")
        save(page, tmp_path, "journey-1-data.png")
        page.locator("#data-use").click()

        # Train tab (selected by the carry): its YAML trains the saved upload with the mapping.
        page.wait_for_function(f"() => ({EDITOR_JS})().includes('{upload.stem}')")
        assert page.get_by_role("tab", name="Train", selected=True).count() == 1
        doc = yaml.safe_load(page.evaluate(EDITOR_JS))
        assert doc["method"] == "sft" and doc["data"]["source"].endswith(upload.name), doc["data"]
        assert doc["data"]["source"] != str(upload), "the upload is kept in the owner's folder, not read from /tmp"
        assert doc["data"]["columns"] == {"prompt": "question", "completion": "answer"}, doc["data"]
        max_steps = page.get_by_label("Max steps (0 = use epochs)")
        max_steps.fill(str(MAX_STEPS))
        max_steps.press("Tab")
        page.wait_for_function(f"() => ({EDITOR_JS})().includes('max_steps: {MAX_STEPS}')")
        assert yaml.safe_load(page.evaluate(EDITOR_JS))["data"]["columns"] == doc["data"]["columns"]
        summary = page.locator("#train-summary")
        wait(lambda: re.search(r"\d+ rows", summary.inner_text()), 60)
        number_end, text_end = page.evaluate(GUTTER_JS)
        assert abs(number_end - text_end) < 2, f"the line numbers end at {number_end} px, the text at {text_end} px"
        save(page, tmp_path, "journey-2-train.png")

        first = _start(page, ())
        second = _start(page, (first,))  # it waits in line behind the first
        assert first and second, (first, second)
        barrier.wait(lambda: ctx.queue.get(first, "local").status in ("queued", "running"))

        # A reload selects the running run (not the newest row) and shows the next one's place in line.
        navigate(page, problems)
        page.get_by_role("tab", name="Runs").click()
        run_box = page.get_by_label("Selected run id")
        wait(lambda: run_box.input_value() == first and "running" in _status(page), 30)
        assert run_box.input_value() == first and "running" in _status(page), _status(page)
        table = page.locator("#runs-table")
        wait(lambda: "1st in line" in table.inner_text(), 20)
        assert second in table.inner_text() and "1st in line" in table.inner_text()
        save(page, tmp_path, "journey-3-runs-running.png")
        run_box.fill(second)
        wait(lambda: "queued — 1st in line" in _status(page), 20)
        assert "queued — 1st in line" in _status(page), _status(page)

        # Released, the first run finishes: its summary shows.
        barrier.release()
        wait(lambda: ctx.queue.get(first, "local").status not in ("queued", "running"), 240, every=1.0)
        assert ctx.queue.get(first, "local").status == "succeeded", ctx.queue.get(first, "local")
        run_box.fill(first)
        # hidden while the running run was selected (not in the page): wait for it to be there, then read it
        page.locator("#runs-summary").get_by_text("Summary (succeeded)").wait_for(timeout=60_000)
        assert "held-out loss" in page.locator("#runs-summary").inner_text()
        save(page, tmp_path, "journey-4-runs-finished.png")

        # The Playground lists the finished run to pick (no id to type).
        page.get_by_role("tab", name="Playground").click()
        picker = page.get_by_label("Adapter: one of your finished runs", exact=False)
        picked = ctx.queue.get(first, "local").name  # the run chosen on the Runs tab, shown by its name
        wait(lambda: picked in picker.input_value(), 20)
        assert picked in picker.input_value() and "SFT" in picker.input_value().upper(), picker.input_value()
        save(page, tmp_path, "journey-5-playground.png")
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-config").wait_for()
        save(page, tmp_path, "journey-6-compare.png")

    # The run trained that file with that mapping: its own config says so and it kept every row the doctor kept.
    folder = RunFolder(ctx.queue.get(first, "local").run_dir)
    config = yaml.safe_load(folder.config_path.read_text())
    assert config["data"]["columns"] == {"prompt": "question", "completion": "answer"}
    assert config["data"]["source"] == doc["data"]["source"]
    trained = json.loads((folder.path / "summary.json").read_text())
    assert trained["status"] == "succeeded" and trained["global_step"] == MAX_STEPS
    assert trained["data"]["train_rows"] + trained["data"]["eval_rows"] == 48, trained["data"]
    assert not problems, problems
