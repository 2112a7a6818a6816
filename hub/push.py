"""Push a finished run to the Hub: the adapter (or full model) with its tokenizer, a model card, and the
run's own record (config.yaml, metrics.jsonl, summary.json, data_report.json, loss curve) under training/.

Everything goes through huggingface_hub (create_repo, upload_folder). The upload is staged in a temporary
folder, so the run folder is only ever read; only regular files are staged (a link is refused). The training
record is published through model_card.public() (no local paths, no run ids of local folders), and before
anything reaches the Hub every staged file is scanned for token-shaped strings (core.secrets): one found
refuses the whole push. An existing repo is updated only when it is empty or was pushed by this app; anything
else needs `overwrite=True`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.paths import studio_home
from core.runfolder import RunFolder
from hub import model_card
from hub.errors import HubError, message, with_retries
from hub.merge import check_mergeable, push_merged
from hub.staging import RECORD_FILES, copy_file, copy_present, ensure_repo, refuse_secret
from trainers import methods
from trainers.plots import loss_curves

log = logging.getLogger(__name__)
COMPARISON_FILES = ("report.md", "report.json", "loss_curves.png", "metrics.png")
_SKIP_FROM_ADAPTER = {"README.md", "training_args.bin"}


@dataclass
class PushResult:
    repo_id: str
    url: str
    commit_url: str
    files: list[str]
    merged_repo_id: str | None = None
    merged_url: str | None = None


def check_run(run_dir: Path) -> dict:
    """The run's record, or one sentence saying why it cannot be pushed."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.config_path.exists():
        raise HubError(f"{run_dir} is not a run folder (it has no config.yaml): pass the folder of a finished run.")
    run = model_card.read_run(run_dir)
    status = run["summary"].get("status", "unknown")
    if status != "succeeded" or not folder.adapter_path.is_dir():
        raise HubError(
            f"The run in {run_dir} has not finished successfully (status: {status}): "
            "only finished runs can be pushed; resume or re-run it first."
        )
    return run


def _whoami(api, repo_id: str) -> str:
    if _no_token(api):
        raise HubError(
            "No Hugging Face token: sign in (on a Space) or set HF_TOKEN to a token with write access; "
            "your run folder is unchanged."
        )
    try:
        return with_retries(lambda: api.whoami()["name"], "whoami")
    except Exception as exc:
        raise HubError(message(exc, repo_id)) from exc


def _no_token(api) -> bool:
    from huggingface_hub import get_token

    return not (api.token or get_token())


def stage(
    run_dir: Path,
    repo_id: str,
    staging: Path,
    *,
    license: str | None = None,
    comparison_dir: Path | None = None,
    run: dict | None = None,
) -> list[str]:
    """Fill `staging` with what the repo will hold; returns the relative file names."""
    run = run or model_card.read_run(run_dir)
    adapter = RunFolder(run_dir).adapter_path
    if adapter.is_symlink():
        raise HubError(f"Refusing to push: the adapter folder of {run_dir} is a link; nothing was uploaded.")
    for src in sorted(adapter.iterdir()):
        if src.name not in _SKIP_FROM_ADAPTER and not src.is_dir():
            copy_file(src, staging / src.name)
    copy_present(run_dir, RECORD_FILES, staging / "training")
    label = f"{_method_label(run['config'])} run"  # not the run id: it names a local folder
    curve = loss_curves({label: run["metrics"]}, staging / "training" / "loss_curve.png")
    comparison = None
    if comparison_dir and (Path(comparison_dir) / "report.md").exists():
        copy_present(Path(comparison_dir), COMPARISON_FILES, staging / "comparison")
        comparison = model_card.public(
            _relink((Path(comparison_dir) / "report.md").read_text(encoding="utf-8"), "comparison/", COMPARISON_FILES)
        )
    card = model_card.render(
        run_dir,
        repo_id,
        license=license,
        loss_curve="training/loss_curve.png" if curve else None,
        comparison=comparison,
        run=run,
    )
    card.save(staging / "README.md")
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


def _method_label(config: dict) -> str:
    return methods.get(config.get("method") or methods.names()[0]).label


def _relink(markdown: str, prefix: str, names: tuple[str, ...]) -> str:
    """Point the report's relative image links at the folder they are pushed into; drop its top heading."""
    lines = markdown.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    text = "\n".join(lines).replace("\n## ", "\n### ")
    for name in names:
        text = text.replace(f"]({name})", f"]({prefix}{name})")
    return text.strip()


def find_comparison(run_dir: Path) -> Path | None:
    """The comparison folder whose report covers this run: `DIR/runs/<arm>` from `python -m evaluation compare`,
    or a comparison the app queued (STUDIO_HOME/comparisons/*/arms.json lists the run)."""
    if (run_dir.parent.parent / "report.md").exists() and run_dir.parent.name == "runs":
        return run_dir.parent.parent
    for listed in sorted((studio_home() / "comparisons").glob("*/arms.json")):
        try:
            arms = json.loads(listed.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        paths = arms.values() if isinstance(arms, dict) else []
        if (
            any(isinstance(p, str) and Path(p).resolve() == run_dir for p in paths)
            and (listed.parent / "report.md").exists()
        ):
            return listed.parent
    return None


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    overwrite: bool = False,
    merged: bool = False,
    merged_repo_id: str | None = None,
    max_shard_size: str = "5GB",
    comparison_dir: str | Path | None = None,
) -> PushResult:
    """Push the run; raises HubError with one sentence on any failure."""
    from huggingface_hub import HfApi

    run_dir = Path(run_dir).resolve()
    run = check_run(run_dir)
    api = HfApi(token=token)
    user = _whoami(api, repo_id)
    full_id = repo_id if "/" in repo_id else f"{user}/{repo_id}"
    if merged:
        check_mergeable(run["config"])
    try:
        license = model_card.base_license(run["config"]["model"].get("name_or_path"), token)
        with tempfile.TemporaryDirectory(prefix="studio-push-") as tmp:
            staging = Path(tmp)
            comparison_dir = comparison_dir or find_comparison(run_dir)
            files = stage(run_dir, full_id, staging, license=license, comparison_dir=comparison_dir, run=run)
            refuse_secret(staging, token or api.token)  # before anything reaches the Hub, the repo included
            full_id = ensure_repo(api, full_id, private, overwrite)
            method = _method_label(run["config"])
            commit = with_retries(
                lambda: api.upload_folder(
                    repo_id=full_id,
                    folder_path=staging,
                    commit_message=f"Fine-Tune Studio: {method} {model_card.adapter_kind(run['config'])}",
                ),
                "upload",
            )
    except HubError:
        raise
    except Exception as exc:
        raise HubError(message(exc, full_id)) from exc
    result = PushResult(full_id, f"{api.endpoint}/{full_id}", commit.commit_url, files)
    log.info("Pushed %d files to %s", len(files), result.url)
    if merged:
        target = merged_repo_id or f"{full_id}-merged"
        if "/" not in target:
            target = f"{user}/{target}"
        result.merged_repo_id = push_merged(
            api, run_dir, target, private=private, overwrite=overwrite, license=license, max_shard_size=max_shard_size
        )
        result.merged_url = f"{api.endpoint}/{result.merged_repo_id}"
    return result
