"""Plotly figures for the tabs. Each function takes plain data and returns a figure."""

from __future__ import annotations

import plotly.graph_objects as go

_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300}


def token_length_histogram(lengths: list[int], max_length: int | None = None) -> go.Figure:
    """Token counts per row, with the max length drawn as a line: bars right of it get truncated."""
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, marker_color="#4f7cac", name="rows"))
    if max_length and lengths:
        fig.add_vline(x=max_length, line_dash="dash", line_color="#c0392b",
                      annotation_text=f"max length {max_length}", annotation_position="top right")
    fig.update_layout(title="Tokens per row", xaxis_title="tokens", yaxis_title="rows", bargap=0.05, **_LAYOUT)
    return fig
