"""Shared figure style, colours, saving and the "no models" placeholder."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.load import READOUT_MODES, fraction_label  # noqa: E402
from rcpb.checkpoint import atomic_path  # noqa: E402

PERF_AXIS = "performance (CC$_{norm}^2$)"
LENGTH_AXIS = "average path length (convs)"

# paper fig. 6e-f colours: no-avg blue, early-avg orange, late-avg green, 2-avg red
MODE_COLORS = dict(zip(READOUT_MODES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")))
FF_COLOR = "#333333"
_FRACTION_COLORS = ("#7b3294", "#008837", "#e66101", "#0571b0", "#a6611a")


class NoData(Exception):
    """Raised by a figure function when the models it needs are not in the table."""


def style() -> None:
    """Matplotlib defaults for every figure (white background, readable sizes)."""
    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
        "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
        "axes.spines.right": False, "figure.dpi": 100, "savefig.dpi": 150,
        "pdf.fonttype": 42, "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.5,
    })


def mode_color(mode: str) -> str:
    return MODE_COLORS.get(mode, "#7f7f7f")


def modes_in(values) -> list[str]:
    """Readout modes present, in the paper's order."""
    vals = set(values)
    return [m for m in READOUT_MODES if m in vals] + sorted(vals - set(READOUT_MODES))


def fraction_colors(fractions) -> dict[float, str]:
    """Distinct colour per training fraction, smallest first."""
    fr = sorted(set(float(f) for f in fractions))
    return {f: _FRACTION_COLORS[i % len(_FRACTION_COLORS)] for i, f in enumerate(fr)}


def identity_line(ax, lo: float, hi: float) -> None:
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, color="#888888", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")


def padded_limits(*arrays, pad: float = 0.04) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return 0.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo if hi > lo else max(abs(hi), 1e-3)
    return lo - pad * span, hi + pad * span


def where(split: int, fraction: float | None = None, df: pd.DataFrame | None = None) -> str:
    """'split 0, 100 % training data (1400 images)' for titles."""
    from analysis.load import n_train_of
    text = f"split {split}"
    if fraction is not None:
        text += f", {fraction_label(fraction)} % training data"
        n = n_train_of(df) if df is not None and len(df) else float("nan")
        if np.isfinite(n):
            text += f" ({int(round(n))} images)"
    return text


def dataset_name(df: pd.DataFrame) -> str:
    if "dataset" in df.columns and df["dataset"].notna().any():
        names = sorted(set(df["dataset"].dropna().astype(str)))
        return ", ".join(names)
    return ""


def placeholder(message: str) -> plt.Figure:
    """A small figure that says why there is nothing to plot."""
    style()
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def save(fig: plt.Figure, png: str | None, pdf: str | None) -> None:
    """Write the figure as PNG and/or PDF (atomic rename) and close it."""
    for path in (png, pdf):
        if not path:
            continue
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=os.path.splitext(path)[1][1:], bbox_inches="tight")
    plt.close(fig)


def write_csv(data: pd.DataFrame, path: str | None) -> None:
    if not path:
        return
    with atomic_path(path) as tmp:
        data.to_csv(tmp, index=False)
