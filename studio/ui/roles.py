"""Roles on the server: every event the app runs is checked against the caller's role first.

A handler is open to admins only unless it is marked with `@for_annotators`. The check sits in
`GatedBlocks.process_api`, the one door every event goes through (the page's own events, the
queue, `gradio_client` and the HTTP API alike), so hiding a tab is never what keeps an annotator out.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

import gradio as gr

from studio.access import ADMIN, ANNOTATOR, Logins, allowed
from studio.errors import StudioError
from studio.ui.context import AppContext

REFUSED = "Annotators can read pairs and vote; this part of the studio is for admins."
UNEXPECTED = ("The studio could not use this input ({kind}): check each value has the type and range the form "
              "gives it; the server's log has the details.")


def for_annotators(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler as open to annotators (and admins)."""
    fn.studio_roles = frozenset({ANNOTATOR})  # type: ignore[attr-defined]
    return fn


def role_of(logins: Logins, request: gr.Request | None) -> str | None:
    return logins.role_of(AppContext.user(request))


class GatedBlocks(gr.Blocks):
    """gr.Blocks that refuses, before running it, any event the caller's role may not run."""

    def __init__(self, *args: Any, logins: Logins | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.logins = logins or Logins()

    async def process_api(self, block_fn: Any, inputs: list[Any], state: Any = None, request: Any = None,
                          *args: Any, **kwargs: Any) -> dict[str, Any]:
        fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
        req = request[0] if isinstance(request, list) and request else request
        handler = getattr(fn, "fn", None)
        if handler is not None:
            role = role_of(self.logins, req)
            if not allowed(role, getattr(handler, "studio_roles", frozenset())):
                # not shown on an annotator's page (its hidden tabs' page-load events end here too);
                # an API caller gets the sentence
                raise gr.Error(REFUSED, visible=False, print_exception=False)
        try:
            return await super().process_api(block_fn, inputs, state, request, *args, **kwargs)
        except gr.Error:
            raise
        except StudioError as err:  # a sentence written for the user, from deeper than the handler caught
            raise gr.Error(str(err), print_exception=False) from None
        except OSError as err:  # the machine, not the input: a full or read-only disk, a file gone; or the network
            print(f"{getattr(handler, '__name__', 'this action')} failed:\n{traceback.format_exc()}", file=sys.stderr,
                  flush=True)
            if network_error(err):
                first = (str(err).splitlines() or [type(err).__name__])[0][:200]
                raise gr.Error(f"The server could not reach the network ({first}): try again when it can.",
                               print_exception=False) from None
            where = f" ({err.filename})" if err.filename else ""
            raise gr.Error(f"The server could not read or write a file{where}: {err.strerror or err}. Check that the "
                           "workspace is writable and its disk has room.", print_exception=False) from None
        except Exception as err:  # a bug, or input no form would send: one sentence, the detail in the log
            name = getattr(handler, "__name__", "this action")
            print(f"{name} failed on input it could not use:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            raise gr.Error(UNEXPECTED.format(kind=type(err).__name__), print_exception=False) from None


NETWORK_ERRORS = {"ConnectionError", "TimeoutError", "RequestException", "HTTPError", "HfHubHTTPError",
                  "LocalEntryNotFoundError", "TransportError"}
"""OSError subclasses that the network raises (the standard library's, requests', httpx's, the hub client's)."""


def network_error(err: BaseException) -> bool:
    return bool({k.__name__ for k in type(err).__mro__} & NETWORK_ERRORS)


def is_admin(logins: Logins, request: gr.Request | None) -> bool:
    return role_of(logins, request) == ADMIN
