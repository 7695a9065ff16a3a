"""Chat tab: talk to a tuned model, compare two models on the same message, evaluate on held-out
data, export the result.

Conversation history is the Chatbot's own value, which Gradio keeps per browser session; models
come from the app-wide cache, with an explicit Unload.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from studio.access import readable_model, run_id_only
from studio.chat.engine import GenerationSettings, build_messages, fit_to_context, stream_reply
from studio.chat.export import export_folder, export_gguf, export_run, holds_export, push_to_hub
from studio.data.store import list_datasets
from studio.errors import StudioError
from studio.paths import DEMO_DATA
from studio.prefs.session import rated_answer
from studio.prefs.store import PreferenceStore
from studio.train.runs import finished_runs, labelled_runs
from studio.ui import evaluate_panel
from studio.ui.api import action, glue
from studio.ui.context import AppContext


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [("tiny", "tiny"), *labelled_runs(ctx.workspace, finished_runs(ctx.workspace, chat_models=True))]


def run_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return labelled_runs(ctx.workspace, finished_runs(ctx.workspace))


def demo_eval_choices() -> list[str]:
    return [f"assets/data/{p.name}" for p in sorted(DEMO_DATA.glob("*eval*.jsonl"))] if DEMO_DATA.exists() else []


def eval_choices(ctx: AppContext) -> list[str]:
    return demo_eval_choices() + [d["name"] for d in list_datasets(ctx.workspace) if d.get("kind") == "sft"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(content or "")


def history_of(chat: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _text(m.get("content"))} for m in (chat or [])
            if m.get("role") in ("user", "assistant")]


def build(ctx: AppContext) -> dict[str, Any]:
    with gr.Row():
        left_model = gr.Dropdown(["tiny"], value="tiny", label="Model", allow_custom_value=True, scale=3,
                                 info="a run, 'tiny', a hub id or a folder")
        compare = gr.Checkbox(False, label="Side by side", scale=1)
        right_model = gr.Dropdown(["tiny"], value="tiny", label="Compare with", allow_custom_value=True,
                                  visible=False, scale=3)
        refresh = gr.Button("↻", scale=0, min_width=40)  # finished runs appear in the pickers
        unload = gr.Button("Unload models", scale=1)
    load_info = gr.Markdown(elem_id="chat-status")
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            system = gr.Textbox(label="System prompt", lines=2, scale=3)
            temperature = gr.Slider(0, 2, value=0.0, step=0.05, label="Temperature (0 = greedy)")
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
            max_new = gr.Slider(8, 1024, value=128, step=8, label="Max new tokens")
            rep = gr.Slider(1.0, 2.0, value=1.0, step=0.05, label="Repetition penalty")
    with gr.Row():
        left = gr.Chatbot(label="Model", height=380, elem_id="chat-left")
        right = gr.Chatbot(label="Compare with", height=380, visible=False, elem_id="chat-right")
    with gr.Row():
        message = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, scale=6,
                             elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1)
        stop = gr.Button("Stop", scale=1)
        regen = gr.Button("Regenerate", scale=1)
        clear = gr.Button("Clear", scale=1)
    to_prefs = gr.Button("Send this pair to Preferences", visible=False)
    prefs_msg = gr.Markdown()

    settings_in = [system, temperature, top_p, max_new, rep]

    def settings_of(sys_p, temp, tp, mx, rp) -> GenerationSettings:
        return GenerationSettings(int(mx), float(temp), float(tp), float(rp), sys_p or "")

    def respond(text, l_chat, r_chat, l_name, r_name, both, *settings, progress=gr.Progress()):
        text = (text or "").strip()
        if not text:
            yield gr.update(), l_chat, r_chat, ""
            return
        s = settings_of(*settings)
        targets = [(l_name, l_chat)] + ([(r_name, r_chat)] if both else [])
        # the message shows at once, while a model that is not in memory yet loads
        asked = [list(c or []) + [{"role": "user", "content": text}] for _, c in targets]
        yield gr.update(), asked[0], asked[1] if both else r_chat, f"Loading {', '.join(n for n, _ in targets)}…"
        loaded = []
        for name, _ in targets:
            try:
                name = readable_model(ctx.workspace, name)  # a run's name loads (and is cached) by its id
                loaded.append(ctx.models.get(name, ctx.workspace,
                                             lambda f, t, n=name: progress(f, desc=f"{n}: {t}")))
            except (StudioError, OSError, ValueError) as err:
                yield "", l_chat, r_chat, f"⚠️ {err}"
                return
        notes = " ".join(n for m in loaded for n in m.notes)
        if not s.system_prompt.strip():  # a run's own system message is sent: say so, it shapes the answer
            notes = " ".join([notes, *(f"{m.name} is sent the system message it trained with, «{m.system}»; a "
                                       "system prompt typed here replaces it." for m in loaded if m.system)]).strip()
        chats = [list(c or []) for _, c in targets]
        streams, stops = [], []
        fitted = []
        for m, chat in zip(loaded, chats):
            try:
                msgs, cut = fit_to_context(m, m.with_system(build_messages(history_of(chat), text, s.system_prompt)),
                                           s.max_new_tokens)
            except StudioError as err:
                yield gr.update(), l_chat, r_chat, f"⚠️ {err}"  # the message stays in the box to shorten
                return
            fitted.append(msgs)
            notes = f"{notes} {cut}".strip() if cut else notes
        for m, chat, msgs in zip(loaded, chats, fitted):
            chat += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            ev = threading.Event()
            stops.append(ev)
            streams.append(stream_reply(m, msgs, s, ev))
        info = f"Answering with {', '.join(m.name for m in loaded)}. {notes}".strip()
        done = [False] * len(streams)
        try:
            while not all(done):
                for i, st in enumerate(streams):
                    if done[i]:
                        continue
                    try:
                        chats[i][-1]["content"] = next(st)
                    except StopIteration:
                        done[i] = True
                yield "", chats[0], chats[1] if both else r_chat, info
        except StudioError as err:
            yield "", chats[0], chats[1] if both else r_chat, f"⚠️ {err}"
        finally:
            for ev in stops:
                ev.set()

    inputs = [message, left, right, left_model, right_model, compare, *settings_in]
    outputs = [message, left, right, load_info]
    ev_send = send.click(respond, inputs, outputs, **action("chat_send"))
    ev_enter = message.submit(respond, inputs, outputs, **glue("chat_send_enter"))
    stop.click(None, None, None, cancels=[ev_send, ev_enter], **glue("chat_stop"))

    def pop_last(l_chat, r_chat, both):
        hist = list(l_chat or [])
        last_user = next((_text(m["content"]) for m in reversed(hist) if m["role"] == "user"), "")
        trim = lambda c: list(c or [])[:-2] if c and len(c) >= 2 else list(c or [])  # noqa: E731
        return last_user, trim(l_chat), trim(r_chat) if both else r_chat

    regen.click(pop_last, [left, right, compare], [message, left, right], **glue("chat_regenerate_pop")).then(
        respond, inputs, outputs, **glue("chat_regenerate"))
    clear.click(lambda: ([], [], "", ""), None, [left, right, message, prefs_msg], **glue("chat_clear"))
    compare.change(lambda b: (gr.update(visible=b), gr.update(visible=b), gr.update(visible=b)), compare,
                   [right_model, right, to_prefs], **glue("chat_compare"))
    refresh.click(lambda: (gr.update(choices=model_choices(ctx)), gr.update(choices=model_choices(ctx))), None,
                  [left_model, right_model], **action("chat_models"))
    for box in (left_model, right_model):
        ctx.picker(box, lambda: model_choices(ctx))
    unload.click(lambda: f"Unloaded {ctx.models.unload()} model(s); memory is free for training.", None, load_info,
                 **action("chat_unload"))

    def send_pair(request: gr.Request, l_chat, r_chat, l_name, r_name):
        lh, rh = history_of(l_chat), history_of(r_chat)
        if len(lh) < 2 or len(rh) < 2 or lh[-1]["role"] != "assistant" or rh[-1]["role"] != "assistant":
            return "⚠️ Ask both models the same message first."
        if lh[-2]["content"] != rh[-2]["content"]:
            return "⚠️ The two sides answered different messages; send the same message to both."
        try:
            pid = PreferenceStore(ctx.workspace.prefs_db).add_pair(lh[-2]["content"], lh[-1]["content"],
                                                                   rh[-1]["content"], l_name, r_name, "chat",
                                                                   created_by=ctx.user(request))
        except StudioError as err:
            return f"⚠️ {err}"
        return f"Saved as preference pair #{pid}: vote on it in the Preferences tab."

    to_prefs.click(send_pair, [left, right, left_model, right_model], prefs_msg, **action("chat_to_preferences"))

    def rate(chat, name, sys_p, like: gr.LikeData, request: gr.Request):
        index = like.index if isinstance(like.index, int) else like.index[0]
        liked = like.liked if isinstance(like.liked, bool) else None  # a second click takes the mark back
        msgs = [{"role": m["role"], "content": _text(m.get("content"))} for m in chat or []]
        try:
            prompt, answer = rated_answer(msgs, index, sys_p or "")
            store = PreferenceStore(ctx.workspace.prefs_db)
            store.rate(prompt, answer, liked, model=name, rater=ctx.user(request))
            n = store.rating_counts()
        except StudioError as err:
            return f"⚠️ {err}"
        said = {True: "Marked good", False: "Marked bad", None: "Mark taken back"}[liked]
        return (f"{said}. Ratings so far: {n['good']} good, {n['bad']} bad; save them as a dataset for a KTO run "
                "in the Preferences tab.")

    left.like(rate, [left, left_model, system], prefs_msg, **action("chat_rate_left"))
    right.like(rate, [right, right_model, system], prefs_msg, **action("chat_rate_right"))

    evaluate_panel.build(ctx, lambda: eval_choices(ctx), lambda: model_choices(ctx), demo_eval_choices())
    _export_panel(ctx)
    return {"left_model": left_model}


EXPORT_KINDS = ["merged model", "adapter only", "GGUF f16", "GGUF q8_0"]


def _export_panel(ctx: AppContext) -> None:
    with gr.Accordion("Export", open=False):
        with gr.Row():
            run = gr.Dropdown([], label="Run", allow_custom_value=True, scale=3)
            kind = gr.Radio(EXPORT_KINDS, value="merged model", label="What", scale=2,
                            info="GGUF: one file for llama.cpp and Ollama, with a Modelfile beside it")
            folder = gr.Textbox(label="Name (a folder or file inside the workspace's exports/)", scale=2)
            go = gr.Button("Export", variant="primary", scale=1)
        with gr.Row():
            repo = gr.Textbox(label="Push to hub repository", placeholder="user/model-name", scale=2)
            token = gr.Textbox(label="Hub token", type="password", scale=2)
            push = gr.Button("Push", scale=1)
        result = gr.Markdown()
        last = gr.State(None)

    def do_export(run_id, what, name, progress=gr.Progress()):
        if not run_id:
            return "⚠️ Pick a run to export.", gr.skip()
        if what not in EXPORT_KINDS:
            return f"⚠️ Export as one of: {', '.join(EXPORT_KINDS)}.", gr.skip()
        try:
            run_part, at, checkpoint = str(run_id).strip().partition("@")
            run_id = run_id_only(ctx.workspace, run_part).name + (f"@{checkpoint}" if at else "")  # by id from here
            if at:
                readable_model(ctx.workspace, run_id)  # RUN@checkpoint-N, nothing else
            if what.startswith("GGUF"):
                quant = what.split()[-1]
                out = export_folder(ctx.workspace, run_id, name or f"{run_id}-{quant}.gguf", merged=True)
                progress(0.1, desc="merging and writing the GGUF file")
                path = export_gguf(ctx.workspace, run_id, out, quant=quant)
                # Push sends folders: after a GGUF file there is no folder to send until one is exported
                return f"Exported to `{path}` (Ollama: `ollama create NAME -f {path.with_suffix('.Modelfile')}`).", \
                    None
            out = export_folder(ctx.workspace, run_id, name, merged=what == "merged model")
        except (StudioError, OSError) as err:
            return f"⚠️ {err}", gr.skip()
        if holds_export(out):
            return f"`{out}` was exported before: Push sends it as it is.", str(out)
        try:
            path = export_run(ctx.workspace, run_id, out, merged=what == "merged model")
        except (StudioError, OSError) as err:
            return f"⚠️ {err}", gr.skip()  # an earlier export stays ready to push
        return f"Exported to `{path}`.", str(path)

    go.click(do_export, [run, kind, folder], [result, last], **action("export"))

    def do_push(path, repo_id, tok):
        if not path:
            return "⚠️ Export a merged model or the adapter first, then push that folder."
        try:
            url = push_to_hub(path, repo_id.strip(), tok)
        except StudioError as err:
            return f"⚠️ {err}"
        return f"Pushed: {url}"

    push.click(do_push, [last, repo, token], result, **action("push_to_hub"))
    ctx.picker(run, lambda: run_choices(ctx))
