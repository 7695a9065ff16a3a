"""The training curves: losses of different kinds overlaid get their own axes."""

from __future__ import annotations

from studio.train.runs import curves
from studio.ui.plots import training_curves

SFT = curves([{"step": s, "loss": 2.0 / s, "learning_rate": 1e-3} for s in range(1, 11)])
DPO = curves([{"step": s, "loss": 0.69 - 0.01 * s, "learning_rate": 5e-6} for s in range(1, 11)])


def axis_of(fig, name):
    return next(t.yaxis for t in fig.data if t.name == name)


def test_sft_and_dpo_losses_are_drawn_against_two_axes():
    fig = training_curves({"20261127-100000-sft": SFT, "20261127-110000-dpo": DPO},
                          stages={"20261127-100000-sft": "sft", "20261127-110000-dpo": "dpo"})
    sft_axis = axis_of(fig, "sft 10:00:00 loss")
    dpo_axis = axis_of(fig, "dpo 11:00:00 loss")
    assert sft_axis != dpo_axis
    assert fig.layout[sft_axis.replace("y", "yaxis")].title.text == "SFT loss"
    assert fig.layout[dpo_axis.replace("y", "yaxis")].title.text == "DPO loss"
    assert axis_of(fig, "dpo 11:00:00 loss, smoothed") == dpo_axis


def test_runs_of_one_kind_share_one_axis():
    fig = training_curves({"20261127-100000-sft": SFT, "20261127-120000-sft": SFT},
                          stages={"20261127-100000-sft": "sft", "20261127-120000-sft": "sft"})
    losses = {t.yaxis for t in fig.data if t.name.endswith(" loss")}
    assert len(losses) == 1
    assert not fig.layout.yaxis.title.text  # a single kind needs no axis title: the panel says "loss"


def test_a_constant_learning_rate_is_drawn_from_zero_and_step_is_said_on_the_bottom_row_only():
    fig = training_curves({"20261127-100000-sft": SFT, "20261127-110000-dpo": DPO})
    lr_axis = next(t.yaxis for t in fig.data if t.name.endswith(" lr")).replace("y", "yaxis")
    low, high = fig.layout[lr_axis].range
    assert low == 0 and 1e-3 < high < 2e-3  # the larger of the two constant rates sits near the top
    titled = {name for name in fig.layout if name.startswith("xaxis") and fig.layout[name].title.text == "step"}
    rows = {name: fig.layout[fig.layout[name].anchor.replace("y", "yaxis")].domain for name in fig.layout
            if name.startswith("xaxis")}
    assert titled and titled == {name for name, (low, _) in rows.items() if low < 0.5}  # the lower row's axes


def test_a_run_of_one_logged_step_draws_its_points():
    """A line needs two points: a run shorter than two logs shows its one point as a marker in every panel."""
    one = curves([{"step": 1, "loss": 10.5, "learning_rate": 0.0, "entropy": 3.2, "mean_token_accuracy": 0.1}])
    fig = training_curves({"20261130-004325-sft": one}, stages={"20261130-004325-sft": "sft"})
    drawn = {t.name: t.mode for t in fig.data}
    assert drawn["sft 00:43:25 lr"] == "markers" and drawn["sft 00:43:25 entropy"] == "markers"
    assert "markers" in drawn["sft 00:43:25 loss"]
    two = curves([{"step": s, "loss": 1.0, "learning_rate": 1e-3, "entropy": 3.0} for s in (1, 2)])
    assert {t.mode for t in training_curves({"20261130-004325-sft": two}).data if t.name.endswith(("lr", "entropy"))} \
        == {"lines"}
