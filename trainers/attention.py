"""The attention kernel a run uses on this machine: chosen once, at run time, and recorded with its reason
(summary.json `attention`, train.log).  Not written into config.yaml: the same config picks again on other hardware.

On CUDA the fastest path wins: FlashAttention from the flash-attn package when it imports, else the prebuilt
FlashAttention kernel from the Hub through the `kernels` package when the Hub is reachable, else PyTorch's SDPA.
With FlashAttention TRL's padding-free batches stay as configured (trainers/run.py one_packed_row_per_pass).
On CPU nothing changes (transformers' default).  A kernel named in the config is always kept.
"""

from __future__ import annotations

import importlib.util

from core.errors import ConfigError
from data.sources import hub_reachable  # the one reachability probe (HF_HUB_OFFLINE, HF_ENDPOINT, proxies)

FLASH_PACKAGE = "flash_attention_2"  # flash-attn, installed
HUB_KERNEL = "kernels-community/flash-attn2"  # the same kernel, prebuilt on the Hub (transformers' own fallback)
SDPA = "sdpa"


def is_flash(implementation: str | None) -> bool:
    """True for FlashAttention, from the package or a Hub kernel: it keeps packed rows apart in one flat batch."""
    name = (implementation or "").lower()
    return name.startswith("flash") or "flash-attn" in name


def importable(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def choose(requested: str | None, device: str, flash=None, kernels=None, hub=None) -> dict:
    """{"implementation": what to load the model with (None: transformers' default), "reason": why}.
    flash / kernels / hub: whether flash-attn imports, `kernels` imports and the Hub answers (probed when None)."""
    if requested:
        return {"implementation": requested, "reason": "set in the config (model.attn_implementation)"}
    if device != "cuda":
        return {"implementation": None, "reason": "CPU: transformers' default attention (nothing changes)"}
    if importable("flash_attn") if flash is None else flash:
        return {"implementation": FLASH_PACKAGE, "reason": "CUDA and flash-attn imports: FlashAttention 2"}
    has_kernels = importable("kernels") if kernels is None else kernels
    if has_kernels and (hub_reachable() if hub is None else hub):
        return {
            "implementation": HUB_KERNEL,
            "reason": "CUDA, no flash-attn package: the prebuilt FlashAttention kernel from the Hub (kernels)",
        }
    why = "the kernels package is not installed" if not has_kernels else "the Hub is not reachable"
    return {"implementation": SDPA, "reason": f"CUDA, no flash-attn package and {why}: PyTorch SDPA"}


def fallback(choice: dict, exc: BaseException) -> dict | None:
    """When the Hub kernel the engine chose itself cannot load (a download or build failure), SDPA instead, with
    the reason; None for anything else (a kernel the config names fails as the user asked)."""
    if choice.get("implementation") != HUB_KERNEL or choice.get("reason", "").startswith("set in the config"):
        return None
    why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return {"implementation": SDPA, "reason": f"the Hub FlashAttention kernel did not load ({why}): PyTorch SDPA"}


def liger(training: dict, device: str) -> tuple[bool, str | None]:
    """(use_liger_kernel for this run, a note to log).  Liger's Triton kernels run on CUDA only: off on CPU."""
    if not training.get("use_liger_kernel"):
        return False, None
    if device != "cuda":
        return False, "use_liger_kernel: Liger's kernels need a CUDA GPU; off on CPU"
    if not importable("liger_kernel"):
        raise ConfigError(
            "training.use_liger_kernel needs the liger-kernel package, which is not installed here: "
            "install it or remove use_liger_kernel."
        )
    return True, "use_liger_kernel: Liger's fused kernels on (lower memory)"
