"""Names for the app's endpoints. Every event handler has an explicit api_name, so the API that a
gradio_client sees is stable and documented (docs/api.md). Handlers that only keep the page in step
(timers, one field following another, pickers refreshing) are named too, and listed apart in
docs/api.md; they stay on the API page, so that every endpoint a browser can reach is also one that a
client can list and call (and the access tests call each of them).

    btn.click(fn, inputs, outputs, **action("train_start"))
    timer.tick(fn, inputs, outputs, **glue("train_tick"))
"""

from __future__ import annotations

from typing import Any


def action(name: str) -> dict[str, Any]:
    """A documented endpoint: something a user does (start a run, vote, save a dataset)."""
    return {"api_name": name}


def glue(name: str) -> dict[str, Any]:
    """Page plumbing: named and listed like an action, checked like every other call."""
    return {"api_name": f"ui_{name}"}
