"""The forgetting check of a comparison: general multiple-choice tasks, base vs each arm, scored by lm-eval.

lm-evaluation-harness does the work (`lm_eval.simple_evaluate` with its `hf` model; an adapter arm is the same
base with `peft=<adapter dir>` in model_args): its task configs, prompts, log-likelihood scoring of every answer
choice and its acc / acc_norm.  This module picks the tasks, points lm-eval at the shipped local tasks
(templates/lm_eval/, registered with `TaskManager(include_path=...)`), and hands back per-item correctness in one
doc order for every arm, so the caller can bootstrap paired deltas against the base.

Tasks (stated, configurable): on a real base ARC-Easy, HellaSwag and a four-subject MMLU subset (one subject per
MMLU category), the first `limit` items of each (lm-eval's own doc order; default DEFAULT_LIMIT); on the offline
demo model the local task `demo_general` (40 items, templates/lm_eval/).  Zero-shot unless a task's YAML says
otherwise.  Every arm uses the base's tokenizer, so every arm is scored on identical prompts.

lm_eval is imported only inside forgetting_check (it is heavy, and the app starts without it).
"""

from __future__ import annotations

import difflib
import functools
import logging
import time
from pathlib import Path
from typing import Any

from core.errors import ConfigError, DataError, StudioError
from core.paths import TEMPLATES
from evaluation.evaluate import is_adapter
from trainers.models import DEMO_MODEL_ID, resolve_model_path

log = logging.getLogger(__name__)

LOCAL_TASKS = TEMPLATES / "lm_eval"  # shipped local lm-eval task YAMLs (+ their data), always registered
DEMO_TASKS = ("demo_general",)  # the default on the offline demo model
# The default on a real base: ARC-Easy, HellaSwag and an MMLU subset, one subject per MMLU category
# (STEM, humanities, social sciences, other).  ARC and HellaSwag report acc_norm, MMLU acc.
DEFAULT_TASKS = (
    "arc_easy",
    "hellaswag",
    "mmlu_high_school_biology",
    "mmlu_philosophy",
    "mmlu_high_school_psychology",
    "mmlu_nutrition",
)
DEFAULT_LIMIT = 300  # items per task (the first ones in lm-eval's doc order); a task with fewer uses all of them
METRICS = ("acc_norm", "acc")  # the primary metric is the first one a task reports
NOT_INSTALLED = (
    "The forgetting check needs lm-evaluation-harness, which is not installed: run "
    "`.venv/bin/pip install -r requirements.txt` (it pins lm-eval)."
)


