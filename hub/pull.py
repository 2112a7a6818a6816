"""Reading from the Hub with the user's token: an access check before a run is queued, so a gated, private,
missing or misspelt model or dataset is one sentence in the form, not a failed run minutes later.
The downloads themselves are transformers' and datasets' (trainers/models.py, data/sources.py)."""

from __future__ import annotations

from hub.errors import HubError, is_connection_error, message, status_of
from hub.model_card import hub_id


def check_access(repo_id: str, repo_type: str = "model", token: str | None = None) -> None:
    """Raise HubError with one sentence unless `token` (or the ambient login) can read `repo_id`."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub import errors as hub_errors

    if constants.HF_HUB_OFFLINE:
        return  # offline: the local cache decides at load time
    what = "dataset" if repo_type == "dataset" else "model"
    try:
        HfApi(token=token).auth_check(repo_id, repo_type=repo_type)
    except hub_errors.GatedRepoError as exc:
        raise HubError(
            f"The {what} {repo_id} is gated and your account has not been granted access: open "
            f"its page on the Hub, accept the conditions, wait for approval if asked, then try again."
        ) from exc
    except Exception as exc:
        if isinstance(exc, hub_errors.RepositoryNotFoundError) or status_of(exc) == 404:
            hint = "" if token else ", or sign in / set HF_TOKEN if it is private"
            raise HubError(f"The {what} {repo_id} was not found or is private: check the id for typos{hint}.") from exc
        if status_of(exc) == 401:
            raise HubError(
                "The Hugging Face token was rejected (401): sign in again or set HF_TOKEN to a valid token."
            ) from exc
        if is_connection_error(exc):
            raise HubError(
                f"The Hugging Face Hub could not be reached to check {repo_id}: check the network, or use a local path."
            ) from exc
        raise HubError(message(exc, repo_id, "read")) from exc


def check_run_sources(config, token: str | None = None) -> None:
    """Access check for every Hub id a RunConfig reads (base model, training and held-out data)."""
    if hub_id(config.model.name_or_path):
        check_access(config.model.name_or_path, "model", token)
    for source in {config.data.source, config.data.eval_source} - {None}:
        if hub_id(source):
            check_access(source, "dataset", token)
