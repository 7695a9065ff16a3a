"""An OpenAI-compatible chat endpoint over a run's model (or any model the Chat tab loads), on this
machine only, so any OpenAI client can talk to the result.

    studio serve RUN --port 8000                 # prints http://127.0.0.1:8000/v1
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model=RUN, messages=[...], stream=True)

Routes: GET /v1/models, POST /v1/chat/completions (streamed as server-sent events with stream=true).
One answer is generated at a time; the others wait their turn. With an API key set, every request must
carry it as a bearer token.
"""


import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateError

from studio.chat.engine import GenerationSettings, LoadedModel, fit_to_context, stream_reply
from studio.errors import StudioError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
DEFAULT_MAX_TOKENS = 256


class RequestError(ValueError):
    """A request the endpoint refuses, with the sentence the client sees."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        if any(p.get("type") not in ("text", None) for p in content):
            raise RequestError("Only text content is supported (no images or audio).")
        return "".join(str(p.get("text", "")) for p in content)
    if content is None:
        return ""
    raise RequestError("A message's content must be text or a list of text parts.")


def read_request(body: Any, model_id: str) -> tuple[list[dict[str, str]], GenerationSettings, bool, list[str]]:
    """(messages, settings, stream, stop words) from a chat-completions body, or RequestError."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    if body.get("model") not in (None, "", model_id):
        raise RequestError(f"This endpoint serves the model {model_id!r} only.")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list.")
    messages = []
    for n, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or m["role"] not in ROLES:
            raise RequestError(f"messages[{n}]: the role must be one of {', '.join(ROLES)}.")
        messages.append({"role": ROLES[m["role"]], "content": _text(m.get("content"))})
    if messages[-1]["role"] != "user":
        raise RequestError("The last message must come from the user.")

    def number(key: str, default: float, low: float, high: float) -> float:
        value = body.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise RequestError(f"'{key}' must be a number from {low} to {high}.")
        return float(value)

    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 8192):
        raise RequestError("'max_tokens' must be a whole number from 1 to 8192.")
    settings = GenerationSettings(max_new_tokens=limit or DEFAULT_MAX_TOKENS,
                                  temperature=number("temperature", 1.0, 0.0, 2.0), top_p=number("top_p", 1.0, 0.0, 1.0))
    if settings.top_p == 0:
        settings.temperature = 0.0
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
        raise RequestError("'stop' must be a string or a list of up to 4 strings.")
    if body.get("n", 1) != 1:
        raise RequestError("Only n = 1 is supported.")
    return messages, settings, bool(body.get("stream")), stop


def _pending(text: str, stop: list[str]) -> int:
    """How many characters at the end of `text` could be the start of a stop word."""
    longest = 0
    for word in stop:
        for n in range(min(len(word) - 1, len(text)), longest, -1):
            if text.endswith(word[:n]):
                longest = n
                break
    return longest


def _cut(text: str, stop: list[str]) -> tuple[str, bool]:
    """The text up to the first stop word, and whether one was found."""
    ends = [text.find(s) for s in stop if s in text]
    return (text[:min(ends)], True) if ends else (text, False)


