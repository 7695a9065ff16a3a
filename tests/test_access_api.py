"""The server keeps every user inside the workspace and every annotator inside voting, tried through
the app's own API with gradio_client, as a hostile logged-in user would."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client.exceptions import AuthenticationError
from helpers import ROOT, start_app, wait_for

from studio.config import load_config
from studio.prefs.store import PreferenceStore
from studio.train import runner
from studio.ui.gate import ANNOTATORS_REFUSED
from studio.ui.roles import REFUSED
from studio.workspace import Workspace

pytestmark = pytest.mark.slow
VOTING = {"/vote_left", "/vote_right", "/vote_tie", "/vote_both_bad", "/vote_skip", "/ui_prefs_tab_open",
          "/ui_prefs_first_pair", "/prefs_next_pair", "/ui_page_view"}
"""The endpoints an annotator's page uses: show a pair, the four vote buttons, and the page's role view."""


SERVER_PID: dict[str, int] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = tmp_path_factory.mktemp("access-ws")
    PreferenceStore(Workspace.open(ws).prefs_db).add_pair("Where is my parcel?", "On its way.", "No idea.")
    proc, url = start_app(ws, "--auth", "adm:admin-pw", "--auth", "adm2:admin2-pw", "--annotator", "ann:annot-pw",
                          "--auth", "target:target-pw", STUDIO_UPLOAD_QUOTA_MB="1")
    SERVER_PID["pid"] = proc.pid
    url += "/"
    yield url, ws
    for run_dir in (ws / "runs").iterdir():  # runs an admin's calls started train on after a failed test
        stop_and_wait(run_dir)
    proc.terminate()
    proc.wait(timeout=20)


def client(url, user, password):
    from gradio_client import Client

    return Client(url, auth=(user, password), verbose=False)


def default_args(endpoint, text):
    """An argument per parameter: `text` for every free-text string, the first choice of a closed list,
    the default or an empty value otherwise."""
    args = []
    for p in endpoint["parameters"]:
        kind = p.get("python_type", {}).get("type", "")
        choices = p.get("type", {}).get("enum")
        if kind == "str":
            args.append(text)
        elif choices:
            args.append(choices[0])
        elif p["parameter_has_default"]:
            args.append(p["parameter_default"])
        elif p["component"] in ("File", "Plot", "Dataframe", "State", "Chatbot", "Code", "HTML"):
            args.append(None)
        else:
            args.append(p.get("example_input"))
    return args


def call(c, name, args, limit=120):
    job = c.submit(*args, api_name=name)
    try:
        return "ok", job.result(timeout=limit)
    except TimeoutError:
        raise AssertionError(f"{name} gave no answer within {limit} s") from None
    except Exception as err:  # refusals and bad input come back as errors
        return "error", str(err) or repr(err)


def call_all(connect, calls, at_once=8):
    """Each (name, args) called, several at a time as a hostile client would: [(name, args, outcome, said)].

    Each worker logs in on its own (`connect()`) and calls one endpoint after another: calls submitted at
    once on one gradio_client session can lose their answer when the server closes that session's stream."""
    local = threading.local()

    def one(job):
        if not hasattr(local, "client"):
            local.client = connect()
        return call(local.client, *job)

    with ThreadPoolExecutor(at_once) as pool:
        answers = list(pool.map(one, calls))
    return [(name, args, *answer) for (name, args), answer in zip(calls, answers)]


def test_an_annotator_is_refused_everything_but_voting(server):
    url, ws = server
    c = client(url, "ann", "annot-pw")
    endpoints = c.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert VOTING <= set(endpoints) and len(endpoints) > 50
    calls = [(name, default_args(endpoint, "tiny")) for name, endpoint in endpoints.items() if name not in VOTING]
    for name, _, outcome, said in call_all(lambda: client(url, "ann", "annot-pw"), calls):
        assert outcome == "error" and REFUSED in said, f"{name} was not refused: {said[:200]}"
    assert not list((ws / "runs").iterdir())  # nothing was started
    # voting itself works, and is recorded under the annotator's name
    prompt, left, right, _ = c.predict(api_name="/prefs_next_pair")  # the pair on screen is kept in the session
    assert prompt == "Where is my parcel?" and {left, right} == {"On its way.", "No idea."}
    c.predict("", "left is clearer", api_name="/vote_left")  # "A is better": the answer shown on the left
    votes = PreferenceStore(ws / "prefs.sqlite").votes_of("ann")
    assert len(votes) == 1 and votes[0]["choice"] == ("a" if left == "On its way." else "b")
    assert votes[0]["reason"] == "left is clearer"


