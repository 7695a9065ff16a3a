"""The presets shipped in presets/, by file name, and the config every page opens on."""

from __future__ import annotations

from typing import Any

import yaml

from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import PRESETS

DEFAULT_PRESET = "tiny-sft-lora.yaml"


def preset_names() -> list[str]:
    return sorted(p.name for p in PRESETS.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    if name not in preset_names():  # a name from the list, never a path
        raise StudioError(f"No preset named {name!r}.")
    path = PRESETS / name
    return RunConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8"))).validate().to_dict()


def starting_config() -> dict[str, Any]:
    """The config every page opens on, in every tab alike: the default preset, else the defaults. The tabs
    are built with it, so no page-load event has to copy values from one tab into another (such a copy,
    landing late on a busy machine, would overwrite what the user did meanwhile: a preset loaded, say)."""
    try:
        return load_preset(DEFAULT_PRESET)
    except StudioError:
        return RunConfig().to_dict()
