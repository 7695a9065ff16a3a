"""Assemble the studio's page from one module per tab, and serve it.

    python launch.py [--port N] [--workspace DIR] [--share --auth USER:PASS]

Tabs talk through a few components: the Method tab's choices flow into the Train tab's config, and a
preset loaded in the Train tab shows its model and method in the Method tab.
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from studio import __version__
from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import ASSETS
from studio.ui.context import AppContext
from studio.ui.tabs import chat, data, guide, method, preferences, train
from studio.workspace import Workspace


def with_method_choices(tab: method.MethodTab) -> Any:
    """A handler: the Train tab's base config with the Method tab's current choices; unchanged while they
    are invalid."""
    def handler(base: dict[str, Any], *values: Any) -> Any:
        try:
            return method.run_config(tab.choices_of(values), base=RunConfig.from_dict(base)).to_dict()
        except (ValueError, StudioError):
            return gr.skip()
    return handler


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Fine-tuning Studio") as app:
        gr.Markdown(f"## Fine-tuning Studio <small>v{__version__} · workspace `{ctx.workspace.root}`</small>",
                    elem_id="studio-header")
        with gr.Tabs():
            with gr.Tab("Data", id="data"):
                data.build(ctx)
            with gr.Tab("Method", id="method"):
                method_tab = method.build(ctx)
            with gr.Tab("Train", id="train"):
                train_tab = train.build(ctx)
            with gr.Tab("Preferences", id="preferences") as prefs_page:
                prefs_tab = preferences.build(ctx)
            with gr.Tab("Chat", id="chat"):
                chat.build(ctx)
            with gr.Tab("Guide", id="guide"):
                guide.build(ctx)
        base, choices = train_tab["base"], method_tab.config_inputs
        gr.on([c.change for c in choices], with_method_choices(method_tab), [base, *choices], base,
              trigger_mode="always_last", show_progress="hidden")
        train_tab["preset_loaded"].then(method_tab.form_values, base, choices, show_progress="hidden")
        app.load(method_tab.form_values, base, choices, show_progress="hidden")
        prefs_page.select(prefs_tab["load"], prefs_tab["inputs"], prefs_tab["outputs"], show_progress="hidden")
        for fn, inputs, outputs in ctx.on_load:
            app.load(fn, inputs, outputs, show_progress="hidden")
        for dropdown, options in ctx.pickers:
            refresh = (lambda f: lambda: gr.update(choices=f()))(options)
            app.load(refresh, None, dropdown, show_progress="hidden")
            dropdown.focus(refresh, None, dropdown, show_progress="hidden")
    return app


def parse_auth(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise StudioError(f"--auth needs USER:PASS with both parts (got {item!r}).")
        pairs.append((user, password))
    return pairs


def launch(host: str = "127.0.0.1", port: int = 7860, workspace: str | None = None, share: bool = False,
           auth: list[str] | None = None, open_browser: bool = False) -> None:
    logins = parse_auth(auth or [])
    if share and not logins:
        raise StudioError("A shared link is public: add --auth USER:PASS so that it needs a login.")
    ws = Workspace.open(workspace)
    # uploads land inside the workspace, not in a system-wide temporary folder
    os.environ["GRADIO_TEMP_DIR"] = str(ws.root / "uploads")
    app = build_app(AppContext(workspace=ws, shared=share))
    css_file = ASSETS / "css" / "studio.css"
    print(f"Fine-tuning Studio on http://{host}:{port}  (workspace {ws.root})", flush=True)
    app.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=logins or None,
        inbrowser=open_browser,
        css_paths=[css_file] if css_file.exists() else None,
        theme=gr.themes.Soft(),
        show_error=False,
        allowed_paths=[],
        max_file_size="1gb",
        quiet=True,
    )
