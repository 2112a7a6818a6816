"""One training run: resolve the config, write the run folder, train (or resume), save, summarise.

Run folder contract (see ARCHITECTURE.md): config.yaml, metrics.jsonl, train.log, summary.json,
adapter/, checkpoints/.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import settings, threads
from core.errors import DISK_FULL, ConfigError, user_message
from core.runfolder import RunFolder, RunSummary, read_json
from data import doctor
from data.splits import load_for_run
from trainers import attention, methods, models
from trainers import checkpoint_sync as hub_ckpt
from trainers import config as config_mod
from trainers.callbacks import (
    GracefulStop,
    MetricsWriter,
    OptimizerFromCheckpoint,
    install_test_faults,
    rows_from_log_history,
    truncate_metrics,
)

log = logging.getLogger("trainers")
# Decided at run time for this machine (not written into config.yaml); recorded in summary.json.
RUNTIME_KEYS = (
    "use_cpu",
    "bf16",
    "activation_checkpointing",
    "use_liger_kernel",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "per_device_eval_batch_size",
)


def default_run_dir(config_path: Path) -> Path:
    """A run's own config.yaml re-runs in place (resuming); any other config gets a new folder."""
    if config_path.name == "config.yaml" and RunFolder(config_path.parent).is_run():
        return config_path.parent
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return models.studio_home() / "runs" / f"{config_path.stem}-{stamp}"


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process under `accelerate launch` / torchrun; (0, 1) when alone."""
    rank, _, world = settings.process_rank()
    return rank, world


def is_main() -> bool:
    return process_rank()[0] == 0


@contextlib.contextmanager
def main_first():
    """The main process runs the block first (downloads, caches, dependency runs); the others then reuse it."""
    if process_rank()[1] == 1:
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def setup_logging(run_dir: Path) -> logging.Handler:
    # Only the main process writes train.log; the other ranks log to their console (captured by the launcher).
    handler = logging.FileHandler(run_dir / "train.log" if is_main() else os.devnull, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.WARNING if settings.quiet() else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    for name in ("trainers", "data"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers = [handler, console]  # one run per process; tests call main() repeatedly
        logger.propagate = False
    import datasets
    import transformers

    transformers.utils.logging.add_handler(handler)
    if not sys.stdout.isatty():
        datasets.disable_progress_bars()
    # datasets logs its own "Failed to load ..." lines before raising; our one-line error replaces them.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    return handler


def _absolute_paths(cfg) -> None:
    """Local paths become absolute so config.yaml re-runs from anywhere."""
    for section, key in (("data", "source"), ("data", "eval_source"), ("model", "name_or_path")):
        obj = getattr(cfg, section)
        value = getattr(obj, key)
        if value and Path(value).expanduser().exists():
            setattr(obj, key, str(Path(value).expanduser().resolve()))
    if cfg.init_from and Path(cfg.init_from).expanduser().exists():
        cfg.init_from = str(Path(cfg.init_from).expanduser().resolve())
    for entry in cfg.rewards:  # GRPO: a reward model's folder and a python reward's file
        for key in ("model", "path"):
            value = entry.get(key)
            head = value.split(":", 1)[0] if key == "path" and isinstance(value, str) else value
            if isinstance(head, str) and head and Path(head).expanduser().exists():
                entry[key] = str(Path(head).expanduser().resolve()) + (value[len(head) :] if key == "path" else "")


def run_dependency(config_path: Path) -> Path:
    """init_from may name a recipe: train it once (in its own process) and reuse its run folder."""
    import hashlib
    import subprocess

    if not config_path.is_file():
        raise ConfigError(f"init_from names {str(config_path)!r}, which does not exist.")
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest()[:10]
    dep_dir = models.studio_home() / "runs" / f"{config_path.stem}-{digest}"
    if RunFolder(dep_dir).summary().succeeded:
        log.info("init_from: reusing finished run %s", dep_dir)
        return dep_dir
    log.info("init_from: training %s first, into %s", config_path, dep_dir)
    cmd = [sys.executable, "-m", "trainers", "train", str(config_path), "--output-dir", str(dep_dir)]
    if subprocess.run(cmd, check=False).returncode != 0:
        error = RunFolder(dep_dir).summary().error or "see its train.log"
        raise ConfigError(f"The init_from run {config_path.name} failed ({error}); fix it, then re-run.")
    return dep_dir


def tracking_env(report_to, run_dir: Path) -> dict:
    """Offline-safe experiment tracking through TRL's own `report_to`: logs land in the run folder; nothing
    is sent anywhere unless the user configured it (WANDB_API_KEY, TRACKIO_SPACE_ID)."""
    names = {report_to} if isinstance(report_to, str) else set(report_to or [])
    env = {}
    if "tensorboard" in names or "all" in names:
        env["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
    if "wandb" in names and not os.environ.get("WANDB_API_KEY"):
        env.update(WANDB_MODE="offline", WANDB_DIR=str(run_dir))
    if "trackio" in names and not os.environ.get("TRACKIO_SPACE_ID"):
        env["TRACKIO_DIR"] = str(run_dir / "trackio")
    return env


def runtime_training_args(cfg, hw: dict, run_dir: Path, has_eval: bool) -> dict:
    """TRL args for this machine: the config's `training` plus hardware-dependent defaults."""
    args = dict(cfg.training)
    if hw["device"] == "cpu":
        args.setdefault("use_cpu", True)
    # Always explicit, under its current name: TRL's own default (gradient_checkpointing=True) and the deprecated
    # alias would each print a FutureWarning into train.log. TRL's default is on; the engine turns it off on CPU.
    args["activation_checkpointing"] = config_mod.activation_checkpointing(args, hw["device"] != "cpu")
    args.pop("gradient_checkpointing", None)
    if "gradient_checkpointing_kwargs" in args:
        args.setdefault("activation_checkpointing_kwargs", args.pop("gradient_checkpointing_kwargs"))
    liger, note = attention.liger(args, hw["device"])
    if "use_liger_kernel" in args:
        args["use_liger_kernel"] = liger
    if note:
        log.info(note)
    args.setdefault("bf16", hw["bf16"])
    if cfg.model.quantization != "none" and hw["device"] == "cpu":
        args["bf16"] = False
    args.setdefault("disable_tqdm", not sys.stderr.isatty())
    args.setdefault("include_num_input_tokens_seen", "non_padding")
    args.setdefault("per_device_eval_batch_size", args.get("per_device_train_batch_size", 8))
    if not has_eval:
        args["eval_strategy"] = "no"
    args["output_dir"] = str(run_dir / "checkpoints")
    return one_packed_row_per_pass(cfg, args)


