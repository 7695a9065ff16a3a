"""Find and load models and tokenizers: the built-in tiny model, a local folder or a hub id.

Hub access failures (no network, no such repo, gated repo) become one `StudioError` sentence that
names the model and the cause. torch and transformers are imported inside the functions so that
importing this module stays cheap.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.paths import TINY_MODEL

BUILTIN = {"tiny": TINY_MODEL}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
CONFIG_FILES = ["config.json", "generation_config.json"]
TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "vocab*", "merges.txt", "*.model",
                   "chat_template.*", "added_tokens.json"]
WEIGHT_FILES = ["*.safetensors", "*.safetensors.index.json"]


def is_local(name: str) -> bool:
    return name in BUILTIN or Path(name).expanduser().is_dir()


def resolve_model(name: str, revision: str | None = None, weights: bool = True) -> Path:
    """A local folder holding the model's files, fetching them from the hub when `name` is a hub id.

    With `weights=False` only the config and tokenizer files are fetched.
    """
    name = (name or "").strip()
    if not name:
        raise StudioError("No model named: give the built-in 'tiny', a run, a folder or a hub id like org/model.")
    if name in BUILTIN:
        path = BUILTIN[name]
        if not (path / "config.json").exists():
            raise StudioError(f"The built-in model is missing from {path}; rebuild it with "
                              "`python -m studio.demo.build --out assets/tiny-model`.")
        return path
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise StudioError(f"The folder {local} has no config.json, so it is not a model folder.")
        return local.resolve()
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise StudioError(f"Model '{name}' is neither a folder on this machine nor a hub id like org/model.")
    patterns = CONFIG_FILES + TOKENIZER_FILES + (WEIGHT_FILES if weights else [])
    return Path(_download(name, revision, patterns))


def _download(repo_id: str, revision: str | None, patterns: list[str]) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except GatedRepoError:
        raise StudioError(f"Model '{repo_id}' is gated on the hub: accept its licence on its page and "
                          "log in with `huggingface-cli login`, or use a local copy.") from None
    except RepositoryNotFoundError:
        raise StudioError(f"Model '{repo_id}' does not exist on the hub (or is private; log in to "
                          "reach private models).") from None
    except RevisionNotFoundError:
        raise StudioError(f"Model '{repo_id}' has no revision '{revision}'.") from None
    except LocalEntryNotFoundError:
        raise StudioError(f"Model '{repo_id}' is not in the local cache and the hub cannot be reached "
                          "(no network or offline mode): connect once to download it, or give a "
                          "local folder.") from None
    except OSError as err:
        raise StudioError(f"Model '{repo_id}' could not be fetched from the hub: "
                          f"{err.strerror or err}.") from None


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    path = resolve_model(name, revision, weights=False)
    try:
        if Path(path).resolve() == TINY_MODEL.resolve():  # a plain tokenizer.json: skip the model config,
            from transformers import PreTrainedTokenizerFast  # whose reading imports torch (3 s)

            tok = PreTrainedTokenizerFast.from_pretrained(path)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as err:
        if "trust_remote_code" in str(err):
            raise StudioError(f"Model '{name}' needs its own tokenizer code from the hub: enable "
                              "trust_remote_code only if you trust its author.") from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StudioError(f"The tokenizer of '{name}' could not be loaded from {path}: {first}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_config(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    path = resolve_model(name, revision, weights=False)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise StudioError(f"Model '{name}' needs its own code from the hub: enable "
                              "trust_remote_code only if you trust its author.") from None
        raise StudioError(f"Model '{name}' has a config transformers cannot read: {err}") from None



@functools.lru_cache(maxsize=8)
def cached_tokenizer(name: str) -> Any:
    """A tokenizer shared read-only between requests (token counts, template previews)."""
    return load_tokenizer(name)


_GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")


def training_template(tokenizer: Any) -> str | None:
    """A chat template that wraps assistant turns in {% generation %}, so that TRL can train on every
    assistant turn: the model's own, or the patched copy TRL ships for well-known families (Qwen,
    Llama 3, Gemma ...). None when neither exists."""
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):
        own = own.get("default")
    if not own:
        return None
    if _GENERATION_BLOCK.search(own):  # TRL's SFTTrainer, too, keeps a template that marks its turns
        return own
    try:
        from trl.chat_template_utils import get_training_chat_template

        return get_training_chat_template(tokenizer) or None
    except Exception:  # a template TRL does not know
        return None


def marks_assistant_turns(tokenizer: Any) -> bool:
    """True when every assistant turn can be trained (and the preview can show which tokens train)."""
    return training_template(tokenizer) is not None


def renders_tool_calls(tokenizer: Any) -> bool:
    """Whether the chat template shows an assistant's tool calls and the tool's reply."""
    try:
        from trl.chat_template_utils import supports_tool_calling

        return bool(supports_tool_calling(tokenizer))
    except Exception:
        return False


def saved_quantised(name: str) -> bool:
    """Whether a model folder on this machine may need bitsandbytes to load: its config.json was saved
    quantised, or it cannot be read (its own loading then says what is wrong). Hub ids always may."""
    import json

    if not is_local(name):
        return True
    try:
        settings = json.loads((resolve_model(name) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StudioError):
        return True
    return not isinstance(settings, dict) or "quantization_config" in settings


def drop_bitsandbytes() -> bool:
    """Keep bitsandbytes out of this process. PEFT imports it whenever it is installed, which costs over a
    second of a process's start on a small CPU; only a caller that knows nothing it loads is quantised may
    ask. Too late once PEFT or bitsandbytes is loaded; True when it was left out."""
    import sys

    if any(name.split(".")[0] in ("bitsandbytes", "peft") for name in sys.modules):
        return False
    sys.modules["bitsandbytes"] = None  # type: ignore[assignment]  # find_spec() and import both say "absent"
    return True