def forgetting_check(
    base_path: str,
    adapters: dict[str, str | None],
    tasks: list[str] | None = None,
    limit: int | None = None,
    include_path: str | None = None,
    batch_size: int | str = 8,
    device: str | None = None,
) -> dict:
    """Score the base and every arm on the same general tasks with lm-eval; the report's forgetting check.

    base_path: the base model (a folder, a Hub id, or "demo-tiny").  adapters: {name: adapter folder, a full
    model folder, or None for the base itself}, e.g. {"base": None, "sft": ".../adapter"}.  tasks: lm-eval task
    (or group) names, default DEMO_TASKS on the demo model, else DEFAULT_TASKS.  limit: items per task, default
    DEFAULT_LIMIT.  include_path: a folder of further task YAMLs (templates/lm_eval/ is always included).
    batch_size: lm-eval's (an int or "auto").  device: "cuda", "cpu", ... (default: cuda when available).

    Returns {
      "tasks": {task: {"metric": "acc_norm" | "acc", "n": items scored, "doc_ids": [lm-eval doc ids, ascending],
                       "num_fewshot": int, "local": bool}},
      "arms": {name: {"adapter": path or None, "wall_time_s": float,
                      "tasks": {task: {"value": the metric's mean, "acc": float, "acc_norm": float (when reported),
                                       "correct": [0/1 per doc id, the metric's],
                                       "items": {"acc": [0/1...], "acc_norm": [0/1...]}}}}},
      "settings": {"limit", "batch_size", "device", "lm_eval_version", "include_path": [folders]},
      "wall_time_s": float,
    }
    Every arm's "correct" lists follow the same tasks[task]["doc_ids"], so paired deltas are position-wise."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise StudioError(NOT_INSTALLED) from exc
    started = time.monotonic()
    base = resolve_model_path(base_path)
    if tasks is None:
        tasks = list(DEMO_TASKS if _is_demo(base_path, base) else DEFAULT_TASKS)
    if not tasks:
        raise ConfigError("The forgetting check needs at least one lm-eval task: name one, or use demo_general.")
    limit = DEFAULT_LIMIT if limit is None else limit
    folders = [LOCAL_TASKS] + ([Path(include_path).expanduser().resolve()] if include_path else [])
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise ConfigError(f"The lm-eval include_path {missing[0]} is not a folder: name a folder of task YAMLs.")
    manager = _task_manager(TaskManager, folders, tasks)
    specs = [_spec(manager, name, folders) for name in tasks]
    local = {name for name in tasks if _is_local(manager, name, folders)}

    try:  # load every task's data once before any model: an unreachable Hub is said before minutes of loading
        loaded = manager.load(specs)
    except Exception as exc:
        if _hub_unreachable(exc):
            raise _hub_error(tasks, local) from exc
        raise
    not_mc = [name for name, task in loaded["tasks"].items() if task.get_config("output_type") != "multiple_choice"]
    if not_mc:
        raise ConfigError(
            f"The lm-eval task {not_mc[0]} is not multiple choice: the forgetting check scores answer choices "
            "(acc / acc_norm), so pick a multiple_choice task such as arc_easy, hellaswag or an mmlu_* subject."
        )

    device = device or _default_device()
    out: dict[str, Any] = {
        "tasks": {},
        "arms": {},
        "settings": {
            "limit": limit,
            "batch_size": batch_size,
            "device": device,
            "lm_eval_version": lm_eval.__version__,
            "include_path": [str(f) for f in folders],
        },
    }
    for name, adapter in adapters.items():
        arm_started = time.monotonic()
        model_args: dict[str, Any] = {"pretrained": base, "tokenizer": base}
        if adapter is not None and is_adapter(adapter):
            model_args["peft"] = str(adapter)
        elif adapter is not None:  # a full model (a folder without adapter_config.json)
            model_args["pretrained"] = str(adapter)
        try:
            results = lm_eval.simple_evaluate(
                model="hf",
                model_args=model_args,
                tasks=specs,
                limit=limit,
                batch_size=batch_size,
                device=device,
                task_manager=manager,
                log_samples=True,
                bootstrap_iters=0,  # no stderr resampling: the caller bootstraps paired deltas from the items
            )
        except StudioError:
            raise
        except Exception as exc:
            if _hub_unreachable(exc):
                raise _hub_error(tasks, local) from exc
            raise
        arm = {"adapter": adapter, "tasks": {}, "wall_time_s": None}
        for task, rows in sorted(results["samples"].items()):
            scores = results["results"][task]
            metric = next((m for m in METRICS if f"{m},none" in scores), None)
            if metric is None:
                raise ConfigError(f"The lm-eval task {task} reports neither acc nor acc_norm: pick another task.")
            rows = sorted(rows, key=lambda r: r["doc_id"])
            doc_ids = [r["doc_id"] for r in rows]
            meta = out["tasks"].setdefault(
                task,
                {
                    "metric": metric,
                    "n": len(doc_ids),
                    "doc_ids": doc_ids,
                    "num_fewshot": results.get("n-shot", {}).get(task),
                    "local": task in local or _is_local(manager, task, folders),
                },
            )
            if meta["doc_ids"] != doc_ids:  # never expected: same tasks, limit and data for every arm
                raise StudioError(f"lm-eval scored other items of {task} for {name} than for the first arm.")
            items = {m: [int(r[m]) for r in rows] for m in METRICS if m in rows[0]}
            arm["tasks"][task] = {
                "value": scores[f"{metric},none"],
                **{m: scores[f"{m},none"] for m in METRICS if f"{m},none" in scores},
                "correct": items[metric],
                "items": items,
            }
        arm["wall_time_s"] = round(time.monotonic() - arm_started, 2)
        out["arms"][name] = arm
        log.info("forgetting check %s: %s", name, {t: v["value"] for t, v in arm["tasks"].items()})
    out["wall_time_s"] = round(time.monotonic() - started, 2)
    return out


def _is_demo(base_path: str, resolved: str) -> bool:
    return base_path == DEMO_MODEL_ID or Path(resolved).name == DEMO_MODEL_ID


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _local_signature(folders: list[Path]) -> tuple:
    """The local task YAMLs and their modification times: a changed or added YAML re-indexes."""
    return tuple(
        (str(p), p.stat().st_mtime_ns) for folder in folders for p in sorted(folder.glob("**/*.yaml")) if p.is_file()
    )


@functools.lru_cache(maxsize=8)
def _cached_manager(task_manager_cls, folders: tuple[str, ...], defaults: bool, _signature: tuple):
    return task_manager_cls(include_path=list(folders), include_defaults=defaults)


def _task_manager(task_manager_cls, folders: list[Path], tasks: list[str]):
    """lm-eval's TaskManager over the local folders only when they hold every requested task (indexing lm-eval's
    own ~15,000 task YAMLs takes ~20 s on 2 cores), else over lm-eval's tasks too; an unknown name is refused."""
    key, signature = tuple(str(f) for f in folders), _local_signature(folders)
    manager = _cached_manager(task_manager_cls, key, False, signature)
    if all(name in manager.all_tasks for name in tasks):
        return manager
    manager = _cached_manager(task_manager_cls, key, True, signature)
    unknown = [name for name in tasks if name not in manager.all_tasks]
    if unknown:
        close = difflib.get_close_matches(unknown[0], manager.all_tasks, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"Unknown lm-eval task {unknown[0]!r}: {hint}name a task lm-eval lists (`lm-eval ls tasks`), the shipped "
            f"local task demo_general, or one from a YAML in templates/lm_eval/ or include_path."
        )
    return manager


