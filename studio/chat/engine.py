"""Load a model for chatting (a base model, or a run's adapter merged into its base) and stream
its answers token by token.

    cache = ModelCache()
    loaded = cache.load("20261126-153000-sft-lora", ws)        # or "tiny", a hub id, a folder
    for text in stream_reply(loaded, messages, GenerationSettings()):
        print(text)                                            # the answer so far

One cache per app holds at most `capacity` models; Unload frees them so chat never starves training.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.stages import STAGES, chat_stage
from studio.workspace import AmbiguousRun, Workspace, read_run_config, run_result


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    """Longest answer in tokens."""
    temperature: float = 0.0
    """0 answers greedily (the same answer every time); higher values vary more."""
    top_p: float = 1.0
    """Sample only from the smallest set of tokens whose probabilities add up to this."""
    repetition_penalty: float = 1.0
    """Above 1 discourages repeating tokens already in the text."""
    system_prompt: str = ""
    """Sent first, before the conversation."""


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    notes: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    system: str = ""
    """The system message the run trained with (its data.system): conversations that bring none get it."""

    def with_system(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`messages` opened by the run's system message, unless they have one of their own (or it has none)."""
        from studio.data.turns import system_before

        return system_before(self.system, messages)


def describe_target(target: str, ws: Workspace | None) -> tuple[str, Path | None, dict[str, Any]]:
    """(base model name, run folder or None, run config mapping) for a run id/folder or a model name."""

    from studio.models import registry

    if ws is not None and target != registry.TINY and registry.find_preset(target) is None:
        try:
            run_dir = ws.run_dir(target)
        except AmbiguousRun:
            raise
        except StudioError:
            run_dir = None
        if run_dir is not None:
            cfg = read_run_config(run_dir)
            name = (cfg.get("model") or {}).get("name") if isinstance(cfg.get("model"), dict) else None
            if not name:
                raise StudioError(f"{run_dir / 'config.yaml'} names no model (model.name), so run {run_dir.name} "
                                  "cannot be loaded.")
            return str(name), run_dir, cfg
    return target, None, {}


def leave_out_bitsandbytes(targets: list[str], ws: Workspace | None) -> bool:
    """For a process of its own that loads these targets for chat (evaluation, export, serving, making
    pairs): keep bitsandbytes unloaded when none of them can need it. Chat loads never quantise, so only
    weights saved quantised can: the model named, each run's base, and a run's merged parent or full model.
    Only before anything loads PEFT; True when it was left out."""
    from studio.models.loading import drop_bitsandbytes, saved_quantised

    for target in targets:
        try:
            base_name, run_dir, _ = describe_target(target.partition("@")[0] if ws is not None else target, ws)
        except Exception:  # an unreadable run config: the load itself says what is wrong
            return False
        folders = [str(run_dir / part) for part in ("model", "parent-merged") if (run_dir / part).is_dir()] \
            if run_dir is not None else []
        if any(saved_quantised(name) for name in [base_name, *folders]):
            return False
    return drop_bitsandbytes()


_LOADING = threading.RLock()
"""transformers changes process-wide state while it builds a model, so two loads at once in one process can
leave weights on the meta device or freshly initialised: the app's loads take turns."""


def load_for_chat(target: str, ws: Workspace | None = None, progress: Any = None) -> LoadedModel:
    """Load a base model, or a run's result: the base with its adapter merged, or its full model."""
    with _LOADING:
        return _load(target, ws, progress)


