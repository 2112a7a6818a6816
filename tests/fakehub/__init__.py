"""A loopback fake of the Hugging Face Hub for offline tests of real Hub code paths (see server.py, fixture.py)."""

from .fixture import patched_hub, subprocess_env, use_fake_hub
from .server import FakeHub, Fault, RecordedRequest

__all__ = ["FakeHub", "Fault", "RecordedRequest", "patched_hub", "subprocess_env", "use_fake_hub"]
