"""The Playground in a real browser: pick a finished run in the dropdown, chat two turns, both sides answer.

One tiny SFT run (a few steps) trains through ctx.queue while the page opens; screenshots at 1280 px, light and
dark, go to the test's folder (and $STUDIO_TEST_ARTIFACTS).  Fixtures and helpers: tests/browser_kit.py.
"""

from browser_kit import open_page, save, wait

from ui.context import DEMO_QUESTION

RUN = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "peft": {"type": "lora", "r": 4, "lora_alpha": 8},
    "data": {"source": "data/demo/sft_train.jsonl", "eval_size": 0, "max_samples": 8},
    "training": {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 64, "logging_steps": 1},
}
REPLIES = "() => [...document.querySelectorAll('#playground-{side} [data-testid=\"bot\"]')].map(e => e.innerText)"

PICKED = "() => [...document.querySelectorAll('input')].some(e => e.value.startsWith('pg-demo · sft'))"


def replies(page, side: str) -> list[str]:
    return page.evaluate(REPLIES.replace("{side}", side))


def both_answered(page, turns: int) -> bool:
    """Each chatbot shows `turns` replies, and the page is not busy streaming any more."""
    done = all(len(replies(page, side)) == turns for side in ("base", "tuned"))
    return done and page.locator(".generating, .pending").count() == 0


def test_chat_with_a_finished_run_side_by_side(playwright_api, studio, tmp_path):
    url, ctx = studio
    run_id = ctx.queue.submit(RUN, "local", name="pg-demo")
    problems: list[str] = []
    with open_page(playwright_api, url, problems, width=1280, height=900) as page:
        assert wait(lambda: ctx.queue.get(run_id, "local").status not in ("queued", "running"), 120, every=1)
        assert ctx.queue.get(run_id, "local").status == "succeeded"
        page.get_by_role("tab", name="Playground").click()
        picker = page.get_by_label("Adapter: one of your finished runs, or a Hub adapter id")
        picker.click()
        page.get_by_role("option", name="pg-demo · sft").click()
        page.wait_for_function(PICKED)
        message = page.locator("#playground-message textarea")
        assert message.input_value() == DEMO_QUESTION
        send = page.get_by_role("button", name="Send to both")
        send.click()
        assert wait(lambda: both_answered(page, 1), 45), (replies(page, "base"), replies(page, "tuned"), problems)
        message.fill("And the opposite of up?")
        send.click()
        assert wait(lambda: both_answered(page, 2), 45), (replies(page, "base"), replies(page, "tuned"), problems)
        assert all(all(text.strip() for text in replies(page, side)) for side in ("base", "tuned"))
        assert ctx.chat_cache.loads == 1  # the second message reused the loaded model
        save(page, tmp_path, "playground-1280-light.png")
    with open_page(playwright_api, url, problems, width=1280, height=900, dark=True) as page:
        page.get_by_role("tab", name="Playground").click()
        page.wait_for_function(PICKED)  # preselected when the tab opens: the newest of my finished runs
        page.get_by_role("button", name="Send to both").click()
        assert wait(lambda: both_answered(page, 1), 45), problems
        save(page, tmp_path, "playground-1280-dark.png")
    assert not problems, problems
