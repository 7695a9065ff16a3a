"""Assemble the studio's page from one module per tab, and serve it.

    python launch.py [--port N] [--workspace DIR] [--share --auth USER:PASS]

Tabs talk through a few components: the Method tab's choices flow into the Train tab's config, and a
preset loaded in the Train tab shows its model and method in the Method tab.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from studio import __version__
from studio.access import ANNOTATOR, Logins, UploadAllowance, readable_model
from studio.config import RunConfig
from studio.errors import StudioError
from studio.models.counting import model_shapes
from studio.paths import ASSETS
from studio.train.machine import status_line
from studio.ui.api import glue
from studio.ui.context import AppContext
from studio.ui.gate import RequestGate
from studio.ui.roles import GatedBlocks, for_annotators, is_admin
from studio.ui.tabs import chat, data, guide, method, preferences, train
from studio.ui.uploads import UploadQuota
from studio.workspace import Workspace


def with_method_choices(tab: method.MethodTab, ws: Workspace | None = None) -> Any:
    """A handler: the Train tab's base config with the Method tab's current choices. Unchanged while they
    are invalid, name a model the Method tab refused (one it cannot read, or may not), or are what the base
    says already: the Method tab being filled from the base (page load, a preset) must never write back a
    base it read a moment earlier over a preset loaded since."""
    def handler(base: dict[str, Any], *values: Any) -> Any:
        choices = tab.choices_of(values)
        try:
            current = RunConfig.from_dict(base)
            wanted = method.run_config(choices, base=current)
            if wanted.to_dict() == current.to_dict():
                return gr.skip()
            if ws is not None:
                readable_model(ws, choices["model.name"])
            model_shapes(choices["model.name"], stage=choices["method.stage"])
            return wanted.to_dict()
        except (ValueError, StudioError):
            return gr.skip()
    return handler


def _followed(switch: bool) -> Any:
    """The Train tab's value as the Method tab's estimate takes it: checkpointing auto/on/off becomes a tick
    (on only when asked for; auto leaves it off, as on a GPU with room to spare)."""
    return (lambda v: v == "on") if switch else (lambda v: v)


def open_method(method_name: str, stage_name: str) -> Any:
    """A handler for the Guide's "try it" buttons: that method and stage in the Method tab, which opens."""
    def handler() -> tuple[Any, ...]:
        return method_name, stage_name, gr.Tabs(selected="method")
    return handler


TABS = (("Data", "data", data), ("Method", "method", method), ("Train", "train", train),
        ("Preferences", "preferences", preferences), ("Chat", "chat", chat), ("Guide", "guide", guide))
ANNOTATOR_TAB = "preferences"


def header(ctx: AppContext, admin: bool) -> str:
    where = f" · workspace `{ctx.workspace.root}`" if admin else " · preference voting"
    return f"## Fine-tuning Studio <small>v{__version__}{where}</small>"


def build_app(ctx: AppContext) -> gr.Blocks:
    """The page, the same for every user; what a user may run is decided per event by their role."""
    # uploads older than a day are deleted (checked hourly): saved datasets are what lasts
    with GatedBlocks(title="Fine-tuning Studio", logins=ctx.logins, delete_cache=(3600, 86400)) as app:
        title = gr.Markdown(header(ctx, admin=False), elem_id="studio-header")
        machine = gr.Markdown("", elem_id="status-bar")
        machine_timer = gr.Timer(10.0, active=False)  # admins only: started by view() at page load
        built, pages = {}, {}
        with gr.Tabs() as tabs:
            for label, tab_id, module in TABS:
                # a tab can be shown at page load but not hidden again: all but voting start hidden
                with gr.Tab(label, id=tab_id, visible=tab_id == ANNOTATOR_TAB) as page:
                    built[tab_id] = module.build(ctx)
                pages[tab_id] = page
        method_tab, train_tab, prefs_tab = built["method"], built["train"], built["preferences"]
        data_tab = built["data"]
        # the Data tab measures tokens with the model and max length the run will use
        method_tab.fields["model.name"].change(lambda m: m, method_tab.fields["model.name"], data_tab["model"],
                                               show_progress="hidden", **glue("follow_model"))
        # one length and one batch size, shown everywhere: the Train tab's settings are the run's, and the
        # Data tab's token check and the Method tab's memory estimate follow them (every tab opens on the same
        # config, so they agree from the start without a page-load copy)
        est = method_tab.estimate
        follows = [(train_tab["max_length"], data_tab["max_length"]), (train_tab["max_length"], est["seq"]),
                   (train_tab["batch_size"], est["batch"]), (train_tab["checkpointing"], est["checkpointing"]),
                   (train_tab["processes"], est["processes"]), (train_tab["strategy"], est["strategy"])]
        for n, (source, target) in enumerate(follows):
            source.change(_followed(target is est["checkpointing"]), source, target, show_progress="hidden",
                          **glue(f"follow_train_{n}"))
        base, choices = train_tab["base"], method_tab.config_inputs
        gr.on([c.change for c in choices], with_method_choices(method_tab, ctx.workspace), [base, *choices], base,
              trigger_mode="always_last", show_progress="hidden", **glue("method_into_config"))
        train_tab["preset_loaded"].then(method_tab.form_values, base, choices, show_progress="hidden",
                                        **glue("preset_into_method"))
        train_tab["cloned"].then(method_tab.form_values, base, choices, show_progress="hidden",
                                 **glue("clone_into_method"))
        for button, method_name, stage_name in built["guide"]["try"]:  # the Guide's "try it": set and open
            button.click(open_method(method_name, stage_name), None,
                         [method_tab.fields["method.name"], method_tab.fields["method.stage"], tabs],
                         show_progress="hidden", **glue(f"guide_try_{method_name}_{stage_name}"))

        @for_annotators
        def view(request: gr.Request):
            """What this user's page shows: everything for an admin; for an annotator, only voting."""
            admin = is_admin(ctx.logins, request)
            shown = [gr.Tab(visible=admin or tab_id == ANNOTATOR_TAB) for _, tab_id, _ in TABS]
            return [header(ctx, admin), *shown, gr.Tabs(selected=TABS[0][1] if admin else ANNOTATOR_TAB),
                    gr.Timer(active=admin), gr.Timer(active=admin),
                    *[gr.update(visible=admin)] * len(prefs_tab["admin_only"])]

        app.load(view, None, [title, *pages.values(), tabs, train_tab["timer"], machine_timer,
                              *prefs_tab["admin_only"]], show_progress="hidden", **glue("page_view"))

        def machine_line(last: str):
            """Every few seconds: the status bar, sent only when it says something new."""
            line = status_line(ctx.workspace)
            return (line if line != last else gr.skip()), line

        last_line = gr.State("")
        machine_timer.tick(machine_line, last_line, [machine, last_line], show_progress="hidden",
                           **glue("status_bar_tick"))
        app.load(machine_line, last_line, [machine, last_line], show_progress="hidden", **glue("status_bar"))
        pages[ANNOTATOR_TAB].select(prefs_tab["load"], prefs_tab["inputs"], prefs_tab["outputs"],
                                    show_progress="hidden", **glue("prefs_tab_open"))
        for fn, inputs, outputs, name in ctx.on_load:
            app.load(fn, inputs, outputs, show_progress="hidden", **glue(name))
        for n, (dropdown, options) in enumerate(ctx.pickers):
            refresh = (lambda f: lambda: gr.update(choices=f()))(options)
            app.load(refresh, None, dropdown, show_progress="hidden", **glue(f"picker_load_{n}"))
            dropdown.focus(refresh, None, dropdown, show_progress="hidden", **glue(f"picker_refresh_{n}"))
    return app


