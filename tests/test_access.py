"""Logins and roles, what the web app may read, and the upload allowance: the rules in studio.access."""

from __future__ import annotations

import json

import pytest

from studio import access
from studio.access import ADMIN, ANNOTATOR, Logins, UploadAllowance, allowed
from studio.config import RunConfig
from studio.errors import StudioError
from studio.workspace import Workspace


def test_logins_come_from_flags_files_and_the_environment(tmp_path, monkeypatch):
    admins = tmp_path / "admins.txt"
    admins.write_text("# the owners\nowner:s3cret:with:colons\n\n", encoding="utf-8")
    monkeypatch.setenv(access.ENV_ANNOTATORS, "ann:pw1  bob:pw2")
    logins = Logins.gather(["root:pw"], ["cy:pw3"], admin_file=str(admins))
    assert logins.roles == {"root": ADMIN, "cy": ANNOTATOR, "owner": ADMIN, "ann": ANNOTATOR, "bob": ANNOTATOR}
    monkeypatch.setattr(access, "FAILURE_DELAY", 0)
    assert logins.check("owner", "s3cret:with:colons") and logins.check("bob", "pw2")
    assert not logins.check("bob", "pw1") and not logins.check("nobody", "pw1")
    assert logins.role_of("ann") == ANNOTATOR and logins.role_of("stranger") is None
    assert Logins().role_of(None) == ADMIN  # no logins: the owner's own machine


@pytest.mark.parametrize("kwargs, sentence", [
    ({"admins": ["justaname"]}, "--auth needs USER:PASS"),
    ({"annotators": ["ann:pw"]}, "need at least one admin login"),
    ({"admins": ["x:1"], "annotators": ["x:2"]}, "given both as admin and as annotator"),
    ({"admin_file": "/nonexistent/logins.txt"}, "does not exist"),
])
def test_bad_logins_are_one_sentence_without_the_password(kwargs, sentence, monkeypatch):
    monkeypatch.delenv(access.ENV_ADMINS, raising=False)
    monkeypatch.delenv(access.ENV_ANNOTATORS, raising=False)
    with pytest.raises(StudioError, match=sentence) as info:
        Logins.gather(**kwargs)
    assert "pw" not in str(info.value).replace("password", "")


def test_repeated_failures_lock_a_name_out_for_a_while(monkeypatch):
    monkeypatch.setattr(access, "FAILURE_DELAY", 0)
    logins = Logins.gather(["owner:right"], use_env=False)
    for n in range(access.FREE_TRIES):
        assert not logins.check("owner", f"guess{n}", now=100.0 + n)
    assert not logins.check("owner", "right", now=110.0)  # locked: even the right password waits
    assert logins.check("owner", "right", now=110.0 + access.MAX_LOCKOUT_SECONDS)
    assert logins.check("owner", "right", now=2000.0)  # a success clears the count


def test_failures_from_one_address_do_not_lock_the_name_out_from_another(monkeypatch):
    monkeypatch.setattr(access, "FAILURE_DELAY", 0)
    logins = Logins.gather(["owner:right"], use_env=False)
    for n in range(access.FREE_TRIES + 20):  # a stranger keeps guessing, well past the lockout
        assert not logins.check("owner", f"guess{n}", now=100.0 + n, source="203.0.113.9")
    assert logins.check("owner", "right", now=130.0, source="127.0.0.1")  # the owner still gets in
    assert not logins.check("owner", "right", now=130.0, source="203.0.113.9")  # the stranger's address waits
    # tries while locked out do not lengthen the lockout: it ends as set by the last counted failure
    assert logins.check("owner", "right", now=104.0 + Logins.lockout(access.FREE_TRIES) + 1,
                        source="203.0.113.9")


def test_roles_allow_admins_everything_and_annotators_only_marked_handlers():
    assert allowed(ADMIN, frozenset()) and allowed(ANNOTATOR, {ANNOTATOR})
    assert not allowed(ANNOTATOR, frozenset()) and not allowed(None, {ANNOTATOR})


