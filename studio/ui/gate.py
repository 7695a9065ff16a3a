"""What reaches Gradio's own routes, decided before Gradio sees the request (an ASGI middleware).

- Only an admin's login reaches a file route: uploads, files served by path (`/file=`), proxying and
  streaming. An annotator's voting needs none of them, and a request whose login cannot be read is refused
  too (the events an annotator may run are checked on their own, in studio/ui/roles.py).
- A login attempt carries the address it came from (`LOGIN_SOURCE`), so repeated failures lock out that
  name from that address only (studio/access.py): a stranger cannot lock the owner out of their own studio.
"""

from __future__ import annotations

import json
from typing import Any

from studio.access import ADMIN, LOGIN_SOURCE, Logins
from studio.ui.uploads import login_of

FILE_ROUTES = ("/upload", "/upload_progress", "/process_recording", "/file=", "/file/", "/proxy=", "/stream/")
"""Gradio routes that store or serve files (after its /gradio_api prefix, or without it)."""
ANNOTATORS_REFUSED = "Annotators vote on pairs; files are for admins."


def file_route(path: str) -> bool:
    path = path.removeprefix("/gradio_api")
    return any(path.startswith(r) if r.endswith(("=", "/")) else path.rstrip("/") == r for r in FILE_ROUTES)


class RequestGate:
    def __init__(self, app: Any, logins: Logins | None = None):
        self.app = app
        self.logins = logins or Logins()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not self.logins.enabled:
            return await self.app(scope, receive, send)
        path = str(scope.get("path", ""))
        if file_route(path) and self.logins.role_of(login_of(scope)) != ADMIN:  # closed unless an admin's
            return await _refuse(send, 403, ANNOTATORS_REFUSED)
        if path.rstrip("/").endswith("/login") and scope.get("method") == "POST":
            client = scope.get("client") or ("", 0)
            token = LOGIN_SOURCE.set(str(client[0]))
            try:
                return await self.app(scope, receive, send)
            finally:
                LOGIN_SOURCE.reset(token)
        return await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, sentence: str) -> None:
    body = json.dumps({"detail": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
