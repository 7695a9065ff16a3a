"""What every tab is given when the page is built: the workspace and the server's options.

Nothing here is per-user: per-browser state lives in gr.State / gr.BrowserState inside tabs.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.workspace import Workspace


@dataclass(frozen=True)
class AppContext:
    workspace: Workspace
    shared: bool = False
