"""A loopback fake of the Hugging Face Hub for offline tests of real Hub code paths (see server.py, fixture.py)."""

from .fixture import patched_hub, subprocess_env, use_fake_hub
from .server import FakeHub, RecordedRequest

__all__ = ["FakeHub", "RecordedRequest", "patched_hub", "subprocess_env", "use_fake_hub"]
