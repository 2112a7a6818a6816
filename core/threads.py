"""CPU threads, decided deliberately for every process the studio runs.

On a machine whose cores are shared (a 2-vCPU Space serving the page while it trains, CI, a laptop), torch's
OpenMP threads spin at barriers while a sibling thread is descheduled, and each matmul then waits a scheduler
slice: a 30 s demo SFT took 27 minutes beside one busy process.  Two rules prevent it:

- a process gets an intra-op thread count that fits the cores actually available to it (affinity and cgroup
  quota), minus what the app and the other running children need;
- OpenMP waits passively (`OMP_WAIT_POLICY=PASSIVE`): a waiting thread sleeps instead of spinning.

An explicit `OMP_NUM_THREADS` (or `OMP_WAIT_POLICY`) set by the user always wins.  A parent that decides for a
child passes `STUDIO_CPU_THREADS`; the child applies it with `configure()` before torch is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

_APPLIED: dict[int, dict] = {}  # pid -> the decision configure() applied in that process
HINT = "STUDIO_CPU_THREADS"  # a parent's decision for its child (the user's OMP_NUM_THREADS still wins)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 cpu.max, else v1 cfs), None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


def app_share(cores: int | None = None) -> int:
    """Threads the app keeps for its own inference (Playground, evaluation in a request): a quarter, at least 1."""
    cores = cores or available_cores()
    return max(1, cores // 4) if cores > 1 else 1


def child_threads(reserve: int = 0, siblings: int = 1, cores: int | None = None) -> int:
    """Intra-op threads for one child when `reserve` cores stay with the parent and `siblings` children
    (this one included) may run at once."""
    cores = cores or available_cores()
    return max(1, (cores - reserve) // max(1, siblings))


def child_vars(threads: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a parent sets for a child it gives `threads` threads (the user's own choices kept)."""
    env = os.environ if env is None else env
    out = {HINT: str(threads)}
    if "OMP_WAIT_POLICY" not in env:
        out["OMP_WAIT_POLICY"] = "PASSIVE"
    return out


def _user_threads(env: Mapping[str, str]) -> int | None:
    try:
        value = int(env.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def decide(env: Mapping[str, str] | None = None) -> dict:
    """What this process should use: {threads, wait_policy, cores, source}."""
    env = os.environ if env is None else env
    cores = available_cores()
    user = _user_threads(env)
    if user:
        threads, source = user, "OMP_NUM_THREADS (set by the user)"
    else:
        try:
            threads, source = max(1, int(env.get(HINT, ""))), "given by the parent process (" + HINT + ")"
        except ValueError:
            threads, source = cores, "all available cores"
    return {
        "threads": threads,
        "wait_policy": env.get("OMP_WAIT_POLICY", "PASSIVE"),
        "cores": cores,
        "source": source,
    }


def configure(threads: int | None = None, env: MutableMapping[str, str] | None = None) -> dict:
    """Apply the decision to this process: OpenMP variables (effective only before torch loads libgomp, so
    call this first), then `torch.set_num_threads`.  `threads` overrides the decision unless the user set
    OMP_NUM_THREADS.  Returns the decision, to log and record."""
    own = env is None
    env = os.environ if env is None else env
    applied = _APPLIED.get(os.getpid()) if own and not threads else None
    if applied:  # decided already in this process: its hint below is ours, not a parent's
        plan = dict(applied)
    else:
        plan = decide(env)
        if threads and not _user_threads(env):
            plan.update(threads=max(1, threads), source="this process's share of the cores")
    env.setdefault("OMP_WAIT_POLICY", plan["wait_policy"])
    if not _user_threads(env):
        env[HINT] = str(plan["threads"])  # this process's own children (init_from runs, ranks) inherit it
    import torch

    if torch.get_num_threads() != plan["threads"]:
        torch.set_num_threads(plan["threads"])
    if own:
        _APPLIED[os.getpid()] = dict(plan)
    return plan
