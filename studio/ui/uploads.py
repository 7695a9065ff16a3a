"""Uploads under a per-login daily allowance, checked before the upload is read.

Gradio stores uploads itself (in the workspace's uploads/ folder, see app.launch); this ASGI middleware
sits in front of its upload route, finds the login behind the request the way Gradio does (its session
cookie), and refuses an upload that would take that login past its allowance. Uploads older than a day
are deleted by Gradio's own cache cleaning (`delete_cache` in app.py).
"""

from __future__ import annotations

import json
from typing import Any

from studio.access import UploadAllowance


class UploadQuota:
    def __init__(self, app: Any, allowance: UploadAllowance | None = None):
        self.app = app
        self.allowance = allowance or UploadAllowance()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "POST" and \
                str(scope.get("path", "")).rstrip("/").endswith("/upload"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            try:
                size = int(headers.get("content-length", ""))
            except ValueError:
                return await _refuse(send, 411, "Upload refused: the request must say its length.")
            if not self.allowance.take(login_of(scope), size):
                return await _refuse(send, 413, self.allowance.refusal())
        await self.app(scope, receive, send)


def login_of(scope: dict[str, Any]) -> str:
    """The login behind the request, read from its session cookie exactly as Gradio reads it (Starlette's
    cookie parser on the request's cookie header), so no spelling of the cookie that Gradio accepts is read
    here as no login; '' without one."""
    from starlette.requests import Request

    app = scope.get("app")
    cookie_id = getattr(app, "cookie_id", None)
    tokens = getattr(app, "tokens", None) or {}
    cookies = Request({"type": "http", "headers": scope.get("headers", [])}).cookies
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return str(tokens.get(token, "")) if token else ""


async def _refuse(send: Any, status: int, sentence: str) -> None:
    body = json.dumps({"detail": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
