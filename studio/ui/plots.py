"""Plotly figures for the tabs. Each function takes plain data and returns a figure."""

from __future__ import annotations

import plotly.graph_objects as go

from studio.stages import STAGES

_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300}



def _lines(xs: list) -> str:
    """A series of one point has no line to draw: it is drawn as a marker (a run shorter than two logs)."""
    return "lines" if len(xs) > 1 else "markers"

def token_length_histogram(lengths: list[int], max_length: int | None = None) -> go.Figure:
    """Token counts per row, with the max length drawn as a line: bars right of it get truncated."""
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, marker_color="#4f7cac", name="rows"))
    if max_length and lengths:
        fig.add_vline(x=max_length, line_dash="dash", line_color="#c0392b",
                      annotation_text=f"max length {max_length}", annotation_position="top right")
    fig.update_layout(title="Tokens per row", xaxis_title="tokens", yaxis_title="rows", bargap=0.05, **_LAYOUT)
    return fig


_PALETTE = ["#4f7cac", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#2c3e50", "#f39c12"]
# Stage metrics drawn in the third panel: accuracies and margins share a readable scale; raw
# log-probabilities and logits (hundreds) would flatten them, so they stay in metrics.jsonl only.
_STAGE_METRICS = {m for s in STAGES.values() for m in s.metrics} - {"reward", "reward_std"}


def run_label(run_id: str) -> str:
    """A legend's name for a run: its label and start time, not the whole id ('sft-lora 13:25:42')."""
    parts = run_id.split("-", 2)
    if len(parts) == 3 and parts[0].isdigit() and len(parts[0]) == 8 and parts[1].isdigit() and len(parts[1]) == 6:
        clock = f"{parts[1][:2]}:{parts[1][2:4]}:{parts[1][4:]}"
        label = parts[2] if len(parts[2]) <= 24 else parts[2][:23] + "…"
        return f"{label} {clock}"
    return run_id if len(run_id) <= 32 else "…" + run_id[-31:]


def _reward_panel(fig: go.Figure, series: dict, short: str, run: str, color: str, row: int, col: int) -> None:
    """RL runs: the summed reward's mean with a band of one spread either side, and each reward's mean."""
    xs, ys = series["reward"]
    spread = dict(zip(*series.get("reward_std", ([], []))))
    if spread:
        upper = [y + spread.get(x, 0.0) for x, y in zip(xs, ys)]
        lower = [y - spread.get(x, 0.0) for x, y in zip(xs, ys)]
        fig.add_scatter(x=xs + xs[::-1], y=upper + lower[::-1], fill="toself", line={"width": 0},
                        fillcolor=color, opacity=0.15, hoverinfo="skip", name=f"{short} reward ± spread",
                        legendgroup=run, showlegend=False, row=row, col=col)
    fig.add_scatter(x=xs, y=ys, mode=_lines(xs), line={"color": color, "width": 2}, name=f"{short} reward",
                    legendgroup=run, row=row, col=col)
    for key, (kx, ky) in series.items():
        if key.startswith("rewards/") and key.endswith("/mean"):
            fig.add_scatter(x=kx, y=ky, mode="lines", line={"color": color, "width": 1, "dash": "dot"},
                            name=f"{short} {key.split('/')[1]}", legendgroup=run, row=row, col=col)


def loss_kind(stage_name: str | None) -> str:
    """Losses of different stages measure different things; overlaid, each kind gets its own axis."""
    from studio.stages import STAGES

    return STAGES[stage_name].loss_label if stage_name in STAGES else "loss"



def training_curves(runs: dict[str, dict[str, tuple[list[float], list[float]]]], smooth_weight: float = 0.6,
                    stages: dict[str, str | None] | None = None):
    """Loss (raw and smoothed) with eval loss, learning rate, and the stage's own metrics, one colour per run.
    With `stages` (run -> stage), runs whose losses are of different kinds (SFT beside DPO, say) are drawn
    against two loss axes: the first kind on the left, the others on the right."""
    from plotly.subplots import make_subplots

    from studio.train.runs import smooth

    stages = stages or {}
    kinds = list(dict.fromkeys(loss_kind(stages.get(run)) for run in runs))
    two_axes = len(kinds) > 1
    rewarded = any("reward" in series for series in runs.values())
    titles = ("loss", "learning rate", "stage metrics", *(("reward (mean ± spread)",) if rewarded else ()))
    # two by two, to sit beside the settings: the stage metrics take the whole second row without a reward
    first = {"secondary_y": True} if two_axes else {}
    specs = [[first, {}], [{}, {}]] if rewarded else [[first, {}], [{"colspan": 2}, None]]
    fig = make_subplots(rows=2, cols=2, specs=specs, subplot_titles=titles, horizontal_spacing=0.1,
                        vertical_spacing=0.18)
    place = {1: (1, 1), 2: (1, 2), 3: (2, 1), 4: (2, 2)}
    for n, (run, series) in enumerate(runs.items()):
        color = _PALETTE[n % len(_PALETTE)]
        short = run_label(run)
        right = {"secondary_y": loss_kind(stages.get(run)) != kinds[0]} if two_axes else {}
        if "loss" in series:
            xs, ys = series["loss"]
            # the logged loss is the bold line; the smoothed one only hints at the trend (it lags a falling loss)
            fig.add_scatter(x=xs, y=ys, mode="lines+markers", line={"color": color, "width": 2}, marker={"size": 4},
                            name=f"{short} loss", legendgroup=run, row=1, col=1, **right)
            if len(xs) >= 8:
                fig.add_scatter(x=xs, y=smooth(ys, smooth_weight), mode="lines", opacity=0.5,
                                line={"color": color, "width": 1, "dash": "dot"}, name=f"{short} loss, smoothed",
                                legendgroup=run, row=1, col=1, **right)
        if "eval_loss" in series:
            xs, ys = series["eval_loss"]
            fig.add_scatter(x=xs, y=ys, mode="lines+markers", line={"color": color, "dash": "dash"},
                            name=f"{short} eval loss", legendgroup=run, row=1, col=1, **right)
        if "learning_rate" in series:
            xs, ys = series["learning_rate"]
            fig.add_scatter(x=xs, y=ys, mode=_lines(xs), line={"color": color}, name=f"{short} lr",
                            legendgroup=run, showlegend=False, row=1, col=2)
        for key, (xs, ys) in series.items():
            if key in _STAGE_METRICS:
                fig.add_scatter(x=xs, y=ys, mode=_lines(xs), name=f"{short} {key}", legendgroup=run,
                                line={"width": 1.5}, row=2, col=1)
        if "reward" in series:
            _reward_panel(fig, series, short, run, color, *place[4])
    fig.update_layout(template="plotly_white", height=520, margin={"l": 40, "r": 10, "t": 40, "b": 30},
                      legend={"orientation": "h", "y": -0.15}, uirevision="keep")
    fig.update_xaxes(title_text="step", row=2)  # on the bottom row only: above, it ran into the titles below
    rates = [y for series in runs.values() for y in series.get("learning_rate", ([], []))[1]]
    if rates and max(rates) > 0:  # from zero, so a constant rate reads as its value rather than a flat line at 0
        fig.update_yaxes(range=[0, max(rates) * 1.15], row=1, col=2)
    if two_axes:
        fig.update_yaxes(title_text=kinds[0], row=1, col=1, secondary_y=False)
        fig.update_yaxes(title_text=" / ".join(kinds[1:]), row=1, col=1, secondary_y=True, showgrid=False)
    return fig



def rank_chart(ranks: list[int], trainable: list[int], full: int, rank: int | None = None,
               current: int | None = None, label: str = "LoRA") -> go.Figure:
    """Trainable parameters against LoRA rank (log scale), with full fine-tuning as the line to stay under.

    Built from plain dicts without a template: it is redrawn on every slider step, and copying a plotly
    template costs ~15 ms where this takes ~2.
    """
    hover = "r=%{x}: %{y:,} trainable<extra></extra>"
    data = [{"type": "scatter", "x": ranks, "y": trainable, "mode": "lines+markers", "name": label,
             "line": {"color": "#4f7cac"}, "hovertemplate": hover}]
    if rank is not None and current is not None:
        data.append({"type": "scatter", "x": [rank], "y": [current], "mode": "markers", "name": f"r={rank}",
                     "marker": {"size": 12, "color": "#27ae60", "symbol": "diamond"}, "hovertemplate": hover})
    axis = {"gridcolor": "#ebebeb", "zeroline": False, "type": "log"}
    layout = {
        "title": {"text": "Trainable parameters by rank"}, "height": 300, "showlegend": False,
        "margin": _LAYOUT["margin"], "paper_bgcolor": "white", "plot_bgcolor": "white", "uirevision": "keep",
        "xaxis": {**axis, "title": {"text": "rank r"}, "tickvals": ranks},
        "yaxis": {**axis, "title": {"text": "parameters"}, "exponentformat": "SI"},
        "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": full, "y1": full,
                    "line": {"color": "#c0392b", "dash": "dash"}}],
        "annotations": [{"xref": "paper", "x": 1, "y": _log10(full), "yanchor": "top", "xanchor": "right",
                         "showarrow": False, "text": f"full fine-tuning {full:,}", "font": {"color": "#c0392b"}}],
    }
    return go.Figure(data=data, layout=layout)


def _log10(value: float) -> float:
    import math

    # annotations on a log axis are placed in log10 units, unlike shapes
    return math.log10(value) if value > 0 else 0.0
