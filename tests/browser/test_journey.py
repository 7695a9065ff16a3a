"""The whole journey in one browser session, as a new user takes it, on a studio with logins:

upload a helpdesk export whose columns no format knows, map them, save with an eval split; set the LoRA
rank in the Method tab; train SFT on that dataset and watch the train and eval curves grow; stop, resume
and let it finish; make answer pairs from the new run; an annotator logs in, sees only Preferences and
votes; DPO on those votes from the SFT run; chat with the result; evaluate it on the saved eval split;
export it as a merged model and as a GGUF file.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import pick, start_app, workspace_of
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WAIT = 180_000  # ms: loading the model and training on 2 busy cores
PROMPTS = ["Where is my order 41810?", "Can I pay by invoice?", "Do you ship to Norway?"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    ws = tmp_path_factory.mktemp("journey-ws")
    proc, url = start_app(ws, "--auth", "owner:owner-pw", "--annotator", "ann:annot-pw")
    yield url, ws
    for run in (ws / "runs").glob("*") if (ws / "runs").is_dir() else []:
        (run / "STOP").touch()  # any run left going stops at its next step
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def helpdesk_export(path: Path, rows: int = 40) -> Path:
    """A CSV as a helpdesk tool exports it: the customer's mail, the agent's reply, a ticket number."""
    with open(ROOT / "assets" / "data" / "support_sft.jsonl", encoding="utf-8") as fh:
        conversations = [json.loads(line)["messages"] for _, line in zip(range(rows), fh)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ticket", "customer_mail", "agent_reply"])
        for n, turns in enumerate(conversations):
            user = next(t["content"] for t in turns if t["role"] == "user")
            reply = next(t["content"] for t in turns if t["role"] == "assistant")
            out.writerow([f"T-{1000 + n}", user, reply])
    return path


def log_in(page, url: str, user: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")  # commit the value before a button reads it
    expect(box).to_have_value(str(value))


def status_of(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def wait_for(run_dir: Path, state: str, limit: float = WAIT / 1000) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = status_of(run_dir)
        if status.get("state") == state:
            return status
        if status.get("state") == "failed":
            raise AssertionError(f"{run_dir.name} failed: {status.get('error')}")
        time.sleep(0.3)
    raise AssertionError(f"{run_dir.name} did not reach {state} in {limit:.0f} s (now {status_of(run_dir)})")


def metric_steps(run_dir: Path, key: str) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r["step"] for r in map(json.loads, lines) if key in r]


def test_data_to_a_merged_export_with_an_annotator_voting(browser, studio, tmp_path):
    url, ws = studio
    owner = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = owner.new_page()
    page.set_default_timeout(30_000)
    log_in(page, url, "owner", "owner-pw")
    assert workspace_of(page) == ws
    for tab in ("Data", "Method", "Train", "Preferences", "Chat", "Guide"):  # the owner sees every tab
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    expect(page.locator("#status-bar")).to_contain_text("GiB in use")

    # Data: an export no format knows; map its columns, save it with a fifth held out
    page.get_by_role("tab", name="Data").click()
    page.locator("input[type=file]").first.set_input_files(str(helpdesk_export(tmp_path / "helpdesk.csv")))
    status = page.locator("#data-status")
    expect(status).to_contain_text("no known format matches")
    pick(page, "Format", "prompt_completion")
    pick(page, "prompt", "customer_mail")
    pick(page, "completion", "agent_reply")
    expect(status).to_contain_text("40 rows, 40 usable")
    share = page.get_by_label("number input for Eval share")
    share.fill("0.2")
    share.press("Enter")
    page.get_by_label("Save as").fill("helpdesk")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("Saved helpdesk v1", exact=False)).to_be_visible()
    saved = ws / "datasets" / "helpdesk" / "v1"
    assert len((saved / "train.jsonl").read_text().splitlines()) == 32
    assert len((saved / "eval.jsonl").read_text().splitlines()) == 8

    # Method: a smaller rank, which the run then uses
    page.get_by_role("tab", name="Method").click()
    rank = page.get_by_label("number input for Rank r")
    rank.fill("8")
    rank.press("Enter")
    expect(rank).to_have_value("8")

    # Train: the saved dataset brings its eval split; curves for train and eval loss grow; stop, resume
    page.get_by_role("tab", name="Train").click()
    pick(page, "Training data", "helpdesk")
    expect(page.get_by_label("Eval data (optional)")).to_have_value("helpdesk:eval")
    set_number(page, "Max steps (-1: by epochs)", 36)
    set_number(page, "Log every", 1)
    set_number(page, "Eval every (0: each epoch)", 6)
    set_number(page, "Batch size", 8)
    page.get_by_role("button", name="Start", exact=True).click()
    message = page.locator("#train-message")
    expect(message).to_contain_text("Started run")
    sft = re.search(r"Started run (\S+?)\.?$", message.inner_text().strip()).group(1)
    sft_dir = ws / "runs" / sft
    config = (sft_dir / "config.yaml").read_text()
    assert "r: 8\n" in config and "datasets/helpdesk/v1/eval.jsonl" in config, config
    progress = page.locator("#train-progress")
    expect(progress).to_contain_text(re.compile(r"running · step ([7-9]|\d{2,}) / 36"), timeout=WAIT)
    curves = page.locator("#train-curves")
    expect(curves).to_contain_text("eval loss", timeout=30_000)
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(message).to_contain_text(f"Asked {sft} to stop at")
    expect(progress).to_contain_text("stopped", timeout=60_000)
    stopped_at = int(status_of(sft_dir)["step"])
    assert 7 <= stopped_at < 36 and list((sft_dir / "checkpoints").glob("checkpoint-*"))
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(message).to_contain_text(f"Resumed {sft} from its latest checkpoint at")
    wait_for(sft_dir, "completed")
    expect(progress).to_contain_text("completed · step 36 / 36", timeout=30_000)
    assert len(metric_steps(sft_dir, "eval_loss")) >= 3 and metric_steps(sft_dir, "loss")[-1] == 36

    # Preferences: pairs from the new run against the base model, made while the page is reloaded
    page.get_by_role("tab", name="Preferences").click()
    page.get_by_text("Make pairs to vote on").click()
    page.get_by_label("...or type prompts, one per line").fill("\n".join(PROMPTS))
    pick(page, "Source A", sft)
    page.get_by_role("button", name="Generate pairs").click()
    made = page.locator("#prefs-made")
    expect(made).to_contain_text(re.compile(r"Making pairs|Stored"))
    page.reload()  # the job goes on without the page
    workspace_of(page)
    page.get_by_role("tab", name="Preferences").click()
    page.get_by_text("Make pairs to vote on").click()
    expect(made).to_contain_text("Stored", timeout=WAIT)

    # an annotator, in a browser of their own, sees only Preferences and votes on every pair
    annotator = browser.new_context(viewport={"width": 1200, "height": 900})
    voter = annotator.new_page()
    voter.set_default_timeout(30_000)
    log_in(voter, url, "ann", "annot-pw")
    expect(voter.locator("#studio-header")).to_contain_text("preference voting")
    for hidden in ("Data", "Method", "Train", "Chat", "Guide"):
        expect(voter.get_by_role("tab", name=hidden)).to_have_count(0)
    assert str(ws) not in voter.locator("#studio-header").inner_text()  # nor the owner's folders
    for n in range(1, len(PROMPTS) + 1):
        expect(voter.locator("#prefs-prompt textarea")).to_have_value(re.compile("|".join(map(re.escape, PROMPTS))))
        voter.get_by_role("button", name=re.compile("A is better")).click()
        expect(voter.locator("#prefs-counts")).to_contain_text(f"You: {n} votes")
    assert "GiB" not in voter.locator("#status-bar").inner_text()  # nor the machine's state
    annotator.close()

    # DPO on those votes, from the SFT run
    page.get_by_text("Train on the votes").click()
    pick(page, "Start from this SFT run", sft)
    set_number(page, "Max steps (blank: the stage's own)", 6)
    page.get_by_role("button", name="Start the run").click()
    started = page.locator("#prefs-started")
    expect(started).to_contain_text("Started run")
    dpo = re.search(r"Started run (\S+?):", started.inner_text()).group(1)
    dpo_dir = ws / "runs" / dpo
    dpo_config = (dpo_dir / "config.yaml").read_text()
    assert "stage: dpo" in dpo_config and "max_steps: 6" in dpo_config, dpo_config
    assert re.search(f"parent_run: \\S*/{sft}\n", dpo_config), dpo_config
    assert len((ws / "datasets" / "votes" / "v1" / "train.jsonl").read_text().splitlines()) == len(PROMPTS)
    wait_for(dpo_dir, "completed")

    # Chat with the result
    page.get_by_role("tab", name="Chat").click()
    pick(page, "Model", dpo)
    box = page.locator("#chat-input textarea")
    box.fill(PROMPTS[1])
    box.press("Enter")
    expect(page.locator("#chat-left [data-testid='bot']")).to_contain_text(re.compile(r"\S"), timeout=WAIT)

    # evaluate it on the saved eval split; the scores are kept with the run
    page.get_by_role("button", name="Evaluate on held-out data").click()
    data = page.get_by_label("Eval data", exact=True)
    data.fill("helpdesk")
    data.press("Enter")
    pick(page, "Models to compare", dpo, many=True)
    scores = page.locator(".table-container").filter(has=page.get_by_text("Scores", exact=True))
    expect(scores).to_contain_text("perplexity")  # headers before any result, never "1 2 3"
    page.get_by_role("button", name="Evaluate", exact=True).click()
    expect(scores).to_contain_text(dpo, timeout=WAIT)
    expect(scores).not_to_contain_text("⚠️")
    expect(scores).to_contain_text("helpdesk · eval")  # which split was scored
    answers = page.locator(".table-container").filter(has=page.get_by_text("Answers (✗: not an exact match)",
                                                                           exact=True))
    expect(answers).to_contain_text("reference")
    kept = [json.loads(line) for line in (dpo_dir / "evaluations.jsonl").read_text().splitlines()]
    assert kept[-1]["data"] == "helpdesk" and kept[-1]["split"] == "eval" and kept[-1]["rows"] == 8, kept

    # export it, merged, as a folder plain transformers loads
    page.get_by_role("button", name=re.compile(r"^Export\W*▼")).click()
    pick(page, "Run", dpo)
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_text("Exported to", exact=False)).to_be_visible(timeout=WAIT)
    out = ws / "exports" / f"{dpo}-merged"
    assert (out / "config.json").exists() and list(out.glob("*.safetensors")) and (out / "README.md").exists()
    assert "## Held-out evaluation (8 rows of helpdesk)" in (out / "README.md").read_text()  # the card's figures
    page.get_by_role("radio", name="GGUF q8_0").check()  # and one file for llama.cpp / Ollama
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_text("ollama create", exact=False)).to_be_visible(timeout=WAIT)
    gguf = ws / "exports" / f"{dpo}-q8_0.gguf"
    assert gguf.read_bytes()[:4] == b"GGUF" and "FROM ./" in gguf.with_suffix(".Modelfile").read_text()
    owner.close()
