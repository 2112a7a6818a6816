"""Generate the benchmark's variable-length instruction data (deterministic, offline).

    python bench/make_data.py [--out bench/out/data.jsonl] [--rows 400]

Each row is a `messages` conversation (one turn, or two for ~20 % of rows) of English-like sentences
built from word lists. The target length of each conversation, in demo-tokenizer tokens (ChatML
rendering, exactly what the chat template produces), is drawn log-uniformly from 20..500: many short
rows and a long tail, the shape of typical instruction data. Same seed, same file, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `trainers` is importable

SEED = 1234
MIN_TOKENS, MAX_TOKENS = 20, 500
ADJ = "small green quiet old bright simple careful busy warm clear heavy gentle quick long".split()
NOUN = "river garden teacher model city road window answer letter market forest kitchen engine story team".split()
VERB = "reads builds finds moves watches explains opens writes keeps helps follows checks carries plans".split()
ADV = "slowly often always carefully quietly together again today early later".split()
PROMPTS = [
    "Hi.",
    "Say hello.",
    "Describe the {a} {n}.",
    "Tell me a story about the {n}.",
    "Why does the {n} {v} the {a} {n}?",
    "Write a short note about the {a} {n} and the {n}.",
    "Explain how a {a} {n} {v} a {n}, step by step.",
]


def sentence(rng: random.Random) -> list[str]:
    words = ["The", rng.choice(ADJ), rng.choice(NOUN), rng.choice(VERB), "the", rng.choice(NOUN)]
    if rng.random() < 0.6:
        words += [rng.choice(ADV)]
    if rng.random() < 0.4:
        words += ["and", "the", rng.choice(ADJ), rng.choice(NOUN), rng.choice(VERB), "it"]
    words[-1] += "."
    return words


def prompt(rng: random.Random) -> str:
    return rng.choice(PROMPTS).format(a=rng.choice(ADJ), n=rng.choice(NOUN), v=rng.choice(VERB))


def render(messages: list[dict]) -> str:
    """The ChatML text of templates/chat/chatml_generation.jinja."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def conversation(rng: random.Random, encode, target: int) -> list[dict]:
    turns = 2 if target > 120 and rng.random() < 0.2 else 1
    messages: list[dict] = []
    for turn in range(turns):
        messages.append({"role": "user", "content": prompt(rng)})
        reply = {"role": "assistant", "content": ""}
        messages.append(reply)
        budget = target * (turn + 1) // turns
        words: list[str] = []
        while not words or len(encode(render(messages))) < budget:
            words += sentence(rng)
            reply["content"] = " ".join(words)
        while len(words) > 2 and len(encode(render(messages))) > budget:  # trim back to the target
            words.pop()
            reply["content"] = " ".join(words).rstrip(".") + "."
        text = reply["content"]
        cut = text.rfind(". ", 0, len(text) - 1)
        if cut > 0 and text[cut + 2 :].count(" ") < 3:  # drop a dangling 1-3 word fragment
            reply["content"] = text[: cut + 1]
    return messages


def generate(out: Path, rows: int = 400, seed: int = SEED) -> dict:
    from tokenizers import Tokenizer

    from trainers.models import resolve_model_path

    tokenizer = Tokenizer.from_file(str(Path(resolve_model_path("demo-tiny")) / "tokenizer.json"))

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text).ids

    rng = random.Random(seed)
    lengths, seen = [], set()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        while len(lengths) < rows:
            target = round(math.exp(rng.uniform(math.log(MIN_TOKENS), math.log(MAX_TOKENS))))
            line = json.dumps({"messages": conversation(rng, encode, target)})
            if line in seen:  # short rows can repeat; real data sets get deduplicated
                continue
            seen.add(line)
            lengths.append(len(encode(render(json.loads(line)["messages"]))))
            f.write(line + "\n")
    lengths.sort()
    return {
        "path": str(out),
        "rows": rows,
        "tokens_total": sum(lengths),
        "tokens_min": lengths[0],
        "tokens_median": lengths[rows // 2],
        "tokens_mean": round(sum(lengths) / rows, 1),
        "tokens_max": lengths[-1],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "data.jsonl"))
    parser.add_argument("--rows", type=int, default=400)
    args = parser.parse_args()
    os.chdir(ROOT)  # the demo model lives in ./studio_home unless STUDIO_HOME says otherwise, as for the engine
    print(json.dumps(generate(Path(args.out), args.rows)))
