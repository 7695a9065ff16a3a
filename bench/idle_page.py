"""What an open, idle page costs the server, and how fast the studio starts.

    python bench/idle_page.py [--seconds 60]

Starts the app (the same way the tests do), times `launch.py` to the first HTTP 200, opens the page as an
admin in headless Chromium, lets it sit on the Train tab with nothing running, and reads the server
process's CPU time from /proc over --seconds: the share of one core it used. Beside it, the same server
with no page open (the trivial baseline). Also times `studio --help`, `studio count` and `studio data
inspect` on 30 rows, as a user would type them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from helpers import PYTHON, start_app, subprocess_env  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its threads, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def share(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, check=True, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="studio-idle-"))
    started = time.perf_counter()
    proc, url = start_app(ws)
    cold = time.perf_counter() - started
    try:
        time.sleep(5)  # let start-up work settle
        alone = share(proc.pid, args.seconds)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Train").click()
            page.wait_for_selector("#status-bar:has-text('GiB in use')", timeout=60_000)
            time.sleep(5)
            idle = share(proc.pid, args.seconds)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"cold start, launch.py to HTTP 200: {cold:.1f} s")
    print(f"server CPU over {args.seconds:.0f} s, no page open: {alone:.1%} of one core")
    print(f"server CPU over {args.seconds:.0f} s, one idle page on the Train tab: {idle:.1%} of one core")
    studio = [PYTHON, "-m", "studio"]
    print(f"studio --help: {timed([*studio, '--help']):.1f} s")
    print(f"studio count --model tiny --method lora --json: "
          f"{timed([*studio, 'count', '--model', 'tiny', '--method', 'lora', '--json']):.1f} s")
    sample = ws / "thirty.jsonl"
    sample.write_text("".join(line for line in open(ROOT / "assets" / "data" / "support_sft.jsonl")
                              .readlines()[:30]))
    print(f"studio data inspect (30 rows): {timed([*studio, 'data', 'inspect', str(sample)]):.1f} s")


if __name__ == "__main__":
    main()
