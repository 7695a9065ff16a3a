"""Runs as experiments: name and notes, config diff, metrics table, log, and a delete that spares running runs."""

from __future__ import annotations

import json

import pytest

from studio.config import RunConfig, save_config
from studio.errors import StudioError
from studio.train import experiments
from studio.train.runs import labelled_runs, list_runs
from studio.train.status import RunState, update_status
from studio.workspace import Workspace


def make_run(ws, run_id, **train):
    run_dir = ws.runs / run_id
    run_dir.mkdir(parents=True)
    save_config(RunConfig.from_dict({"train": train}).validate(), run_dir / "config.yaml")
    return run_dir


def test_name_notes_diff_metrics_and_log(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    a = make_run(ws, "20261127-100000-sft", learning_rate=3e-4, batch_size=8)
    b = make_run(ws, "20261127-110000-sft", learning_rate=1e-3, batch_size=4)
    assert experiments.details(a) == {"title": "", "notes": ""}
    experiments.set_details(a, title="  lr   3e-4 ", notes="Better on long emails.\nTry more steps.")
    assert experiments.details(a) == {"title": "lr 3e-4", "notes": "Better on long emails.\nTry more steps."}
    experiments.set_details(a, notes="")  # the name stays when only the notes change
    assert experiments.details(a)["title"] == "lr 3e-4"
    assert next(r for r in list_runs(ws) if r["run"] == a.name)["name"] == "lr 3e-4"
    # pickers show the name given after the start; a name the id holds already is not said twice
    assert labelled_runs(ws, [a.name, b.name]) == [(f"lr 3e-4 · {a.name}", a.name), (b.name, b.name)]
    experiments.set_details(b, title="sft")
    assert labelled_runs(ws, [b.name]) == [(b.name, b.name)] and ws.run_dir("lr 3e-4") == a
    c = ws.runs / "20261127-120000-lr-3e-4"  # started with a name its id spells otherwise: labelled as the table does
    c.mkdir()
    save_config(RunConfig.from_dict({"name": "lr 3e-4 warm"}).validate(), c / "config.yaml")
    assert labelled_runs(ws, [c.name]) == [(f"lr 3e-4 warm · {c.name}", c.name)]
    d = ws.runs / "20261127-130000-dpo-on-votes"  # a name its id spells already is not said twice
    d.mkdir()
    save_config(RunConfig.from_dict({"name": "dpo on votes"}).validate(), d / "config.yaml")
    assert labelled_runs(ws, [d.name]) == [(d.name, d.name)]
    assert next(r for r in list_runs(ws) if r["run"] == c.name)["name"] == "lr 3e-4 warm"
    with pytest.raises(StudioError, match="at most 120 characters"):
        experiments.set_details(a, title="x" * 121)
    # a name that could be read as another run's id, a path, a checkpoint, or show as something else, is refused:
    # a run renamed to a deleted run's id was deleted in its place by a retried delete
    for shifty in (b.name, "20200101-000000-old", "..", ".", "~root", "a/b", "x@checkpoint-1", "ab\u202ecd", "a\tb\x00"):
        with pytest.raises(StudioError, match="cannot look like a run's id or a path"):
            experiments.set_details(a, title=shifty)
    assert experiments.details(a)["title"] == "lr 3e-4"
    assert experiments.config_diff(a, b) == [("train.batch_size", 8, 4), ("train.learning_rate", 3e-4, 1e-3)]
    assert experiments.config_diff(a, a) == []
    with open(a / "metrics.jsonl", "w") as fh:
        for step in (1, 2):
            fh.write(json.dumps({"step": step, "loss": 1 / 3 / step, "learning_rate": 3e-4, "epoch": 0.1}) + "\n")
        fh.write(json.dumps({"step": 2, "train_runtime": 5.0}) + "\n")
    assert experiments.metrics_table(a) == [{"step": 1, "loss": 0.3333, "learning_rate": 0.0003},
                                            {"step": 2, "loss": 0.1667, "learning_rate": 0.0003}]
    (a / "stdout.log").write_bytes(b"loading\r[###   ] 1/4\r[######] 4/4\nsaved \xff adapter\n")
    assert experiments.log_tail(a) == "loading\n[###   ] 1/4\n[######] 4/4\nsaved \ufffd adapter"


def test_delete_spares_a_running_run_and_removes_a_finished_one(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    run_dir = make_run(ws, "20261127-100000-sft")
    update_status(run_dir, state=RunState.QUEUED, pid=None)
    update_status(run_dir, state=RunState.STARTING)
    update_status(run_dir, state=RunState.RUNNING)
    with pytest.raises(StudioError, match="stop it before deleting it"):
        experiments.delete_run(run_dir)
    update_status(run_dir, state=RunState.COMPLETED)
    experiments.delete_run(run_dir)
    assert not run_dir.exists() and list_runs(ws) == [] and not list(ws.runs.iterdir())


def test_a_run_another_still_needs_is_not_deleted(tmp_path):
    """A parent is kept while a run that starts from it waits or trains, and while a run's adapter sits on its full
    model; once its child keeps the merged parent beside it, it may go."""
    import os

    ws = Workspace.open(tmp_path / "ws")
    parent = make_run(ws, "20261127-100000-sft-full")
    (parent / "model").mkdir()
    (parent / "model" / "config.json").write_text("{}")
    update_status(parent, state=RunState.COMPLETED)
    child = ws.runs / "20261127-110000-lora"
    child.mkdir()
    save_config(RunConfig.from_dict({"model": {"parent_run": str(parent)}}).validate(), child / "config.yaml")
    update_status(child, state=RunState.QUEUED, pid=os.getpid())  # waiting in this (live) process
    with pytest.raises(StudioError, match=f"Run {child.name} is queued and starts from run {parent.name}: "
                                          "stop it or let it finish first, or keep this one"):
        experiments.delete_run(parent)
    update_status(child, state=RunState.COMPLETED)
    (child / "adapter").mkdir()
    with pytest.raises(StudioError, match=f"Run {child.name} holds an adapter trained on the model of run"):
        experiments.delete_run(parent)
    (parent / "model" / "config.json").unlink()  # a LoRA parent: its merge is kept beside the child
    (parent / "model").rmdir()
    (child / "parent-merged").mkdir()
    (child / "parent-merged" / "config.json").write_text("{}")
    experiments.delete_run(parent)
    assert not parent.exists() and child.exists()
    # a reward model a queued PPO run scores with is kept too
    scorer = make_run(ws, "20261127-120000-reward")
    ppo = ws.runs / "20261127-130000-ppo"
    ppo.mkdir()
    save_config(RunConfig.from_dict({"method": {"stage": "ppo"}, "rl": {"reward_model": str(scorer)}}).validate(),
                ppo / "config.yaml")
    update_status(ppo, state=RunState.QUEUED, pid=os.getpid())
    with pytest.raises(StudioError, match=f"Run {ppo.name} is queued and is scored by run {scorer.name}"):
        experiments.delete_run(scorer)


def test_the_status_bar_names_the_device_the_running_job_and_the_queue(tmp_path):
    import os

    from studio.train.machine import machine_status, status_line

    ws = Workspace.open(tmp_path / "ws")
    assert machine_status(ws)["job"] == "no run training" and machine_status(ws)["queue"] == "queue empty"
    running = make_run(ws, "20261127-100000-sft")
    for state in (RunState.QUEUED, RunState.STARTING, RunState.RUNNING):
        update_status(running, state=state, pid=os.getpid(), step=3, total_steps=10, started=1.0)
    waiting = make_run(ws, "20261127-110000-dpo")
    update_status(waiting, state=RunState.QUEUED, launcher_pid=os.getpid())
    s = machine_status(ws)
    assert s["job"] == "20261127-100000-sft: running, step 3 of 10" and s["queue"] == "1 waiting"
    assert s["device"].startswith("CPU (") or "GiB" in s["device"]
    assert "GiB in use" in s["memory"] and s["job"] in status_line(ws)


def test_damaged_run_files_never_take_the_runs_table_down(tmp_path):
    """Each of these once broke the whole table (and `studio runs`) on every tick: every run gets its row, and the
    one whose config cannot be read says which file."""
    from studio.train.runner import observe

    ws = Workspace.open(tmp_path / "ws")
    damaged = {
        "20261127-100001-cut": ("config.yaml", "name: caf\xc3".encode("latin-1")),  # cut inside a character
        "20261127-100002-list": ("config.yaml", b"- a\n- b\n"),
        "20261127-100003-shapes": ("config.yaml", b"model: [1]\nmethod: 5\nname: [x]\n"),
        "20261127-100004-evals": ("evaluations.jsonl", b'{"exact_match": "all", "rows": 2}\n[1, 2]\n'),
        "20261127-100005-huge": ("status.json", b'{"state": "completed", "created": 1e308, "finished": 1e308}'),
        "20261127-100006-deep": ("status.json", b"[" * 100_000 + b"]" * 100_000),
        "20261127-100007-state": ("status.json", b'{"state": ["running"], "step": 99999999999999999999}'),
    }
    for run_id, (name, content) in damaged.items():
        make_run(ws, run_id)
        (ws.runs / run_id / name).write_bytes(content)
    rows = {r["run"]: r for r in list_runs(ws)}
    assert set(rows) == set(damaged)
    assert rows["20261127-100001-cut"]["error"].startswith(f"{ws.runs / '20261127-100001-cut' / 'config.yaml'} "
                                                             "cannot be read (")
    assert rows["20261127-100002-list"]["error"].endswith("holds a list, not a run's settings.")
    assert rows["20261127-100003-shapes"]["model"] == "?" and rows["20261127-100004-evals"]["exact match"] == ""
    from studio.chat.export import model_card

    assert "Held-out evaluation" not in model_card(ws.runs / "20261127-100004-evals", "adapter")  # not a KeyError
    assert "nested too deeply" in rows["20261127-100006-deep"]["error"]
    assert observe(ws.runs / "20261127-100005-huge").created is None  # not a time the studio wrote
    assert rows["20261127-100007-state"]["status"] == "unknown" and rows["20261127-100007-state"]["steps"] == "0/?"
