"""What every tab shares: where runs live, the queue, and what this deployment allows.

Built once per app in app.py and passed to each tab; it holds no per-user state (that lives in gr.State
and in the run store, keyed by owner).  The Playground's model cache is keyed by paths only: the Playground
authorizes every request (jobs.access, the run's owner) before it asks the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import settings
from core.paths import RECIPES, ROOT, studio_home
from data.demo.build import DEFAULT_QUESTION
from data.sources import hub_reachable
from evaluation.chat import ModelCache
from jobs.api import JobQueue
from jobs.runner import Worker

DEMO_SFT = ROOT / "data" / "demo" / "sft_train.jsonl"
DEMO_DPO = ROOT / "data" / "demo" / "dpo_train.jsonl"
DEMO_KTO = ROOT / "data" / "demo" / "kto_train.jsonl"
DEMO_GRPO = ROOT / "data" / "demo" / "grpo_train.jsonl"
DEMO_QUESTION = DEFAULT_QUESTION  # the Playground's first message: a held-out question the default demo SFT answers


@dataclass
class AppContext:
    home: Path = field(default_factory=studio_home)
    online: bool = field(default_factory=hub_reachable)
    worker: Worker | None = None
    queue: JobQueue = None  # type: ignore[assignment]
    chat_cache: ModelCache = field(
        default_factory=lambda: ModelCache(settings.playground_cache_bytes())
    )  # the Playground's loaded models (this process)

    def __post_init__(self):
        self.home = Path(self.home)
        if self.queue is None:
            self.queue = JobQueue(self.home, worker=self.worker)

    @property
    def default_model(self) -> str:
        return "HuggingFaceTB/SmolLM2-135M-Instruct" if self.online else "demo-tiny"

    def recipes(self) -> list[str]:
        return sorted(p.stem for p in RECIPES.glob("*.yaml"))