def test_an_annotator_cannot_log_in_with_a_wrong_password_and_is_slowed_down(server):
    url, _ = server
    started = time.monotonic()
    for _ in range(2):
        with pytest.raises((AuthenticationError, ValueError), match="Could not login"):
            client(url, "ann", "guess")
    assert time.monotonic() - started >= 0.9  # every failure is answered slowly


def test_no_endpoint_echoes_a_file_outside_the_workspace(server, tmp_path):
    url, ws = server
    marker = "TOPSECRET-7f3a1c"
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret_file = secret_dir / "notes.jsonl"
    secret_file.write_text(json.dumps({"prompt": marker, "completion": marker}) + "\n")
    (secret_dir / "config.json").write_text(json.dumps({"model_type": "llama", "note": marker}))
    (secret_dir / "config.yaml").write_text(f"name: {marker}\n")
    c = client(url, "adm", "admin-pw")
    endpoints = c.view_api(return_format="dict", print_info=False)["named_endpoints"]
    calls = []
    for name, endpoint in endpoints.items():
        for path in (str(secret_file), str(secret_dir), f"{secret_dir}/../secret/notes.jsonl"):
            args = default_args(endpoint, path)
            if (name, args) not in calls:  # without free-text inputs the arguments are the same for every path
                calls.append((name, args))
    for name, args, outcome, said in call_all(lambda: client(url, "adm", "admin-pw"), calls):
        assert not (outcome == "error" and "CancelledError" in said), f"{name} gave no answer"
        assert marker not in json.dumps(said, default=str), f"{name} echoed the secret: {args}"
    # an admin may start a run with the form's own values (named after the path, a label), never one reading it
    for run_dir in (ws / "runs").iterdir():
        cfg = load_config(run_dir / "config.yaml")
        named = [cfg.data.train, cfg.data.eval, cfg.model.name, cfg.model.parent_run]
        assert not any(str(secret_dir) in str(n) for n in named if n), (run_dir.name, named)
        stop_and_wait(run_dir)


def stop_and_wait(run_dir):
    if runner.observe(run_dir).active:
        runner.stop_run(run_dir)
    wait_for(lambda: not runner.observe(run_dir).active, limit=60)


def test_uploads_stay_inside_each_logins_daily_allowance(server, tmp_path):
    from gradio_client import handle_file

    url, ws = server
    rows = "".join(json.dumps({"prompt": f"question {n} " + "x" * 200, "completion": "answer"}) + "\n"
                   for n in range(2500))  # about 0.55 MB
    upload = tmp_path / "mine.jsonl"
    upload.write_text(rows)
    c = client(url, "adm", "admin-pw")
    status, *_ = c.predict(handle_file(str(upload)), "tiny", 512, api_name="/data_upload")
    assert "2500 rows" in status
    assert list((ws / "uploads").rglob("mine.jsonl")), "uploads are kept inside the workspace"
    outcome, said = call(c, "/data_upload", [handle_file(str(upload)), "tiny", 512])
    assert outcome == "error" and "413" in said  # the second one would pass 1 MB
    import httpx

    refused = httpx.post(url + "gradio_api/upload", cookies=c.cookies,
                         files={"files": ("mine.jsonl", upload.read_bytes())})
    assert refused.status_code == 413 and "1 MB a day" in refused.json()["detail"]
    other = client(url, "adm2", "admin2-pw")  # the allowance is per login: another login may still upload
    status, *_ = other.predict(handle_file(str(upload)), "tiny", 512, api_name="/data_upload")
    assert "2500 rows" in status
    annotator = client(url, "ann", "annot-pw")  # an annotator uploads nothing at all, and reads no file by path
    outcome, said = call(annotator, "/data_upload", [handle_file(str(upload)), "tiny", 512])
    assert outcome == "error" and "403" in said
    refused = httpx.post(url + "gradio_api/upload", cookies=annotator.cookies,
                         files={"files": ("mine.jsonl", upload.read_bytes())})
    assert refused.status_code == 403 and refused.json()["detail"] == ANNOTATORS_REFUSED
    kept = next((ws / "uploads").rglob("mine.jsonl"))
    for route in (f"gradio_api/file={kept}", f"file={kept}", f"gradio_api/file/{kept}"):
        seen = httpx.get(url + route, cookies=annotator.cookies)
        assert seen.status_code == 403 and "question 0" not in seen.text, route
    for route in ("gradio_api/monitoring", "monitoring", "gradio_api/monitoring/any-key"):  # it prints its link
        assert httpx.get(url + route, cookies=annotator.cookies).status_code == 403, route


