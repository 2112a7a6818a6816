"""The pairwise LLM judge (evaluation/judges/llm.py) against a loopback OpenAI-compatible server
(tests/fakeinference) and, offline, with the demo model as a local judge.

Win-rate rule under test: a prompt is a win for an arm only when both orders (A's reply shown first, then B's
shown first) pick that arm; a flip, a "tie" verdict or an unparseable verdict makes it a tie; win rate =
(wins + ties / 2) / prompts."""

import logging

import pytest
from fakeinference import ChatRequest, FakeInference
from helpers import PLANTED_TOKEN

from core.errors import ConfigError
from evaluation.judges import llm
from evaluation.judges.llm import JudgeError, JudgeSettings, PairwiseJudge, judge_pairs, parse_verdict, summarize

USER_TOKEN = "hf_signedInUserToken0123456789abcdefXYZ"  # the signed-in user's: token-shaped, not the environment's
PROMPTS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"}] for i in range(10)
]
REPLIES_A = [f"alpha answer {i}" for i in range(10)]
REPLIES_B = [f"beta answer {i}" for i in range(10)]


@pytest.fixture
def fake(monkeypatch):
    """A FakeInference that accepts only USER_TOKEN, with this process allowed to reach it (the suite runs with
    HF_HUB_OFFLINE=1, which huggingface_hub's session applies to every URL) and without retry waits."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(llm, "RETRY_DELAY_S", 0.0)
    with FakeInference(tokens={USER_TOKEN}) as server:
        yield server


def settings(fake, **extra):
    return {"backend": "inference", "model": "judges/fair-judge", "base_url": fake.base_url, **extra}


def prompt_index(request: ChatRequest) -> int:
    return next(i for i in range(10) if f"Question {i}?" in request.text)


def scripted(request: ChatRequest) -> str:
    """6 prompts where the judge prefers alpha whatever the order, 2 where it always says the first reply (a flip),
    2 where it prefers beta."""
    i = prompt_index(request)
    shown_first = request.first_of(REPLIES_A[i], REPLIES_B[i])
    if i < 6:
        choice = "A" if shown_first == REPLIES_A[i] else "B"
    elif i < 8:
        choice = "A"
    else:
        choice = "B" if shown_first == REPLIES_A[i] else "A"
    return f"Both replies answer; one is better.\n\nVerdict: {choice}"


def test_both_orders_are_asked_and_the_win_rate_follows_the_rule(fake):
    fake.script(scripted)
    records = judge_pairs(PROMPTS, REPLIES_A, REPLIES_B, settings(fake), token=USER_TOKEN)

    assert len(fake.requests) == 20 and all(r.status == 200 for r in fake.requests)
    for i in range(10):  # each prompt asked once with A's reply first and once with B's first
        asked = [r for r in fake.requests if prompt_index(r) == i]
        assert sorted(r.first_of(REPLIES_A[i], REPLIES_B[i]) for r in asked) == sorted([REPLIES_A[i], REPLIES_B[i]])
        assert all("Be brief." in r.text for r in asked)  # the whole conversation, system turn included
    for request in fake.requests:
        assert request.headers["authorization"] == f"Bearer {USER_TOKEN}"
        assert request.model == "judges/fair-judge"
        assert request.body["temperature"] == 0 and request.body["max_tokens"] == 384
        assert request.messages[-1]["content"].rstrip().endswith("Verdict: tie")  # the rubric's answer format

    assert [r["prompt_index"] for r in records] == list(range(10))
    assert [r["outcome"] for r in records] == ["a"] * 6 + ["tie"] * 2 + ["b"] * 2
    assert all((r["first_order"], r["second_order"]) == ("A", "A") for r in records[:6])
    assert all((r["first_order"], r["second_order"]) == ("A", "B") for r in records[6:8])  # flips, in arm terms
    assert all((r["first_order"], r["second_order"]) == ("B", "B") for r in records[8:])
    assert all(len(r["raw"]) == 2 and r["raw"][0].endswith("Verdict: A") for r in records[:8])

    summary = summarize(records, settings(fake))
    assert summary["wins_a"] == 6 and summary["wins_b"] == 2 and summary["ties"] == 2
    assert summary["ties_from_flips"] == 2 and summary["ties_from_invalid"] == 0 and summary["invalid_verdicts"] == 0
    assert summary["win_rate_a"] == pytest.approx(0.6 + 0.5 * 0.2)  # 0.7
    assert summary["win_rate_b"] == pytest.approx(0.2 + 0.5 * 0.2)  # 0.3
    assert (
        summary["first_shown_preferred"] == 12 and summary["decisive_verdicts"] == 20
    )  # the first-shown reply: 6 + 2*2 + 2 of 20
    assert "ties / 2" in summary["rule"]
    described = summary["settings"]
    assert described["backend"] == "inference" and described["model"] == "judges/fair-judge"
    assert described["temperature"] == 0 and described["max_tokens"] == 384 and described["template"] == "pairwise"
    assert len(described["template_sha256"]) == 64 and described["base_url"] == fake.base_url


def test_invalid_and_tie_verdicts_are_ties_and_invalid_ones_are_counted(fake):
    answers = {
        0: ["Verdict: A", "Verdict: B"],  # consistent A (B's reply shown as "A" in the second order)
        1: ["I prefer A.", "Verdict: B"],  # no verdict line: invalid -> tie
        2: ["Verdict: A\nbut maybe not", "Verdict: B"],  # the verdict is not the last line: invalid
        3: ["verdict:   TIE  ", "**Verdict: tie**"],  # a declared tie, lenient on case, spacing and emphasis
        4: ["Verdict: A or B", "Verdict: B"],  # invalid
    }

    def reply(request):
        i = prompt_index(request)
        a_first = request.first_of(REPLIES_A[i], REPLIES_B[i]) == REPLIES_A[i]
        return answers[i][0 if a_first else 1]

    fake.script(reply)
    records = judge_pairs(PROMPTS[:5], REPLIES_A[:5], REPLIES_B[:5], settings(fake, concurrency=1), token=USER_TOKEN)
    assert [r["outcome"] for r in records] == ["a", "tie", "tie", "tie", "tie"]
    assert [r["first_order"] for r in records] == ["A", "invalid", "invalid", "tie", "invalid"]
    summary = summarize(records)
    assert summary["invalid_verdicts"] == 3 and summary["ties_from_invalid"] == 3
    assert summary["ties_declared"] == 1 and summary["ties_from_flips"] == 0
    assert summary["win_rate_a"] == pytest.approx((1 + 4 / 2) / 5)
    assert "settings" not in summary


def test_verdict_parsing_is_strict_on_the_last_line_and_lenient_on_case():
    assert parse_verdict("reasons\nVerdict: A") == "A"
    assert parse_verdict("reasons\n  VERDICT :b.  \n\n") == "B"
    assert parse_verdict("Verdict: Tie") == "tie"
    assert parse_verdict("`Verdict: A`") == "A"
    for text in ("Verdict: A\nmore", "Verdict: C", "Verdict: AB", "The verdict: A is better", "", None, "A"):
        assert parse_verdict(text) == "invalid", text


def test_a_long_judge_text_is_clipped_to_its_end(fake):
    fake.script("x" * 5000 + "\nVerdict: A")
    (record,) = judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], settings(fake), token=USER_TOKEN)
    assert all(len(raw) <= llm.RAW_CHARS + 1 and raw.endswith("Verdict: A") for raw in record["raw"])


@pytest.mark.parametrize(
    "status, words",
    [
        (401, "refused your Hugging Face token (401)"),
        (402, "credits are used up (402)"),
        (429, "rate-limiting"),
        (500, "server error (500) three times"),
        (503, "server error (503) three times"),
    ],
)
def test_provider_errors_are_one_sentence_without_the_token(fake, caplog, status, words):
    fake.script("Verdict: A")
    fake.fail(status, times=3, message=f"provider says no, token {USER_TOKEN}")  # even an echoed token is scrubbed
    caplog.set_level(logging.DEBUG)
    with pytest.raises(JudgeError) as caught:
        judge_pairs(PROMPTS[:2], REPLIES_A[:2], REPLIES_B[:2], settings(fake, concurrency=1), token=USER_TOKEN)
    message = str(caught.value)
    assert words in message
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message and "Traceback" not in message
    assert USER_TOKEN not in message and PLANTED_TOKEN not in message
    assert USER_TOKEN not in caplog.text and PLANTED_TOKEN not in caplog.text
    assert USER_TOKEN not in repr(caught.value.records)
    asked = 3 if status >= 500 else 1  # server errors are retried twice, the rest are not
    assert len(fake.requests) == asked


def test_an_error_after_some_prompts_keeps_the_judged_ones(fake):
    fake.script(
        ["Verdict: A", "Verdict: B", "Verdict: A"]
    )  # prompt 0 twice, prompt 1 once, then the empty queue answers 500
    with pytest.raises(JudgeError) as caught:
        judge_pairs(PROMPTS[:3], REPLIES_A[:3], REPLIES_B[:3], settings(fake, concurrency=1), token=USER_TOKEN)
    assert "server error (500)" in str(caught.value)
    assert [r["prompt_index"] for r in caught.value.records] == [0]


def test_unknown_model_and_timeout_are_one_sentence(fake, monkeypatch):
    fake.models = {"judges/fair-judge"}
    with pytest.raises(JudgeError, match=r"judges/nope is not available .*\(404\): check judge.model"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], settings(fake, model="judges/nope"), token=USER_TOKEN)
    fake.models, fake.delay_s = None, 1.0
    with pytest.raises(JudgeError, match=r"did not answer within 0.2 s: raise judge.timeout_s"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], settings(fake, timeout_s=0.2), token=USER_TOKEN)


def test_an_unreachable_endpoint_is_one_sentence(fake):
    url = fake.base_url
    fake.stop()
    with pytest.raises(JudgeError, match=r"could not be reached: check the network"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], {"model": "m", "base_url": url}, token=USER_TOKEN)


def test_the_environments_token_is_never_used(fake):
    """Without the signed-in user's token the inference judge refuses instead of falling back to HF_TOKEN (on a
    shared Space, the Space owner's); nothing reaches the server."""
    with pytest.raises(JudgeError, match="your own Hugging Face token: sign in"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], settings(fake), token=None)
    assert fake.requests == []
    judge = PairwiseJudge(settings(fake), token=USER_TOKEN)
    assert USER_TOKEN not in repr(judge) and USER_TOKEN not in repr(judge.settings)
    assert USER_TOKEN not in str(summarize([], judge.settings))