def one_packed_row_per_pass(cfg, args: dict) -> dict:
    """Padding-free packing flattens a batch of packed rows into one sequence. FlashAttention handles that
    as separate sequences; every other kernel (sdpa, eager, all of CPU) computes attention over the whole
    flattened batch, (batch x max_length)^2 instead of batch x max_length^2. Without FlashAttention feed the
    packed rows one per forward pass: per-device batch 1 x accumulation B is the same optimizer step (same
    rows, tokens and token-normalised loss) at a fraction of the attention cost (bench/README.md)."""
    padding_free = args.get("padding_free") or (
        args.get("packing") and args.get("packing_strategy", "bfd") in ("bfd", "bfd_split")
    )
    flash = attention.is_flash(cfg.model.attn_implementation)
    batch = int(args.get("per_device_train_batch_size", 8))
    if not methods.get(cfg.method).packs or not padding_free or flash or batch == 1:
        return args
    args["per_device_train_batch_size"] = 1
    args["gradient_accumulation_steps"] = int(args.get("gradient_accumulation_steps", 1)) * batch
    args["per_device_eval_batch_size"] = 1
    log.info(
        "Packed rows go one per forward pass (batch 1 x accumulation %s, same optimizer step): without "
        "FlashAttention a padding-free batch would attend across all %s rows.",
        args["gradient_accumulation_steps"],
        batch,
    )
    return args


