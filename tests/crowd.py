"""A crowd of annotators voting through the app's API while the server is killed and started again.

Used by tests/test_prefs_crowd.py (a small crowd) and bench/vote_crowd.py (20 annotators, 1,000 votes).
Each annotator is a gradio_client session with its own login: it asks for a pair, votes, and counts a
vote as acknowledged only when the server answered "Vote stored for pair #N". When the server goes
away, the annotator waits for it to come back and carries on.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers import PYTHON, ROOT, free_port, subprocess_env

STORED = re.compile(r"Vote stored for pair #(\d+)")


@dataclass
class Crowd:
    acknowledged: list[tuple[str, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_server(ws: Path, port: int, logins: str) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, "launch.py", "--port", str(port), "--workspace", str(ws), "--no-browser",
                             "--auth", "adm:admin-pw"], cwd=ROOT, env=subprocess_env(STUDIO_ANNOTATORS=logins),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def wait_up(url: str, limit: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {limit} s")


def annotate(url: str, user: str, votes: int, crowd: Crowd, deadline: float) -> None:
    from gradio_client import Client

    client, cast = None, 0
    while cast < votes and time.monotonic() < deadline:
        try:
            if client is None:
                client = Client(url, auth=(user, "pw"), verbose=False)
                client.predict(api_name="/prefs_next_pair")  # a pair on screen for this session
            started = time.perf_counter()
            said = client.predict("", "", api_name="/vote_left")[-1]
            elapsed = time.perf_counter() - started
        except Exception as err:  # the server is down (or restarting): start a new session when it is back
            client = None
            with crowd.lock:
                crowd.errors.append(type(err).__name__)
            time.sleep(0.5)
            continue
        found = STORED.search(said or "")
        if found:
            cast += 1
            with crowd.lock:
                crowd.acknowledged.append((user, int(found.group(1))))
                crowd.latencies.append(elapsed)
        elif "Nothing to vote on" in (said or ""):
            return
        elif "voted on pair" in (said or ""):
            continue  # stored before the kill but never acknowledged; the server moved to the next pair


def run_crowd(ws: Path, annotators: int, votes_each: int, kill_after: int, limit: float = 600
              ) -> tuple[Crowd, int]:
    """Run the crowd against a server that is killed with SIGKILL once `kill_after` votes are acknowledged,
    then started again on the same port; returns the crowd's record and how many restarts happened."""
    users = [f"ann{n}" for n in range(annotators)]
    logins = " ".join(f"{u}:pw" for u in users)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_server(ws, port, logins)
    wait_up(url)
    crowd = Crowd()
    deadline = time.monotonic() + limit
    threads = [threading.Thread(target=annotate, args=(url, u, votes_each, crowd, deadline)) for u in users]
    for t in threads:
        t.start()
    restarts = 0
    try:
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            if not restarts and len(crowd.acknowledged) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                restarts += 1
                proc = start_server(ws, port, logins)
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        proc.kill()
        proc.wait()
    return crowd, restarts
