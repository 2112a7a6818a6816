"""A loopback fake of an OpenAI-compatible chat-completions endpoint (Inference Providers' protocol): server.py."""

from .server import ChatRequest, FakeInference, completion

__all__ = ["ChatRequest", "FakeInference", "completion"]