def _peak_memory(hw: dict, parts=None) -> dict:
    """Peak memory so far: the process's RSS (never below the peak before the model loaded, which resetting the
    kernel's mark for the training phase hides from getrusage) and, on CUDA, allocated and reserved."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"peak_rss_mb": round(max(rss, parts.baseline_rss_mb if parts else 0.0), 1)}
    if parts is not None and parts.rss_before_model_mb is not None:
        out["peak_rss_since_model_mb"] = round(rss, 1)  # this phase's own peak: the probe's measurement
    if hw["device"] == "cuda":
        import torch

        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    return out


def _reset_peak_rss() -> float | None:
    """Linux: the current RSS in MB, with the kernel's peak-RSS mark reset to it (/proc/self/clear_refs "5"), so
    the peak read at the end is the training phase's own; None where that cannot be done (the peak then counts
    from the process start)."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return round(int(rss) / 1024, 1) if rss else None


def _last_logged(folder: RunFolder) -> dict:
    """The last logged training step's metrics (not a merge of stale keys from earlier rows)."""
    train_rows = [row for row in folder.metrics() if "loss" in row]
    last = train_rows[-1] if train_rows else {}
    return {f"last_logged_{k}" if k == "step" else k: v for k, v in last.items() if k not in ("epoch", "time")}


