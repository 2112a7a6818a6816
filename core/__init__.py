"""The kernel every layer may import; it imports nothing of ours."""