def test_the_web_app_reads_only_inside_the_workspace_and_the_shipped_files(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    outside = tmp_path / "secret.jsonl"
    outside.write_text("{}\n")
    (ws.root / "uploads" / "h").mkdir(parents=True)
    mine = ws.root / "uploads" / "h" / "mine.jsonl"
    mine.write_text("{}\n")
    link = ws.datasets / "link.jsonl"
    link.symlink_to(outside)
    for ok in ("assets/data/support_sft.jsonl", str(mine), "org/dataset", "votes", None, ""):
        assert access.readable_data(ws, ok) == ok
    for bad in (str(outside), str(link), f"{ws.datasets}/../../secret.jsonl", "/etc/passwd", "a/b/c", "x.csv"):
        with pytest.raises(StudioError, match="not something the studio may read"):
            access.readable_data(ws, bad)
    for ok in ("tiny", "meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-0.5B", str(ws.exports / "m")):
        assert access.readable_model(ws, ok) == ok
    for bad in ("/etc", str(tmp_path), "./studio", "~"):
        with pytest.raises(StudioError, match="not one the studio may load"):
            access.readable_model(ws, bad)
    with pytest.raises(StudioError, match="No run"):
        access.run_id_only(ws, str(tmp_path))


def test_a_run_config_from_the_browser_names_only_readable_things(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    good = RunConfig.from_dict({"data": {"train": "assets/data/support_sft.jsonl"}}).validate()
    assert access.readable_config(ws, good) is good
    typed = RunConfig.from_dict({"method": {"stage": "ppo"}, "rl": {
        "rewards": ["code"], "reward_code": "def reward(prompt, completion, **row):\n    return 1.0  # see x.py"}})
    assert access.readable_config(ws, typed.validate()) is not None  # code typed in the box is fine
    for raw, sentence in (({"data": {"eval": "/etc/hosts"}}, "The eval data"),
                          ({"model": {"name": "/etc"}}, "Model '/etc'"),
                          ({"model": {"parent_run": "../x"}}, "No run"),
                          ({"train": {"accelerate_config": "/tmp/ds.yaml"}}, "from the command line only"),
                          ({"method": {"stage": "ppo"}, "rl": {"rewards": ["code"], "reward_code": "/etc/x.py"}},
                           "A reward code file can be named from the command line only")):
        with pytest.raises(StudioError, match=sentence):
            access.readable_config(ws, RunConfig.from_dict(raw).validate())


def test_uploads_have_a_daily_allowance_per_login():
    allowance = UploadAllowance(quota=100, window=10.0)
    assert allowance.take("ann", 60, now=0.0) and not allowance.take("ann", 60, now=1.0)
    assert allowance.take("bob", 60, now=1.0)  # per login
    assert allowance.take("ann", 60, now=11.0)  # the first upload has left the window
    assert "MB a day" in allowance.refusal()


def test_reward_code_runs_only_where_the_studio_allows_it(tmp_path):
    """Python written in a run config runs on the server: a studio with logins takes it only when launched
    with --allow-reward-code; other rewards are not affected."""
    ws = Workspace.open(tmp_path / "ws")
    code = RunConfig.from_dict({"method": {"stage": "rlhf"}, "rl": {
        "rewards": ["length", "code"], "reward_code": "def reward(prompt, completion, **row):\n    return 1.0"}})
    assert access.readable_config(ws, code.validate(), reward_code=True) is not None
    with pytest.raises(StudioError, match="launched with --allow-reward-code"):
        access.readable_config(ws, code.validate(), reward_code=False)
    rules = RunConfig.from_dict({"method": {"stage": "rlhf"}, "rl": {"rewards": ["length"]}}).validate()
    assert access.readable_config(ws, rules, reward_code=False) is rules


@pytest.mark.parametrize("name", ["json", "text", "CSV", " parquet ", "imagefolder", "arrow"])
def test_the_datasets_librarys_own_loader_names_are_not_hub_datasets(name, tmp_path, monkeypatch):
    """`load_dataset("json")` with no files reads every JSON file under the current folder: neither the web
    app nor the readers take such a name as a hub dataset."""
    from studio.data.hub import check_hub_dataset, read_hub
    from studio.data.readers import DataError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "secret.json").write_text('{"text": "a password"}\n')
    (tmp_path / "deep" / "secret.txt").write_text("a password\n")
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(StudioError, match="datasets library's own file loaders"):
        access.readable_data(ws, name)
    for read in (read_hub, check_hub_dataset):
        with pytest.raises(DataError, match="datasets library's own file loaders"):
            read(name)
    for hub_id in ("HuggingFaceH4/ultrafeedback_binarized", "someone/imagefolder", "someone/json"):
        assert access.readable_data(ws, hub_id) == hub_id
    from studio.data.store import save_dataset

    save_dataset(ws, name.strip().lower(), [{"text": "a saved row"}], "text")  # a dataset saved under that name
    assert access.readable_data(ws, name.strip().lower()) == name.strip().lower()


def test_a_saved_dataset_folder_naming_files_elsewhere_is_refused(tmp_path):
    """A folder saved with save_to_disk lists its Arrow files in state.json; one that lists a file outside
    itself (as a crafted upload could) is refused before datasets opens it, and a real one still reads."""
    import datasets

    from studio.data.readers import DataError, read_rows

    outside = tmp_path / "outside"
    datasets.Dataset.from_list([{"text": "private"}]).save_to_disk(str(outside))
    real = tmp_path / "real"
    datasets.Dataset.from_list([{"text": "hello"}, {"text": "world"}]).save_to_disk(str(real))
    assert [r["text"] for r in read_rows(real).rows] == ["hello", "world"]
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    for name in ("dataset_info.json", "state.json"):
        (crafted / name).write_text((real / name).read_text())
    state = json.loads((crafted / "state.json").read_text())
    arrow = next(outside.glob("*.arrow"))
    for pointer in (str(arrow), f"../outside/{arrow.name}"):
        state["_data_files"] = [{"filename": pointer}]
        (crafted / "state.json").write_text(json.dumps(state))
        with pytest.raises(DataError, match="names a data file outside the folder"):
            read_rows(crafted)


def test_links_from_the_workspace_to_folders_elsewhere_are_neither_runs_nor_datasets(tmp_path):
    from studio.data.load import saved_dataset
    from studio.data.store import versions

    ws = Workspace.open(tmp_path / "ws")
    outside_run = tmp_path / "elsewhere" / "run"
    outside_run.mkdir(parents=True)
    (outside_run / "config.yaml").write_text("name: secret\n")
    (ws.runs / "20990101-000000-linked").symlink_to(outside_run, target_is_directory=True)
    real = ws.new_run_dir("real")
    (real / "config.yaml").write_text("name: mine\n")
    assert ws.list_runs() == [real]
    with pytest.raises(StudioError, match="No run"):
        ws.run_dir("20990101-000000-linked")
    with pytest.raises(StudioError, match="No run"):
        access.run_id_only(ws, "20990101-000000-linked")
    assert access.run_id_only(ws, real.name) == real

    outside_data = tmp_path / "elsewhere" / "pairs" / "v1"
    outside_data.mkdir(parents=True)
    (outside_data / "train.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    ws.datasets.mkdir(parents=True, exist_ok=True)
    (ws.datasets / "linked").symlink_to(outside_data.parent, target_is_directory=True)
    assert versions(ws, "linked") == [] and saved_dataset("linked", ws) is None
    (ws.datasets / "mine").mkdir()  # a dataset folder of its own whose version is a link to elsewhere
    (ws.datasets / "mine" / "v1").symlink_to(outside_data, target_is_directory=True)
    assert versions(ws, "mine") == [] and saved_dataset("mine", ws) is None
    real = ws.datasets / "mine" / "v2"
    real.mkdir()
    (real / "train.jsonl").symlink_to(outside_data / "train.jsonl")  # a split file linked out
    from studio.data.readers import DataError
    from studio.data.store import dataset_path

    with pytest.raises(DataError, match="no train split"):
        dataset_path(ws, "mine")


def test_a_blank_name_is_no_data_and_no_model(tmp_path):
    from studio.data.load import load_records
    from studio.data.readers import DataError, read_rows
    from studio.models.loading import resolve_model

    for blank in ("", "  "):
        with pytest.raises(DataError, match="No data named"):
            load_records(blank, ("preference",))
        with pytest.raises(DataError, match="No data named"):
            read_rows(blank)
        with pytest.raises(StudioError, match="No model named"):
            resolve_model(blank)


def test_many_addresses_together_get_no_more_than_the_hours_tries(monkeypatch):
    monkeypatch.setattr(access, "FAILURE_DELAY", 0)
    logins = Logins.gather(["owner:right"], use_env=False)
    for n in range(access.NAME_FAILURES_PER_HOUR):  # a guess from each of many addresses
        assert not logins.check("owner", f"guess{n}", now=100.0 + n, source=f"2001:db8::{n:x}")
    assert not logins.check("owner", "right", now=300.0, source="127.0.0.1")  # refused everywhere for now
    assert logins.check("owner", "right", now=100.0 + 3600.0 + access.NAME_FAILURES_PER_HOUR, source="127.0.0.1")


def test_the_web_app_reads_no_data_file_that_unpacks_past_its_limit(tmp_path, monkeypatch):
    """A few kilobytes of gzip can unpack to gigabytes, whose rows take several times that in memory: the
    pages refuse such a file before reading it; the command line still reads it."""
    import gzip

    from studio.data.readers import read_rows

    monkeypatch.setattr(access, "WEB_READ_BYTES", 1 << 20)
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "uploads" / "abc").mkdir(parents=True)
    bomb = ws.root / "uploads" / "abc" / "tiny.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        fh.write(b'{"prompt": "hi", "completion": "ok"}\n' * 60_000)  # 2.2 MB, 7 KB packed
    assert bomb.stat().st_size < 20_000
    with pytest.raises(StudioError, match=r"The upload tiny.jsonl.gz holds over the 1 MiB of data the web page reads"):
        access.read_here(ws, str(bomb), "The upload")
    assert len(read_rows(bomb).rows) == 60_000  # the command line reads it
    small = ws.root / "uploads" / "abc" / "small.jsonl"
    small.write_text('{"prompt": "hi", "completion": "ok"}\n')
    assert access.read_here(ws, str(small), "The upload") == str(small)
    with pytest.raises(StudioError, match="is not something the studio may read for you here"):  # readable_data first
        access.read_here(ws, "/etc/passwd", "The upload")


def test_the_web_bound_covers_saved_datasets_and_folders(tmp_path, monkeypatch):
    from studio.data.store import save_dataset

    monkeypatch.setattr(access, "WEB_READ_BYTES", 50_000)
    ws = Workspace.open(tmp_path / "ws")
    rows = [{"prompt": f"question {n} " + "x" * 100, "completion": "answer"} for n in range(600)]  # about 80 KB
    save_dataset(ws, "big", rows, "sft", eval_fraction=0.5)
    for name in ("big", "big:eval", str(ws.datasets / "big" / "v1")):
        with pytest.raises(StudioError, match="holds over the 0 MiB of data the web page reads"):
            access.read_here(ws, name, "The data")
    save_dataset(ws, "small", rows[:5], "sft")
    assert access.read_here(ws, "small", "The data") == "small"


def test_the_web_bound_reads_parquet_by_its_footer_and_a_run_checks_compressed_data_unpacked(tmp_path, monkeypatch):
    """Parquet compresses its columns: 100 rows of a megabyte each take a few hundred bytes on disk. Its footer says
    what they unpack to. Before a run, data is read in the server's process only when small unpacked."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.config import load_config
    from studio.paths import PRESETS
    from studio.train import runner

    monkeypatch.setattr(access, "WEB_READ_BYTES", 1 << 20)
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "uploads" / "abc").mkdir(parents=True)
    packed = ws.root / "uploads" / "abc" / "big.parquet"
    pq.write_table(pa.table({"text": ["a" * 100_000] * 50}), packed, compression="zstd")
    assert packed.stat().st_size < 10_000
    with pytest.raises(StudioError, match="The upload big.parquet holds over the 1 MiB of data the web page reads"):
        access.read_here(ws, str(packed), "The upload")
    monkeypatch.setattr(runner, "READ_BEFORE_START_BYTES", 100_000)
    wrong = tmp_path / "pairs.jsonl.gz"  # preference pairs, under the bound packed and over it unpacked
    with gzip.open(wrong, "wb") as fh:
        fh.write(b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n' * 5_000)
    assert wrong.stat().st_size < 100_000
    runner.preflight(load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={wrong}", "data.eval="]))  # not read here
    small = tmp_path / "pairs_small.jsonl"
    small.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(StudioError, match="holds preference"):  # small data is read, and refused at once
        runner.preflight(load_config(PRESETS / "tiny-sft-lora.yaml", [f"data.train={small}", "data.eval="]))


def test_code_a_run_would_inherit_or_load_is_refused_where_code_is_off(tmp_path):
    """A run on votes takes its parent's model settings, and a reward-model run is loaded as its own config says:
    a web studio without --allow-reward-code refuses either when it would run a model repository's code."""
    from studio.config import load_config, save_config
    from studio.paths import PRESETS
    from studio.prefs.handoff import train_on_votes
    from studio.prefs.store import PreferenceStore

    ws = Workspace.open(tmp_path / "ws")
    parent = ws.runs / "20261130-000000-sft"
    save_config(load_config(PRESETS / "tiny-sft-lora.yaml", ["model.name=org/custom-model",
                                                             "model.trust_remote_code=true"]), parent / "config.yaml")
    store = PreferenceStore(ws.prefs_db)
    pair = store.add_pair("Where is my parcel?", "On its way.", "No idea.")
    store.vote(pair, "a", voter="ann")
    with pytest.raises(StudioError, match="model.trust_remote_code runs Python from the model's repository"):
        train_on_votes(ws, "dpo", parent.name, check=lambda cfg: access.refuse_code(cfg, False))
    assert [p.name for p in ws.runs.iterdir()] == [parent.name]  # nothing started
    grpo = load_config(PRESETS / "tiny-grpo.yaml", ["rl.rewards=model", f"rl.reward_model={parent.name}"])
    with pytest.raises(StudioError, match="model.trust_remote_code runs Python"):
        access.readable_config(ws, grpo, reward_code=False)
    assert access.readable_config(ws, grpo, reward_code=True) is grpo