def _load(target: str, ws: Workspace | None, progress: Any) -> LoadedModel:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.models.loading import resolve_model

    transformers.utils.logging.disable_progress_bar()  # the app shows its own progress; downloads keep theirs

    start = time.time()
    say = progress or (lambda fraction, text: None)
    run_part, _, checkpoint = target.partition("@") if ws is not None else (target, "", "")
    base_name, run_dir, cfg = describe_target(run_part, ws)
    if checkpoint and run_dir is None:
        raise StudioError(f"{run_part} is not a run of this workspace, so it has no {checkpoint}.")
    notes: list[str] = []
    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    say(0.1, "finding the weights")
    if run_dir is None:
        try:
            path = resolve_model(base_name)
        except StudioError as err:
            if ws is None or "/" in base_name:
                raise
            raise StudioError(f"No run '{base_name}' in {ws.runs}, nor a model by that name: {err}") from None
        weights_from, adapter = path, None
    else:
        result = checkpoint_result(run_dir, checkpoint) if checkpoint else run_result(run_dir)
        if result is None:
            from studio.train.status import RunState, read_status

            status = read_status(run_dir)
            saved = run_checkpoints(run_dir)
            pick = f"pick one of its checkpoints, e.g. {run_dir.name}@{saved[-1]}" if saved else ""
            why = {RunState.FAILED: f" (it failed: {(status.error or 'its log says why').rstrip('.')})",
                   RunState.STOPPED: f" (it was stopped: resume it to finish, or {pick})" if saved else
                   " (it was stopped before it saved a checkpoint: start it again)"}.get(status.state, " yet")
            raise StudioError(f"Run {run_dir.name} has no finished adapter or model{why}.")
        kind, folder = result
        if kind == "model":
            weights_from, adapter = folder, None
        else:
            parent = (cfg.get("model") or {}).get("parent_run")
            weights_from = parent_model(run_dir, parent, ws) if parent else resolve_model(base_name)
            adapter = folder
        if (cfg.get("method") or {}).get("name") == "qlora":
            notes.append("The run trained on a 4-bit base; its adapter is merged into a 16-bit copy of the base "
                         "for chat, so answers can differ slightly from the quantised model.")
        stage_name = (cfg.get("method") or {}).get("stage")
        if not chat_stage(stage_name):
            raise StudioError(f"Run {run_dir.name} is a {STAGES[stage_name].label.lower()}: it scores answers rather "
                              "than writing them.")
    say(0.3, "loading the model")
    tok_source = adapter if adapter is not None and (adapter / "tokenizer_config.json").exists() else weights_from
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(weights_from, dtype=dtype).to(device)
    if adapter is not None:
        from peft import PeftModel

        say(0.7, "merging the adapter")
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    say(1.0, "ready")
    name = (run_dir.name + (f"@{checkpoint}" if checkpoint else "")) if run_dir is not None else base_name
    system = trained_system(run_dir, cfg) if run_dir is not None else ""
    return LoadedModel(name, model, tokenizer, notes, time.time() - start, system)


def trained_system(run_dir: Path, cfg: dict[str, Any]) -> str:
    """The system message a run trained with: its data.system, when that opened at least one training
    conversation ('' when every conversation had one of its own, or the run has none)."""
    from studio.train.status import read_status

    system = str((cfg.get("data") or {}).get("system") or "")
    return system if system.strip() and (read_status(run_dir).system_rows or 0) > 0 else ""


def run_checkpoints(run_dir: Path) -> list[str]:
    """A run's saved checkpoints (checkpoint-N), oldest first."""
    steps = [p.name.removeprefix("checkpoint-") for p in (Path(run_dir) / "checkpoints").glob("checkpoint-*")]
    return [f"checkpoint-{n}" for n in sorted((s for s in steps if s.isdigit()), key=int)]


def parent_model(run_dir: Path, parent: str, ws: Workspace | None) -> Path:
    """The weights an adapter trained on top of another run goes with: the parent's adapter merged into its base
    (kept beside the run), or the parent's own full model."""
    if (run_dir / "parent-merged" / "config.json").exists():
        return run_dir / "parent-merged"
    parent_dir = Path(parent) if Path(parent).is_absolute() or ws is None else ws.runs / parent
    result = run_result(parent_dir)
    if result is not None and result[0] == "model":
        return result[1]
    if result is None:
        raise StudioError(f"Run {run_dir.name} was trained on top of run {parent_dir.name}, which has no weights "
                          f"any more ({parent_dir}): its adapter means nothing without them.")
    raise StudioError(f"Run {run_dir.name} was trained on top of run {parent_dir.name}'s adapter merged into its "
                      f"base, and that merge ({run_dir / 'parent-merged'}) is gone: its adapter means nothing "
                      "without it.")


def with_checkpoints(run_dir: Path) -> list[str]:
    """What evaluating a run at each checkpoint loads: RUN@checkpoint-N oldest first, then the run itself when it
    finished (a stopped run's checkpoints are all there is)."""
    found = [f"{run_dir.name}@{c}" for c in run_checkpoints(run_dir)] + \
        ([run_dir.name] if run_result(run_dir) is not None else [])
    if not found:
        raise StudioError(f"Run {run_dir.name} has no saved checkpoints and no finished adapter or model to evaluate.")
    return found


def checkpoint_result(run_dir: Path, checkpoint: str) -> tuple[str, Path]:
    """('model' | 'adapter', folder) of one saved checkpoint of a run, as run_result gives for its end."""
    if checkpoint not in run_checkpoints(run_dir):
        raise StudioError(f"Run {run_dir.name} has no {checkpoint}.")
    folder = run_dir / "checkpoints" / checkpoint
    if (folder / "config.json").exists():
        return "model", folder
    if (folder / "adapter_config.json").exists():
        return "adapter", folder
    raise StudioError(f"{checkpoint} of run {run_dir.name} holds no weights to load.")


