"""Hugging Face Hub: push finished runs with model cards, merged models, checkpoint sync, access checks.

No gradio import: usable from the CLI (`python -m hub push ...`), the jobs worker and the app alike.
"""
