"""Where things are: the repository, the shipped templates and demo data, and STUDIO_HOME. Defined once."""

from __future__ import annotations

from pathlib import Path

from core import settings

ROOT = Path(__file__).resolve().parent.parent  # the repository (children run here)
TEMPLATES = ROOT / "templates"
RECIPES = TEMPLATES / "recipes"
DEMO_DATA = ROOT / "data" / "demo"


def studio_home() -> Path:
    """STUDIO_HOME as an absolute path (runs, uploads, comparisons, models, the queue)."""
    return Path(settings.get("STUDIO_HOME")).expanduser().resolve()