class ModelCache:
    """Models ready for chat, least recently used dropped first; shared by every browser of one app."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, target: str, ws: Workspace | None = None, progress: Any = None) -> LoadedModel:
        with self._lock:
            if target in self._models:
                self._models.move_to_end(target)
                return self._models[target]
        with _LOADING:  # a second caller for the same model waits here and finds it loaded
            with self._lock:
                if target in self._models:
                    return self._models[target]
            loaded = load_for_chat(target, ws, progress)
        with self._lock:
            self._models[target] = loaded
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return loaded

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def unload(self, target: str | None = None) -> int:
        """Drop one model (or all) and give the memory back; returns how many were dropped."""
        with self._lock:
            names = [target] if target else list(self._models)
            dropped = sum(1 for n in names if self._models.pop(n, None) is not None)
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
        return dropped


def build_messages(history: list[dict[str, str]], user_text: str, system_prompt: str = "") -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    msgs += [{"role": m["role"], "content": m["content"]} for m in history if m.get("role") in ("user", "assistant")]
    msgs.append({"role": "user", "content": user_text})
    return msgs


CHARS_PER_TOKEN_BOUND = 64
"""No tokenizer packs more characters than this into one token in real text, so a message longer than
context * this many characters is too long without tokenizing it (which itself takes long)."""


def context_length(loaded: LoadedModel) -> int:
    """The most tokens the model reads at once (prompt and answer together)."""
    config = getattr(loaded.model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(loaded.tokenizer, "model_max_length", 0)
    return limit if isinstance(limit, int) and 0 < limit < 10**7 else 2048


def prompt_text(tok: Any, messages: list[dict[str, str]]) -> str:
    if tok.chat_template:
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n".join(m["content"] for m in messages) + "\n"


def fit_to_context(loaded: LoadedModel, messages: list[dict[str, str]], max_new_tokens: int
                   ) -> tuple[list[dict[str, str]], str]:
    """The conversation cut to what the model can read with room for the answer, and a note saying what was
    left out ('' when nothing was). A last message that does not fit alone is refused with one sentence."""
    context = context_length(loaded)
    room = max(context - int(max_new_tokens), context // 2)
    last = messages[-1]["content"]
    if len(last) > context * CHARS_PER_TOKEN_BOUND:
        raise StudioError(f"The message has {len(last):,} characters, far more than this model can read "
                          f"({context:,} tokens in all): shorten it.")
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(system):]
    dropped = 0
    while True:
        n = len(loaded.tokenizer(prompt_text(loaded.tokenizer, system + turns), add_special_tokens=False)["input_ids"])
        if n <= room:
            break
        if len(turns) <= 1:
            raise StudioError(f"The message is about {n:,} tokens; this model reads {context:,} in all and the "
                              f"answer needs room for {int(max_new_tokens):,}: shorten it, or ask for a shorter answer "
                              "(Max new tokens in Chat, max_tokens through the API).")
        turns = turns[2:] if len(turns) > 2 else turns[-1:]  # drop the oldest question and its answer
        dropped += 1
    note = (f"The {dropped} oldest exchange{'s were' if dropped > 1 else ' was'} left out so the conversation fits "
            f"the model's {context:,}-token context.") if dropped else ""
    return system + turns, note


def stream_reply(loaded: LoadedModel, messages: list[dict[str, str]], settings: GenerationSettings,
                 stop: threading.Event | None = None, stats: dict[str, Any] | None = None) -> Iterator[str]:
    """Yield the growing answer as tokens arrive; setting `stop` ends generation early. `stats`, when
    given, receives `new_tokens` (how many were generated) and `ended` (whether the model ended its answer)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    tok, model = loaded.tokenizer, loaded.model
    prompt = prompt_text(tok, messages)
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=120)
    stop = stop or threading.Event()

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return stop.is_set()

    kwargs: dict[str, Any] = dict(**inputs, streamer=streamer, max_new_tokens=int(settings.max_new_tokens),
                                  repetition_penalty=float(settings.repetition_penalty),
                                  stopping_criteria=StoppingCriteriaList([_Stop()]),
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if settings.temperature > 0:
        kwargs.update(do_sample=True, temperature=float(settings.temperature), top_p=float(settings.top_p))
    else:
        kwargs.update(do_sample=False)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad():
                out = model.generate(**kwargs)
            if stats is not None:
                new = out[0, inputs["input_ids"].shape[1]:]
                stats["new_tokens"] = int(new.shape[0])
                stats["ended"] = bool(new.shape[0]) and int(new[-1]) == tok.eos_token_id
        except BaseException as err:  # surfaced to the caller below
            failure.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            yield text
    finally:  # the consumer stopped reading (Stop pressed, page closed): end generation too, and wait
        stop.set()  # for it (one more token at most), so whoever holds the model may hand it on
        thread.join()
    if failure:
        raise StudioError(f"Generation failed: {str(failure[0]).splitlines()[0]}")