def test_failed_logins_from_one_address_do_not_lock_the_owner_out_from_another(server):
    import httpx

    url, _ = server
    stranger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
    for n in range(8):  # past the free tries: this address is locked out for the name
        assert stranger.post(url + "login", data={"username": "adm", "password": f"guess{n}"}).status_code == 400
    assert stranger.post(url + "login", data={"username": "adm", "password": "admin-pw"}).status_code == 400
    owner = httpx.post(url + "login", data={"username": "adm", "password": "admin-pw"}, timeout=30)
    assert owner.status_code == 200 and owner.json() == {"success": True}
    # a header naming another address does not make another address, even from this machine (a share link's
    # tunnel and any local process connect from it): the guesses count against the address they came from
    local = httpx.Client(timeout=30)
    for n in range(8):
        fake = f"10.0.0.{n + 1}"
        guess = local.post(url + "login", data={"username": "target", "password": f"guess{n}"},
                           headers={"X-Forwarded-For": fake, "X-Real-IP": fake})
        assert guess.status_code == 400
    assert local.post(url + "login", data={"username": "target", "password": "target-pw"}).status_code == 400
    elsewhere = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=30)
    assert elsewhere.post(url + "login", data={"username": "target", "password": "target-pw"}).status_code == 200


def test_a_large_request_body_is_refused_before_it_is_read_whole(server):
    """Gradio reads a request's body whole before it checks the login: the studio bounds it first (64 KiB
    without a login, 32 MiB with one; uploads go through the file routes)."""
    import httpx

    url, _ = server
    big = b'{"data": [' + b"0," * 200_000 + b'0], "fn_index": 0, "session_hash": "x"}'
    refused = httpx.post(url + "gradio_api/queue/join", content=big, timeout=30)
    assert refused.status_code == 413 and "larger than the studio reads" in refused.json()["detail"]

    def chunks():  # no length said beforehand
        yield b'{"data": ['
        for _ in range(100):
            yield b"0," * 1_000
        yield b'0]}'

    assert httpx.post(url + "gradio_api/queue/join", content=chunks(), timeout=30).status_code == 413
    small = httpx.post(url + "gradio_api/queue/join", content=b'{"data": [], "fn_index": 0, "session_hash": "x"}',
                       timeout=30)
    assert small.status_code in (401, 403)  # read, and refused for want of a login, as before
    c = client(url, "adm", "admin-pw")
    logged_in = httpx.post(url + "gradio_api/queue/join", content=big, cookies=c.cookies, timeout=30)
    assert logged_in.status_code != 413  # a login reads up to 32 MiB


