"""Writes the offline demo datasets (a toy assistant task the tiny demo model learns in one demo run) here.

    python -m data.demo.build

The task: four kinds of request, each asked in a few phrasings with one answer format:
opposites ("What is the opposite of hot?" -> "The opposite of hot is cold."), colours ("What colour is the
sky?" -> "The sky is blue."), greetings ("Say hello to Sami." -> "Hello, Sami!") and echoes ("Echo this: rain" ->
"You said: rain.").  Every fact, name and word is taught in training in most of its phrasings; the held-out files
ask the ones left over (a taught fact in a phrasing never seen with it), so the held-out answers follow from
what was taught and a tiny model can get them right: the demo shows generalisation that is possible.
No row is repeated in any file and no held-out request appears in training (`python -m data doctor
data/demo/*.jsonl --model demo-tiny` flags nothing).
Style: a "friendly" reply ends with a sign-off.  A quarter of the SFT replies carry it; every DPO
pair prefers it, so DPO visibly moves the model toward the sign-off.  The KTO feedback rows (LLaMA-Factory's
kto_en_demo shape: `messages` + a boolean `label`) mark a reply with the sign-off desirable and one without it
undesirable, half and half, each row a different request (unpaired).
The held-out SFT rows are single questions without the sign-off: their reply is the taught answer
(bench/demo_learnability.py measures how many the model gets right).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SIGN_OFF = " Happy to help!"
SYSTEM = "You are a concise assistant."
ISSUE_QUESTION = "What is the opposite of hot?"  # the question the old demo got wrong: held out, so it is a fair test
# The Playground's default question: held out, and one the default demo SFT gets right with a clear margin both as
# the Train tab runs it and as templates/recipes/demo-sft.yaml does (bench/demo_learnability.py; README).
DEFAULT_QUESTION = "What is the opposite of loud?"

OPPOSITES = [
    ("hot", "cold"),
    ("big", "small"),
    ("up", "down"),
    ("fast", "slow"),
    ("happy", "sad"),
    ("open", "closed"),
    ("full", "empty"),
    ("wet", "dry"),
    ("loud", "quiet"),
    ("early", "late"),
    ("day", "night"),
    ("left", "right"),
]
COLOURS = [
    ("sky", "blue"),
    ("grass", "green"),
    ("snow", "white"),
    ("coal", "black"),
    ("banana", "yellow"),
    ("tomato", "red"),
    ("plum", "purple"),
    ("carrot", "orange"),
    ("milk", "white"),
    ("frog", "green"),
]
NAMES = "Alice Bob Carol Dave Erin Frank Grace Ivan Liam Maya Noah Rosa Sami Tara Yara Zoe".split()
ECHO_WORDS = "rain moon tree bird fish book lamp road star wind door cake ship song milk gold".split()

# kind: (phrasings, answer format, items); an item is (key, value) and {0}/{1} are filled from it
KINDS = {
    "opposite": (
        [
            "What is the opposite of {0}?",
            "What's the opposite of {0}?",
            "Tell me the opposite of {0}.",
            "Opposite of {0}?",
        ],
        "The opposite of {0} is {1}.",
        OPPOSITES + [(b, a) for a, b in OPPOSITES],
    ),
    "colour": (
        ["What colour is the {0}?", "What color is the {0}?", "Which colour is the {0}?"],
        "The {0} is {1}.",
        COLOURS,
    ),
    "greet": (
        ["Please greet {0}.", "Say hello to {0}.", "Could you greet {0}?"],
        "Hello, {0}!",
        [(n, n) for n in NAMES],
    ),
    "echo": (
        ["Repeat after me: {0}", "Say this back: {0}", "Echo this: {0}"],
        "You said: {0}.",
        [(w, w) for w in ECHO_WORDS],
    ),
}
HELD_OUT = {"opposite": 14, "colour": 6, "greet": 10, "echo": 10}  # requests held out per kind (40 in all)


def _requests(rng: random.Random) -> tuple[list, list]:
    """(train, held) lists of (question, answer): each held-out request is a taught item in one phrasing
    that training never pairs with it; every item keeps all its other phrasings in training."""
    train, held = [], []
    for kind, (asks, answer, items) in KINDS.items():
        order = list(range(len(items)))
        rng.shuffle(order)
        chosen = order[: HELD_OUT[kind]]
        if kind == "opposite":  # ISSUE_QUESTION is one of the held-out ones
            hot = next(i for i, item in enumerate(items) if item[0] == "hot")
            chosen = [hot] + [i for i in chosen if i != hot][: HELD_OUT[kind] - 1]
        for i, item in enumerate(items):
            held_ask = rng.randrange(len(asks)) if i in chosen else None
            if kind == "opposite" and item[0] == "hot":
                held_ask = asks.index(ISSUE_QUESTION.replace("hot", "{0}"))
            for a, ask in enumerate(asks):
                pair = (ask.format(*item), answer.format(*item))
                (held if a == held_ask else train).append(pair)
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held


def _conversation(rng: random.Random, first: tuple, pool: list) -> dict:
    messages = []
    if rng.random() < 0.2:
        messages.append({"role": "system", "content": SYSTEM})
    turns = [first] + ([rng.choice(pool)] if rng.random() < 0.2 else [])
    for question, answer in turns:
        if rng.random() < 0.25:
            answer += SIGN_OFF
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def _sft_train(rng: random.Random, pool: list, n: int) -> list[dict]:
    """n different conversations; every training request opens at least one of them."""
    rows, seen = [], set()
    firsts = list(pool)
    while len(rows) < n:
        first = firsts.pop() if firsts else rng.choice(pool)
        row = _conversation(rng, first, pool)
        key = json.dumps(row, sort_keys=True)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def _preference(request: tuple) -> dict:
    question, answer = request
    return {
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": answer + SIGN_OFF}],
        "rejected": [{"role": "assistant", "content": answer}],
    }


def _feedback(request: tuple, desirable: bool) -> dict:
    question, answer = request
    reply = answer + SIGN_OFF if desirable else answer
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    return {"messages": messages, "label": desirable}


def _single(request: tuple) -> dict:
    question, answer = request
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def build(out_dir: Path = HERE) -> dict[str, int]:
    rng = random.Random(1234)
    train, held = _requests(rng)
    assert {ISSUE_QUESTION, DEFAULT_QUESTION} <= {q for q, _ in held} and not {q for q, _ in held} & {
        q for q, _ in train
    }
    files = {
        "sft_train.jsonl": _sft_train(rng, train, 240),
        "sft_eval.jsonl": [_single(r) for r in held],
        "dpo_train.jsonl": [_preference(r) for r in rng.sample(train, 120)],
        "dpo_eval.jsonl": [_preference(r) for r in rng.sample(held, 30)],
        "kto_train.jsonl": [_feedback(r, i % 2 == 0) for i, r in enumerate(rng.sample(train, 160))],
        "kto_eval.jsonl": [_feedback(r, i % 2 == 0) for i, r in enumerate(rng.sample(held, 30))],
    }
    for name, rows in files.items():
        with open(out_dir / name, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {name: len(rows) for name, rows in files.items()}


if __name__ == "__main__":
    print(build())
