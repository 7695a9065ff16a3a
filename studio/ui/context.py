"""What every tab is given when the page is built: the workspace, the server's options and the
shared model cache.

Nothing here is per-user: per-browser state lives in gr.State / gr.BrowserState inside tabs. The
model cache is a server resource shared by every browser, like the GPU it lives on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.chat.engine import ModelCache
from studio.workspace import Workspace


@dataclass(frozen=True)
class AppContext:
    workspace: Workspace
    shared: bool = False
    models: ModelCache = field(default_factory=ModelCache)