def test_an_admin_login_neither_runs_reward_code_nor_names_a_loader_as_data(server):
    """On a studio with logins (launched without --allow-reward-code), Python in a run config is refused (reward
    code, a model repository's own code), and so are the datasets library's loader names, which would read files
    from the server's own folder, and settings written as YAML references."""
    url, ws = server
    c = client(url, "adm", "admin-pw")
    code = "rl.reward_code='def reward(prompt, completion, **row): return 1.0'"
    bomb = "[&a0 [x,x,x,x,x,x,x,x,x,x]" + "".join(f",&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]"
                                                    for i in range(1, 9)) + "]"  # 10**9 items in 400 characters
    for changes, sentence in ((["rl.rewards=code,length", code], "launched with --allow-reward-code"),
                              (["model.trust_remote_code=true"], "runs Python from the model's repository"),
                              ([f"train.max_steps={bomb}"], "YAML references (*name) are not read"),
                              (["data.train=json"], "own file loaders"), (["data.eval=text"], "own file loaders")):
        outcome, said = call(c, "/train_start_preset", ["tiny-grpo.yaml", changes])
        assert outcome == "error" and sentence in said, (changes, said)
    outcome, said = call(c, "/data_from_hub", ["json", "train", "", "tiny", 512])
    assert "own file loaders" in json.dumps(said), said
    assert not [p for p in (ws / "runs").iterdir() if p.name.endswith("grpo")]  # nothing was started
    from studio.config import RunConfig, save_config  # a run from the command line that scores with code

    run_dir = ws / "runs" / "20261129-101010-rlhf-code"
    save_config(RunConfig.from_dict({"method": {"stage": "rlhf"}, "rl": {
        "rewards": ["code"], "reward_code": "def reward(prompt, completion, **row):\n    return 1.0"}}).validate(),
        run_dir / "config.yaml")
    (run_dir / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    outcome, said = call(c, "/train_resume", [run_dir.name])
    assert "launched with --allow-reward-code" in json.dumps(said), said
    assert not (run_dir / "status.json").exists()  # nothing was started


def test_input_no_form_sends_gets_a_sentence_from_every_endpoint(server):
    """Wrong types in every argument (a nested list where text, a number or a file goes): each endpoint answers
    or refuses with a sentence, never with an error that says nothing."""
    url, ws = server
    c = client(url, "adm", "admin-pw")
    endpoints = c.view_api(return_format="dict", print_info=False)["named_endpoints"]
    calls = [(name, [[["x"]]] * len(endpoint["parameters"])) for name, endpoint in endpoints.items()]
    silent = []
    for name, _, outcome, said in call_all(lambda: client(url, "adm", "admin-pw"), calls):
        if outcome == "error" and ("verbose error reporting" in said or not said.strip() or said == "None"):
            silent.append(name)
    assert not silent, f"these answered with an error that says nothing: {silent}"
    for run_dir in (ws / "runs").iterdir():
        stop_and_wait(run_dir)


def test_a_client_names_runs_without_a_page_that_listed_them(server):
    """Run pickers are filled when a page opens; an API client's session never opens one, and still names runs."""
    from studio.config import dump_config

    url, ws = server
    made = []
    for rank in (8, 16):
        run_dir = Workspace.open(ws).new_run_dir(f"picked-{rank}")
        cfg = load_config(ROOT / "presets" / "tiny-sft-lora.yaml", [f"lora.r={rank}"])
        (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
        made.append(run_dir.name)
    c = client(url, "adm", "admin-pw")
    table, said = c.predict(*made, api_name="/run_config_diff")
    assert said == "1 settings differ." and "lora.r" in json.dumps(table), (said, table)
    outcome, said = call(c, "/run_config_diff", [made[0], "../../etc"])
    assert outcome == "ok" and "No run '../../etc'" in json.dumps(said)  # any value reaches the check, no further


def test_no_spelling_of_the_login_cookie_lets_an_annotator_reach_a_file(server, tmp_path):
    """The gate reads the session cookie as Gradio does, and refuses what it cannot read as an admin's."""
    import httpx

    url, ws = server
    kept = next((ws / "uploads").rglob("*.jsonl"), None) or (ws / "uploads" / "x.jsonl")
    annotator = client(url, "ann", "annot-pw")
    name, token = next((k, v) for k, v in annotator.cookies.items() if k.startswith("access-token-"))
    for cookie in (f'{name}="{token}"', f"{name}= {token}", f"{name}={token}; other=1", f"x=1; {name}={token}"):
        seen = httpx.get(f"{url}gradio_api/file={kept}", headers={"cookie": cookie})
        assert seen.status_code in (401, 403), (cookie, seen.status_code)
        sent = httpx.post(url + "gradio_api/upload", headers={"cookie": cookie}, files={"files": ("a.jsonl", b"{}")})
        assert sent.status_code in (401, 403), (cookie, sent.status_code)
    twice = httpx.get(f"{url}gradio_api/file={kept}", headers=[("cookie", f"{name}={token}"), ("cookie", "x=1")])
    assert twice.status_code in (401, 403)


def test_a_file_the_server_cannot_write_is_named_as_the_machines_fault(server):
    """A write that fails (a full or read-only disk) is said as such, with the file, not as input the form would
    not send; a sentence from deeper in the studio reaches the caller as written."""
    from gradio_client.exceptions import AppError

    url, ws = server
    run_dir = Workspace.open(ws).new_run_dir("unwritable")
    (run_dir / "config.yaml").write_text("model: {name: tiny}\n", encoding="utf-8")
    (run_dir / f"details.tmp{SERVER_PID['pid']}").mkdir()  # where the server writes the new name first
    c = client(url, "adm", "admin-pw")
    with pytest.raises(AppError, match="The server could not read or write a file .*details.tmp.*Check that the "
                                       "workspace is writable"):
        c.predict(run_dir.name, "new name", "", api_name="/run_rename")


def test_a_name_two_runs_share_is_saved_with_a_warning(server):
    """Giving a run the name another has is allowed (names are labels) but said: the name no longer finds either."""
    url, ws = server
    made = []
    for tag in ("twin-a", "twin-b"):
        run_dir = Workspace.open(ws).new_run_dir(tag)
        (run_dir / "config.yaml").write_text("model: {name: tiny}\n", encoding="utf-8")
        made.append(run_dir.name)
    c = client(url, "adm", "admin-pw")
    said, _ = c.predict(made[0], "same name", "", api_name="/run_rename")
    assert said == f"Saved the name and notes of {made[0]}."
    said, _ = c.predict(made[1], "same name", "", api_name="/run_rename")
    assert said == (f"Saved the name and notes of {made[1]}. ⚠️ Run {made[0]} is called that too: the name finds "
                    "neither now; pick them by id, or give one another name.")


def test_network_errors_are_not_called_disk_problems():
    """The server's sentence for an OSError: the network's (requests', the hub client's) are named as such."""
    import requests
    from huggingface_hub.errors import LocalEntryNotFoundError

    from studio.ui.roles import network_error

    assert network_error(requests.ConnectionError("no route")) and network_error(TimeoutError())
    assert network_error(LocalEntryNotFoundError("not cached")) and network_error(ConnectionRefusedError())
    assert not network_error(OSError(28, "No space left on device")) and not network_error(PermissionError())
