"""Write a run's result as a folder plain transformers / PEFT load, with a model card.

    studio export RUN --merged --out DIR      # safetensors, tokenizer, generation config, README.md
    studio export RUN --adapter --out DIR     # the PEFT adapter alone (PeftModel.from_pretrained)
    studio export RUN --gguf --quant q8_0 --out FILE.gguf   # one file for llama.cpp / Ollama, + FILE.Modelfile
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import yaml

from studio.chat.evaluate import final_evaluations
from studio.errors import StudioError
from studio.train.metrics import read_all
from studio.workspace import Workspace, read_run_config, run_result


def _data_name(path: str) -> str:
    """A saved dataset as 'name v2'; any other file by its file name."""
    parts = Path(path).parts
    if len(parts) >= 4 and parts[-4] == "datasets" and parts[-2].startswith("v"):
        return f"{parts[-3]} {parts[-2]}"
    return Path(path).name


def model_card(run_dir: Path, kind: str) -> str:
    cfg = read_run_config(run_dir)
    model, method, data = cfg.get("model", {}), cfg.get("method", {}), cfg.get("data", {})
    records = read_all(run_dir)
    losses = [r["loss"] for r in records if isinstance(r.get("loss"), (int, float))]
    evals = [r["eval_loss"] for r in records if isinstance(r.get("eval_loss"), (int, float))]
    lines = [
        "---", f"base_model: {model.get('name', '?')}", "library_name: " + ("peft" if kind == "adapter" else "transformers"),
        "tags: [fine-tuning-studio, " + str(method.get("stage", "sft")) + "]", "---", "",
        f"# {run_dir.name}", "",
        f"Fine-tuned with Fine-tuning Studio from **{model.get('name', '?')}**.", "",
        "| | |", "|---|---|",
        f"| stage | {method.get('stage', '?')} |",
        f"| method | {method.get('name', '?')} |",
        f"| data | {_data_name(str(data.get('train', '?')))} |",
        f"| steps | {records[-1].get('step', '?') if records else '?'} |",
        f"| final train loss | {losses[-1]:.4f} |" if losses else "| final train loss | - |",
        f"| final eval loss | {evals[-1]:.4f} |" if evals else "| final eval loss | - |",
    ]
    scored = final_evaluations(run_dir)
    if scored:
        last = scored[-1]
        lines += ["", f"## Held-out evaluation ({last.get('rows', '?')} rows of {Path(str(last.get('data', '?'))).name})",
                  "", "| metric | value |", "|---|---|", f"| exact match | {last['exact_match']:.1%} |",
                  *([f"| final answer right | {last['final_answer']:.1%} |"]
                    if isinstance(last.get("final_answer"), float) else []),
                  f"| loss | {last['loss']:.4f} |", f"| perplexity | {last['perplexity']:.2f} |"]
        if isinstance(last.get("rouge_l"), float):
            lines += [f"| ROUGE-L | {last['rouge_l']:.3f} |", f"| BLEU | {last['bleu']:.1f} |"]
        if last.get("judged_by") and last.get("judge") is not None:
            lines.append(f"| judge's grade (1-5, by {last['judged_by']}) | {last['judge']:.2f} |")
    if kind == "adapter":
        lines += ["", "Load it with:", "", "```python",
                  "from peft import AutoPeftModelForCausalLM",
                  "model = AutoPeftModelForCausalLM.from_pretrained('PATH')", "```"]
    else:
        lines += ["", "The adapter is merged into the weights. Load it with:", "", "```python",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "model = AutoModelForCausalLM.from_pretrained('PATH')",
                  "tokenizer = AutoTokenizer.from_pretrained('PATH')", "```"]
    from studio.chat.engine import trained_system

    if trained_system(run_dir, cfg):
        lines += ["", "It trained with this system message first in every conversation; send it too for the "
                  "answers it learnt:", "", "```text", str(data["system"]).strip(), "```"]
    lines += ["", "## Training config", "", "```yaml", yaml.safe_dump(cfg, sort_keys=False).strip(), "```", ""]
    return "\n".join(lines)


def export_folder(ws: Workspace, run_id: str, name: str | None, merged: bool) -> Path:
    """The folder under the workspace's exports/ that the app exports a run to: a plain name (default
    RUN-merged or RUN-adapter), never a path that leads elsewhere."""
    name = (name or "").strip() or f"{run_id}-{'merged' if merged else 'adapter'}"
    out = ws.exports / name
    if "/" in name or "\\" in name or name.startswith(".") or not ws.contains(out):
        raise StudioError("The folder name must be a plain name inside exports/ (no slashes, not starting with a dot).")
    if len(name.encode()) > 200:
        raise StudioError(f"The folder name is {len(name.encode())} bytes long; use at most 200.")
    return out


def holds_export(folder: Path) -> bool:
    """Whether `folder` already holds an exported model or adapter (so Push can send it as it is)."""
    return folder.is_dir() and ((folder / "config.json").exists() or (folder / "adapter_config.json").exists())


def studio_export(path: Path) -> bool:
    """Whether `path` is an export this studio wrote: a folder with its model card, or a GGUF file.
    Only those are replaced by --force (never a model folder downloaded from the hub, say)."""
    if path.is_file():
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    card = path / "README.md"
    return holds_export(path) and card.is_file() and "fine-tuning-studio" in card.read_text(errors="replace")[:2000]


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model")
"""What an adapter export holds from a checkpoint (not its optimizer, scheduler or trainer state)."""


def exported_result(ws: Workspace, run: str) -> tuple[Path, str, tuple[str, Path]]:
    """(run folder, checkpoint or '', ('model' | 'adapter', folder)) of what `run` names: a run or RUN@checkpoint-N."""
    from studio.chat.engine import checkpoint_result

    name, _, checkpoint = str(run).partition("@")
    run_dir = ws.run_dir(name)
    result = checkpoint_result(run_dir, checkpoint) if checkpoint else run_result(run_dir)
    if result is None:
        from studio.chat.engine import run_checkpoints

        found = run_checkpoints(run_dir)
        hint = f" (it stopped early: export a checkpoint, e.g. {run_dir.name}@{found[-1]})" if found else ""
        raise StudioError(f"Run {run_dir.name} has no finished adapter or model to export{hint}.")
    return run_dir, checkpoint, result


def export_run(ws: Workspace, run: str, out: str | Path, merged: bool, replace: bool = False) -> Path:
    """The adapter, or the model with it merged, as a folder (of a run, or of one of its checkpoints:
    RUN@checkpoint-N). It is written beside `out` and moved into place when whole, so a failed export leaves
    nothing half-written; `replace` swaps out an earlier export (only one this studio wrote)."""
    run_dir, checkpoint, result = exported_result(ws, run)
    out = Path(out).expanduser().resolve()  # a link is followed: the export it names is the one replaced
    taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if taken and not replace:
        raise StudioError(f"{out} already exists and is not empty; choose a new folder.")
    if taken and not studio_export(out):
        raise StudioError(f"{out} does not hold an earlier export of this studio (its model card), so it is not "
                          "replaced; choose a new folder.")
    if not merged and result[0] != "adapter":
        raise StudioError(f"Run {run_dir.name} has a full model; export it with --merged.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}-{threading.get_ident()}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a crashed export that had the same process id
    try:
        if merged:
            from studio.chat.engine import load_for_chat

            loaded = load_for_chat(str(run_dir) + (f"@{checkpoint}" if checkpoint else ""), ws)
            partial.mkdir()
            loaded.model.save_pretrained(str(partial), safe_serialization=True)
            loaded.tokenizer.save_pretrained(str(partial))
            if getattr(loaded.model, "generation_config", None) is not None:
                loaded.model.generation_config.save_pretrained(str(partial))
        elif checkpoint:
            partial.mkdir()
            for name in ADAPTER_FILES:
                if (result[1] / name).is_file():
                    shutil.copy2(result[1] / name, partial / name)
        else:
            shutil.copytree(result[1], partial)
        (partial / "README.md").write_text(model_card(run_dir, "merged" if merged else "adapter"), encoding="utf-8")
        _move_into_place(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def _move_into_place(partial: Path, out: Path) -> None:
    """`partial`'s files end up in `out`. An empty folder there is filled (it may be the one the user is
    in); an earlier export there is set aside first and removed only once the new one is in place."""
    if out.is_dir() and not any(out.iterdir()):
        for item in partial.iterdir():
            item.rename(out / item.name)
        return
    earlier = out.with_name(f".{out.name}.{os.getpid()}-{threading.get_ident()}.earlier")
    if out.exists():
        out.rename(earlier)
    try:
        partial.rename(out)
    except OSError:
        if earlier.exists():
            earlier.rename(out)  # put the earlier export back
        raise
    shutil.rmtree(earlier, ignore_errors=True)


def gguf_path(out: str | Path) -> Path:
    """Where a GGUF export named `out` is written: the name with .gguf added when it lacks it."""
    out = Path(out).expanduser()
    return out if out.suffix.lower() == ".gguf" else out.with_name(out.name + ".gguf")


def export_gguf(ws: Workspace, run: str, out: str | Path, quant: str = "f16", replace: bool = False) -> Path:
    """The run's model (adapter merged) as one GGUF file, with an Ollama Modelfile beside it."""
    from studio.chat.engine import load_for_chat
    from studio.chat.gguf import QUANTS, write_gguf
    from studio.chat.modelfile import modelfile

    if quant not in QUANTS:
        raise StudioError(f"GGUF quantisation must be one of {', '.join(QUANTS)} (got {quant!r}).")
    out = gguf_path(out)
    if out.exists() and not (replace and studio_export(out)):
        raise StudioError(f"{out} already exists" + (" and is not a GGUF file, so it is not replaced" if replace
                                                     else "") + "; choose a new file name.")
    run_dir, checkpoint, _ = exported_result(ws, run)
    loaded = load_for_chat(str(run_dir) + (f"@{checkpoint}" if checkpoint else ""), ws)
    partial = out.with_name(f".{out.name}.{os.getpid()}-{threading.get_ident()}.partial")  # one per export
    try:
        write_gguf(loaded.model, loaded.tokenizer, partial, quant=quant, name=run_dir.name)
        partial.replace(out)  # a stopped or failed export leaves no half-written file under the real name
    finally:
        partial.unlink(missing_ok=True)
    out.with_suffix(".Modelfile").write_text(modelfile(out.name, loaded.tokenizer, loaded.system), encoding="utf-8")
    return out


def push_to_hub(folder: Path, repo_id: str, token: str | None, private: bool = True) -> str:
    """Upload an exported folder; offline or refused uploads become one sentence."""
    from huggingface_hub import HfApi

    if not repo_id or "/" not in repo_id:
        raise StudioError("Name the hub repository as user/name.")
    api = HfApi(token=token or None)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info: Any = api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    except Exception as err:  # network, auth and permission errors all end here
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        low = text.lower()
        if any(w in low for w in ("connect", "resolve", "network", "offline", "timed out", "name or service",
                                  "errno -2", "errno -3", "max retries", "unreachable")):
            raise StudioError(f"Could not push to {repo_id}: the hub cannot be reached (no network).") from None
        if "401" in text or "token" in low or "unauthorized" in low:
            raise StudioError(f"Could not push to {repo_id}: the hub refused the token; check it has write "
                              "access.") from None
        raise StudioError(f"Could not push to {repo_id}: {text}") from None
    return str(getattr(info, "commit_url", f"https://huggingface.co/{repo_id}"))
