"""What every tab is given when the page is built: the workspace, the server's options and the
shared model cache.

Nothing here is per-user: per-browser state lives in gr.State / gr.BrowserState inside tabs. The
model cache is a server resource shared by every browser, like the GPU it lives on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.access import Logins
from studio.chat.engine import ModelCache
from studio.workspace import Workspace


@dataclass(frozen=True)
class AppContext:
    workspace: Workspace
    shared: bool = False
    logins: Logins = field(default_factory=Logins)
    """Who may log in, and with which role; no logins means everybody is admin."""
    reward_code: bool = True
    """Whether runs may score answers with Python written in their config: on a studio without logins (the
    person at this machine), or with logins when launched with --allow-reward-code."""
    models: ModelCache = field(default_factory=ModelCache)
    pickers: list[tuple[Any, Callable[[], list[Any]]]] = field(default_factory=list)
    """(dropdown, choices function) pairs whose choices follow the workspace: refreshed at page load
    and when the dropdown gets focus, so datasets and runs made meanwhile appear."""

    on_load: list[tuple[Callable[..., Any], list[Any] | None, list[Any], str]] = field(default_factory=list)
    """(function, inputs, outputs, endpoint name) run when a page loads."""

    @staticmethod
    def user(request: Any) -> str:
        """The logged-in name behind a request ('' when the studio has no logins)."""
        return getattr(request, "username", None) or ""

    def picker(self, dropdown: Any, choices: Callable[[], list[Any]]) -> Any:
        """A dropdown of the workspace's runs, datasets or models, its choices filled when a page opens. It
        takes any value too (create it with allow_custom_value=True, which the page reads from the start): a name
        typed in place of an id, and an API client's session, which has no page that filled it; every handler
        checks the value it gets on the server (run_id_only, readable_model, readable_data ...)."""
        if not dropdown.allow_custom_value:
            raise ValueError(f"The picker {dropdown.label!r} must be created with allow_custom_value=True.")
        self.pickers.append((dropdown, choices))
        return dropdown
