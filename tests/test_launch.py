"""The web app starts, serves its page quickly, and refuses a public link without a login."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import pytest
from helpers import PYTHON, ROOT, free_port, subprocess_env


def _wait_for(url: str, proc: subprocess.Popen, limit: float) -> tuple[int, float]:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if proc.poll() is not None:
            raise AssertionError(f"launch exited early: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {limit}s")


def test_launch_serves_the_page(tmp_path):
    port = free_port()
    proc = subprocess.Popen([PYTHON, "launch.py", "--port", str(port), "--workspace", str(tmp_path / "ws"),
                             "--no-browser"], cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        # the target is 15 s on 2 idle cores; a busy CI gets more slack here
        status, _ = _wait_for(f"http://127.0.0.1:{port}/", proc, limit=60)
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as resp:
            config = resp.read().decode()
        for tab in ("Data", "Method", "Train", "Preferences", "Chat", "Guide"):
            assert f'"{tab}"' in config
        assert (tmp_path / "ws" / "runs").is_dir()
        for page in ("gradio_api/runs", "gradio_api/run-history/records", "gradio_api/run-history/buckets"):
            try:  # Gradio's run history (every call's inputs kept in the browser) is off
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5)
                raise AssertionError(f"/{page} answered")
            except urllib.error.HTTPError as err:
                assert err.code == 404, (page, err.code)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_page_import_does_not_load_torch():
    code = "import sys, studio.ui.app, studio.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=ROOT, env=subprocess_env())
    assert out.stdout.strip() == "False False", out.stderr


def test_share_without_login_is_refused(tmp_path):
    for argv in (["launch.py"], ["-m", "studio", "launch"]):
        out = subprocess.run([PYTHON, *argv, "--share", "--port", str(free_port()), "--workspace",
                              str(tmp_path), "--no-browser"], capture_output=True, text=True, cwd=ROOT,
                             env=subprocess_env(), timeout=60)
        assert out.returncode == 1
        assert "needs a login" in out.stderr and "--auth USER:PASS" in out.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_listening_beyond_this_machine_without_login_is_refused(host, tmp_path):
    out = subprocess.run([PYTHON, "launch.py", "--host", host, "--port", str(free_port()), "--workspace",
                          str(tmp_path), "--no-browser"], capture_output=True, text=True, cwd=ROOT,
                         env=subprocess_env(), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"Listening on {host} lets other machines reach the studio" in out.stderr and "--auth USER:PASS" in out.stderr


def test_a_port_in_use_is_one_sentence_before_anything_is_announced(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv in (["launch.py"], ["-m", "studio", "launch"]):
            out = subprocess.run([PYTHON, *argv, "--port", str(port), "--workspace", str(tmp_path), "--no-browser"],
                                 capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=60)
            assert out.returncode == 1 and "Traceback" not in out.stderr and "Fine-tuning Studio on" not in out.stdout
            assert f"Cannot listen on 127.0.0.1 port {port}: it is in use (pick another with --port)." in out.stderr


def test_only_loopback_addresses_count_as_this_machine_alone():
    from studio.ports import loopback

    assert all(map(loopback, ["127.0.0.1", "localhost", "::1", "127.0.1.1"]))
    assert not any(map(loopback, ["0.0.0.0", "::", "10.0.0.5", "studio.example.com", ""]))


def test_auth_protects_the_page(tmp_path):
    port = free_port()
    proc = subprocess.Popen([PYTHON, "launch.py", "--port", str(port), "--workspace", str(tmp_path),
                             "--auth", "ann:secret", "--no-browser"], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/", proc, limit=60)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5)
            raise AssertionError("config was served without a login")
        except urllib.error.HTTPError as err:
            assert err.code in (401, 403)
        data = b"username=ann&password=wrong"
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/login", data=data), timeout=5)
            raise AssertionError("a wrong password was accepted")
        except urllib.error.HTTPError as err:
            assert err.code in (400, 401, 403)
        ok = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/login", data=b"username=ann&password=secret"), timeout=5)
        assert ok.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_size_setting_that_is_not_a_number_is_one_sentence_at_launch(tmp_path):
    """STUDIO_WEB_READ_MB=abc stopped the app at import with a traceback; now the launch says which setting."""
    out = subprocess.run([PYTHON, "launch.py", "--port", str(free_port()), "--workspace", str(tmp_path / "ws"),
                          "--no-browser"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env=subprocess_env(STUDIO_WEB_READ_MB="abc", STUDIO_UPLOAD_QUOTA_MB="-5"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == ("error: STUDIO_WEB_READ_MB='abc' is not a positive number of megabytes (the default "
                                  "is 128); STUDIO_UPLOAD_QUOTA_MB='-5' is not a positive number of megabytes (the "
                                  "default is 2048).")