def test_a_named_provider_goes_through_the_router_suffix_without_a_hub_lookup(fake, monkeypatch):
    """No base_url: the client talks to the router (pointed at the fake here) with `model:provider`, and never
    asks the Hub for the provider mapping (which huggingface_hub would do with the environment's token)."""
    from huggingface_hub.inference._providers import CONVERSATIONAL_AUTO_ROUTER, _common

    monkeypatch.setattr(CONVERSATIONAL_AUTO_ROUTER, "base_url", fake.url)
    monkeypatch.setattr(_common, "_fetch_inference_provider_mapping", lambda model: pytest.fail("Hub lookup"))
    fake.script("Verdict: B")
    raw = {"model": "judges/fair-judge", "provider": "together"}
    records = judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], raw, token=USER_TOKEN)
    assert records[0]["outcome"] == "tie"  # "B" in both positions: a flip
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"] * 2
    assert {r.model for r in fake.requests} == {"judges/fair-judge:together"}
    assert {r.token for r in fake.requests} == {USER_TOKEN}
    assert summarize(records, raw)["settings"]["provider"] == "together"


def test_settings_are_validated_in_one_sentence(monkeypatch):
    with pytest.raises(ConfigError, match="Unknown judge keys"):
        JudgeSettings.from_dict({"model": "m", "token": USER_TOKEN})
    with pytest.raises(ConfigError, match="judge.backend"):
        JudgeSettings.from_dict({"model": "m", "backend": "openai"})
    with pytest.raises(ConfigError, match="https"):
        JudgeSettings.from_dict({"model": "m", "base_url": "http://judge.example.com/v1"})
    with pytest.raises(ConfigError, match="credentials"):
        JudgeSettings.from_dict({"model": "m", "base_url": "https://user:pw@judge.example.com/v1"})
    with pytest.raises(ConfigError, match="templates/judges"):
        JudgeSettings.from_dict({"model": "m", "template": "../../etc/passwd"})
    with pytest.raises(ConfigError, match="max_tokens"):
        JudgeSettings.from_dict({"model": "m", "max_tokens": 0})
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    with pytest.raises(ConfigError, match="shared Space"):
        JudgeSettings.from_dict({"model": "m", "base_url": "http://127.0.0.1:9/v1"})
    assert JudgeSettings.from_dict({"model": "m", "base_url": "https://judge.example.com/v1"}).base_url


