"""Form values into a RunConfig: the app's forms name each setting by its config path ('train.batch_size')
and get exactly the conversion and checks a YAML file gets.

    cfg = config_with(base, {"train.batch_size": 4.0})        # 2.5 would be refused, as in YAML
    cfg = config_from_form(base, method_tab_values)          # settings of unused sections are dropped
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from studio.config import OPTIONAL_SECTIONS, MethodConfig, RunConfig


def config_with(base: dict[str, Any] | None, values: dict[str, Any]) -> RunConfig:
    """`base` (a config mapping) with settings given by path, e.g. {'train.batch_size': 4.0}, applied and
    checked exactly as YAML values are: 2.5 for a whole number is refused, 8.0 is 8. An empty text for a
    setting that may be None means None. This is how the app's forms become a RunConfig."""
    raw = copy.deepcopy(base or {})
    for path, value in values.items():
        section, _, key = path.rpartition(".")
        if isinstance(value, str):
            value = value.strip()
            if not value and _optional(section, key):
                value = None
        if not section:
            raw[key] = value
        else:
            node = raw.setdefault(section, {})
            if node is None:
                node = raw[section] = {}
            node[key] = value
    return RunConfig.from_dict(raw).validate()


def config_from_form(base: dict[str, Any] | None, values: dict[str, Any]) -> RunConfig:
    """`config_with` for a form that shows every knob at once: the settings of sections the chosen method
    and stage do not use (quant under LoRA, dpo under SFT ...) are dropped, from the form and the base."""
    raw = copy.deepcopy(base or {})
    method = MethodConfig(name=values.get("method.name", value_at(raw, "method.name", "lora")),
                          stage=values.get("method.stage", value_at(raw, "method.stage", "sft")))
    method.check()
    used = RunConfig(method=method).sections()
    unused = [s for s in OPTIONAL_SECTIONS if s not in used]
    for section in unused:
        raw.pop(section, None)
    kept = {path: v for path, v in values.items() if path.partition(".")[0] not in unused}
    return config_with(raw, kept)


def path_value(cfg: RunConfig, path: str) -> Any:
    """The value of a dotted setting ('lora.r') in a RunConfig, defaults included; lists are copied."""
    section, _, key = path.rpartition(".")
    value = getattr(getattr(cfg, section) if section else cfg, key)
    return list(value) if isinstance(value, list) else value


def value_at(raw: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path of a config mapping ('train.batch_size'), or `default`."""
    section, _, key = path.rpartition(".")
    node = raw.get(section) if section else raw
    return node.get(key, default) if isinstance(node, dict) else default


def _optional(section: str, key: str) -> bool:
    if not section:
        return key == "name"
    factory = {f.name: f.default_factory for f in dataclasses.fields(RunConfig) if f.name != "name"}.get(section)
    if factory is None:
        return False
    types = {f.name: str(f.type) for f in dataclasses.fields(factory())}
    return "None" in types.get(key, "")
