"""`python -m hub push RUN_DIR --repo-id NAME [--private] [--merged]` — prints the repo URL.

The token comes from HF_TOKEN or the cached login (never an argument); what guards the push against publishing a
secret is the same as in the app: hub.push scans every staged file for token-shaped strings (core.secrets) and
refuses before anything is uploaded, whichever token pushes.
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.errors import quiet_hub_retries, user_message
from hub.errors import HubError
from hub.push import push_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Share Fine-Tune Studio runs on the Hub.")
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="Push a finished run's adapter, card and training record.")
    push.add_argument("run_dir", help="the run folder (holds config.yaml, summary.json, adapter/)")
    push.add_argument("--repo-id", required=True, help="NAME or NAMESPACE/NAME (user or organisation)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--merged", action="store_true", help="also push the merged model to REPO-merged")
    push.add_argument("--merged-repo-id", help="where the merged model goes (default: REPO_ID-merged)")
    push.add_argument("--max-shard-size", default="5GB", help="merged safetensors shard size (default 5GB)")
    push.add_argument("--overwrite", action="store_true", help="allow pushing into a repo not made by this app")
    push.add_argument("--comparison", help="a comparison folder whose report goes into the card")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    quiet_hub_retries()
    try:
        result = push_run(
            args.run_dir,
            args.repo_id,
            private=args.private,
            overwrite=args.overwrite,
            merged=args.merged,
            merged_repo_id=args.merged_repo_id,
            max_shard_size=args.max_shard_size,
            comparison_dir=args.comparison,
        )
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 1
    print(result.url)
    if result.merged_url:
        print(result.merged_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
