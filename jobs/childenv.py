"""The environment of every child the studio starts (training runs, comparison reports): built from an
allowlist, never copied whole.

The app's own environment on a Space holds the Space owner's HF_TOKEN and the OAuth client secret that signs
session cookies; neither may reach a user's run.  A child gets what Python, torch, CUDA and the Hugging Face
libraries need, its CPU thread share (core.threads), and that run's own owner token, nothing else.  A Space
owner who wants more passed through names the variables in STUDIO_CHILD_ENV (comma-separated); names that
look like secrets are never passed that way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from core import threads

EXACT = {
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "TERM",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONWARNINGS", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NO_PROXY", "no_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "HF_HOME", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE", "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE", "HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_TELEMETRY",
    "HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_ENABLE_HF_TRANSFER", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
    "TRANSFORMERS_CACHE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_VERBOSITY", "TOKENIZERS_PARALLELISM",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "WANDB_MODE", "WANDB_PROJECT",
    "TRACKIO_SPACE_ID", "STUDIO_HOME", "STUDIO_QUIET", "STUDIO_MULTI_USER", "SYSTEM", "SPACE_ID", "CI",
}  # fmt: skip
PREFIXES = ("LC_", "XDG_", "NCCL_", "TORCH_", "ACCELERATE_", "TRITON_", "CUDA_", "BNB_", "KMP_")
SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE|CREDENTIAL|COOKIE|AUTH", re.I)


def allowed(name: str) -> bool:
    if SECRET.search(name):
        return False
    return name in EXACT or name.startswith(PREFIXES)


def child_env(
    home,
    token: str | None = None,
    cpu_threads: int | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a child: allowlisted variables of `base` (default os.environ), the Space owner's
    extra names from STUDIO_CHILD_ENV, `token` as HF_TOKEN (only that), STUDIO_HOME and the CPU thread share."""
    base = os.environ if base is None else base
    extra = {n.strip() for n in base.get("STUDIO_CHILD_ENV", "").split(",") if n.strip() and not SECRET.search(n)}
    env = {k: v for k, v in base.items() if allowed(k) or k in extra}
    if token:
        env["HF_TOKEN"] = token  # the run owner's token, through the environment only
    env.update(STUDIO_HOME=str(home), STUDIO_QUIET="1", PYTHONUNBUFFERED="1")
    env.update(threads.child_vars(cpu_threads or threads.child_threads(), base))
    return env
