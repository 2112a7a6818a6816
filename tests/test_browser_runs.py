"""The Runs tab in a real browser: two finished tiny runs (the session's demo SFT and DPO runs, copied into this
test's home), a reload shows the summary, both overlay, Delete asks first; screenshots at 1280 px in the light and
the dark theme. Fixtures and helpers: tests/browser_kit.py."""

import re
import shutil
import time

from browser_kit import PLOTS_JS, _loss_plot, _train_line, open_page, save, wait

from jobs import status
from jobs.store import new_run_id

OVERLAY = "Title text 'Train loss of the selected runs'"
# The held-out plot's marks: evaluations drawn as points ("point" symbols), never joined by a line.
HELD_OUT_JS = """() => Array.from(document.querySelectorAll('svg.marks')).filter(svg =>
  (svg.querySelector('[aria-label^="Title text"]') || {getAttribute: () => ''}).getAttribute('aria-label')
    === "Title text 'Held-out loss'").map(svg => ({
  points: svg.querySelectorAll('path[aria-roledescription="point"]').length,
  lines: svg.querySelectorAll('path[aria-roledescription="line mark"]').length}))[0]"""


def _adopt(ctx, run_dir, name: str) -> str:
    """A finished run folder made by the session fixture, as one of "local"'s runs in this app's home."""
    run_id = new_run_id()
    target = ctx.home / "runs" / run_id
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints"))
    ctx.queue.store.add("local", name, str(target), run_id)
    ctx.queue.store.update(run_id, "local", status="succeeded", started_at=time.time(), finished_at=time.time())
    return run_id


def _fits(page) -> bool:
    """Nothing wider than the window (a clipped or overlapping layout scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_runs_tab_summary_overlay_and_delete_confirmation(playwright_api, studio, sft_then_dpo, tmp_path):
    url, ctx = studio
    ids = [_adopt(ctx, folder, name) for folder, name in zip(sft_then_dpo, ("sft", "dpo"), strict=True)]
    labels = [status.run_label(ctx.queue.get(i, "local")) for i in ids]
    problems: list[str] = []

    with open_page(playwright_api, url, problems, width=1280, height=900) as page:
        page.get_by_role("tab", name="Runs").click()
        # the newest run is selected by itself and its summary.json numbers show, formatted
        summary = page.get_by_text(re.compile(r"Summary \(succeeded\) — held-out loss \d\S* → \d")).first
        if not wait(summary.is_visible, 45):
            save(page, tmp_path, "runs_tab_no_summary.png")
            raise AssertionError(f"no summary: {problems} {page.inner_text('body')[:2000]}")
        assert page.get_by_label("Selected run id").input_value() == ids[-1]
        assert re.search(r"\d+ steps · [\d,]+ tokens · wall time \d+ (s|min) · peak memory \d", summary.inner_text())

        def titles():
            return [p["title"] for p in page.evaluate(PLOTS_JS)]

        # the DPO run: its method's metrics, each on its own chart; held-out loss as points
        assert wait(lambda: "Title text 'rewards/margins'" in titles(), 30), titles()
        held_out = wait(
            lambda: (page.evaluate(HELD_OUT_JS) or {}).get("points") == 2 and page.evaluate(HELD_OUT_JS), 30
        )
        assert held_out == {"points": 2, "lines": 0}, page.evaluate(HELD_OUT_JS)  # before and after: two points
        assert wait(lambda: _train_line(_loss_plot(page)), 30), _loss_plot(page)

        page.get_by_text("Compare runs: overlay their loss and diff their configs").click()
        picker = page.get_by_label("Runs to compare (two or more of yours)")
        for label in labels:
            picker.click()
            page.get_by_role("option", name=label).click()
        page.keyboard.press("Escape")
        page.get_by_text("training.beta").filter(visible=True).first.wait_for()  # a DPO setting the SFT run lacks

        def overlay_lines():
            plot = next((p for p in page.evaluate(PLOTS_JS) if p["title"] == OVERLAY), None)
            lines = [ln for ln in (plot or {}).get("lines", []) if "L" in ln["d"] and ln["stroke"]]
            return len(lines) == 2 and lines

        assert wait(overlay_lines, 30), page.evaluate(PLOTS_JS)
        assert _fits(page)
        save(page, tmp_path, "runs_tab_1280_light.png")

        page.get_by_role("button", name="Delete", exact=True).click()
        question = page.get_by_text("and its files? This cannot be undone.")
        question.wait_for()
        assert ids[-1] in question.inner_text() and len(ctx.queue.list("local")) == 2  # asking deleted nothing
        page.get_by_role("button", name="Keep").click()
        question.wait_for(state="hidden")
        page.get_by_role("button", name="Delete", exact=True).click()
        page.get_by_role("button", name="Confirm delete").click()
        done = page.locator("#runs-action").get_by_text(f"Deleted run {ids[-1]} and its files.")
        done.wait_for()
        assert [r.id for r in ctx.queue.list("local")] == ids[:1]
        # the next refreshes drop the run from the table and select the other one; the answer stays on the page
        table, box = page.locator("#runs-table"), page.get_by_label("Selected run id")
        assert wait(lambda: ids[-1] not in table.inner_text() and box.input_value() == ids[0], 30), table.inner_text()
        assert done.is_visible()

    with open_page(playwright_api, url, problems, width=1280, height=900, dark=True) as page:
        page.get_by_role("tab", name="Runs").click()
        page.get_by_text(re.compile(r"Summary \(succeeded\)")).first.wait_for()
        assert page.get_by_label("Selected run id").input_value() == ids[0]
        assert wait(lambda: _train_line(_loss_plot(page)), 20), _loss_plot(page)
        shown = [p["title"] for p in page.evaluate(PLOTS_JS)]  # the SFT run has no method chart
        assert "Title text 'Loss'" in shown and not [t for t in shown if "rewards/" in t], shown
        assert _fits(page)
        save(page, tmp_path, "runs_tab_1280_dark.png")
    assert not problems, problems
