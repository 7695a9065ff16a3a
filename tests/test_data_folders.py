"""Dataset folders: a clone of a hub dataset's repository (GSM8K's layout: subsets main and socratic, train and
test splits in Parquet, named in README.md), a folder of files named by split, a DatasetDict saved with
save_to_disk and a version the studio saved. The subset and split are chosen as for the hub (data.subset,
data.split, data.eval_split); a missing or unknown one is one sentence naming those there are, before a run."""

from __future__ import annotations

import json
import shutil
import subprocess

import datasets
import pyarrow.parquet as pq
import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.config import load_config
from studio.data.hub import hub_reason
from studio.data.readers import DataError, read_rows
from studio.data.store import save_dataset
from studio.errors import StudioError
from studio.methods.common import train_and_eval
from studio.paths import PRESETS
from studio.train.runner import preflight, resolve_inputs
from studio.workspace import Workspace

GSM8K = ROOT / "tests" / "assets" / "data" / "gsm8k_hub"


def questions(path):
    return pq.read_table(path).column("question").to_pylist()


def test_a_hub_clone_is_read_by_subset_and_split():
    train = read_rows(GSM8K, "train", "main")
    assert [r["question"] for r in train.rows] == questions(GSM8K / "main" / "train-00000-of-00001.parquet")
    test = read_rows(GSM8K, "test", "main")
    assert [r["question"] for r in test.rows] == questions(GSM8K / "main" / "test-00000-of-00001.parquet")
    assert read_rows(GSM8K, "test", "socratic").rows[0]["answer"].startswith("How many in all? ** ")
    assert len(read_rows(GSM8K, "train[:2]", "main").rows) == 2  # the datasets library's slices


@pytest.mark.parametrize(("split", "subset", "said"), [
    ("train", None, "gsm8k_hub: it has subsets main, socratic: name the one to read."),
    ("train", "mian", "gsm8k_hub: no subset 'mian' (it has main, socratic)."),
    ("validation", "main", "gsm8k_hub: no split 'validation' (it has train, test)."),
    ("train[:2]+dev", "main", "gsm8k_hub: no split 'dev' (it has train, test)."),
])
def test_a_missing_or_unknown_subset_or_split_names_those_there_are(split, subset, said):
    with pytest.raises(DataError) as caught:
        read_rows(GSM8K, split, subset)
    assert str(caught.value) == said


def test_the_hub_loaders_own_words_on_subsets_and_splits_are_reworded(tmp_path):
    """The same sentences for a hub dataset: the datasets library's errors, raised for real on a local copy."""
    said = []
    for subset, split in ((None, "train"), ("main", "dev")):
        with pytest.raises(Exception) as caught:
            datasets.load_dataset(str(GSM8K), subset, split=split)
        said.append(hub_reason(caught.value))
    assert said == ["it has subsets main, socratic: name the one to read", "no split 'dev' (it has train, test)"]


def test_a_folder_of_files_named_by_split(tmp_path):
    folder = tmp_path / "qa"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n' * 3)
    (folder / "test.jsonl").write_text('{"prompt": "c", "completion": "d"}\n')
    assert [r["prompt"] for r in read_rows(folder, "test").rows] == ["c"]
    assert len(read_rows(folder).rows) == 3


def test_folders_that_are_no_dataset_or_reach_outside_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.md").write_text("# just notes\n")
    for folder in (empty, notes):
        with pytest.raises(DataError, match=f"{folder.name} is not a dataset folder: neither saved with "):
            read_rows(folder)
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"prompt": "secret", "completion": "x"}\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                       "    path: ../secret.jsonl\n---\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "train.jsonl").symlink_to(secret)
    with pytest.raises(DataError, match="outside: its README.md names data files outside the folder "
                                        r"\('../secret.jsonl'\)"):
        read_rows(outside)
    with pytest.raises(DataError, match=r"linked: train.jsonl lies outside the folder \(a link\)"):
        read_rows(linked)
    for pattern in ("/tmp/*/*.jsonl", "data/../../*.jsonl", "hf://datasets/x/y/train.jsonl", "~/train.jsonl"):
        (outside / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                           f"    path: '{pattern}'\n---\n")
        with pytest.raises(DataError, match="outside: its README.md names data files outside the folder"):
            read_rows(outside)  # refused by its pattern, before any file is looked for
    # a dataset_dict.json naming a split by a path: the saved dataset there would be read
    elsewhere = tmp_path / "elsewhere"
    datasets.Dataset.from_list([{"text": "secret"}]).save_to_disk(str(elsewhere))
    tricked = tmp_path / "tricked"
    tricked.mkdir()
    (tricked / "dataset_dict.json").write_text(json.dumps({"splits": [str(elsewhere), "../elsewhere"]}))
    for split in (str(elsewhere), "../elsewhere"):
        with pytest.raises(DataError, match="tricked: dataset_dict.json names a split outside the folder"):
            read_rows(tricked, split)