def test_the_local_backend_runs_the_demo_model_offline(home, caplog):
    """A random model's verdicts are unparseable: every prompt is a tie and every verdict is counted invalid."""
    caplog.set_level(logging.DEBUG)
    raw = {"backend": "local", "model": "demo-tiny", "max_tokens": 8}
    records = judge_pairs(PROMPTS[:3], REPLIES_A[:3], REPLIES_B[:3], raw, token=USER_TOKEN)
    assert [r["prompt_index"] for r in records] == [0, 1, 2]
    assert all(len(r["raw"]) == 2 and all(isinstance(t, str) for t in r["raw"]) for r in records)
    summary = summarize(records, raw)
    assert summary["prompts"] == 3 and summary["wins_a"] + summary["wins_b"] + summary["ties"] == 3
    assert summary["invalid_verdicts"] == 6 and summary["ties_from_invalid"] == 3 and summary["win_rate_a"] == 0.5
    assert summary["settings"]["backend"] == "local" and summary["settings"]["provider"] is None
    assert USER_TOKEN not in caplog.text

    with PairwiseJudge(raw) as judge:  # a prompt longer than the model's context is not judged, and says so
        (record,) = judge_pairs(PROMPTS[:1], ["word " * 2000], REPLIES_B[:1], raw, judge=judge)
    assert record["first_order"] == record["second_order"] == "invalid"
    assert (
        record["raw"][0].startswith("(not judged: the prompt is ") and "over the judge model's 1024" in record["raw"][0]
    )


