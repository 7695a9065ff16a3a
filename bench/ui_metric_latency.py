"""How long after the trainer writes a metric does it show in the Train tab's chart? (target: within 2 s)

    python bench/ui_metric_latency.py [--steps 30] [--workspace DIR]

Starts the app on a free port with a temporary workspace, opens the Train tab in headless Chromium,
and starts the tiny LoRA SFT preset with a log event every step. Two clocks then watch each step:

- on disk: this process polls the run's metrics.jsonl every 20 ms and notes the wall-clock time each
  step's record (the one with a loss) first appears;
- in the page: a 20 ms interval inside the browser reads the loss trace of the plotly chart
  (`#train-curves .js-plotly-plot`, trace 0's x values are steps) and notes Date.now() when each step
  first appears in it.

Both are wall-clock times on the same machine. It prints the median and max of (chart − file) over the
steps, and their ratio to the 2 s target. Needs Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import start_app  # noqa: E402  (the tests start the app the same way)

TARGET_S = 2.0
POLL_S = 0.02

# Runs in the page: remembers when each step first shows in the chart's loss trace.
WATCH_CHART = """() => {
  window.__seen = {};
  window.__watch = setInterval(() => {
    const g = document.querySelector('#train-curves .js-plotly-plot');
    const trace = g && g.data && g.data[0];
    if (!trace || !trace.x) return;
    const now = Date.now();
    for (const step of trace.x) if (!(step in window.__seen)) window.__seen[step] = now;
  }, 20);
}"""


class FileWatcher(threading.Thread):
    """Polls metrics.jsonl and notes when each step's loss record first appears."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.seen, self.done = path, {}, threading.Event()

    def run(self) -> None:
        offset, partial = 0, b""
        while not self.done.is_set():
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except FileNotFoundError:
                chunk = b""
            now = time.time()
            offset += len(chunk)
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            for line in lines:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if "loss" in rec and rec.get("step") is not None:
                    self.seen.setdefault(rec["step"], now)
            time.sleep(POLL_S)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def stop_workers(workspace: Path) -> None:
    for status_file in (workspace / "runs").glob("*/status.json"):
        status = json.loads(status_file.read_text())
        if status.get("state") in ("completed", "stopped", "failed"):
            continue
        for key in ("pid", "launcher_pid"):
            if status.get(key):
                try:
                    os.kill(int(status[key]), signal.SIGTERM)
                except OSError:
                    pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30, help="training steps, one log event each (at least 10)")
    ap.add_argument("--workspace", help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ws = Path(args.workspace or tempfile.mkdtemp(prefix="studio-bench-"))
    print(f"machine: {os.cpu_count()} CPU cores; workspace {ws}; polling every {POLL_S * 1000:.0f} ms", flush=True)
    app, url = start_app(ws)
    watcher = None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("tab", name="Train").click()
            set_number(page, "Max steps (-1: by epochs)", args.steps)
            set_number(page, "Log every", 1)
            page.evaluate(WATCH_CHART)
            page.get_by_role("button", name="Start", exact=True).click()
            message = page.locator("#train-message")
            message.get_by_text("Started run").wait_for()
            run_id = re.search(r"Started run (\S+?)\.?$", message.inner_text().strip()).group(1)
            watcher = FileWatcher(ws / "runs" / run_id / "metrics.jsonl")
            watcher.start()
            started = time.monotonic()
            print(f"run {run_id}: {args.steps} steps of the tiny LoRA SFT preset", flush=True)

            progress = page.locator("#train-progress")
            deadline = started + 120 + args.steps * 3
            while time.monotonic() < deadline:
                text = progress.inner_text()
                if "completed" in text or "failed" in text or "stopped" in text:
                    break
                time.sleep(0.5)
            else:
                sys.exit(f"the run did not finish in time: {progress.inner_text()}")
            if "completed" not in text:
                sys.exit(f"the run did not complete: {text}")
            time.sleep(2.5)  # the chart catches up with the last steps
            chart = {int(float(k)): v / 1000 for k, v in page.evaluate("() => window.__seen").items()}
            browser.close()
    finally:
        if watcher is not None:
            watcher.done.set()
        stop_workers(ws)
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()

    steps = sorted(watcher.seen)
    missing = [s for s in steps if s not in chart]
    per_step = [(s, chart[s] - watcher.seen[s]) for s in steps if s in chart]
    latencies = [lat for _, lat in per_step]
    if len(latencies) < 10:
        sys.exit(f"only {len(latencies)} steps reached the chart (file had {len(steps)}); need at least 10")
    median, worst = statistics.median(latencies), max(latencies)
    print(f"steps measured: {len(latencies)} of {len(steps)} in metrics.jsonl"
          + (f" (never charted: {missing})" if missing else ""))
    print("latency per step (s): " + " ".join(f"{s}:{lat:.2f}" for s, lat in per_step))
    print(f"metric -> chart latency: median {median:.2f} s, min {min(latencies):.2f} s, max {worst:.2f} s "
          f"(target <= {TARGET_S:.0f} s)")
    print(f"ratios: median / {TARGET_S:.0f} s = {median / TARGET_S:.2f}; max / {TARGET_S:.0f} s = {worst / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
