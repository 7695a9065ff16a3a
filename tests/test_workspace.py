"""Workspace layout, run folders and path containment."""

from __future__ import annotations

import json

import pytest

from studio.errors import StudioError
from studio.workspace import Workspace


def test_open_creates_layout(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "w")
    for sub in ("datasets", "runs", "exports"):
        assert (tmp_path / "w" / sub).is_dir()
    assert ws.prefs_db == (tmp_path / "w" / "prefs.sqlite").resolve()
    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path / "env"))
    assert Workspace.open().root == (tmp_path / "env").resolve()
    monkeypatch.delenv("STUDIO_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert Workspace.open().root == (tmp_path / "workspace").resolve()


def test_workspace_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StudioError, match="is a file, not a folder"):
        Workspace.open(f)


def test_run_dirs_are_unique_and_found_by_id_or_path(tmp_path):
    ws = Workspace.open(tmp_path)
    a, b = ws.new_run_dir("sft lora!"), ws.new_run_dir("sft lora!")
    assert a != b and a.name.endswith("sft-lora") and b.name.endswith("sft-lora-1")
    (a / "config.yaml").write_text("{}")
    assert ws.run_dir(a.name) == a
    assert ws.run_dir(str(a)) == a.resolve()
    assert ws.list_runs() == [a]
    with pytest.raises(StudioError, match="No run 'nope'"):
        ws.run_dir("nope")


def test_runs_are_found_by_name_once_and_not_past_the_workspace(tmp_path):
    """A run answers to the name it was started with, the name given it later and its id without the time;
    a name two runs share is refused with their ids; the built-in model's name is never a run's."""
    from studio.access import readable_model, run_id_only
    from studio.chat.engine import describe_target

    ws = Workspace.open(tmp_path / "w")
    a, b = ws.new_run_dir("walk-sft"), ws.new_run_dir("other")
    (a / "config.yaml").write_text("name: walk-sft\nmodel: {name: tiny}\n")
    (b / "config.yaml").write_text("model: {name: tiny}\n")
    (b / "details.json").write_text('{"title": "  lr   3e-4 ", "notes": ""}')
    assert ws.run_dir("walk-sft") == a and ws.run_dir("other") == b and ws.run_dir("lr 3e-4") == b
    assert run_id_only(ws, " walk-sft ") == a and readable_model(ws, "walk-sft@checkpoint-2") == f"{a.name}@checkpoint-2"
    assert readable_model(ws, "walk-sft") == a.name and readable_model(ws, "org/model") == "org/model"  # loaded by id
    assert describe_target("lr 3e-4", ws)[1] == b and describe_target("tiny", ws)[1] is None
    (b / "details.json").write_text('{"title": "Qwen/Qwen2.5-0.5B"}')  # a hub id is never taken for a run
    assert describe_target("Qwen/Qwen2.5-0.5B", ws)[1] is None
    for shifty in ("..", ".", "~", a.name[:-2] + "xx"):  # paths, and another (maybe deleted) run's id
        (b / "details.json").write_text(json.dumps({"title": shifty}))
        assert ws.named_run(shifty) is None
    (b / "details.json").write_text('{"title": "walk-sft"}')
    with pytest.raises(StudioError, match="2 runs are called 'walk-sft' .*: name one by its id") as refused:
        run_id_only(ws, "walk-sft")
    assert a.name in str(refused.value) and b.name in str(refused.value)
    with pytest.raises(StudioError, match="2 runs are called"):
        describe_target("walk-sft", ws)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.yaml").write_text("name: away\n")
    (ws.runs / "link").symlink_to(tmp_path / "outside")
    (b / "config.yaml").write_text("name: [unclosed\n")  # a broken config hides no other run
    for wanted in ("away", "", "nope"):
        with pytest.raises(StudioError, match="No run"):
            run_id_only(ws, wanted)
    with pytest.raises(StudioError, match="is not a checkpoint of a run"):
        readable_model(ws, "away@checkpoint-2")
    (a / "config.yaml").write_text("name: tiny\nmodel: {name: tiny}\n")
    assert describe_target("tiny", ws)[1] is None  # the built-in model, not the run called tiny


def test_contains_resolves_dotdot(tmp_path):
    ws = Workspace.open(tmp_path / "w")
    assert ws.contains(ws.datasets / "x.jsonl")
    assert not ws.contains(ws.datasets / ".." / ".." / "etc")
    assert not ws.contains("/etc/passwd")


def test_a_workspace_that_cannot_be_written_is_one_sentence(tmp_path):
    import os

    ws = Workspace.open(tmp_path / "w")
    ws.check_writable()
    (ws.root / f".write-check-{os.getpid()}").mkdir()  # the probe cannot be written (root ignores permissions)
    with pytest.raises(StudioError, match=f"The workspace {ws.root} cannot be written \\(Is a directory\\): runs, "
                                          "datasets and votes are kept there"):
        ws.check_writable()


def test_a_runs_broken_config_is_named_wherever_the_run_is_loaded(tmp_path):
    """A config.yaml cut short, holding no model, or gone: one sentence naming the file (it was a parser's
    traceback name, a silent load of the built-in model, or a bare 'No such file')."""
    from studio.chat.engine import describe_target
    from studio.train.experiments import config_diff
    from studio.workspace import read_run_config

    ws = Workspace.open(tmp_path / "w")
    run_dir = ws.new_run_dir("broken")
    path = run_dir / "config.yaml"
    path.write_text("model: {name: [tiny\n")
    for load in (lambda: describe_target(run_dir.name, ws), lambda: config_diff(run_dir, run_dir)):
        with pytest.raises(StudioError, match=f"^{path} cannot be read \\(while parsing a flow"):
            load()
    path.write_text("")
    with pytest.raises(StudioError, match=f"^{path} names no model \\(model.name\\), so run {run_dir.name} cannot"):
        describe_target(run_dir.name, ws)
    path.write_text("- a list\n")
    with pytest.raises(StudioError, match="holds a list, not a run's settings"):
        read_run_config(run_dir)
    path.unlink()
    with pytest.raises(StudioError, match=f"Run {run_dir.name} has no config.yaml"):
        read_run_config(run_dir)
