"""Every bad input ends in one sentence naming the key and what to accept, a non-zero exit, no traceback.

The table below is also the documentation: docs/bad-inputs.md is generated from it and a test checks the
two agree (each row's message is what the code says today).  Regenerate the page after changing a message:

    BAD_INPUTS_DOC=write python -m pytest tests/test_bad_inputs.py -q
"""

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT

DOC = ROOT / "docs" / "bad-inputs.md"
TOKEN = "hf_" + "Zq7" * 12  # token-shaped, never a real one
BASE = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "data": {"source": "data/demo/sft_train.jsonl"},
    "training": {"max_steps": 2},
}


def _cfg(**changes):
    """BASE with dotted changes (a__b=value sets a.b); a value of ... deletes the key."""
    raw = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


# Each case: id -> (what the user wrote, how it is run, words the one line must contain).
# How it is run: ("train", content, [--set ...]) writes content to cfg.yaml (a dict as YAML, str/bytes as is);
# ("cli", module, argv) runs that CLI in-process, with {dir} replaced by a scratch folder holding the fixtures.
CASES = {
    # the config file itself
    "binary file": ("a binary file as the config", ("train", bytes(range(256)) * 8, []), "is a binary file"),
    "non-UTF-8": ("Latin-1 bytes (`caf\\xe9`)", ("train", b"method: sft\nmodel: caf\xe9\n", []), "not UTF-8 text"),
    "UTF-16": ("a UTF-16 file", ("train", "method: sft\n".encode("utf-16"), []), "is UTF-16 text"),
    "empty file": ("an empty file", ("train", "", []), "is empty"),
    "YAML syntax": ("`model: [demo-tiny` (unclosed bracket)", ("train", "method: sft\nmodel: [demo\n", []), "line 3"),
    "huge file": ("a 2 MB file", ("train", "#" + "x" * 2**21 + "\n", []), "under 1 MB"),
    "folder as config": ("a folder as the config path", ("cli", "trainers", ["train", "{dir}"]), "is a folder"),
    "missing config": (
        "a config path that does not exist",
        ("cli", "trainers", ["train", "{dir}/no.yaml"]),
        "not exist",
    ),
    "duplicate key": (
        "`training:` written twice",
        ("train", "model: demo-tiny\ndata: {source: x.jsonl}\ntraining: {}\ntraining: {}\n", []),
        "'training' appears twice (line 4)",
    ),
    "two documents": (
        "two YAML documents (`---`)",
        ("train", "method: sft\n---\nmethod: dpo\n", []),
        "one YAML document",
    ),
    "python tag": ("`model: !!python/name:os.system`", ("train", "model: !!python/name:os.system\n", []), "YAML tag"),
    "deep nesting": ("10,000 nested brackets", ("train", "a: " + "[" * 10000 + "]" * 10000 + "\n", []), "nested"),
    "output dir is a file": (
        "`--output-dir` naming a file",
        ("cli", "trainers", ["train", "{base}", "--output-dir", "{dir}/notes.txt"]),
        "--output-dir",
    ),
    "YAML list": ("a YAML list", ("train", "- method: sft\n", []), "must be a YAML mapping"),
    "YAML scalar": ("a YAML scalar", ("train", "sft\n", []), "must be a YAML mapping"),
    "--set on a list": ("`--set` on a list config", ("train", "- 1\n", ["peft.r=8"]), "--set needs a config"),
    "--set on a scalar": ("`--set` on a scalar config", ("train", "5\n", ["peft.r=8"]), "--set needs a config"),
    "--set without =": ("`--set peft.r`", ("train", BASE, ["peft.r"]), "--set takes key.path=value"),
    "--set through a value": ("`--set method.x=1`", ("train", BASE, ["method.x=1"]), "'method' is 'sft'"),
    "--set empty key": ("`--set training..lr=1`", ("train", BASE, ["training..lr=1"]), "has an empty key"),
    "alias bomb": ("YAML anchors that expand to millions of values", ("train", "ALIAS_BOMB", []), "100,000 values"),
    # structure
    "unknown top-level key": ("`trainin: {}`", ("train", {**BASE, "trainin": {}}, []), "Did you mean 'training'"),
    "training: 5": ("`training: 5`", ("train", _cfg(training=5), []), "'training' must be a mapping"),
    "peft: lora": ("`peft: lora`", ("train", _cfg(peft="lora"), []), "'peft' must be a mapping"),
    "data as text": ("`data: file.jsonl`", ("train", _cfg(data="x.jsonl"), []), "'data' must be a mapping"),
    "no model": ("no `model:` section", ("train", _cfg(model=...), []), "needs a 'model' section"),
    "unknown method": ("`method: ppo`", ("train", _cfg(method="ppo"), []), "must be one of sft, dpo"),
    "unknown section key": ("`peft: {rank: 8}`", ("train", _cfg(peft__rank=8), []), "Unknown key 'peft.rank'"),
    # model
    "model ../../etc": ("`model: ../../etc`", ("train", _cfg(model="../../etc"), []), "folder without config.json"),
    "model is a file": ("`model: notes.txt`", ("train", _cfg(model="./notes.txt"), []), "is a file"),
    "model is an adapter": ("`model:` an adapter folder", ("train", _cfg(model="./adapter"), []), "holds an adapter"),
    "model empty": ("`model: {name_or_path: ''}`", ("train", _cfg(model__name_or_path=""), []), "is empty"),
    "quantization 3bit": ("`quantization: 3bit`", ("train", _cfg(model__quantization="3bit"), []), "none, 4bit, 8bit"),
    "dtype fp16": ("`dtype: fp16`", ("train", _cfg(model__dtype="fp16"), []), "auto, bfloat16, float16, float32"),
    "trust_remote_code text": (
        "`trust_remote_code: maybe`",
        ("train", _cfg(model__trust_remote_code="maybe"), []),
        "must be true or false",
    ),
    # peft
    "r 0": ("`peft.r: 0`", ("train", _cfg(peft__r=0), []), "'peft.r' must be a whole number from 1 to 16384"),
    "r negative": ("`peft.r: -8`", ("train", _cfg(peft__r=-8), []), "'peft.r' must be a whole number from 1"),
    "r text": ("`peft.r: sixteen`", ("train", _cfg(peft__r="sixteen"), []), "'peft.r' must be a whole number"),
    "lora_alpha 0": ("`lora_alpha: 0`", ("train", _cfg(peft__lora_alpha=0), []), "'peft.lora_alpha' must be greater"),
    "lora_alpha negative": ("`lora_alpha: -16`", ("train", _cfg(peft__lora_alpha=-16), []), "lora_alpha' must be"),
    "lora_dropout 2": ("`lora_dropout: 2`", ("train", _cfg(peft__lora_dropout=2), []), "'peft.lora_dropout' must be"),
    "lora_dropout negative": ("`lora_dropout: -0.1`", ("train", _cfg(peft__lora_dropout=-0.1), []), "from 0 up to"),
    "peft type": ("`peft.type: qlora`", ("train", _cfg(peft__type="qlora"), []), "one of lora, dora, none"),
    "target_modules number": ("`target_modules: 5`", ("train", _cfg(peft__target_modules=5), []), "text or a list"),
    "target_modules numbers": ("`target_modules: [1, 2]`", ("train", _cfg(peft__target_modules=[1, 2]), []), "holds 1"),
    "target_modules empty": ("`target_modules: []`", ("train", _cfg(peft__target_modules=[]), []), "empty list"),
    "target_modules pattern": (
        "`target_modules: '(q'`",
        ("train", _cfg(peft__target_modules="(q"), []),
        "pattern",
    ),
    "modules_to_save blank": ("`modules_to_save: ['']`", ("train", _cfg(peft__modules_to_save=[""]), []), "holds ''"),
    # data
    "max_samples 0": ("`max_samples: 0`", ("train", _cfg(data__max_samples=0), []), "'data.max_samples' must be"),
    "max_samples negative": ("`max_samples: -5`", ("train", _cfg(data__max_samples=-5), []), "1 or more"),
    "eval_size negative": ("`eval_size: -0.5`", ("train", _cfg(data__eval_size=-0.5), []), "'data.eval_size' must be"),
    "eval_size fraction > 1": ("`eval_size: 2.5`", ("train", _cfg(data__eval_size=2.5), []), "a whole number of rows"),
    "data seed negative": ("`data.seed: -1`", ("train", _cfg(data__seed=-1), []), "'data.seed' must be"),
    "columns not text": ("`columns: {prompt: 5}`", ("train", _cfg(data__columns={"prompt": 5}), []), "'data.columns"),
    "source empty": ("`source: ''`", ("train", _cfg(data__source=""), []), "'data.source' is empty"),
    "split empty": ("`split: ''`", ("train", _cfg(data__split=""), []), "'data.split' is empty"),
    "init_from number": ("`init_from: 5`", ("train", _cfg(init_from=5), []), "'init_from' must be"),
    "num_processes 0": ("`launch.num_processes: 0`", ("train", _cfg(launch__num_processes=0), []), "at least 1"),
    "launch profile": ("`launch.profile: ddpp`", ("train", _cfg(launch__profile="ddpp"), []), "Did you mean 'ddp'"),
    # TRL options (training:)
    "learning_rate negative": (
        "`learning_rate: -1e-4`",
        ("train", _cfg(training__learning_rate=-1e-4), []),
        "greater than 0",
    ),
    "learning_rate 0": ("`learning_rate: 0`", ("train", _cfg(training__learning_rate=0), []), "greater than 0"),
    "learning_rate text": ("`learning_rate: fast`", ("train", _cfg(training__learning_rate="fast"), []), "a number"),
    "learning_rate inf": ("`learning_rate: .inf`", ("train", BASE, ["training.learning_rate=.inf"]), "finite"),
    "epochs 0": ("`num_train_epochs: 0`", ("train", _cfg(training__num_train_epochs=0), []), "greater than 0"),
    "epochs true": ("`num_train_epochs: yes`", ("train", _cfg(training__num_train_epochs=True), []), "a number"),
    "batch 0": (
        "`per_device_train_batch_size: 0`",
        ("train", BASE, ["training.per_device_train_batch_size=0"]),
        "1 to",
    ),
    "batch 1e9": (
        "`per_device_train_batch_size: 1e9`",
        ("train", BASE, ["training.per_device_train_batch_size=1e9"]),
        "from 1 to 65536",
    ),
    "batch 2.5": (
        "`per_device_train_batch_size: 2.5`",
        ("train", BASE, ["training.per_device_train_batch_size=2.5"]),
        "a whole number",
    ),
    "accumulation 0": (
        "`gradient_accumulation_steps: 0`",
        ("train", BASE, ["training.gradient_accumulation_steps=0"]),
        "from 1 to 65536",
    ),
    "max_steps -5": ("`max_steps: -5`", ("train", _cfg(training__max_steps=-5), []), "-1 (or 0) to train for"),
    "logging_steps 0": ("`logging_steps: 0`", ("train", _cfg(training__logging_steps=0), []), "greater than 0"),
    "save_steps negative": ("`save_steps: -1`", ("train", _cfg(training__save_steps=-1), []), "greater than 0"),
    "warmup_steps -1": ("`warmup_steps: -1`", ("train", _cfg(training__warmup_steps=-1), []), "0 or more"),
    "max_length 0": ("`max_length: 0`", ("train", _cfg(training__max_length=0), []), "positive number of tokens"),
    "max_length negative": ("`max_length: -5`", ("train", _cfg(training__max_length=-5), []), "positive number"),
    "weight_decay negative": ("`weight_decay: -0.1`", ("train", _cfg(training__weight_decay=-0.1), []), "0 or more"),
    "max_grad_norm negative": ("`max_grad_norm: -1`", ("train", _cfg(training__max_grad_norm=-1), []), "clipping"),
    "adam_beta1 1.5": ("`adam_beta1: 1.5`", ("train", _cfg(training__adam_beta1=1.5), []), "from 0 up to"),
    "seed negative": ("`seed: -1`", ("train", _cfg(training__seed=-1), []), "from 0 to 4294967295"),
    "save_total_limit 0": ("`save_total_limit: 0`", ("train", _cfg(training__save_total_limit=0), []), "1 or more"),
    "eval_strategy unknown": (
        "`eval_strategy: sometime`",
        ("train", _cfg(training__eval_strategy="sometime"), []),
        "no, steps, epoch",
    ),
    "eval_strategy yes": ("`eval_strategy: yes`", ("train", _cfg(training__eval_strategy=True), []), "quote it"),
    "scheduler typo": (
        "`lr_scheduler_type: cosin`",
        ("train", _cfg(training__lr_scheduler_type="cosin"), []),
        "Did you mean 'cosine'",
    ),
    "optimizer typo": ("`optim: adamw_torc`", ("train", _cfg(training__optim="adamw_torc"), []), "'adamw_torch'"),
    "report_to yes": ("`report_to: yes`", ("train", _cfg(training__report_to=True), []), "quote it"),
    "unknown TRL option": (
        "`training: {lerning_rate: 1e-4}`",
        ("train", _cfg(training__lerning_rate=1), []),
        "Did you mean 'learning_rate'",
    ),
    "renamed TRL option": (
        "`max_seq_length: 512`",
        ("train", _cfg(training__max_seq_length=512), []),
        "it is now 'max_length'",
    ),
    "output_dir": ("`training.output_dir: x`", ("train", _cfg(training__output_dir="x"), []), "--output-dir"),
    "DPO beta 0": ("`method: dpo`, `beta: 0`", ("train", _cfg(method="dpo", training__beta=0), []), "greater than 0"),
    # secrets (never echoed)
    "hub_token": ("`training.hub_token: hf_...`", ("train", _cfg(training__hub_token=TOKEN), []), "HF_TOKEN"),
    "token via --set": (
        "`--set 'training.model_init_kwargs={token: hf_...}'`",
        ("train", BASE, [f"training.model_init_kwargs={{token: {TOKEN}}}"]),
        "training.model_init_kwargs.token holds a secret",
    ),
    "token-shaped text": ("`system_prompt: hf_...`", ("train", _cfg(data__system_prompt=TOKEN), []), "holds a secret"),
    "api_key anywhere": (
        "`model_init_kwargs: {api_key: x}`",
        ("train", BASE, ["training.model_init_kwargs.api_key=x"]),
        "training.model_init_kwargs.api_key holds a secret",
    ),
    # other commands
    "estimate --rows -5": (
        "`estimate --rows -5`",
        ("cli", "trainers", ["estimate", "{base}", "--rows", "-5"]),
        "--rows must be",
    ),
    "estimate tokens 0": (
        "`estimate --tokens-per-row 0`",
        ("cli", "trainers", ["estimate", "{base}", "--tokens-per-row", "0"]),
        "greater than 0",
    ),
    "estimate bad config": (
        "`estimate` with `peft.r: 0`",
        ("cli", "trainers", ["estimate", "{base}", "--set", "peft.r=0"]),
        "'peft.r' must be",
    ),
    "target_modules unknown (estimate)": (
        "`target_modules: [foo_proj]` (estimate)",
        ("cli", "trainers", ["estimate", "{base}", "--rows", "9", "--set", "peft.target_modules=[foo_proj]"]),
        "its linear modules are down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj",
    ),
    "target_modules unknown (train)": (
        "`target_modules: [foo_proj]` (train)",
        (
            "cli",
            "trainers",
            ["train", "{base}", "--output-dir", "{dir}/run", "--set", "peft.target_modules=[foo_proj]"],
        ),
        "peft.target_modules matches no module of this model",
    ),
    "options that conflict": (
        "`lr_scheduler_type: reduce_lr_on_plateau` without evaluation",
        (
            "cli",
            "trainers",
            [
                "train",
                "{base}",
                "--output-dir",
                "{dir}/run",
                "--set",
                "data.eval_size=0",
                "--set",
                "training.lr_scheduler_type=reduce_lr_on_plateau",
            ],
        ),
        "The training options do not fit together (lr_scheduler_type reduce_lr_on_plateau requires an eval strategy)",
    ),
    "doctor random files": (
        "`data doctor` on a folder of random files",
        ("cli", "data", ["doctor", "{dir}/random"]),
        "not UTF-8 text",
    ),
    "doctor mixed junk": (
        "`data doctor` on a folder of junk parquet + jsonl",
        ("cli", "data", ["doctor", "{dir}/junk"]),
        "could not be read as one dataset",
    ),
    "doctor --model a folder": (
        "`data doctor --model ../../etc`",
        ("cli", "data", ["doctor", "data/demo/sft_train.jsonl", "--model", "../../etc"]),
        "--model '../../etc' is a folder without config.json",
    ),
    "doctor corrupt parquet": (
        "`data doctor` on a corrupt .parquet",
        ("cli", "data", ["doctor", "{dir}/junk/a.parquet"]),
        "not a readable Parquet file",
    ),
    "doctor --max-length 0": (
        "`data doctor --max-length 0`",
        ("cli", "data", ["doctor", "data/demo/sft_train.jsonl", "--max-length", "0"]),
        "--max-length must be",
    ),
    "doctor --map": (
        "`data doctor --map prompt`",
        ("cli", "data", ["doctor", "data/demo/sft_train.jsonl", "--map", "prompt"]),
        "--map takes STD=COLUMN",
    ),
    "jobs submit binary": (
        "`jobs submit` a binary file",
        ("cli", "jobs", ["submit", "{dir}/binary.yaml"]),
        "is a binary file",
    ),
    "jobs submit token": (
        "`jobs submit --set training.hub_token=hf_...`",
        ("cli", "jobs", ["submit", "{base}", "--set", f"training.hub_token={TOKEN}"]),
        "training.hub_token holds a secret",
    ),
}
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
)
SUBPROCESS = ("binary file", "token via --set", "doctor random files", "jobs submit binary", "estimate --rows -5")
MESSAGES: dict[str, str] = {}


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    return make_scratch(tmp_path, monkeypatch)


