"""Merged model: the adapter folded into the base weights (PEFT's merge_and_unload), saved as sharded
safetensors with its own card, for people who want a plain transformers model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from core.runfolder import RunFolder
from hub import model_card
from hub.errors import HubError, message, with_retries
from hub.staging import RECORD_FILES, copy_present, ensure_repo, refuse_secret

log = logging.getLogger(__name__)


def check_mergeable(config: dict) -> None:
    if (config.get("model") or {}).get("quantization", "none") != "none":
        raise HubError(
            "This run trained on a quantized (4-bit/8-bit) base, and merging into quantized weights would lose "
            "the adapter's precision: push the adapter only, or retrain with model.quantization: none to merge."
        )
    if (config.get("peft") or {}).get("type") == "none":
        raise HubError("This run is a full fine-tune, already a whole model: push it without the merged option.")
    if config.get("method") == "reward":
        raise HubError("This run is a reward model (a scoring head on its adapter): push the adapter without merging.")


def merge_run(run_dir: Path, out_dir: Path, max_shard_size: str = "5GB") -> Path:
    """Base + adapter -> one model in `out_dir` (safetensors, sharded above `max_shard_size`) + tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = model_card.read_run(run_dir)
    check_mergeable(run["config"])
    base = run["summary"].get("model_path") or run["config"]["model"]["name_or_path"]
    model_cfg = run["config"]["model"]
    dtype = model_cfg.get("dtype", "auto")
    base_model = AutoModelForCausalLM.from_pretrained(
        base,
        dtype="auto" if dtype == "auto" else dtype,
        revision=model_cfg.get("revision") if model_card.hub_id(base) else None,
        trust_remote_code=bool(model_cfg.get("trust_remote_code")),
    )
    adapter = RunFolder(run_dir).adapter_path
    merged = PeftModel.from_pretrained(base_model, str(adapter)).merge_and_unload()
    merged.save_pretrained(out_dir, max_shard_size=max_shard_size)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(out_dir)
    log.info("Merged %s into %s", base, out_dir)
    return out_dir


def push_merged(
    api,
    run_dir: Path,
    repo_id: str,
    *,
    private: bool,
    overwrite: bool,
    license: str | None,  # noqa: A002
    max_shard_size: str = "5GB",
) -> str:
    try:
        repo_id = ensure_repo(api, repo_id, private, overwrite)
        with tempfile.TemporaryDirectory(prefix="studio-merge-") as tmp:
            staging = Path(tmp)
            merge_run(run_dir, staging, max_shard_size)
            copy_present(run_dir, RECORD_FILES, staging / "training")
            model_card.render(run_dir, repo_id, merged=True, license=license).save(staging / "README.md")
            refuse_secret(staging, api.token)
            with_retries(
                lambda: api.upload_folder(
                    repo_id=repo_id, folder_path=staging, commit_message="Fine-Tune Studio: merged model"
                ),
                "upload merged model",
            )
    except HubError:
        raise
    except Exception as exc:
        raise HubError(message(exc, repo_id)) from exc
    return repo_id
