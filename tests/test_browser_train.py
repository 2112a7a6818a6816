"""The Train tab in a real browser: the YAML shows the form's config on load, a form change writes into it and
keeps a hand-added key, typing in it fills the form, and the summary line follows it; screenshots of the Train
and Compare tabs at 1280 px, light and dark.  Fixtures and helpers: tests/browser_kit.py."""

import yaml
from browser_kit import open_page, save, wait

EDITOR = "#train-config .cm-content"


def _yaml(page) -> dict | None:
    try:
        docs = [d for d in yaml.safe_load_all(page.locator(EDITOR).inner_text()) if d]
    except yaml.YAMLError:
        return None
    return docs[0] if len(docs) == 1 else None


def _replace_yaml(page, doc: dict) -> None:
    page.locator(EDITOR).click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(yaml.safe_dump(doc, sort_keys=False))


def test_form_and_yaml_stay_one_truth(playwright_api, studio, tmp_path):
    url, _ = studio
    problems: list[str] = []
    with open_page(playwright_api, url, problems, width=1280, height=800) as page:
        page.get_by_role("tab", name="Train").click()
        shown = wait(lambda: _yaml(page), 15)
        assert shown and shown["method"] == "sft" and shown["model"]["name_or_path"] == "demo-tiny", shown

        # a key the form does not show, typed into the YAML, survives a form change
        shown["training"]["warmup_steps"] = 3
        _replace_yaml(page, shown)
        steps = page.get_by_label("Max steps (0 = use epochs)")
        steps.fill("30")
        steps.press("Tab")
        merged = wait(lambda: (d := _yaml(page)) and d["training"].get("max_steps") == 30 and d, 15)
        assert merged and merged["training"]["warmup_steps"] == 3, page.locator(EDITOR).inner_text()

        # an edit of the YAML fills the form field it covers
        merged["training"]["learning_rate"] = 0.001
        _replace_yaml(page, merged)
        lr = page.get_by_label("Learning rate (first stage)")
        assert wait(lambda: lr.input_value() == "0.001", 15), lr.input_value()

        # the summary line follows the YAML shown: the doctor's rows, the steps it says
        summary = page.locator("#train-summary")
        assert wait(lambda: "30 steps at effective batch 8" in summary.inner_text(), 30), summary.inner_text()
        assert "rows" in summary.inner_text() and "tokens per epoch" in summary.inner_text()
        # the estimate's tables: no word or number breaks inside a cell; a wide table scrolls, the page does not
        page.get_by_role("button", name="Estimate memory, time and cost").click()
        cell = page.locator(".prose table td").first
        cell.wait_for()
        breaks = cell.evaluate("td => [getComputedStyle(td).wordBreak, getComputedStyle(td).overflowWrap]")
        assert breaks == ["normal", "normal"], breaks
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        save(page, tmp_path, "train_1280_light.png")
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-config .cm-content").wait_for()
        save(page, tmp_path, "compare_1280_light.png")

    with open_page(playwright_api, url, problems, width=1280, height=800, dark=True) as page:
        page.get_by_role("tab", name="Train").click()
        assert wait(lambda: _yaml(page), 15)
        wait(lambda: "effective batch" in page.locator("#train-summary").inner_text(), 30)
        save(page, tmp_path, "train_1280_dark.png")
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-config .cm-content").wait_for()
        save(page, tmp_path, "compare_1280_dark.png")
    assert not problems, problems
