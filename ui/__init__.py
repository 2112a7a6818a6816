"""Gradio UI: one file per tab, each `build(ctx)` returning its components; handlers are plain functions."""
