"""Writes the offline demo datasets (a learnable toy assistant task) next to this file.

    python -m data.demo.build

The task: four kinds of request (greet a name, repeat a word, opposite of a word, colour of a thing),
each with one answer format.  Held-out files use names and words never seen in those requests in training,
so a model that answers them in the right format has learned the format, not memorised answers.
Style: a "friendly" reply ends with a sign-off.  A quarter of the SFT replies carry it; every DPO
pair prefers it, so DPO visibly moves the model toward the sign-off.  The KTO feedback rows (LLaMA-Factory's
kto_en_demo shape: `messages` + a boolean `label`) mark a reply with the sign-off desirable and one without it
undesirable, half and half, each row a different request (unpaired).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SIGN_OFF = " Happy to help!"
SYSTEM = "You are a concise assistant."

NAMES = (
    "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Karl Laura Mallory Nina Oscar Peggy "
    "Quentin Rupert Sybil Trent Uma Victor Wendy Xavier Yara Zane Amir Bella Chen Dina Emil Fatima "
    "Gustav Hana Igor Jonas Kira Liam Maya Noah Olga Pablo Rosa Sami Tara Ugo Vera Walt Yuki Zoe"
).split()
OPPOSITES = [
    ("hot", "cold"),
    ("big", "small"),
    ("up", "down"),
    ("fast", "slow"),
    ("light", "dark"),
    ("happy", "sad"),
    ("open", "closed"),
    ("early", "late"),
    ("hard", "soft"),
    ("full", "empty"),
    ("old", "new"),
    ("rich", "poor"),
    ("wet", "dry"),
    ("loud", "quiet"),
    ("high", "low"),
    ("strong", "weak"),
    ("thick", "thin"),
    ("long", "short"),
    ("clean", "dirty"),
    ("near", "far"),
    ("left", "right"),
    ("first", "last"),
    ("inside", "outside"),
    ("push", "pull"),
    ("win", "lose"),
    ("day", "night"),
    ("buy", "sell"),
    ("true", "false"),
    ("young", "elderly"),
    ("sweet", "sour"),
]
COLOURS = [
    ("sky", "blue"),
    ("grass", "green"),
    ("snow", "white"),
    ("coal", "black"),
    ("banana", "yellow"),
    ("tomato", "red"),
    ("orange", "orange"),
    ("plum", "purple"),
    ("sea", "blue"),
    ("leaf", "green"),
    ("milk", "white"),
    ("night sky", "black"),
    ("lemon", "yellow"),
    ("cherry", "red"),
    ("violet", "purple"),
    ("carrot", "orange"),
    ("ink", "black"),
    ("cloud", "white"),
    ("frog", "green"),
    ("blood", "red"),
]


def _greet(name):
    return f"Please greet {name}.", f"Hello, {name}!"


def _echo(word):
    return f"Repeat after me: {word}", f"You said: {word}."


def _opposite(pair):
    word, other = pair
    return f"What is the opposite of {word}?", f"The opposite of {word} is {other}."


def _colour(pair):
    thing, colour = pair
    return f"What colour is the {thing}?", f"The {thing} is {colour}."


def _split(rng, items, held):
    items = list(items)
    rng.shuffle(items)
    return items[held:], items[:held]


def _pools(rng):
    names_train, names_held = _split(rng, NAMES, 10)
    words = sorted({w for pair in OPPOSITES for w in pair} | {c for _, c in COLOURS})
    echo_train, echo_held = _split(rng, words, 12)
    opp = OPPOSITES + [(b, a) for a, b in OPPOSITES]
    opp_train, opp_held = _split(rng, opp, 12)
    # Colours are facts: held-out asks known things, so the check is format plus fact.
    col = COLOURS
    return {
        "train": [(_greet, names_train), (_echo, echo_train), (_opposite, opp_train), (_colour, col)],
        "held": [(_greet, names_held), (_echo, echo_held), (_opposite, opp_held), (_colour, col)],
    }


def _exchange(rng, pool):
    make, items = rng.choice(pool)
    return make(rng.choice(items))


def _conversation(rng, pool, friendly_rate):
    messages = []
    if rng.random() < 0.2:
        messages.append({"role": "system", "content": SYSTEM})
    for _ in range(2 if rng.random() < 0.2 else 1):
        question, answer = _exchange(rng, pool)
        if rng.random() < friendly_rate:
            answer += SIGN_OFF
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def _preference(rng, pool):
    question, answer = _exchange(rng, pool)
    return {
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": answer + SIGN_OFF}],
        "rejected": [{"role": "assistant", "content": answer}],
    }


def _feedback(rng, pool, desirable: bool):
    question, answer = _exchange(rng, pool)
    reply = answer + SIGN_OFF if desirable else answer
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    return {"messages": messages, "label": desirable}


def _held_out(make, n: int, seen: list[dict]) -> list[dict]:
    """Rows unlike any training row (the doctor's leakage check finds none)."""
    known = {_key(row) for row in seen}
    rows = []
    while len(rows) < n:
        row = make()
        if _key(row) not in known:
            rows.append(row)
    return rows


def _key(row: dict) -> str:
    user = [m["content"] for key in ("messages", "prompt") for m in row.get(key, []) if m["role"] == "user"]
    return " ".join(user) + (f" {row['label']}" if "label" in row else "")


def build(out_dir: Path = HERE) -> dict[str, int]:
    rng = random.Random(1234)
    pools = _pools(rng)
    sft_train = [_conversation(rng, pools["train"], 0.25) for _ in range(240)]
    sft_eval = _held_out(lambda: _conversation(rng, pools["held"], 0.25), 40, sft_train)
    dpo_train = [_preference(rng, pools["train"]) for _ in range(120)]
    dpo_eval = _held_out(lambda: _preference(rng, pools["held"]), 30, dpo_train)
    kto_train = [_feedback(rng, pools["train"], i % 2 == 0) for i in range(160)]
    kto_eval = _held_out(lambda: _feedback(rng, pools["held"], rng.random() < 0.5), 30, kto_train)
    files = {
        "sft_train.jsonl": sft_train,
        "sft_eval.jsonl": sft_eval,
        "dpo_train.jsonl": dpo_train,
        "dpo_eval.jsonl": dpo_eval,
        "kto_train.jsonl": kto_train,
        "kto_eval.jsonl": kto_eval,
    }
    for name, rows in files.items():
        with open(out_dir / name, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {name: len(rows) for name, rows in files.items()}


if __name__ == "__main__":
    print(build())
