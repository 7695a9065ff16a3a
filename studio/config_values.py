"""Settings as YAML and `--set` give them, turned into the typed fields of a config section, or one
sentence naming the setting that is wrong.

    section = build_section("train", TrainSettings, {"batch_size": 8.0})   # 8.0 becomes 8
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any


def suggest(key: str, known: Any) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def build_section(name: str, factory: Any, value: Any) -> Any:
    section = factory()
    if value is None:
        return section
    if not isinstance(value, dict):
        raise ValueError(f"Section '{name}' must be a mapping of settings, not {type(value).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key, item in value.items():
        if key not in fields:
            raise ValueError(f"Unknown setting '{name}.{key}'{suggest(key, fields)}.")
        setattr(section, key, _coerce(f"{name}.{key}", item, fields[key].type))
    return section


def shown(value: Any, most: int = 80) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    text = repr(value) if not isinstance(value, (list, dict)) or len(value) < 100 else f"a {type(value).__name__}"
    return text if len(text) <= most else text[:most - 1] + "…"


def _coerce(key: str, value: Any, type_text: str) -> Any:
    """Turn YAML/CLI values into the field's type, or say which setting is wrong."""
    optional = "None" in str(type_text)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key} needs a value.")
    kind = _kind_of(str(type_text))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "on", "1"):
                return True
            if str(value).lower() in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is dict:
            if not isinstance(value, dict) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                      for v in value.values()):
                raise ValueError
            return {str(k): str(v) for k, v in value.items()}
        if kind is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError
            return [str(v) for v in value]
        if kind is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            if isinstance(value, bool):  # YAML reads on/off/yes/no as booleans; a switch means on or off
                return "on" if value else "off"
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be {_kind_name(kind)} (got {shown(value)}).") from None
    return value


def _kind_of(type_text: str) -> type:
    for name, kind in (("dict", dict), ("list", list), ("bool", bool), ("float", float), ("int", int)):
        if type_text.startswith(name):
            return kind
    return str


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", list: "a list",
            dict: "a mapping of field: column", str: "text"}.get(kind, kind.__name__)
