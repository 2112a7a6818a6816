"""The Data tab in a real browser: upload a file with a column mapping, Check it, see the trained tokens of its
first row highlighted, the token histogram and the findings table, and the button that hands it to training;
screenshots at 1280 px in the light and the dark theme, with nothing wider than the window.

Fixtures and helpers: tests/browser_kit.py.
"""

from browser_kit import navigate, open_page, save, wait
from helpers import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "bad" / "wrong_columns.jsonl"  # columns foo / bar: needs a mapping
MAPPING = "prompt=foo, completion=bar"

# The highlighted spans of the loss-mask view (gradio marks each labelled span with its category's colour).
SPANS_JS = """() => Array.from(document.querySelectorAll('#data-mask .token')).map(s => ({
  text: s.innerText, highlighted: s.classList.contains('highlighted'), background: getComputedStyle(s).backgroundColor}))"""
# Anything wider than the window, or an output box that scrolls sideways.
OVERFLOW_JS = """() => {
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  const boxes = ['#data-mask', '#data-findings', '#data-hist'].map(id => document.querySelector(id)).filter(Boolean);
  return {wide, sideways: boxes.filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.id)};
}"""


def _plain(color: str) -> bool:
    return color in ("", "transparent", "rgba(0, 0, 0, 0)")


def _painted(spans: list[dict]) -> list[dict] | None:
    """The spans once every highlighted one has its colour, else None."""
    marked = [s for s in spans if s["highlighted"]]
    return spans if marked and not any(_plain(s["background"]) for s in marked) else None


def _check_upload(page) -> dict:
    """Upload the fixture with its mapping, Check it, see the loss mask, histogram, findings and carry button."""
    page.get_by_role("tab", name="Data").first.click()
    page.get_by_role("button", name="Check data").wait_for()
    page.locator("#data-upload input[type=file]").set_input_files(str(FIXTURE))
    page.get_by_label("Column mapping when detection is unsure", exact=False).fill(MAPPING)
    page.wait_for_function("n => document.querySelector('#data-upload')?.innerText.includes(n)", arg=FIXTURE.stem)
    page.get_by_role("button", name="Check data").click()

    page.locator("#data-use").wait_for(state="visible")  # "Use this data for training": the doctor said trainable
    # gradio paints a category's colour a render after the spans appear: wait for the paint, not just the spans.
    spans = wait(lambda: _painted(page.evaluate(SPANS_JS)), 20) or page.evaluate(SPANS_JS)
    trained = [s for s in spans if "water boils at 212" in s["text"]]
    assert trained and trained[0]["highlighted"] and not _plain(trained[0]["background"]), spans  # the completion
    prompt = [s for s in spans if "boiling point of water" in s["text"]]
    assert prompt and not prompt[0]["highlighted"], spans  # its prompt is context
    page.locator("#data-hist svg.marks").first.wait_for()
    hist = page.locator("#data-hist")  # vega draws the legend after the svg exists
    assert wait(lambda: "cut past max length" in hist.inner_text(), 20), hist.inner_text()  # the cut, in the legend
    findings = page.locator("#data-findings").get_by_text("tiny")  # 5 rows: the doctor's warning
    assert wait(lambda: findings.count() >= 1, 20), page.locator("#data-findings").inner_text()
    assert page.get_by_text("Trainable by SFT").count() == 1
    return page.evaluate(OVERFLOW_JS)


def test_check_an_upload_see_its_loss_mask_and_carry_it(playwright_api, studio, tmp_path):
    url, _ = studio
    problems: list[str] = []
    with open_page(playwright_api, url, problems, width=1280, height=900) as page:
        light = _check_upload(page)
        save(page, tmp_path, "data-tab-1280-light.png")
        navigate(page, problems, url + "?__theme=dark")
        dark = _check_upload(page)
        save(page, tmp_path, "data-tab-1280-dark.png")
    assert light == dark == {"wide": False, "sideways": []}, (light, dark)
    assert not problems, problems
