"""Saved datasets: versioned, split, and earlier versions survive failures and bad names."""

from __future__ import annotations

import json

import pytest

from studio.data.readers import DataError
from studio.data.store import dataset_path, list_datasets, save_dataset, versions
from studio.workspace import Workspace

RECORDS = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
           for i in range(20)]


def test_versions_split_and_listing(tmp_path):
    ws = Workspace.open(tmp_path)
    v1 = save_dataset(ws, "support", RECORDS, "sft", eval_fraction=0.2, seed=1)
    assert v1.name == "v1"
    train = (v1 / "train.jsonl").read_text().splitlines()
    evaluation = (v1 / "eval.jsonl").read_text().splitlines()
    assert len(train) == 16 and len(evaluation) == 4
    assert not set(train) & set(evaluation)
    meta = json.loads((v1 / "meta.json").read_text())
    assert meta["kind"] == "sft" and meta["eval_rows"] == 4
    v2 = save_dataset(ws, "support", RECORDS[:5], "sft")
    assert v2.name == "v2" and not (v2 / "eval.jsonl").exists()
    assert versions(ws, "support") == [1, 2]
    assert (v1 / "train.jsonl").read_text().splitlines() == train  # v1 untouched
    listed = list_datasets(ws)
    assert listed[0]["name"] == "support" and listed[0]["versions"] == [1, 2] and listed[0]["rows"] == 5
    assert dataset_path(ws, "support") == v2 / "train.jsonl"
    assert dataset_path(ws, "support", 1, "eval") == v1 / "eval.jsonl"


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 80, "semi;colon"])
def test_bad_names_are_refused(tmp_path, name):
    ws = Workspace.open(tmp_path)
    with pytest.raises(DataError, match="must be 1-64 letters"):
        save_dataset(ws, name, RECORDS, "sft")
    assert not any(ws.datasets.iterdir())


def test_failed_save_keeps_earlier_versions(tmp_path):
    ws = Workspace.open(tmp_path)
    save_dataset(ws, "d", RECORDS, "sft")
    bad = RECORDS + [{"messages": object()}]  # not JSON-serialisable: the write fails midway
    with pytest.raises(TypeError):
        save_dataset(ws, "d", bad, "sft")
    assert versions(ws, "d") == [1]
    assert not [p for p in (ws.datasets / "d").iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert len((ws.datasets / "d" / "v1" / "train.jsonl").read_text().splitlines()) == 20
    with pytest.raises(DataError, match="no usable rows"):
        save_dataset(ws, "d", [], "sft")


def test_saves_of_one_name_at_the_same_time_get_a_version_each(tmp_path):
    import threading

    ws = Workspace.open(tmp_path)
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    errors, folders = [], []

    def save(n):
        try:
            folders.append(save_dataset(ws, "shared", rows * (n + 1), "sft", created_by=f"user{n}"))
        except Exception as err:  # any failure is what this test looks for
            errors.append(err)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(f.name for f in folders) == [f"v{n}" for n in range(1, 9)]
    assert not [p for p in (ws.datasets / "shared").iterdir() if p.name.startswith(".new")]


def test_saving_the_same_rows_again_makes_no_new_version(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(10)]
    first = save_dataset(ws, "same", rows, "sft", eval_fraction=0.2)
    assert save_dataset(ws, "same", list(rows), "sft", eval_fraction=0.2) == first
    assert save_dataset(ws, "same", rows, "sft", eval_fraction=0.3).name == "v2"  # another split is new
    assert save_dataset(ws, "same", rows[:9], "sft", eval_fraction=0.3).name == "v3"  # other rows too
    assert save_dataset(ws, "same", rows[:9], "sft", eval_fraction=0.3).name == "v3"
    assert versions(ws, "same") == [1, 2, 3] and not list((ws.datasets / "same").glob(".new.tmp*"))


def test_a_saved_dataset_of_the_wrong_kind_is_named_and_the_stages_for_it_listed(tmp_path):
    from studio.data.load import load_records

    ws = Workspace.open(tmp_path / "ws")
    pair = {"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}],
            "rejected": [{"role": "assistant", "content": "Go."}]}
    save_dataset(ws, "arena", [pair], "preference")
    with pytest.raises(DataError) as info:
        load_records(str(dataset_path(ws, "arena")), ("sft", "text"))
    assert str(info.value) == (
        "The saved dataset arena (v1, train split) holds preference (prompt, chosen, rejected) data, but this stage "
        "needs instruction or chat or plain text data; the stages that train on it: Reward model, DPO, KTO, RLHF, "
        "PPO (chosen in the Method tab, or method.stage in the run config).")


@pytest.mark.parametrize("meta", ["[1, 2]", "{not json", ""])
def test_a_damaged_meta_file_leaves_the_list_whole(tmp_path, meta):
    ws = Workspace.open(tmp_path / "ws")
    save_dataset(ws, "good", [{"text": "a"}], "text")
    folder = save_dataset(ws, "damaged", [{"text": "b"}], "text")
    (folder / "meta.json").write_text(meta)
    listed = {d["name"]: d for d in list_datasets(ws)}
    assert set(listed) == {"good", "damaged"} and listed["damaged"]["versions"] == [1]
