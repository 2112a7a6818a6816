"""Before a run is queued: every stage's data checked against its method by the data doctor, and what each stage
will be (rows, tokens per epoch, steps, effective batch, loss mask) from the doctor's own counts.

    check_stages(docs)            # raises the doctor's first error (StageDataError: which stage); queues nothing
    stage_plans(docs, fetch=...)  # [StagePlan] for the summary line above Start

Local files are read in full (sources.is_local); a Hub dataset is downloaded and counted by the run itself, so
its counts are "not available yet", and at Start only its first rows are streamed to check its kind against the
method.  Paths are checked against jobs.access by the caller first."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError
from data import doctor, sources
from data.splits import load_for_run
from jobs.chain import PREVIOUS
from trainers import config as config_mod
from trainers import methods


class StageDataError(DataError):
    """The doctor's first error for one stage: `stage` (0-based) and `method` say which document it is."""

    def __init__(self, message: str, stage: int, method: str):
        super().__init__(message)
        self.stage, self.method = stage, method


@dataclass(frozen=True)
class StagePlan:
    """What one document of the config will train; rows/tokens are None when the data is not read here."""

    method: str
    source: str
    rows: int | None = None  # training rows the doctor keeps, after the held-out split
    eval_rows: int | None = None
    tokens_per_epoch: int | None = None  # tokens of the training rows (the doctor's measure; None without tokenizer)
    tokens_per_row: float | None = None
    steps: int | None = None
    effective_batch: int = 1
    loss_mask: str | None = None
    error: str | None = None  # the doctor's first error: this stage would not train


def stage_config(doc: dict):
    """The RunConfig of one document; `init_from: previous` (the stage before) is not a path to check here."""
    return config_mod.from_dict({**doc, "init_from": None} if doc.get("init_from") == PREVIOUS else doc)


def readable_here(source: str | None) -> bool:
    """Local data is read (and counted) before queueing; a Hub dataset is not downloaded for it."""
    return bool(source) and sources.is_local(str(source))


def local_tokenizer(cfg, fetch: bool = False):
    """The model's tokenizer when it is on this machine (a folder, the demo model) or `fetch` allows the Hub;
    None when it cannot be had (counts are then rows only)."""
    from trainers.models import resolve_and_load_tokenizer, resolve_model_path

    try:
        if not fetch and not Path(resolve_model_path(cfg.model.name_or_path)).expanduser().is_dir():
            return None
        return resolve_and_load_tokenizer(cfg.model)[0]
    except Exception:  # noqa: BLE001 - no tokenizer: the doctor still checks the rows, without token counts
        return None


def _examine(cfg, tokenizer):
    method = methods.get(cfg.method)
    plan = None
    if tokenizer is not None:
        plan = method.build_module().token_plan(tokenizer, cfg.training, method.truncation_side(cfg.training))
    return method, plan, load_for_run(cfg.data, method.task, tokenizer, cfg.training.get("max_length"), plan=plan)


PEEK_ROWS = 50  # a Hub dataset's first rows streamed for the verdict at Start (nothing downloaded in full)


def hub_errors(cfg, token: str | None = None) -> list[str]:
    """The doctor's errors on a Hub dataset's first rows, streamed: the wrong kind of data for the method, rows it
    cannot read.  [] when the Hub cannot be reached or the stream fails: the run's own doctor reports those."""
    if not sources.hub_reachable():
        return []
    section = cfg.data
    sample = sources.peek(section.source, section.split, section.subset, section.revision, PEEK_ROWS, token)
    if sample is None:
        return []
    _, report, _ = doctor.examine(sample, methods.get(cfg.method).task, section)
    return [f.message for f in report.errors if f.code in ("format", "multimodal")]


def check_stages(docs: list[dict], fetch: bool = False, token: str | None = None) -> None:
    """The doctor's verdict for every stage: local data in full; with `fetch`, a Hub dataset's first rows (its
    kind against the method).  Raises the first error, with the stage named."""
    for i, doc in enumerate(docs):
        cfg = stage_config(doc)
        if readable_here(cfg.data.source):
            _, _, (_, _, _, _, reports) = _examine(cfg, local_tokenizer(cfg, fetch))
            errors = [f.message for r in reports for f in r.errors]
        else:
            errors = hub_errors(cfg, token) if fetch else []
        if errors:
            raise StageDataError(errors[0], i, cfg.method)


def _steps(rows: int, training: dict, effective: int) -> int:
    if training.get("max_steps") and int(training["max_steps"]) > 0:
        return int(training["max_steps"])
    epochs = float(training.get("num_train_epochs") or 1)
    return max(1, math.ceil(math.ceil(rows / effective) * epochs))


def effective_batch(cfg) -> int:
    """Rows per optimizer step: per-device batch x gradient accumulation x processes."""
    training = cfg.training
    processes = cfg.launch.num_processes if cfg.launch.profile else 1
    per_device = int(training.get("per_device_train_batch_size") or 8)
    return per_device * int(training.get("gradient_accumulation_steps") or 1) * max(1, processes)


def stage_plan(doc: dict, fetch: bool = False) -> StagePlan:
    cfg = stage_config(doc)
    effective = effective_batch(cfg)
    base = {"method": cfg.method, "source": cfg.data.source, "effective_batch": effective}
    if not readable_here(cfg.data.source):
        steps = int(cfg.training["max_steps"]) if int(cfg.training.get("max_steps") or 0) > 0 else None
        return StagePlan(**base, steps=steps)
    tokenizer = local_tokenizer(cfg, fetch)
    _, plan, (train, eval_ds, form, info, reports) = _examine(cfg, tokenizer)
    errors = [f for r in reports for f in r.errors]
    if errors or train is None:
        return StagePlan(**base, error=errors[0].message if errors else "The data has no rows.")
    rows, kept = info["train_rows"], reports[0].rows_kept or 0
    tokens = reports[0].tokens or {}
    per_epoch = round(tokens["total"] * rows / kept) if tokens.get("total") and kept else None
    return StagePlan(
        **base,
        rows=rows,
        eval_rows=info.get("eval_rows", 0),
        tokens_per_epoch=per_epoch,
        tokens_per_row=tokens.get("mean"),
        steps=_steps(rows, cfg.training, effective),
        loss_mask=plan.loss(form) if plan is not None and form else None,
    )


def stage_plans(docs: list[dict], fetch: bool = False) -> list[StagePlan]:
    return [stage_plan(doc, fetch) for doc in docs]
