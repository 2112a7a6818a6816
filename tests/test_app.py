"""The app starts headless and serves the recipe list (gradio_client against a real server)."""

from gradio_client import Client

import app


def test_app_serves_the_recipe_table():
    demo = app.build()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        assert client.view_api(print_info=False, return_format="dict") is not None
        names = [row[0] for row in app.recipe_rows()]
        assert "demo-sft" in names and "llama3.1-8b-qlora-sft" in names
    finally:
        demo.close()
