"""The `studio` command: help lists the commands, errors are one line, hub ids fail clearly offline."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env, wait_for

from studio.cli import main
from studio.errors import StudioError
from studio.models.loading import resolve_model

COMMANDS = ["launch", "train", "data", "count", "eval", "export", "prefs"]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(**env), timeout=120)


def test_help_lists_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in out.stdout
    data = run_cli("data", "--help").stdout
    assert "inspect" in data and "convert" in data


def test_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'studio = "studio.cli:main"' in text


def test_bad_config_is_one_line_on_stderr(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("lora:\n  r: 0\n")
    out = run_cli("train", str(bad), "--workspace", str(tmp_path / "ws"))
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0
    assert "rank must be between 1 and 1024" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "0"}], ids=["offline", "no-network"])
def test_uncached_hub_model_fails_with_one_sentence(tmp_path, env):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  name: example-org/not-cached-model-7b\n")
    out = run_cli("train", str(cfg), "--workspace", str(tmp_path / "ws"), "--quiet",
                  HF_HOME=str(tmp_path / "hf"), **env)
    assert out.returncode == 1
    err = out.stderr.strip()
    assert "Traceback" not in out.stderr and err.count("\n") == 0, err
    assert "example-org/not-cached-model-7b" in err
    assert "not in the local cache and the hub cannot be reached" in err
    # checked before anything is created: no failed run is left behind
    assert not list((tmp_path / "ws" / "runs").iterdir())


def test_model_names_that_are_neither_folder_nor_hub_id():
    with pytest.raises(StudioError, match="neither a folder on this machine nor a hub id"):
        resolve_model("no such thing!")
    with pytest.raises(StudioError, match="built-in"):
        from studio.models import loading
        saved = loading.BUILTIN["tiny"]
        try:
            loading.BUILTIN["tiny"] = ROOT / "nowhere"
            resolve_model("tiny")
        finally:
            loading.BUILTIN["tiny"] = saved


def test_main_returns_nonzero_for_missing_config(capsys, tmp_path):
    import signal

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    assert main(["train", str(tmp_path / "none.yaml"), "--workspace", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err
    # the stop signals the command holds while it loads are given back: a caller of main() is still stoppable
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


def test_missing_data_file_is_caught_before_a_run_exists(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  train: missing.jsonl\n")
    out = run_cli("train", str(cfg), "--workspace", str(tmp_path / "ws"), "--quiet")
    assert out.returncode == 1 and "missing.jsonl does not exist" in out.stderr
    assert not list((tmp_path / "ws" / "runs").iterdir())


def test_gaps_are_refused_before_a_run_exists(tmp_path):
    ws = tmp_path / "ws"
    preset = str(ROOT / "presets" / "tiny-sft-lora.yaml")
    (tmp_path / "odd.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "empty_turns.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}\n')
    pairs = str(ROOT / "assets" / "data" / "support_prefs.jsonl")
    cases = [
        ([f"--set=data.train={tmp_path / 'odd.jsonl'}"], "odd.jsonl: no known format matches these columns"),
        ([f"--set=data.train={tmp_path / 'empty_turns.jsonl'}"], "empty_turns.jsonl: no usable row; line 1"),
        ([f"--set=data.train={pairs}"], "support_prefs.jsonl holds preference (prompt, chosen, rejected) data, but this stage needs"),
        ([f"--set=data.eval={tmp_path / 'odd.jsonl'}"], "odd.jsonl: no known format matches these columns"),
        (["--set", "data.train=data/train"], "Hub dataset 'data/train' could not be loaded"),
        (["--set", "data.train=./data/train"], "./data/train does not exist"),
        (["--set", "train.seed=-1"], "train.seed must be between 0"),
        (["--set", "train="], "--set sets one setting"),
    ]
    for extra, sentence in cases:
        out = run_cli("train", preset, "--workspace", str(ws), "--quiet", *extra)
        assert out.returncode == 1 and sentence in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not list((ws / "runs").iterdir())
    out = run_cli("train", "some-run", "--resume", "--set", "train.max_steps=9", "--workspace", str(ws))
    assert out.returncode == 1 and "--set cannot change a run being resumed" in out.stderr


def test_convert_does_not_overwrite_and_inspect_wants_a_positive_length(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("keep me\n")
    src = str(ROOT / "assets" / "data" / "support_sft.jsonl")
    out = run_cli("data", "convert", src, "--to", "messages", "--out", str(target))
    assert out.returncode == 1 and "exists already" in out.stderr and target.read_text() == "keep me\n"
    assert run_cli("data", "convert", src, "--to", "messages", "--out", str(target), "--force").returncode == 0
    assert target.read_text() != "keep me\n"
    out = run_cli("data", "inspect", src, "--max-length", "-5")
    assert out.returncode != 0 and "must be at least 1" in out.stderr


def test_a_run_in_the_foreground_says_it_is_queued_and_a_stop_is_not_called_saved(tmp_path):
    """While another run holds the device, `studio train` says whom it waits for; stopped before it began,
    it says nothing was saved rather than "saved"; stopped after a checkpoint, it says how to resume."""
    import fcntl

    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    with open(ws.root / "train.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (ws.root / "train.owner").write_text("20261129-000000-other")
        proc = subprocess.Popen([PYTHON, "-m", "studio", "train", str(ROOT / "presets" / "tiny-sft-lora.yaml"),
                                 "--workspace", str(ws.root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, cwd=ROOT, env=subprocess_env())
        lines = [proc.stdout.readline().strip() for _ in range(3)]  # run, folder, then the wait
        assert lines[0].startswith("run ") and lines[2] == \
            "queued: waiting for 20261129-000000-other to finish (one training at a time)", lines
        run_dir = ws.runs / lines[0].removeprefix("run ")
        (run_dir / "STOP").touch()
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert rest.strip().splitlines()[-1] == "stopped before its first checkpoint: nothing was saved"
    proc = subprocess.Popen([PYTHON, "-m", "studio", "train", str(ROOT / "presets" / "tiny-sft-lora.yaml"), "--quiet",
                             "--workspace", str(ws.root), "--set", "train.max_steps=400", "--set", "train.save_steps=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=subprocess_env())
    run_dir = ws.runs / proc.stdout.readline().strip().removeprefix("run ")
    wait_for(lambda: list((run_dir / "checkpoints").glob("checkpoint-*")), limit=120, every=0.2)
    (run_dir / "STOP").touch()
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and rest.strip().splitlines()[-1] == \
        f"stopped before the end; continue with: studio train {run_dir.name} --resume --workspace {ws.root}"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGHUP"])
def test_ctrl_c_or_a_closed_terminal_stops_a_foreground_run_as_stop_does(tmp_path, sig):
    """Ctrl+C (or the terminal closing) while `studio train` trains: the step ends, a checkpoint is saved, the
    run is stopped and can be resumed; it used to fail with nothing saved."""
    import signal

    from studio.train.status import RunState, read_status
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    proc = subprocess.Popen([PYTHON, "-m", "studio", "train", str(ROOT / "presets" / "tiny-sft-lora.yaml"), "--quiet",
                             "--workspace", str(ws.root), "--set", "train.max_steps=400", "--set",
                             "train.save_steps=1000", "--set", "train.logging_steps=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=subprocess_env())
    run_dir = ws.runs / proc.stdout.readline().strip().removeprefix("run ")
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and '"loss"' in (run_dir / "metrics.jsonl").read_text(),
             limit=120, every=0.2)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    status = read_status(run_dir)
    assert proc.returncode == 0 and status.state is RunState.STOPPED, (err, status)
    assert list((run_dir / "checkpoints").glob("checkpoint-*")) and 0 < status.step < 400
    if sig == "SIGINT":  # a terminal still there is told what happened and what to do
        assert "stopping: the current step ends and a checkpoint is saved" in err
        assert out.strip().splitlines()[-1].startswith(f"stopped before the end; continue with: studio train "
                                                        f"{run_dir.name} --resume")


def test_a_foreground_run_killed_before_it_trains_reads_as_dead(tmp_path):
    """The command records itself as the run's launcher before it loads anything, so a run killed in that time
    is listed as dead with the reason, not as a folder of unknown state."""
    import signal

    from studio.train.runner import observe
    from studio.train.runs import run_summary
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    proc = subprocess.Popen([PYTHON, "-m", "studio", "train", str(ROOT / "presets" / "tiny-sft-lora.yaml"), "--quiet",
                             "--workspace", str(ws.root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=ROOT, env=subprocess_env())
    run_dir = ws.runs / proc.stdout.readline().strip().removeprefix("run ")
    status = observe(run_dir)
    assert status.launcher_pid == proc.pid and status.created and status.stage == "sft"  # written before the line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    status = observe(run_dir, grace=0)
    assert status.shown_state == "dead" and ("ended before it began training" in status.shown_error or
                                             "ended without saying why" in status.shown_error), status
    assert status.shown_error.endswith("It saved no checkpoint to resume from: start it again (Clone into the form, "
                                       "or the same command)."), status  # not "Resume continues ..."
    wait_for(lambda: run_summary(run_dir)["status"] == "dead", limit=30)  # the list too, once its grace is over
    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # resumed in the foreground: this process launches
    proc = subprocess.Popen([PYTHON, "-m", "studio", "train", run_dir.name, "--resume", "--quiet", "--workspace",
                             str(ws.root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env=subprocess_env())
    assert proc.stdout.readline().strip() == f"run {run_dir.name}"
    status = observe(run_dir)
    assert status.launcher_pid == proc.pid and status.state.value == "queued", status
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()


def test_a_reader_that_stops_early_gets_no_error(tmp_path):
    """`studio data inspect FILE | head -1`: the pipe closes before the report is written; the command ends
    quietly with the code a shell gives a process stopped by a closed pipe, not with an error line."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the command's first print meets a closed pipe
    try:
        done = subprocess.run([PYTHON, "-m", "studio", "data", "inspect",
                               str(ROOT / "assets" / "data" / "support_sft.jsonl"), "--model", ""],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=subprocess_env(),
                              timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr


def test_runs_are_listed_on_the_command_line_as_the_train_tab_lists_them(tmp_path):
    """`studio runs`: newest first, with each run's state, steps and why it failed; `--json` every field."""
    from studio.config import RunConfig, save_config
    from studio.train.status import RunState, update_status
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    argv = [PYTHON, "-m", "studio", "runs", "--workspace", str(ws.root)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "no runs yet: start one with studio train PRESET"
    for run_id, state, error in (("20261127-100000-sft", RunState.COMPLETED, None),
                                 ("20261127-110000-dpo", RunState.FAILED, "The parent run x has no finished adapter")):
        (ws.runs / run_id).mkdir()
        save_config(RunConfig().validate(), ws.runs / run_id / "config.yaml")
        update_status(ws.runs / run_id, state=RunState.QUEUED)
        update_status(ws.runs / run_id, state=state, step=4, total_steps=4, error=error)
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0].split()[:2] == ["run", "stage"] and len(lines) == 3, out.stdout  # no names: no column
    assert lines[1].startswith("20261127-110000-dpo") and "failed" in lines[1] and "The parent run x" in lines[1]
    assert lines[2].startswith("20261127-100000-sft") and "completed" in lines[2] and "4/4" in lines[2]
    out = subprocess.run([*argv, "--json"], capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=60)
    got = json.loads(out.stdout)
    assert [r["run"] for r in got] == ["20261127-110000-dpo", "20261127-100000-sft"] and got[0]["status"] == "failed"


def test_a_foreground_run_in_two_processes_says_its_run_once(tmp_path):
    """`studio train` with two processes relaunches itself under accelerate: the run and its folder are said
    once (the parent's), and one thread per process is one thread."""
    from studio.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    out = subprocess.run([PYTHON, "-m", "studio", "train", str(ROOT / "presets" / "tiny-sft-lora.yaml"), "--quiet",
                          "--workspace", str(ws.root), "--set", "train.max_steps=2", "--set", "train.num_processes=2",
                          "--set", "train.batch_size=2"], capture_output=True, text=True, cwd=ROOT,
                         env=subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert sum(line.startswith("run ") for line in lines) == 1 and sum(line.startswith("folder ") for line in lines) == 1
    assert "1 CPU thread (OpenMP" in out.stdout and lines[-2].startswith("done: 2/2 steps"), out.stdout
