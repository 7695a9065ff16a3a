"""Helpers shared by tests: the interpreter, a free port, the environment for subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def workspace_of(page) -> Path:
    """The workspace named in a browser page's header (filled in at page load, for admins)."""
    from playwright.sync_api import expect

    header = page.locator("#studio-header")
    expect(header).to_contain_text("workspace", timeout=30_000)
    return Path(header.inner_text().split("workspace", 1)[1].strip())


def pick(page, label: str, option: str, exact: bool = True, many: bool = False) -> None:
    """Choose an option of one dropdown, looking only in that dropdown's own list.

    Another dropdown's list can still be in the page while it closes, with the same
    choices in it, so the option is found through the box's aria-controls. A
    multiselect (many) keeps its list open after a choice; Escape closes it."""
    from playwright.sync_api import expect

    box = page.get_by_label(label, exact=True)
    box.click()  # pickers refresh their choices on focus
    listbox = page.locator(f"[id='{box.get_attribute('aria-controls')}']")
    listbox.get_by_role("option", name=option, exact=exact).click()
    if many:
        box.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")  # closed before the next picker opens


def output_file():
    """Where a server started by a test writes: a pipe nobody reads stalls the server once it holds 64 KB."""
    return tempfile.TemporaryFile("w+", encoding="utf-8")


def written(out) -> str:
    out.flush()
    out.seek(0)
    return out.read()


def start_app(workspace: Path, *extra: str, **env: str) -> tuple[subprocess.Popen, str]:
    """The app on a free port with `extra` arguments and `env` set, once it answers: (process, url)."""
    port = free_port()
    out = output_file()
    proc = subprocess.Popen([PYTHON, "launch.py", "--port", str(port), "--workspace", str(workspace),
                             "--no-browser", *extra], cwd=ROOT, env=subprocess_env(**env),
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {written(out)}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("app did not start within 90 s")


HOUSE_STEPS = 80
"""The short SFT run of the tiny preset that the demo's claims are checked on (save_steps past the end)."""


def copy_run(run_dir: Path, ws) -> Path:
    """A copy of a finished run folder inside workspace `ws`, under the same run id."""
    import shutil

    return Path(shutil.copytree(run_dir, ws.runs / run_dir.name))


def wait_for(predicate, limit=300, every=0.3):
    """The first true value of `predicate()`, asked every `every` seconds for up to `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")