def test_a_missing_local_model_is_one_sentence(home):
    with pytest.raises(JudgeError, match=r"^The judge model path .* does not exist: use a Hub model id"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], {"backend": "local", "model": str(home / "none")})
    with pytest.raises(JudgeError, match=r"^The judge model judges/absent could not be loaded \(.*\)\.$"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], {"backend": "local", "model": "judges/absent"})


def test_a_local_judge_from_the_hub_downloads_with_the_users_token_only(fake_hub_env, demo_model_dir, monkeypatch):
    """A Hub model id as local judge: a private repo is read with the user's token; without one, the download is
    anonymous even though HF_TOKEN (on a Space, the owner's) is set, and the private model another user's download
    left in the shared cache is refused."""
    from fakehub.fixture import ALICE

    hub = fake_hub_env
    hub.add_repo("alice/private-judge", demo_model_dir, private=True)
    hub.add_repo("alice/public-judge", demo_model_dir)
    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    raw = {"backend": "local", "model": "alice/private-judge", "max_tokens": 4}

    records = judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], raw, token=ALICE)
    assert len(records) == 1
    assert hub.requests and {r.token for r in hub.requests if r.authorized} == {ALICE}

    hub.clear_requests()
    judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], {**raw, "model": "alice/public-judge"}, token=None)
    assert hub.requests and not any(r.authorized for r in hub.requests)
    with pytest.raises(JudgeError, match=r"^The judge model alice/private-judge .* your account cannot read it"):
        judge_pairs(PROMPTS[:1], REPLIES_A[:1], REPLIES_B[:1], {**raw, "model": "alice/private-judge"}, token=None)
