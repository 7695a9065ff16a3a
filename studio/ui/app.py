"""Assemble the studio's page from one module per tab, and serve it.

    python launch.py [--port N] [--workspace DIR] [--share --auth USER:PASS]
"""

from __future__ import annotations

import os

import gradio as gr

from studio import __version__
from studio.errors import StudioError
from studio.paths import ASSETS
from studio.ui.context import AppContext
from studio.ui.tabs import chat, data, guide, placeholder, train
from studio.workspace import Workspace

TAB_ORDER = ("Data", "Method", "Train", "Preferences", "Chat", "Guide")


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Fine-tuning Studio") as app:
        gr.Markdown(f"## Fine-tuning Studio <small>v{__version__} · workspace `{ctx.workspace.root}`</small>",
                    elem_id="studio-header")
        with gr.Tabs():
            for title in TAB_ORDER:
                with gr.Tab(title, id=title.lower()):
                    if title == "Data":
                        data.build(ctx)
                    elif title == "Train":
                        train.build(ctx)
                    elif title == "Chat":
                        chat.build(ctx)
                    elif title == "Guide":
                        guide.build(ctx)
                    else:
                        placeholder.build(title)
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
