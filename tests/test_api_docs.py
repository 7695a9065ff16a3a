"""docs/api.md: every endpoint has a name given on purpose and is described, and the page's example
runs as written against a live studio with logins."""

from __future__ import annotations

import re
import tempfile

import pytest
from helpers import ROOT, start_app

from studio.ui.app import build_app
from studio.ui.context import AppContext
from studio.workspace import Workspace

DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def endpoint_names() -> set[str]:
    app = build_app(AppContext(workspace=Workspace.open(tempfile.mkdtemp())))
    return set(app.get_api_info()["named_endpoints"])


def test_every_endpoint_is_named_on_purpose_and_documented():
    names = endpoint_names()
    assert len(names) > 60
    for name in names:
        assert re.fullmatch(r"/[a-z][a-z0-9_]*", name), f"{name} looks like a name gradio made up"
        assert not re.search(r"lambda|handler|_\d+$", name) or name.startswith("/ui_"), name
        if name.startswith("/ui_"):  # plumbing: named one by one, or by a family such as `/ui_picker_*`
            families = re.findall(r"`(/ui_[a-z_]*)\*`", DOC)
            assert f"`{name}`" in DOC or any(name.startswith(f) for f in families), \
                f"{name} is not mentioned in docs/api.md"
        else:
            assert f"`{name}`" in DOC, f"{name} is not described in docs/api.md"


@pytest.mark.slow
def test_the_example_runs_as_written(tmp_path):
    code = re.search(r"```python\n(.*?)```", DOC, re.S).group(1)
    proc, url = start_app(tmp_path / "ws", "--auth", "admin:secret")
    try:
        namespace: dict = {}
        code = code.replace("http://127.0.0.1:7860/", url + "/")
        code = code.replace('"assets/data/support_sft.jsonl"', repr(str(ROOT / "assets/data/support_sft.jsonl")))
        exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - the documented example itself
        assert "Saved **support v1**" in namespace["said"] or "support" in str(namespace["saved"])
        assert (tmp_path / "ws" / "datasets" / "support").is_dir()
        runs = list((tmp_path / "ws" / "runs").iterdir())
        assert [r.name for r in runs] == [namespace["run_id"]]
        from studio.train.status import RunState, read_status

        assert read_status(runs[0]).state is RunState.STOPPED  # stopped while queued: at once, in status.json too
        # /evaluate with the three values the page calls its own; the judge, rubric and the rest have defaults
        scores, _ = namespace["client"].predict(str(ROOT / "assets/data/support_eval.jsonl"), ["tiny"], 2,
                                                api_name="/evaluate")
        assert scores["headers"][:3] == ["model", "rows", "data"] and scores["data"][0][:2] == ["tiny", 2], scores
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_enter_in_the_evaluation_fields_starts_the_one_evaluate_endpoint():
    """Rows, Split and Subset start an evaluation on Enter, as the button does, through the one `/evaluate`."""
    app = build_app(AppContext(workspace=Workspace.open(tempfile.mkdtemp())))
    config = app.get_config_file()
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    evaluate = [d for d in config["dependencies"] if d.get("api_name") == "evaluate"]
    assert len(evaluate) == 1
    submits = {labels[target] for target, event in evaluate[0]["targets"] if event == "submit"}
    assert submits == {"Rows (0 = all)", "Split", "Subset"}
