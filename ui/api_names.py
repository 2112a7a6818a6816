"""Every API endpoint name the app exposes, in one place: gr.api / api_name= and the tests use these.

A script calls them with gradio_client, e.g. `Client(url).predict(yaml_text, api_name="/" + SUBMIT_RUN)`.
"""

from __future__ import annotations

SUBMIT_RUN = "submit_run"  # RunConfig YAML (one or more documents) -> run id(s), comma-separated
RUN_STATUS = "run_status"  # run id -> status, progress, ETA, latest metrics
CANCEL_RUN = "cancel_run"  # run id -> new state
CHECK_DATA = "check_data"  # Data tab: source, upload, subset, split, method, model, mapping -> format, preview, report
BUILD_CONFIG = "build_config"  # Train tab form -> RunConfig YAML
ESTIMATE = "estimate"  # RunConfig YAML -> pre-flight estimate (Markdown)
PUBLISH_RUN = "publish_run"  # run id, repo id, private, merged, overwrite -> links
PLAYGROUND_REPLY = "playground_reply"  # run/adapter id, message, temperature, max new tokens[, history as
# [message, base, adapter] turns, system, top_p, seed] -> (base, tuned)
START_COMPARISON = "start_comparison"  # comparison YAML -> {comparison_id, runs}
COMPARISON_STATUS = "comparison_status"  # comparison id -> arms and report

ALL = (
    SUBMIT_RUN,
    RUN_STATUS,
    CANCEL_RUN,
    CHECK_DATA,
    BUILD_CONFIG,
    ESTIMATE,
    PUBLISH_RUN,
    PLAYGROUND_REPLY,
    START_COMPARISON,
    COMPARISON_STATUS,
)
