"""Serve the app as a shared Space for tests/test_shared_space.py: `python tests/spaces/serve.py PORT`.

The environment (SYSTEM=spaces, SPACE_ID, OAUTH_*, HF_TOKEN, STUDIO_HOME) is set by the test before gradio is
imported, exactly as on a Space.  The one test hook: every training child the worker starts has its environment
recorded (variable names, and a digest of HF_TOKEN) in STUDIO_HOME/observed-env/, so the test can see what the
child saw without racing it.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


class _RecordingSubprocess:
    """jobs.runner's `subprocess`, with Popen recording the child's environment first."""

    def __getattr__(self, name):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(cmd, **kwargs):  # noqa: N802 - stands in for subprocess.Popen
        env = kwargs.get("env") or {}
        token = env.get("HF_TOKEN")
        folder = Path(os.environ["STUDIO_HOME"]) / "observed-env"
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "cmd": [str(c) for c in cmd],
            "names": sorted(env),
            "hf_token_sha256": hashlib.sha256(token.encode()).hexdigest() if token else None,
        }
        proc = subprocess.Popen(cmd, **kwargs)
        (folder / f"{proc.pid}.json").write_text(json.dumps(record))
        return proc


def main(port: int) -> None:
    import app
    from jobs import runner
    from ui.context import AppContext

    runner.subprocess = _RecordingSubprocess()
    worker = runner.Worker(poll_s=0.2)  # no idle hook: a test Space never pauses itself
    ctx = AppContext(home=worker.home, worker=worker, online=False)
    app.start_worker(ctx)
    app.build(ctx).queue(default_concurrency_limit=8).launch(
        server_name="127.0.0.1", server_port=port, quiet=True, show_error=True
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
