"""Fixtures of the fake Hub for the tests of this folder (other test folders can import them the same way)."""

from .fixture import fake_hub, fake_hub_env  # noqa: F401
