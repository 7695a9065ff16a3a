"""The Train tab in a real browser: start a short run of the tiny preset and watch it finish, refuse a
bad value with one sentence, a GRPO run's rewards, runs as experiments, one length everywhere (stop and
resume, and a saved dataset's eval split, are in test_journey.py).

The module's app has a workspace of its own (its path is in the page header), so the tests can look
at the run folders that the UI only reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from helpers import pick, workspace_of
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

RUN_WAIT = 120_000  # ms: model loading and a few steps on 2 busy cores


def open_train_tab(page, url):
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    expect(page.get_by_label("Max steps (-1: by epochs)", exact=True)).to_be_visible()


def run_folders(ws: Path) -> list[Path]:
    runs = ws / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")  # commit the value before a button reads it
    expect(box).to_have_value(str(value))


def wait_until_completed(run_dir: Path, limit: float = RUN_WAIT / 1000) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = run_dir / "status.json"
        if status.exists() and json.loads(status.read_text() or "{}").get("state") == "completed":
            return
        time.sleep(0.3)
    raise AssertionError(f"{run_dir.name} did not complete in {limit} s")


def start_run(page, max_steps: int) -> str:
    set_number(page, "Max steps (-1: by epochs)", max_steps)
    set_number(page, "Log every", 1)
    page.get_by_role("button", name="Start", exact=True).click()
    message = page.locator("#train-message")
    expect(message).to_contain_text("Started run", timeout=30_000)
    return re.search(r"Started run (\S+?)\.?$", message.inner_text().strip()).group(1)


@pytest.fixture(scope="module", autouse=True)
def no_workers_left(app_url):
    """A worker runs in its own session and outlives the app: end any this module left running."""
    seen: set[Path] = set()
    yield seen
    for ws in seen:
        for run in run_folders(ws):
            try:
                status = json.loads((run / "status.json").read_text())
            except (OSError, ValueError):
                continue
            for key in ("pid", "launcher_pid"):
                if status.get(key) and status.get("state") not in ("completed", "stopped", "failed"):
                    try:
                        os.kill(int(status[key]), signal.SIGKILL)
                    except OSError:
                        pass


def test_short_run_completes_and_survives_a_reload(page, app_url, no_workers_left):
    open_train_tab(page, app_url)
    ws = workspace_of(page)
    no_workers_left.add(ws)
    run_id = start_run(page, 4)
    assert (ws / "runs" / run_id / "config.yaml").exists()

    progress = page.locator("#train-progress")
    expect(progress).to_contain_text("completed", timeout=RUN_WAIT)
    expect(progress).to_contain_text("step 4 / 4")
    expect(page.locator("#train-curves .js-plotly-plot")).to_be_visible(timeout=30_000)
    runs = page.locator("#train-runs")
    expect(runs).to_contain_text(run_id, timeout=30_000)
    expect(runs).to_contain_text("completed")

    records = [json.loads(line) for line in (ws / "runs" / run_id / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]

    # everything shown comes from the run folder, so a fresh page shows the same run
    open_train_tab(page, app_url)
    expect(page.locator("#train-progress")).to_contain_text("completed · step 4 / 4", timeout=30_000)
    expect(page.locator("#train-runs")).to_contain_text(run_id)
    expect(page.locator("#train-curves .js-plotly-plot")).to_be_visible(timeout=30_000)


def test_bad_value_gives_one_sentence_and_starts_nothing(page, app_url, no_workers_left):
    open_train_tab(page, app_url)
    ws = workspace_of(page)
    no_workers_left.add(ws)
    before = run_folders(ws)
    set_number(page, "Learning rate", 0)
    page.get_by_role("button", name="Start", exact=True).click()
    message = page.locator("#train-message")
    expect(message).to_contain_text("learning rate must be a positive number")
    # the sentence itself (the status tracker beside it may still hold a fading "0.1s")
    text = message.locator("[data-testid=markdown]").inner_text().strip()
    assert text.startswith("⚠️") and "\n" not in text and "Traceback" not in text
    time.sleep(1.5)  # a run, had one started, would have its folder by now
    assert run_folders(ws) == before


def test_a_grpo_run_from_the_preset_shows_its_rewards_and_answers(page, app_url, no_workers_left):
    open_train_tab(page, app_url)
    ws = workspace_of(page)
    no_workers_left.add(ws)
    expect(page.get_by_label("Reward-model run")).to_be_hidden()  # an SFT preset has no rewards to set
    pick(page, "Start from a preset", "tiny-grpo.yaml")
    page.get_by_role("button", name="Load preset").click()
    expect(page.locator("#train-message")).to_contain_text("Loaded preset tiny-grpo.yaml")
    expect(page.get_by_label("Reward-model run")).to_be_visible()
    expect(page.get_by_role("checkbox", name="overlap")).to_be_checked()
    page.get_by_role("checkbox", name="length").check()
    set_number(page, "length: characters before the penalty", 60)
    run_id = start_run(page, 2)
    cfg = (ws / "runs" / run_id / "config.yaml").read_text()
    assert "stage: rlhf" in cfg and "  - overlap\n  - length\n" in cfg and "max_chars: 60" in cfg, cfg
    wait_until_completed(ws / "runs" / run_id)
    samples = page.locator("#train-samples")
    expect(samples).to_contain_text("overlap", timeout=30_000)
    expect(samples).to_contain_text("length")
    rows = [json.loads(line) for line in (ws / "runs" / run_id / "samples.jsonl").read_text().splitlines()]
    assert rows and set(rows[0]["rewards"]) == {"overlap", "length"} and rows[0]["answer"]


def test_a_run_as_an_experiment_named_compared_cloned_and_deleted(page, app_url, no_workers_left):
    open_train_tab(page, app_url)
    ws = workspace_of(page)
    no_workers_left.add(ws)
    from studio.config import load_config, save_config

    set_number(page, "Learning rate", 0.001)
    second = start_run(page, 2)
    wait_until_completed(ws / "runs" / second)
    first = "20200101-000000-sft-lora"  # an older run to compare with: the same config, another learning rate
    (ws / "runs" / first).mkdir()
    save_config(load_config(ws / "runs" / second / "config.yaml", ["train.learning_rate=0.003"]),
                ws / "runs" / first / "config.yaml")
    expect(page.locator("#train-progress")).to_contain_text("completed", timeout=RUN_WAIT)

    page.get_by_text("The watched run: name, notes").click()
    expect(page.locator("#run-log textarea")).to_have_value(re.compile(f"run {second}"))  # opened: it shows the run
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_attribute("placeholder", re.compile(r"^(started as .+|e\.g\. lr 3e-4, more data)$"))
    page.get_by_label("Notes", exact=True).fill("a quick try")
    name.fill("lower lr")
    name.press("Enter")  # Enter in Name saves, as the button does
    expect(page.locator("#run-details-message")).to_contain_text(f"Saved the name and notes of {second}")
    expect(page.locator("#train-runs")).to_contain_text("lower lr", timeout=5_000)  # redrawn at once, not at the next tick
    # the picker says the new name beside the id
    expect(page.get_by_label("Watching run", exact=True)).to_have_value(f"lower lr · {second}", timeout=5_000)

    pick(page, "Compare its config with", first, exact=False)
    expect(page.locator("#run-details-message")).to_contain_text("settings differ")
    expect(page.get_by_role("gridcell", name="train.learning_rate")).to_be_visible()

    set_number(page, "Learning rate", 0.05)
    page.get_by_role("button", name="Clone into the form").click()
    expect(page.locator("#run-details-message")).to_contain_text(f"The form now holds the config of {second}")
    expect(page.get_by_label("Learning rate", exact=True)).to_have_value("0.001")

    page.get_by_role("button", name="Delete this run…").click()
    page.get_by_role("button", name="Yes, delete it with its checkpoints").click()
    expect(page.locator("#run-details-message")).to_contain_text(f"Deleted run {second}")
    assert not (ws / "runs" / second).exists() and (ws / "runs" / first).exists()
    expect(page.locator("#train-runs")).not_to_contain_text(second, timeout=5_000)


def test_one_length_and_batch_size_shown_in_every_tab(page, app_url):
    open_train_tab(page, app_url)
    expect(page.locator("#status-bar")).to_contain_text("GiB in use")  # the status bar: device, memory, job
    expect(page.locator("#status-bar")).to_contain_text(re.compile("no run training|step"))
    expect(page.get_by_label("Max length", exact=True)).to_have_value("192")  # the tiny preset's
    set_number(page, "Max length", 256)
    set_number(page, "Batch size", 4)
    page.get_by_role("tab", name="Method").click()
    page.get_by_text("Memory estimate settings").click()
    expect(page.get_by_label("Sequence length", exact=True)).to_have_value("256")
    expect(page.get_by_label("Batch size per device", exact=True)).to_have_value("4")
    page.get_by_role("tab", name="Data").click()
    expect(page.get_by_label("Max length (tokens)", exact=True)).to_have_value("256")
    page.reload()  # a fresh page starts from the same settings everywhere
    page.get_by_role("tab", name="Data").click()
    expect(page.get_by_label("Max length (tokens)", exact=True)).to_have_value("192")