def _check_same_run(run_dir: Path, resolved: dict) -> None:
    existing = run_dir / "config.yaml"
    if not existing.exists() or not (run_dir / "checkpoints").exists():
        return
    import yaml

    try:
        previous = yaml.safe_load(existing.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return
    if previous != resolved:
        raise ConfigError(
            f"{run_dir} already holds a different run (its config.yaml differs): "
            "choose another --output-dir, or re-run that folder's own config.yaml to resume it."
        )


WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _safetensors_ok(path: Path) -> bool:
    """The header parses and the file is as long as the tensors it declares (a torn write is shorter)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
            f.seek(0, 2)
            length = f.tell()
    except (OSError, ValueError):
        return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and "data_offsets" in v]
    return length >= 8 + size + max(ends, default=0)


def _torch_file_ok(path: Path) -> bool:
    """torch.save writes a zip archive whose directory comes last: a torn file has none."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _file_ok(path: Path) -> bool:
    if not path.is_file():
        return False
    return _safetensors_ok(path) if path.suffix == ".safetensors" else _torch_file_ok(path)


def checkpoint_problem(ckpt: Path, need_optimizer: bool = True) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None: it is complete).  A kill or a full disk during a
    save leaves a folder with only some of its files: transformers writes weights, then optimizer and
    scheduler, then RNG state, and trainer_state.json last."""
    state = read_json(ckpt / "trainer_state.json")
    if "global_step" not in state:
        return "trainer_state.json is missing or unreadable"
    sharded = any(ckpt.glob("global_step*")) or any(ckpt.glob("pytorch_model_fsdp*"))  # DeepSpeed / FSDP layouts
    if not sharded:
        present = [ckpt / n for n in WEIGHTS if (ckpt / n).exists()]
        indexes = [ckpt / n for n in WEIGHT_INDEXES if (ckpt / n).exists()]
        if not present and not indexes:
            return "no model or adapter weights"
        if any(not _file_ok(p) for p in present):
            return "its weights are incomplete"
        for index in indexes:
            shards = set(read_json(index).get("weight_map", {}).values())
            if not shards or any(not _file_ok(ckpt / name) for name in shards):
                return "its weight shards are incomplete"
        if need_optimizer:
            # optimizer.pt (optimizer.bin or an optimizer_0/ folder under FSDP), then scheduler.pt
            if not (
                _file_ok(ckpt / "optimizer.pt") or _file_ok(ckpt / "optimizer.bin") or any(ckpt.glob("optimizer_*"))
            ):
                return "optimizer.pt is missing or incomplete"
            if not _file_ok(ckpt / "scheduler.pt"):
                return "scheduler.pt is missing or incomplete"
    return None


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def last_complete_checkpoint(ckpt_dir: Path, need_optimizer: bool = True, set_aside: bool = True) -> str | None:
    """The newest complete checkpoint-N; newer incomplete ones are moved to checkpoints/incomplete/ (out of the
    way of transformers' own checkpoint search and rotation) with a log line."""
    if not ckpt_dir.is_dir():
        return None
    folders = [p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")]
    for ckpt in sorted((p for p in folders if _checkpoint_step(p) >= 0), key=_checkpoint_step, reverse=True):
        problem = checkpoint_problem(ckpt, need_optimizer)
        if problem is None:
            return str(ckpt)
        if set_aside:
            aside = ckpt_dir / "incomplete" / f"{ckpt.name}-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
            aside.parent.mkdir(exist_ok=True)
            os.replace(ckpt, aside)
            log.warning("Checkpoint %s is incomplete (%s), probably cut off by a kill or a full disk: "
                        "moved to %s; resuming from an earlier one.", ckpt.name, problem, aside)  # fmt: skip
        else:
            log.warning("Checkpoint %s is incomplete (%s); skipped.", ckpt.name, problem)
    return None


def train_or_restore(trainer, last_ckpt: str | None, max_steps: int):
    """trainer.train, except when the last checkpoint already reached max_steps: transformers 5.24 would then
    train one step past it, so the checkpoint's weights are loaded and training is skipped."""
    if last_ckpt and max_steps > 0:
        state = read_json(Path(last_ckpt) / "trainer_state.json")
        if state.get("global_step", 0) >= max_steps:
            from transformers.trainer_utils import TrainOutput

            log.info("The checkpoint already reached max_steps (%s): nothing left to train.", max_steps)
            trainer._load_from_checkpoint(last_ckpt)  # what train() does first when it resumes
            trainer.state.global_step = state["global_step"]
            trainer.state.epoch = state.get("epoch")
            trainer.state.num_input_tokens_seen = state.get("num_input_tokens_seen", 0)
            return TrainOutput(state["global_step"], None, {})
    return trainer.train(resume_from_checkpoint=last_ckpt)


def checkpoint_sync(cfg, ckpt_dir: Path, resolved: dict, folder: RunFolder, have_local: bool) -> dict:
    """With TRL's checkpoint push on: record the config beside the checkpoints and, when this run folder has
    no checkpoint (a fresh machine), fetch the last one from the Hub and rebuild metrics.jsonl from it."""
    repo = hub_ckpt.sync_repo(cfg.training)
    if not repo:
        return {}
    if is_main():
        hub_ckpt.record_config(ckpt_dir, resolved)
    if have_local or not is_main():
        return {"repo": repo}
    fetched = hub_ckpt.fetch_last_checkpoint(repo, ckpt_dir, resolved)
    if not fetched:
        return {"repo": repo}
    folder.write_metrics(rows_from_log_history(read_json(fetched / "trainer_state.json").get("log_history", [])))
    return {"repo": repo, "fetched": str(fetched)}


def truncation_side(cfg) -> str | None:
    """Which side of an overlong row the trainer keeps ("start" / "end"), or None when it keeps every token
    (SFT packing that splits or wraps long rows): the method table decides."""
    return methods.get(cfg.method).truncation_side(cfg.training)


def prepare_data(cfg, tokenizer, folder: RunFolder):
    """Load + doctor the data; the doctor's report is saved in the run folder and logged."""
    method = methods.get(cfg.method)
    plan = method.build_module().token_plan(tokenizer, cfg.training, truncation_side(cfg))
    train_ds, eval_ds, form, info, reports = load_for_run(cfg.data, method.task, tokenizer, plan=plan)
    folder.write_json(RunFolder.DATA_REPORT, {"reports": [r.to_dict() for r in reports]})
    log.info("Data doctor:\n%s", doctor.render_text(reports))
    doctor.raise_on_errors(*reports)
    log.info("Data: %s", info)
    return train_ds, eval_ds, form, info


# --- the phases of one run (torchtune's recipe phases: load, setup, train, save, cleanup) -----------------------
@dataclass
class Parts:
    """What a run trains: the tokenizer, model, adapter config and data, loaded once."""

    tokenizer: Any
    model_path: str
    model: Any
    peft_config: Any
    init_source: str | None
    train_ds: Any
    eval_ds: Any
    fmt: str
    data_info: dict
    rewards: list = field(default_factory=list)  # GRPO's rewards (the config's `rewards:`)
    baseline_rss_mb: float = 0.0  # peak RSS before the model loads: imports, tokenizer, data
    rss_before_model_mb: float | None = None  # RSS when the model starts loading, the peak mark reset to it (Linux)


@dataclass
class ResumePoint:
    checkpoint: str | None  # the newest complete checkpoint (local or fetched), None for a fresh start
    sync: dict  # checkpoint sync with the Hub: {} when off


def resolve_config(config_path: str, overrides: list[str], folder: RunFolder):
    """Phase 1: load and validate the config, train an init_from recipe first, write config.yaml (rank 0)."""
    cfg = config_mod.load(config_path, overrides)
    if cfg.init_from and cfg.init_from.endswith((".yaml", ".yml")):
        with main_first():  # trained once, by the main process; the others reuse the finished run
            cfg.init_from = str(run_dependency(Path(cfg.init_from).expanduser()))
    _absolute_paths(cfg)
    resolved = cfg.to_dict()
    if is_main():
        _check_same_run(folder.path, resolved)
        header = f"# Resolved run config, re-runnable as is:\n#   python -m trainers train {folder.config_path}\n"
        config_mod.dump(cfg, folder.config_path, header)  # atomic: a full disk mid-write keeps the old config
    return cfg, resolved


def start_summary(cfg, folder: RunFolder) -> tuple[dict, RunSummary]:
    """The machine this run trains on (hardware, CPU threads), recorded in a "running" summary.json."""
    hw = models.hardware()
    cpu = threads.configure()
    summary = RunSummary(
        {
            "status": "running",
            "method": cfg.method,
            "model": cfg.model.name_or_path,
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
            "hardware": hw,
            "cpu_threads": cpu,
            "processes": process_rank()[1],
            "launch_profile": cfg.launch.profile,
        }
    )
    folder.write_summary(summary)
    log.info("Run folder: %s", folder.path)
    log.info("Hardware: %s", hw)
    log.info("CPU threads: %s (%s; OpenMP wait policy %s)", cpu["threads"], cpu["source"], cpu["wait_policy"])
    return hw, summary


def load_parts(cfg, hw: dict, folder: RunFolder) -> Parts:
    """Phase 2: tokenizer and data (the main process first: downloads and the datasets cache are built once),
    then the model, its adapter config or the init_from adapter."""
    with main_first():
        tokenizer, model_path = models.resolve_and_load_tokenizer(cfg.model)
        train_ds, eval_ds, fmt, data_info = prepare_data(cfg, tokenizer, folder)
    baseline = _peak_memory({"device": "cpu"})["peak_rss_mb"]
    before_model = _reset_peak_rss()  # what follows is measured from here: data loading's transient peak is over
    full = cfg.peft.type == "none"
    method = methods.get(cfg.method)  # its model class (a causal LM, or a scorer) and its adapter's task type
    model = models.load_model(
        cfg.model, hw, model_path, full_finetune=full, method=method, pad_token_id=tokenizer.pad_token_id
    )
    peft_cfg = models.peft_config(cfg.peft, method)
    init_source = None
    if cfg.init_from and not (full and cfg.continues):  # a full continuation loads the checkpoint as its model
        model, init_source = models.apply_init_from(model, cfg.init_from, full_finetune=full, method=method)
        peft_cfg = None  # the starting adapter's own config is trained further
        log.info("Starting from adapter %s", init_source)
    return Parts(
        tokenizer,
        model_path,
        model,
        peft_cfg,
        init_source,
        train_ds,
        eval_ds,
        fmt,
        data_info,
        cfg.rewards,
        baseline,
        before_model,
    )


@contextlib.contextmanager
def scoped_environ(changes: dict, keep_existing: tuple[str, ...] = ()):
    """Set environment variables for the block and put back the previous values on every exit path; a name in
    `keep_existing` keeps a value the user already set."""
    previous = {key: os.environ.get(key) for key in changes}
    for key, value in changes.items():
        if key in keep_existing:
            os.environ.setdefault(key, value)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def resume_point(cfg, args: dict, resolved: dict, folder: RunFolder, step_offset: int = 0) -> ResumePoint:
    """Phase 4: the newest complete checkpoint (or one fetched from the Hub); metrics.jsonl is cut to its step,
    or removed for a fresh start, so no step is logged twice."""
    ckpt_dir = Path(args["output_dir"])
    need_optimizer = not args.get("save_only_model")
    with main_first():  # the main process sets incomplete checkpoints aside and fetches a synced one first
        last_ckpt = last_complete_checkpoint(ckpt_dir, need_optimizer, set_aside=is_main())
        sync = checkpoint_sync(cfg, ckpt_dir, resolved, folder, have_local=bool(last_ckpt))
    if sync.get("fetched"):
        last_ckpt = sync["fetched"]
    if last_ckpt:
        step = read_json(Path(last_ckpt) / "trainer_state.json").get("global_step", 0)
        if is_main():
            truncate_metrics(folder, step + step_offset)
        log.info("Resuming from %s (step %s)", last_ckpt, step)
    elif folder.metrics_path.exists() and is_main():
        folder.metrics_path.unlink()
    return ResumePoint(last_ckpt, sync)


def build(method: methods.Method, parts: Parts, args: dict, callbacks: list):
    """Phase 5: the method's TRL trainer (its builder module), with the test-only fault hooks when asked."""
    trainer, plan = method.build_module().build(
        parts.model,
        parts.tokenizer,
        args,
        parts.train_ds,
        parts.eval_ds,
        parts.fmt,
        parts.peft_config,
        callbacks,
        rewards=parts.rewards,
        method=method.name,
    )
    install_test_faults(trainer)  # test-only; a no-op unless STUDIO_TEST_DIE_AT / STUDIO_TEST_BARRIER is set
    return trainer, plan


def save(trainer, tokenizer, folder: RunFolder) -> None:
    """Phase 7: the trained adapter (or full model) and the tokenizer into adapter/."""
    adapter_dir = folder.adapter_path
    sharded = trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled
    if hasattr(trainer.model, "peft_config") and not sharded:
        if is_main():  # DPO from an adapter also holds TRL's frozen "ref" copy: save only the trained one
            trainer.model.save_pretrained(adapter_dir, selected_adapters=["default"])
            models.check_saved_head(trainer.model, adapter_dir)  # a reward adapter is useless without its head
    else:  # full weights, or shards that every rank must help gather: the Trainer saves on the main process
        trainer.save_model(str(adapter_dir))
    if is_main():
        tokenizer.save_pretrained(adapter_dir)


def final_metrics(folder: RunFolder, result, resumed: bool, eval_before: dict | None, eval_after: dict | None):
    final = {**_last_logged(folder), **result.metrics}  # train_runtime, train_loss, ... of this run
    if eval_before is None and resumed:  # resumed: the first attempt logged it at step 0
        eval_before = next((r for r in folder.metrics() if r.get("step") == 0 and "eval_loss" in r), None)
    if eval_before:
        final["eval_loss_before"] = eval_before.get("eval_loss")
    if eval_after:
        final.update(eval_after)
    return final


def choose_attention(cfg, hw: dict) -> dict:
    """The fastest attention kernel for this machine (trainers/attention.py), set on the config for this process
    only (config.yaml keeps what the user wrote) and logged; the caller records it in summary.json."""
    choice = attention.choose(cfg.model.attn_implementation, hw["device"])
    cfg.model.attn_implementation = choice["implementation"]
    log.info("Attention: %s (%s)", choice["implementation"] or "default", choice["reason"])
    return choice


@contextlib.contextmanager
def quiet_peft_deprecation():
    """PEFT 0.21 reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model (get_peft_model,
    PeftModel.from_pretrained): a FutureWarning the engine cannot avoid by its own arguments, kept out of train.log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def continuation(cfg) -> dict | None:
    """A continued run (`continues:`): its parent's checkpoint (init_from) and the step it had reached."""
    if not cfg.continues:
        return None
    ckpt = Path(cfg.init_from)
    state = read_json(ckpt / "trainer_state.json")
    if "global_step" not in state:
        raise ConfigError(f"init_from {cfg.init_from!r} is not a complete checkpoint, so run {cfg.continues} cannot continue from it.")  # fmt: skip
    # The parent may itself be a continuation: its checkpoints count from its own start, its metrics from the first run.
    parent = read_json(ckpt.parent.parent / "summary.json").get("continues") or {}
    step = int(state["global_step"]) + int(parent.get("from_step") or 0)
    return {"run": cfg.continues, "checkpoint": cfg.init_from, "from_step": step}


def execute(
    config_path: str, run_dir: Path, overrides: list[str], extra_callbacks: tuple = (), probe: bool = False
) -> dict:
    """Train; returns the summary. Raises on failure (the caller turns it into one user line).
    Phases: resolve config, load parts, runtime args, resume point, build, train/evaluate, save, summarise.
    The environment changes (tracking) and the SIGTERM handler are scoped: restored on every exit path.
    probe: a measuring dry run (trainers/probe.py): no evaluation, no checkpoint, no adapter."""
    started = time.time()
    folder = RunFolder(run_dir)
    cfg, resolved = resolve_config(config_path, overrides, folder)
    method = methods.get(cfg.method)
    hw, summary = start_summary(cfg, folder)
    summary.update(attention=choose_attention(cfg, hw))
    cont = continuation(cfg)
    with quiet_peft_deprecation():
        try:
            parts = load_parts(cfg, hw, folder)
        except Exception as exc:  # noqa: BLE001 - only the Hub kernel the engine chose itself is retried
            fallback = attention.fallback(summary["attention"], exc)
            if fallback is None:
                raise
            log.warning("Attention: %s", fallback["reason"])
            cfg.model.attn_implementation = fallback["implementation"]
            summary.update(attention=fallback)
            parts = load_parts(cfg, hw, folder)
    if probe:
        parts.eval_ds = None
    args = runtime_training_args(cfg, hw, folder.path, parts.eval_ds is not None)
    offset = cont["from_step"] if cont else 0

    with scoped_environ(tracking_env(args.get("report_to"), folder.path), keep_existing=("WANDB_MODE",)):
        resume = resume_point(cfg, args, resolved, folder, offset)
        stopper = GracefulStop()
        callbacks = [MetricsWriter(folder, offset), stopper, *extra_callbacks]
        optimizer_state = OptimizerFromCheckpoint(cont["checkpoint"]) if cont and not resume.checkpoint else None
        if optimizer_state:  # a resumed continuation has its own optimizer state (in its own checkpoint)
            callbacks.append(optimizer_state)
        with stopper:  # SIGTERM -> checkpoint and stop, from the trainer's build to the end of training
            with quiet_peft_deprecation():
                trainer, plan = build(method, parts, args, callbacks)
            counts = models.parameter_counts(trainer.model)
            log.info("Loss mask: %s; parameters: %s", plan["loss_mask"], counts)
            summary.update(
                {
                    "data": parts.data_info,
                    **plan,
                    **counts,
                    "init_from": parts.init_source,
                    "model_path": parts.model_path,
                    "runtime_training": {k: args[k] for k in RUNTIME_KEYS if k in args},
                    "baseline_rss_mb": parts.baseline_rss_mb,
                    "rss_before_model_mb": parts.rss_before_model_mb,
                    **({"checkpoint_sync": resume.sync} if resume.sync else {}),
                    **({"continues": cont} if cont else {}),
                    **({"autofit": cfg.autofit} if cfg.autofit else {}),
                }
            )
            folder.write_summary(summary)
            eval_before = None
            if parts.eval_ds is not None and not resume.checkpoint:
                eval_before = trainer.evaluate()
            result = train_or_restore(trainer, resume.checkpoint, int(args.get("max_steps") or -1))
        if stopper.requested:
            summary.update(status="cancelled", global_step=trainer.state.global_step + offset)  # as metrics count
            summary.update(wall_time_s=round(time.time() - started, 2), **_peak_memory(hw, parts))
            folder.write_summary(summary)
            log.info("Stopped on request after step %s; checkpoint saved.", trainer.state.global_step)
            return summary.to_dict()
        if optimizer_state:
            summary.update(continues={**cont, "optimizer_state_loaded": optimizer_state.loaded})
        eval_after = trainer.evaluate() if parts.eval_ds is not None else None
        if not probe:
            save(trainer, parts.tokenizer, folder)

    summary.update(  # phase 8: summarise
        status="succeeded",
        finished_at=datetime.now(UTC).isoformat(),
        global_step=trainer.state.global_step + offset,
        final_metrics=final_metrics(folder, result, bool(resume.checkpoint), eval_before, eval_after),
        tokens_seen=int(trainer.state.num_input_tokens_seen or 0),
        wall_time_s=round(time.time() - started, 2),
        **_peak_memory(hw, parts),
    )
    folder.write_summary(summary)
    log.info("Done: %s", {k: summary[k] for k in ("global_step", "wall_time_s", "tokens_seen")})
    return summary.to_dict()


# What a failed run leaves that is worth keeping; a folder with nothing else is removed (see main).
KEPT_ON_FAILURE = ("checkpoints", "metrics.jsonl", "adapter")


def failure_message(exc: BaseException) -> str:
    message = user_message(exc)
    if message.startswith("Unexpected error"):
        message += " The full traceback is in train.log."
    return message


def _remove_if_empty(run_dir: Path) -> None:
    """A run that failed before it trained anything (a bad config, unusable data) leaves no folder behind."""
    if not run_dir.is_dir() or any((run_dir / name).exists() for name in KEPT_ON_FAILURE):
        return
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)


def main(config_path: str, output_dir: str | None, overrides: list[str]) -> int:
    run_dir = Path(output_dir) if output_dir else default_run_dir(Path(config_path))
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(run_dir)
    failed = False
    try:
        execute(config_path, run_dir, overrides)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one clear line
        failed = True
        message = failure_message(exc)
        with contextlib.suppress(OSError, ValueError):  # the disk may be full: the sentence still reaches stderr
            handler.stream.write(traceback.format_exc() + f"error: {message}\n")
            handler.flush()
        folder = RunFolder(run_dir)
        summary = folder.summary()
        if not summary.succeeded:
            summary.update(
                status="failed", error=message, exit_reason="disk_full" if message == DISK_FULL else type(exc).__name__
            )
            with contextlib.suppress(OSError):
                folder.write_summary(summary)
        print(f"error: {message}", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 2
    finally:
        import transformers

        transformers.utils.logging.remove_handler(handler)
        for name in ("trainers", "data"):  # this run's train.log may be deleted below: nothing may log into it
            logging.getLogger(name).removeHandler(handler)
        handler.close()
        end_process_group()
        if failed and created and not output_dir and is_main():
            _remove_if_empty(run_dir)


def end_process_group() -> None:
    """Tear down the launcher's process group before the interpreter exits: left to interpreter shutdown,
    gloo's threads are destroyed while joinable and a rank dies with SIGABRT after finishing its work."""
    if process_rank()[1] == 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