def test_saved_folders_keep_their_own_splits(tmp_path):
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a"}] * 2),
                          "test": datasets.Dataset.from_list([{"text": "b"}])}).save_to_disk(str(saved))
    assert read_rows(saved, "test").rows == [{"text": "b"}]
    assert read_rows(saved, "train[:1]+test").rows == [{"text": "a"}, {"text": "b"}]  # slices as for the hub
    with pytest.raises(DataError, match="saved: a saved folder has no subsets; leave the subset empty."):
        read_rows(saved, "train", "main")
    single = tmp_path / "single"
    datasets.Dataset.from_list([{"text": "a"}] * 3).save_to_disk(str(single))
    assert len(read_rows(single).rows) == 3
    with pytest.raises(DataError, match=r"single: no split 'test' \(it has train\)."):
        read_rows(single, "test")  # not the training rows in silence
    ws = Workspace.open(tmp_path / "ws")
    version = save_dataset(ws, "qa", [{"prompt": f"q{i}", "completion": "a"} for i in range(10)], "sft",
                           eval_fraction=0.2)
    assert len(read_rows(version, "eval").rows) == 2 and len(read_rows(version).rows) == 8
    assert read_rows(version, "train[:3]").lines == [1, 2, 3]
    with pytest.raises(DataError, match=r"^The saved dataset qa v1: no split 'test' \(it has train, eval\)."):
        read_rows(version, "test")


def config(ws, *overrides):
    return resolve_inputs(load_config(PRESETS / "tiny-sft-lora.yaml", ["data.eval_fraction=0", "data.eval=",
                                                                        *overrides]), ws)