QUEUE_POLL_S = 0.05
"""How often an idle queue looks for work. Gradio polls every millisecond, which alone kept a few
percent of a core busy with nobody using the app; 50 ms (Gradio's own value on Windows) adds at most
50 ms before an event starts."""
PROGRESS_POLL_S = 0.1


def calm_queue(app: gr.Blocks) -> gr.Blocks:
    """Poll less often while idle (the queue's own settings; left alone if this Gradio has none)."""
    queue = getattr(app, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_POLL_S)
        queue.progress_update_sleep_when_free = max(getattr(queue, "progress_update_sleep_when_free", 0),
                                                    PROGRESS_POLL_S)
    return app


NO_RUN_HISTORY = {"run_history": False} if "run_history" in inspect.signature(gr.Blocks.launch).parameters else {}
"""Gradio's run history would keep every call's inputs in the browser (a hub token typed for Push among them)
and serves its pages without the login; the studio keeps its own records of runs, votes and datasets."""


def launch(logins: Logins, host: str = "127.0.0.1", port: int = 7860, workspace: str | None = None,
           share: bool = False, open_browser: bool = False, allow_reward_code: bool = False) -> None:
    """Serve the studio; `ports.check_listening` has passed (it is called before gradio is imported, so a refusal
    comes at once)."""
    from studio.access import ENV_PROBLEMS

    if ENV_PROBLEMS:
        raise StudioError("; ".join(ENV_PROBLEMS) + ".")
    ws = Workspace.open(workspace)
    ws.check_writable()  # else every action would fail one by one
    # uploads land inside the workspace, not in a system-wide temporary folder
    os.environ["GRADIO_TEMP_DIR"] = str(ws.root / "uploads")
    # a failed login's lockout is kept per address: an X-Forwarded-For header names it only when it comes from a
    # proxy in FORWARDED_ALLOW_IPS. Without a share link, none (any local process could name any address); with
    # one, this machine, where the tunnel that adds each visitor's address connects from
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "127.0.0.1,::1" if share else "")
    app = build_app(AppContext(workspace=ws, shared=share, logins=logins,
                               reward_code=allow_reward_code or not logins.enabled))
    css_file = ASSETS / "css" / "studio.css"
    roles = sorted(set(logins.roles.values()))
    print(f"Fine-tuning Studio on http://{host}:{port}  (workspace {ws.root}"
          + (f"; logins: {', '.join(roles)})" if roles else ")"), flush=True)
    calm_queue(app.queue(default_concurrency_limit=4)).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=logins.acheck if logins.enabled else None,
        auth_message="Annotators see the Preferences tab only." if ANNOTATOR in roles else None,
        inbrowser=open_browser,
        css_paths=[css_file] if css_file.exists() else None,
        js=(ASSETS / "js" / "keys.js").read_text(encoding="utf-8"),
        theme=gr.themes.Soft(),
        show_error=False,
        allowed_paths=[],
        max_file_size="1gb",
        quiet=True,
        app_kwargs={"middleware": [Middleware(RequestGate, logins=logins),
                                   Middleware(UploadQuota, allowance=UploadAllowance())]},
        **NO_RUN_HISTORY,
    )
