"""`studio count`: the JSON contract, the text report, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import PYTHON, ROOT, subprocess_env

from studio.cli import main


def count(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["count", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_the_contract_keys_and_the_exact_llama_2_figures(capsys):
    code, out, err = count(capsys, "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--rank", "8",
                           "--targets", "q_proj,v_proj", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["trainable"] == 4_194_304
    assert data["base"] == 6_738_415_616
    assert data["total"] == 6_738_415_616 + 4_194_304
    assert round(data["percent"], 2) == 0.06
    assert 12 <= data["memory_gb"] <= 20
    assert data["memory"]["total"] == data["memory_gb"]
    assert data["lora"]["adapted_layers"] == 64


def test_methods_and_options_change_the_numbers(capsys):
    full = json.loads(count(capsys, "--model", "llama-2-7b", "--method", "full", "--json")[1])
    assert full["trainable"] == full["total"] == 6_738_415_616 and full["percent"] == 100
    qlora = json.loads(count(capsys, "--model", "llama-2-7b", "--method", "qlora", "--targets", "all-linear",
                             "--dora", "--json")[1])
    lora = json.loads(count(capsys, "--model", "llama-2-7b", "--method", "lora", "--targets", "all-linear",
                            "--dora", "--json")[1])
    assert qlora["trainable"] == lora["trainable"] > full["trainable"] / 1000
    assert qlora["memory_gb"] < lora["memory_gb"] < full["memory_gb"]
    big = json.loads(count(capsys, "--model", "llama-2-7b", "--batch-size", "8", "--seq-len", "2048", "--json")[1])
    assert big["memory_gb"] > lora["memory_gb"] and big["assumptions"]["seq_len"] == 2048


def test_text_report_names_the_numbers(capsys):
    code, out, _ = count(capsys, "--model", "Qwen/Qwen2.5-0.5B", "--rank", "16", "--targets", "all-linear")
    assert code == 0
    assert "trainable  8,798,208 of 502,830,976" in out
    assert "GiB" in out and "AdamW" in out


@pytest.mark.parametrize("args, message", [
    (["--targets", "q_proj,foo_proj"], "Model Llama-2-7B has no layer named 'foo_proj'; it has q_proj, k_proj,"),
    (["--rank", "0"], "LoRA rank must be between 1 and 1024 (got 0)."),
    (["--alpha", "-2"], "LoRA alpha must be positive (got -2.0)."),
    (["--batch-size", "0"], "The batch size must be a whole number of at least 1 (got 0)."),
])
def test_bad_input_is_one_line_and_exit_1(capsys, args, message):
    code, out, err = count(capsys, "--model", "llama-2-7b", *args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_unknown_model_offline_in_a_real_process(tmp_path):
    out = subprocess.run([PYTHON, "-m", "studio", "count", "--model", "example-org/unknown-7b", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env=subprocess_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "example-org/unknown-7b" in out.stderr and "not in the local cache" in out.stderr


def test_a_model_counted_before_is_counted_without_torch(tmp_path):
    """The shapes of a model seen before come from the disk cache: no torch import, the same answer."""
    import json
    import subprocess

    from helpers import PYTHON, ROOT, subprocess_env

    folder = tmp_path / "small-gpt2"  # a kind not worked out from its config: built with torch the first time
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 2,
                                                    "vocab_size": 100, "n_positions": 128}))
    probe = (f"import json, sys; from studio.cli import main; main(['count', '--model', '{folder}', '--method', "
             "'full', '--json']); print(json.dumps({'torch': 'torch' in sys.modules}))")
    env = subprocess_env(STUDIO_CACHE=str(tmp_path / "cache"))
    outs = []
    for _ in range(2):
        done = subprocess.run([PYTHON, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        *answer, imported = done.stdout.strip().splitlines()
        outs.append((json.loads("\n".join(answer)), json.loads(imported)["torch"]))
    (first, first_torch), (second, second_torch) = outs
    assert first_torch and not second_torch
    assert first["trainable"] == second["trainable"] and first["memory"] == second["memory"]
    for cached in (tmp_path / "cache" / "shapes").glob("*.json"):
        cached.write_text("{not json")  # a damaged cache is read afresh, never an error
    done = subprocess.run([PYTHON, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout.strip().splitlines()[-1])["torch"]


@pytest.mark.parametrize("model", ["tiny", "llama-2-7b", "qwen2.5-0.5b", "mistral-7b", "gemma-2-2b", "phi-3-mini"])
def test_a_llama_family_model_counts_without_torch_the_first_time(tmp_path, model):
    """Llama, Qwen2 and Mistral shapes are worked out from config.json (shapes_formula.py): no torch import
    even on a first count, and the same answer as the skeleton built with torch."""
    import json
    import subprocess

    from helpers import PYTHON, ROOT, subprocess_env

    from studio.models.counting import count_trainable_params

    probe = (f"import json, sys; from studio.cli import main; main(['count', '--model', '{model}', '--method', 'lora', "
             "'--targets', 'all-linear', '--json']); print(json.dumps({'torch': 'torch' in sys.modules}))")
    done = subprocess.run([PYTHON, "-c", probe], cwd=ROOT, env=subprocess_env(STUDIO_CACHE=str(tmp_path / "c")),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *answer, imported = done.stdout.strip().splitlines()
    assert not json.loads(imported)["torch"]
    counted = json.loads("\n".join(answer))
    want = count_trainable_params(model, "lora", 8, ["all-linear"])
    assert (counted["trainable"], counted["total"]) == (want.trainable, want.total)
