"""What reaches Gradio's own routes, decided before Gradio sees the request (an ASGI middleware).

- Only an admin's login reaches a file route: uploads, files served by path (`/file=`), proxying and
  streaming. An annotator's voting needs none of them, and a request whose login cannot be read is refused
  too (the events an annotator may run are checked on their own, in studio/ui/roles.py).
- A request body outside the file routes is read up to a bound first (32 MiB with a login, 64 KiB without):
  Gradio reads a body whole before it checks the login.
- A login attempt carries the address it came from (`LOGIN_SOURCE`), so repeated failures lock out that
  name from that address only (studio/access.py): a stranger cannot lock the owner out of their own studio.
"""

from __future__ import annotations

import json
from typing import Any

from studio.access import ADMIN, LOGIN_SOURCE, Logins
from studio.ui.uploads import login_of

FILE_ROUTES = ("/upload", "/upload_progress", "/process_recording", "/file=", "/file/", "/proxy=", "/stream/",
               "/monitoring", "/monitoring/")
"""Gradio routes that store or serve files (after its /gradio_api prefix, or without it), and its monitoring
page (which turns monitoring on and writes its link to the server's console): for admins only."""
ANNOTATORS_REFUSED = "Annotators vote on pairs; files are for admins."
BODY_LIMIT = 32 * 2**20
"""The largest request body outside the file routes (events carry form values, never files)."""
ANONYMOUS_BODY_LIMIT = 64 * 2**10
"""... and before a login: the login form and what Gradio answers with 'not authenticated'."""
TOO_LARGE = "The request is larger than the studio reads; files go through an upload."


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
        login = login_of(scope)
        if file_route(path):
            if self.logins.role_of(login) != ADMIN:  # closed unless an admin's
                return await _refuse(send, 403, ANNOTATORS_REFUSED)
        elif scope.get("method") in ("POST", "PUT", "PATCH"):  # bounded before anything reads it
            receive = await _bounded_body(receive, BODY_LIMIT if login else ANONYMOUS_BODY_LIMIT)
            if receive is None:
                return await _refuse(send, 413, TOO_LARGE)
        if path.rstrip("/").endswith("/login") and scope.get("method") == "POST":
            client = scope.get("client") or ("", 0)
            token = LOGIN_SOURCE.set(str(client[0]))
            try:
                return await self.app(scope, receive, send)
            finally:
                LOGIN_SOURCE.reset(token)
        return await self.app(scope, receive, send)


async def _bounded_body(receive: Any, limit: int) -> Any:
    """The request's body read up to `limit` bytes, handed on as one message (then whatever comes after, such as a
    disconnect); None when the body is longer. Gradio would read it whole into memory, before it checks a login."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message.get("type") != "http.request":
            return _replay([], message, receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        more = message.get("more_body", False)
    return _replay(chunks, None, receive)


def _replay(chunks: list[bytes], last: dict[str, Any] | None, receive: Any) -> Any:
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}] if last is None else [last]

    async def again() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return again


async def _refuse(send: Any, status: int, sentence: str) -> None:
    body = json.dumps({"detail": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
