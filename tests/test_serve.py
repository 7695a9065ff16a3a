"""`studio serve RUN`: an OpenAI-compatible endpoint on 127.0.0.1, tried with the `openai` client package
against a real server process, on a real run (80 steps of the tiny preset)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from helpers import PYTHON, ROOT, copy_run, free_port, output_file, subprocess_env, written

from studio.chat.engine import GenerationSettings, load_for_chat, stream_reply
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
QUESTION = [{"role": "system", "content": "You answer customer emails for Pebble & Pine in the house style."},
            {"role": "user", "content": "Dear team\nWhere is order 41810? It is late.\nThanks, Ann"}]


def first_line(proc, limit: float = 120.0) -> str:
    """The server's first line of output (its URL), or '' if none came within `limit` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        return proc.stdout.readline().strip() if sel.select(timeout=limit) else ""


def start_server(ws, run_dir, **env):
    port = free_port()
    errors = output_file()  # the request log, read only if the server does not come up
    proc = subprocess.Popen([PYTHON, "-m", "studio", "serve", run_dir.name, "--port", str(port),
                             "--workspace", str(ws.root)], cwd=ROOT, env=subprocess_env(**env),
                            stdout=subprocess.PIPE, stderr=errors, text=True)
    line = first_line(proc)
    if line != f"http://127.0.0.1:{port}/v1":
        proc.kill()
        raise RuntimeError(f"serve printed {line!r}: {written(errors)}")
    return proc, line


@pytest.fixture(scope="module")
def served(tmp_path_factory, house_sft_run):
    ws = Workspace.open(tmp_path_factory.mktemp("serve") / "ws")
    run_dir = copy_run(house_sft_run, ws)
    proc, line = start_server(ws, run_dir)  # the URL is printed once the server listens
    yield line, ws, run_dir
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def chat_answer(served):
    _, ws, run_dir = served
    loaded = load_for_chat(run_dir.name, ws)
    return list(stream_reply(loaded, QUESTION, GenerationSettings(max_new_tokens=48, temperature=0.0)))[-1]


def client(url):
    from openai import OpenAI

    return OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)


def test_streamed_and_whole_answers_are_the_chat_tab_answer(served, chat_answer):
    url, _, run_dir = served
    c = client(url)
    assert [m.id for m in c.models.list().data] == [run_dir.name]
    started = time.monotonic()
    pieces, first, finish = [], None, None
    for chunk in c.chat.completions.create(model=run_dir.name, messages=QUESTION, temperature=0, max_tokens=48,
                                           stream=True):
        delta = chunk.choices[0].delta.content
        if delta:
            first = first or time.monotonic() - started
            pieces.append(delta)
        finish = chunk.choices[0].finish_reason or finish
    assert "".join(pieces) == chat_answer and len(pieces) > 1  # streamed in pieces, same text
    assert finish in ("stop", "length")
    whole = c.chat.completions.create(model=run_dir.name, messages=QUESTION, temperature=0, max_tokens=48)
    assert whole.choices[0].message.content == chat_answer
    assert whole.usage.prompt_tokens > 10 and whole.usage.completion_tokens > 0


def test_stop_words_and_the_token_limit_end_the_answer(served, chat_answer):
    url, _, run_dir = served
    c = client(url)
    word = chat_answer.split()[2]
    cut = c.chat.completions.create(model=run_dir.name, messages=QUESTION, temperature=0, max_tokens=48, stop=[word])
    assert cut.choices[0].message.content == chat_answer[:chat_answer.index(word)]
    assert cut.choices[0].finish_reason == "stop"
    short = c.chat.completions.create(model=run_dir.name, messages=QUESTION, temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length" and chat_answer.startswith(short.choices[0].message.content)
    # a stop word of several tokens arrives over several pieces: none of it is sent before it is recognised
    words = chat_answer.split()
    phrase = " ".join(words[3:5])
    pieces = [ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model=run_dir.name, messages=QUESTION, temperature=0, max_tokens=48, stop=phrase, stream=True)]
    assert "".join(pieces) == chat_answer[:chat_answer.index(phrase)]


@pytest.mark.parametrize("change, said", [
    ({"messages": []}, "non-empty list"),
    ({"model": "gpt-4o"}, "serves the model"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}, "from the user"),
    ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages[0]: the role"),
    ({"messages": [{"role": [], "content": "Hi"}]}, "messages[0]: the role"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "Only text"),
    ({"messages": [{"role": "user", "content": "word " * 40_000}]}, "shorten it"),
])
def test_bad_requests_get_one_sentence(served, change, said):
    import openai

    url, _, run_dir = served
    body = {"model": run_dir.name, "messages": QUESTION, **change}
    with pytest.raises(openai.BadRequestError) as refused:
        client(url).chat.completions.create(**body)
    message = refused.value.body["message"]
    assert said in message and "\n" not in message and "Traceback" not in message


def test_a_body_that_is_not_json_is_refused(served):
    import httpx

    url, _, _ = served
    answer = httpx.post(url + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "not JSON" in answer.json()["error"]["message"]


def test_only_json_requests_naming_this_machine_are_served(served):
    """A web page in the user's browser could post a form here, or reach it under its own host name (DNS
    rebinding): both are refused."""
    import httpx

    url, _, run_dir = served
    body = json.dumps({"model": run_dir.name, "messages": QUESTION, "max_tokens": 2})
    as_form = httpx.post(url + "/chat/completions", content=body, headers={"content-type": "text/plain"})
    assert as_form.status_code == 415
    rebound = httpx.get(url + "/models", headers={"host": "attacker.example:80"})
    assert rebound.status_code == 403 and "127.0.0.1 or localhost" in rebound.json()["error"]["message"]
    local = httpx.get(url.replace("127.0.0.1", "localhost") + "/models")
    assert local.status_code == 200


def test_an_api_key_when_set_is_required(served):
    import openai

    _, ws, run_dir = served
    proc, url = start_server(ws, run_dir, STUDIO_SERVE_KEY="s3cret")
    try:
        with pytest.raises(openai.AuthenticationError):
            client(url).models.list()
        from openai import OpenAI

        keyed = OpenAI(base_url=url, api_key="s3cret", max_retries=0)
        assert [m.id for m in keyed.models.list().data] == [run_dir.name]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_port_in_use_is_one_sentence(served):
    url, ws, run_dir = served
    port = url.rsplit(":", 1)[1].split("/")[0]
    done = subprocess.run([PYTHON, "-m", "studio", "serve", run_dir.name, "--port", port, "--workspace", str(ws.root)],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and f"port {port}" in done.stderr, done.stderr
    assert json.dumps(done.stdout) == '""'
