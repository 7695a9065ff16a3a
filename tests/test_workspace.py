"""Workspace layout, run folders and path containment."""

from __future__ import annotations

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


def test_contains_resolves_dotdot(tmp_path):
    ws = Workspace.open(tmp_path / "w")
    assert ws.contains(ws.datasets / "x.jsonl")
    assert not ws.contains(ws.datasets / ".." / ".." / "etc")
    assert not ws.contains("/etc/passwd")
