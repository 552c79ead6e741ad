"""The pictures of a page, drawn by matplotlib from the reports' evidence: the loss per
epoch, the score histogram and the small loss curves of the dashboard."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

_STYLE = {"axes.spines.top": False, "axes.spines.right": False, "font.size": 9,
          "svg.fonttype": "none", "svg.hashsalt": "grader"}  # text stays text; same input, same SVG


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    # No pyplot: no figure manager to leak figures. rc_context still sets matplotlib's
    # global settings for a moment: pages are made one at a time (the review server locks).
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog, no DOCTYPE


def _png_uri(fig, dpi: int) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def loss_plot(curve: Sequence[Sequence[float]], *, max_ratio: float | None, title: str = "") -> str:
    """Mean loss per epoch as inline SVG: the first and last epochs marked, and the line
    the last epoch must reach for ``loss_decreased`` (max_ratio x the first epoch's)."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.4, 2.8)
        ax = fig.add_subplot()
        epochs = [p[0] for p in curve]
        losses = [p[1] for p in curve]
        ax.plot(epochs, losses, color="#2563eb", linewidth=1.5, label="mean loss per epoch")
        ax.scatter([epochs[0], epochs[-1]], [losses[0], losses[-1]], color="#111827", zorder=3, s=18)
        ax.annotate(f"first {losses[0]:.4g}", (epochs[0], losses[0]), textcoords="offset points",
                    xytext=(6, 4))
        ax.annotate(f"last {losses[-1]:.4g}", (epochs[-1], losses[-1]), textcoords="offset points",
                    xytext=(-6, 6), ha="right")
        if max_ratio is not None:
            ax.axhline(losses[0] * max_ratio, color="#dc2626", linestyle="--", linewidth=1,
                       label=f"pass line: {max_ratio:g} × first epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if title:
            ax.set_title(title)
        ax.legend(frameon=False, loc="center right")
        return _svg(fig)


def score_histogram(scores: Sequence[float], *, max_score: float) -> str:
    """How the class scored, as inline SVG."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.4, 2.4)
        ax = fig.add_subplot()
        bins = [max_score * k / 20 for k in range(21)]
        ax.hist(scores, bins=bins, color="#2563eb", edgecolor="white")
        ax.set_xlim(0, max_score)
        ax.set_xlabel("score")
        ax.set_ylabel("submissions")
        ax.yaxis.get_major_locator().set_params(integer=True)
        return _svg(fig)


def sparkline(curve: Sequence[Sequence[float]]) -> str:
    """A small loss curve for the dashboard's grid, as a PNG data URL (two hundred
    inline SVGs would make the page slow to open)."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        fig = _figure(1.6, 0.7)
        ax = fig.add_subplot()
        ax.plot([p[0] for p in curve], [p[1] for p in curve], color="#2563eb", linewidth=1)
        ax.set_axis_off()
        return _png_uri(fig, dpi=100)