class ChatService:
    """The model behind the endpoint: one generation at a time."""

    def __init__(self, loaded: LoadedModel, model_id: str):
        self.loaded, self.model_id = loaded, model_id
        self.lock = threading.Lock()

    def answers(self, messages: list[dict[str, str]], settings: GenerationSettings, stop: list[str]
                ) -> Iterator[tuple[str, str | None]]:
        """(new text, finish reason or None) as the answer grows; `messages` already fit the context. Text
        that could be the start of a stop word is held back until the next piece shows whether it is."""
        with self.lock:
            text, sent, halt, stats = "", "", threading.Event(), {}
            answer = stream_reply(self.loaded, messages, settings, stop=halt, stats=stats)
            try:
                for text in answer:
                    text, stopped = _cut(text, stop)
                    if stopped:
                        halt.set()
                    ready = text if stopped else text[:len(text) - _pending(text, stop)]
                    if len(ready) > len(sent):
                        yield ready[len(sent):], None
                        sent = ready
                    if stopped:
                        yield "", "stop"
                        return
            finally:
                answer.close()  # ends generation and waits for it before the lock goes
            if len(text) > len(sent):  # the held-back ending was not a stop word after all
                yield text[len(sent):], None
            ran_out = stats.get("new_tokens", 0) >= settings.max_new_tokens and not stats.get("ended")
            yield "", "length" if ran_out else "stop"

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        from studio.chat.engine import prompt_text

        text = prompt_text(self.loaded.tokenizer, messages)
        return len(self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def _chunk(cid: str, created: int, model: str, delta: dict[str, str], finish: str | None) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


def build_api(service: ChatService, api_key: str = "") -> Any:
    """The FastAPI app; `api_key` (when set) is required as a bearer token."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI(title="Fine-tuning Studio chat endpoint", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)

    @app.middleware("http")
    async def check_caller(request: Request, call_next):
        # a web page in the user's browser may send requests here too: only clients that name this
        # machine as the host (no DNS rebinding) and send JSON (no form posts without a preflight)
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
        if host not in LOCAL_HOSTS:
            return error(403, "This endpoint answers requests for 127.0.0.1 or localhost only.", "permission_error")
        if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip() \
                != "application/json":
            return error(415, "Send the request as application/json.")
        given = request.headers.get("authorization", "")
        if api_key and not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            return error(401, "A valid API key is needed (Authorization: Bearer KEY).", "authentication_error")
        return await call_next(request)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": service.model_id, "object": "model", "created": 0,
                                            "owned_by": "finetuning-studio"}]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return error(400, "The request body is not JSON.")
        try:
            messages, settings, stream, stop = read_request(body, service.model_id)
            messages = service.loaded.with_system(messages)  # the run's system message, unless the caller sent one
            # the oldest turns give way to what fits; a last message too long alone is refused here
            messages, _ = fit_to_context(service.loaded, messages, settings.max_new_tokens)
            prompt = service.prompt_tokens(messages)
        except (RequestError, StudioError) as err:
            return error(400, str(err))
        except TemplateError as err:  # the model's chat template refuses this order of roles
            return error(400, f"The model's chat template refused these messages: {str(err).splitlines()[0]}")
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if stream:
            def events() -> Iterator[str]:
                yield _chunk(cid, created, service.model_id, {"role": "assistant", "content": ""}, None)
                try:
                    for piece, finish in service.answers(messages, settings, stop):
                        yield _chunk(cid, created, service.model_id, {"content": piece} if piece else {}, finish)
                except StudioError as err:  # mid-answer: the client reads it as an error event
                    yield f"data: {json.dumps({'error': {'message': str(err), 'type': 'server_error'}})}\n\n"
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")

        def whole() -> tuple[str, str]:
            text, reason = "", "stop"
            for piece, finish in service.answers(messages, settings, stop):
                text += piece
                reason = finish or reason
            return text, reason

        from starlette.concurrency import run_in_threadpool

        try:
            text, reason = await run_in_threadpool(whole)
        except StudioError as err:
            return error(500, str(err), "server_error")
        used = len(service.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
        return {"id": cid, "object": "chat.completion", "created": created, "model": service.model_id,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": used, "total_tokens": prompt + used}}

    return app


def serve(loaded: LoadedModel, model_id: str, port: int, api_key: str = "", ready: Any = None) -> None:
    """Run the endpoint on 127.0.0.1:`port` until interrupted; `ready(url)` is called once it listens."""
    import uvicorn

    from studio.ports import check_port

    check_port("127.0.0.1", port)  # a port that cannot be had is one sentence, not a server log
    config = uvicorn.Config(build_api(ChatService(loaded, model_id), api_key), host="127.0.0.1", port=port,
                            log_level="warning")
    server = uvicorn.Server(config)
    url = f"http://127.0.0.1:{port}/v1"
    if ready is not None:
        watcher = threading.Thread(target=lambda: _announce(server, url, ready), daemon=True)
        watcher.start()
    server.run()


def _announce(server: Any, url: str, ready: Any) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        ready(url)