def make_scratch(tmp_path, monkeypatch):
    """A scratch folder (the cwd) holding every fixture the cases name, with the demo data reachable."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "notes.txt").write_text("not a model\n")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    (tmp_path / "random").mkdir()
    for i, name in enumerate(("a.json", "b.csv", "c.jsonl")):
        (tmp_path / "random" / name).write_bytes(bytes((i * 37 + j * 101) % 256 for j in range(3000)))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "junk" / "b.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    work = tmp_path / "w" / "x"  # model: ../../etc from here is the scratch folder's etc/
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0\n")
    work.mkdir(parents=True)
    (work / "data").symlink_to(ROOT / "data")
    for name in ("notes.txt", "adapter"):
        (work / name).symlink_to(tmp_path / name)
    monkeypatch.chdir(work)
    return tmp_path


def _argv(case: str, scratch) -> tuple[str, list[str]]:
    _, (kind, content, extra), _ = CASES[case]
    if kind == "cli":
        module, args = content, extra
        return module, [a.format(dir=scratch, base=scratch / "base.yaml") for a in args]
    path = scratch / "cfg.yaml"
    if content == "ALIAS_BOMB":
        content = ALIAS_BOMB
    if isinstance(content, dict):
        path.write_text(yaml.safe_dump(content))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    args = ["train", str(path)]
    for item in extra:
        args += ["--set", item]
    return "trainers", args


def _main(module: str):
    if module == "trainers":
        from trainers.__main__ import main
    elif module == "data":
        from trainers.doctor_cli import main
    else:
        from jobs.__main__ import main
    return main


def _clean(message: str, scratch) -> str:
    return message.replace(str(scratch), "DIR").replace(str(ROOT), ".")


def _check(err: str, rc: int, expected: str) -> str:
    assert rc != 0
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last
    assert TOKEN not in err
    sentences = last.replace("e.g. ", "").count(". ")  # one sentence (plus, at most, "Did you mean ...?")
    assert len(last) < 500 and sentences <= (1 if "Did you mean" in last else 0), last
    return last[len("error: ") :]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_sentence(case, scratch, capsys, demo_model_dir):
    module, argv = _argv(case, scratch)
    rc = _main(module)(argv)
    captured = capsys.readouterr()
    assert TOKEN not in captured.out
    MESSAGES[case] = _clean(_check(captured.err, rc, CASES[case][2]), scratch)
    assert not (scratch / "w" / "x" / "runs").exists()


@pytest.mark.parametrize("case", SUBPROCESS)
def test_no_traceback_reaches_stderr_of_a_real_process(case, scratch):
    module, argv = _argv(case, scratch)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env, timeout=300, cwd=scratch
    )
    _check(proc.stderr, proc.returncode, CASES[case][2])
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # nothing but the one line


def test_yaml_no_and_max_steps_0_are_accepted_as_meant():
    """YAML 1.1 reads `eval_strategy: no` as false: TRL's string enums take it back as "no". max_steps 0 means
    "train for num_train_epochs" (the Train tab's "0 = use epochs"), i.e. TRL's -1."""
    from trainers import config

    cfg = config.from_dict(_cfg(training__eval_strategy=False, training__save_strategy=False, training__max_steps=0))
    assert cfg.training["eval_strategy"] == "no" and cfg.training["save_strategy"] == "no"
    assert cfg.training["max_steps"] == -1
    cfg = config.from_dict(_cfg(training__report_to=False, model__quantization=False, training__pad_token="<pad>"))
    assert cfg.training["report_to"] == "none" and cfg.model.quantization == "none"


def render_doc(messages: dict[str, str]) -> str:
    lines = [
        "# Bad inputs and what they say",
        "",
        "Every input below is refused with one sentence that names the key and what to write instead, a non-zero",
        "exit code and no traceback (the full traceback, when there is one, goes to the run's train.log).",
        "Generated from `tests/test_bad_inputs.py`, which runs every row; regenerate with",
        "`BAD_INPUTS_DOC=write python -m pytest tests/test_bad_inputs.py -q`.",
        "",
        "Accepted as meant, not refused: `eval_strategy: no` / `save_strategy: no` (YAML 1.1 reads an unquoted",
        '`no` as false; TRL\'s string options take it back as "no"), `report_to: no` ("none"), and `max_steps: 0`,',
        'which means "train for num_train_epochs" (the same as -1, as the Train tab says: "0 = use epochs").',
        "",
        "| Bad input | Message |",
        "| --- | --- |",
    ]
    for case, (what, _, _) in CASES.items():
        message = messages[case].replace("|", "\\|")
        lines.append(f"| {what} | {message} |")
    return "\n".join(lines) + "\n"


def test_doc_table_matches_the_messages(tmp_path, monkeypatch, capsys, demo_model_dir):
    """docs/bad-inputs.md lists every case with the message the code gives now."""
    missing = [c for c in CASES if c not in MESSAGES]
    for case in missing:  # when run alone (-k doc), compute the messages here
        scratch = tmp_path / case.replace(" ", "_").replace("/", "_")
        scratch.mkdir()
        make_scratch(scratch, monkeypatch)
        module, argv = _argv(case, scratch)
        rc = _main(module)(argv)
        MESSAGES[case] = _clean(_check(capsys.readouterr().err, rc, CASES[case][2]), scratch)
    text = render_doc(MESSAGES)
    if os.environ.get("BAD_INPUTS_DOC") == "write":
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, "docs/bad-inputs.md is stale: regenerate it (see this module)"