def test_a_run_trains_on_one_split_and_evaluates_on_another(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    cfg = config(ws, f"data.train={GSM8K}", "data.subset=main", "data.eval_split=test")
    preflight(cfg)
    train, held = train_and_eval(cfg, ("sft",))
    assert len(train) == 6 and len(held) == 3
    # eval data of the same kind (a hub dataset or folder) is read with the same subset
    other = tmp_path / "copy"
    shutil.copytree(GSM8K, other)
    cfg = config(ws, f"data.train={GSM8K}", "data.subset=socratic", f"data.eval={other}", "data.eval_split=test")
    preflight(cfg)
    train, held = train_and_eval(cfg, ("sft",))
    assert all(r["messages"][-1]["content"].startswith("How many in all? ** ") for r in held) and len(held) == 3
    # and the folder is read before a run exists: data of the wrong kind for the stage is refused there
    cfg = resolve_inputs(load_config(PRESETS / "tiny-dpo.yaml", [f"data.train={GSM8K}", "data.subset=main",
                                                                 "data.eval="]), ws)
    with pytest.raises(DataError, match="gsm8k_hub holds instruction or chat data, but this stage needs preference"):
        preflight(cfg)


@pytest.mark.parametrize(("overrides", "said"), [
    (["data.subset=main", "data.split=dev"], r"gsm8k_hub: no split 'dev' \(it has train, test\)"),
    (["data.subset=main", "data.split=train[100:]"], "gsm8k_hub: .* corresponds to no data\\.$"),
    (["data.eval_split=test"], "gsm8k_hub: it has subsets main, socratic"),
])
def test_a_run_with_a_wrong_subset_or_split_is_refused_before_it_exists(tmp_path, overrides, said):
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(DataError, match=said):
        preflight(config(ws, f"data.train={GSM8K}", *overrides))
    assert not list(ws.runs.iterdir())


def test_an_eval_split_of_a_single_file_or_beside_a_held_out_share_is_refused(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    data = ROOT / "tests" / "assets" / "data" / "gsm8k.jsonl"
    with pytest.raises(StudioError, match=r"data.eval_split \(test\) picks a split of a hub dataset or a dataset "
                                          r"folder, but the training data is one file \(gsm8k.jsonl\): leave "
                                          r"data.eval_split empty, and hold out a share"):
        preflight(config(ws, f"data.train={data}", "data.eval_split=test"))
    with pytest.raises(StudioError, match=r"but the eval data is one file \(gsm8k.jsonl\): leave data.eval_split "
                                          "empty, or clear the eval data"):
        preflight(config(ws, f"data.train={GSM8K}", "data.subset=main", f"data.eval={data}", "data.eval_split=test"))
    with pytest.raises(ValueError, match="data.eval_split .test. and data.eval_fraction .0.1. both choose"):
        config(ws, f"data.train={GSM8K}", "data.eval_split=test", "data.eval_fraction=0.1")
    saved = save_dataset(ws, "qa", [json.loads(line) for line in data.read_text().splitlines()], "sft")
    with pytest.raises(StudioError, match="the training data is the saved dataset qa, whose held-out rows are its"):
        config(ws, "data.train=qa", "data.eval_split=test")
    assert saved.is_dir()


def test_the_data_commands_read_a_hub_clone_by_subset_and_split(tmp_path):
    run = [PYTHON, "-m", "studio", "data"]
    done = subprocess.run([*run, "inspect", str(GSM8K)], capture_output=True, text=True, env=subprocess_env())
    assert done.returncode != 0 and done.stderr.strip().splitlines()[-1] == (
        "error: gsm8k_hub: it has subsets main, socratic: name the one to read.")
    out = tmp_path / "prompts.jsonl"
    done = subprocess.run([*run, "convert", str(GSM8K), "--subset", "main", "--split", "test", "--to", "prompts",
                           "--out", str(out)], capture_output=True, text=True, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    test = questions(GSM8K / "main" / "test-00000-of-00001.parquet")
    assert [w["prompt"][0]["content"] for w in written] == test
    answers = pq.read_table(GSM8K / "main" / "test-00000-of-00001.parquet").column("answer").to_pylist()
    assert [w["reference"] for w in written] == answers  # the worked answer, its '#### 108' line what rewards check


def test_a_split_or_subset_named_for_one_file_is_refused_not_passed_over(tmp_path):
    from studio.data.validate import inspect_file

    ws = Workspace.open(tmp_path / "ws")
    data = ROOT / "tests" / "assets" / "data" / "gsm8k.jsonl"
    with pytest.raises(DataError, match="gsm8k.jsonl is one file, with no splits: the split 'train.:2.' is chosen"):
        preflight(config(ws, f"data.train={data}", "data.split=train[:2]"))
    with pytest.raises(DataError, match="gsm8k.jsonl is one file, with no subsets: the subset 'main' is chosen"):
        preflight(config(ws, f"data.train={data}", "data.subset=main"))
    with pytest.raises(DataError, match="gsm8k.jsonl is one file, with no splits"):
        inspect_file(data, model=None, split="test")
    save_dataset(ws, "qa", [json.loads(line) for line in data.read_text().splitlines()], "sft")
    with pytest.raises(DataError, match=r"The saved dataset qa \(v1, train split\) is one file, with no splits"):
        preflight(config(ws, "data.train=qa", "data.split=test"))


def test_the_data_tabs_hub_box_reads_a_local_folder_as_a_folder(tmp_path):
    """The datasets library reads a local path given as a hub id; the studio reads it as its own folder reader does,
    so the same folders are refused."""
    from studio.data.load import read_source

    assert len(read_source(str(GSM8K), "test", "main").rows) == 3
    one = ROOT / "tests" / "assets" / "data" / "gsm8k.jsonl"
    with pytest.raises(DataError, match="gsm8k.jsonl is one file, with no splits"):
        read_source(str(one), "test")  # not every row in silence
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"prompt": "secret", "completion": "x"}\n')
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: default\n  data_files: '{secret}'\n---\n")
    with pytest.raises(DataError, match="upload: its README.md names data files outside the folder"):
        read_source(str(folder))


def test_inspect_reads_the_split_of_a_saved_version_folder(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    version = save_dataset(ws, "qa", [{"prompt": f"q{i}", "completion": "a"} for i in range(10)], "sft",
                           eval_fraction=0.2)
    done = subprocess.run([PYTHON, "-m", "studio", "data", "inspect", str(version), "--split", "eval", "--json",
                           "--model", ""], capture_output=True, text=True, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["file"] == "eval.jsonl" and report["rows"] == 2


def card(folder, header):
    folder.mkdir(exist_ok=True)
    (folder / "README.md").write_text(header)
    return folder


@pytest.mark.parametrize("header", [
    "\n---\nconfigs:\n- config_name: default\n  data_files: ../secret.jsonl\n---\n",  # the header after a blank line
    "---\nconfigs:\n- config_name: default\n  data_files: 'file:/tmp/secret.jsonl'\n---\n",
    "---\nconfigs:\n- config_name: default\n  data_files: 'simplecache::/tmp/secret.jsonl'\n---\n",
    "---\nconfigs:\n- config_name: default\n  data_files: {train: 'C:\\\\data\\\\train.jsonl'}\n---\n",
    "---\nconfigs:\n- config_name: default\n  data_dir: ..\n---\n",
])
def test_every_way_a_readme_names_files_elsewhere_is_refused_by_its_pattern(tmp_path, header):
    folder = card(tmp_path / "card", header)
    (folder / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    with pytest.raises(DataError, match="card: its README.md names data files outside the folder"):
        read_rows(folder)


@pytest.mark.parametrize("header", [
    "---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "configs:\n- config_name: default\n  data_files: *b\n---\n",  # references multiplying (a billion, grown)
    "---\nconfigs:\n- config_name: default\n  data_files: &r [train.jsonl, *r]\n---\n",  # a list inside itself
    "---\nconfigs: " + "[" * 3000 + "]" * 3000 + "\n---\n",  # nested past Python's recursion limit
])
def test_a_readme_header_that_would_blow_up_is_one_sentence(tmp_path, header):
    folder = card(tmp_path / "card", header)
    (folder / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    with pytest.raises(DataError, match="card: the YAML header of its README.md cannot be read"):
        read_rows(folder)


def test_a_long_readme_without_a_header_end_is_read_past(tmp_path):
    folder = card(tmp_path / "card", "---" + "\n" * 80000 + "x")
    (folder / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    assert read_rows(folder).rows == [{"prompt": "a", "completion": "b"}]


def test_folder_files_that_unpack_past_the_limit_are_refused(tmp_path, monkeypatch):
    import gzip

    from studio.data import folders

    folder = tmp_path / "packed"
    folder.mkdir()
    with gzip.open(folder / "train.jsonl.gz", "wt") as f:
        f.write('{"prompt": "a", "completion": "b"}\n' * 60000)  # 2 MB of rows in a few kB
    assert (folder / "train.jsonl.gz").stat().st_size < 100_000
    monkeypatch.setattr(folders, "MAX_BYTES", 1_000_000)
    with pytest.raises(DataError, match="packed: its files for this split unpack to over the"):
        read_rows(folder)


@pytest.mark.parametrize("split", ["train[", "+", "train+" * 8 + "train", " "])
def test_a_split_the_studio_cannot_read_is_one_sentence(tmp_path, split):
    from studio.data.folders import check_folder

    for folder in (GSM8K, tmp_path / "saved"):
        if not folder.exists():
            datasets.Dataset.from_list([{"text": "a"}]).save_to_disk(str(folder))
        with pytest.raises(DataError, match="is not a split the studio reads"):
            check_folder(folder, split, "main" if folder == GSM8K else None)


def test_saved_folders_with_damaged_listings_or_empty_slices_are_one_sentence(tmp_path):
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a"}] * 2)}).save_to_disk(str(saved))
    with pytest.raises(DataError, match=r"saved: the split 'train\[:0\]' has no rows."):
        read_rows(saved, "train[:0]")
    state = saved / "train" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "_data_files": 5}))
    with pytest.raises(DataError, match="saved: train/state.json does not list its data files."):
        read_rows(saved)
    (saved / "dataset_dict.json").write_text('{"splits": 5}')
    with pytest.raises(DataError, match="saved: dataset_dict.json does not list its splits."):
        read_rows(saved)


def test_the_web_page_streams_only_the_first_rows_of_a_hub_split(tmp_path):
    """The Data tab's hub box read a whole split into the server (terabytes for some); it streams the first rows,
    says when there was more, and refuses a split it cannot stream in one sentence. A local dataset folder stands in
    for the hub here (no network): the datasets library streams both the same way."""
    import json

    from studio.data.hub import read_hub

    folder = tmp_path / "org-data"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}) + "\n"
                                                for i in range(30)))
    cut = read_hub(str(folder), "train", first=(10, 10**6))
    assert [r["prompt"] for r in cut.rows] == [f"q{i}" for i in range(10)]
    assert cut.notes == [f"the first 10 rows of {folder} (train) were read: the web page reads no more of a hub "
                         "dataset (a dataset saved from here holds these rows only); a run reads the whole split"]
    assert cut.source == f"{folder} (its first 10 rows)"
    assert len(read_hub(str(folder), "train", first=(30, 10**6)).rows) == 30  # all of it: nothing to say
    assert read_hub(str(folder), "train", first=(30, 10**6)).notes == []
    asked = read_hub(str(folder), "train[:5]", first=(10, 10**6))
    assert len(asked.rows) == 5 and asked.notes == []
    small = read_hub(str(folder), "train", first=(100, 200))  # the text's bound
    assert 3 <= len(small.rows) < 30 and small.notes[0].startswith(f"the first {len(small.rows)} rows")
    with pytest.raises(DataError, match="the web page reads a split by its name or its first rows .* not 'train\\+test'"):
        read_hub(str(folder), "train+test", first=(10, 10**6))
