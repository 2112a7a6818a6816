"""Hub failures -> one sentence, and retries: trainers/hub_errors.py (the engine calls the Hub too)."""

from trainers.hub_errors import (
    RETRY_STATUSES,
    UNCHANGED,
    HubError,
    is_connection_error,
    message,
    status_of,
    with_retries,
)

__all__ = ["RETRY_STATUSES", "UNCHANGED", "HubError", "is_connection_error", "message", "status_of", "with_retries"]