def _is_local(manager, name: str, folders: list[Path]) -> bool:
    entry = manager.task_index.get(name)
    path = getattr(entry, "yaml_path", None)
    return bool(path) and any(Path(path).resolve().is_relative_to(f) for f in folders)


def _spec(manager, name: str, folders: list[Path]):
    """The task as TaskManager.load takes it.  A local task whose data_files / data_dir are relative gets them
    resolved against its YAML's folder (lm-eval hands them to datasets.load_dataset, which would resolve them
    against the working directory), as a full config dict; any other task is passed by name."""
    if not _is_local(manager, name, folders):
        return name
    entry = manager.task_index[name]
    kwargs = (entry.cfg or {}).get("dataset_kwargs") or {}
    if not any(key in kwargs for key in ("data_files", "data_dir")):
        return name
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own YAML loader (includes, !function)

    folder = Path(entry.yaml_path).resolve().parent
    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    for key in ("data_files", "data_dir"):
        if key in kwargs:
            kwargs[key] = _under(folder, kwargs[key])
    return {**cfg, "dataset_kwargs": kwargs}


def _under(folder: Path, value):
    """data_files in any of the shapes datasets takes (a path, a list, {split: path or list}), made absolute."""
    if isinstance(value, dict):
        return {k: _under(folder, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_under(folder, v) for v in value]
    if isinstance(value, str) and "://" not in value and not Path(value).expanduser().is_absolute():
        return str(folder / value)
    return value


def _hub_unreachable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if (
            isinstance(seen, ConnectionError)
            or type(seen).__name__ in {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError"}
            or any(t in text for t in ("couldn't reach", "offline mode", "name or service not known"))
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _hub_error(tasks: list[str], local: set[str]) -> DataError:
    hub = [t for t in tasks if t not in local] or tasks
    return DataError(
        f"The lm-eval task {hub[0]} needs its data set from the Hugging Face Hub, which cannot be reached here: "
        "use the shipped local task demo_general (or a local YAML task) or run where the Hub is reachable."
    )
