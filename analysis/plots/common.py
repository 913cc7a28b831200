"""Shared figure style, colours, saving, the "no models" placeholder and the bookkeeping of
what a figure could not draw (performance NaN, partners missing)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.labels import join_notes  # noqa: E402  (the figures take it from here)
from analysis.load import (  # noqa: E402
    READOUT_MODES, fraction_label, metric_of, perf_axis, perf_text,
)
from rcpb.atomic_files import atomic_path  # noqa: E402

LENGTH_AXIS = "average path length (convs)"

# paper fig. 6e-f colours: no-avg blue, early-avg orange, late-avg green, 2-avg red
MODE_COLORS = dict(zip(READOUT_MODES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")))
FF_COLOR = "#333333"
BEST_FF_COLOR = "#8c510a"
# baselines.csv predictor -> (colour, line style, legend label); others: grey, dotted, their name
BASELINE_STYLES = {
    "truth": ("#c51b7d", ":", "truth ceiling (simulator's mean rates)"),
    "drive": ("#17becf", "-.", "drive only (feed-forward first stage)"),
}
_FRACTION_COLORS = ("#7b3294", "#008837", "#e66101", "#0571b0", "#a6611a")


class NoData(Exception):
    """Raised by a figure function when the models it needs are not in the table."""


class NoFinite(NoData):
    """Raised by a figure function when the models are in the table but nothing it would draw
    is finite (e.g. every ``perf`` is NaN: CC_norm^2 asked for on data without a noise
    ceiling). The message says what is missing."""


def perf_label(df: pd.DataFrame) -> str:
    """Axis label of the performance measure of a results table, e.g.
    'performance (CC$_{raw}$, no noise ceiling)' (see analysis.load.perf_axis)."""
    return perf_axis(metric_of(df))


def measure_name(df: pd.DataFrame) -> str:
    """Plain-text name of the performance measure of a results table, e.g. 'CC_raw'."""
    return perf_text(metric_of(df))


def n_finite(values) -> int:
    """Number of finite values."""
    return int(np.isfinite(np.asarray(values, dtype=float)).sum())


def num(value, fmt: str = ".4f") -> str:
    """A number formatted with ``fmt``, or 'n/a' when it is not finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return format(v, fmt) if np.isfinite(v) else "n/a"


def missing_perf(name: str, rows: pd.DataFrame, measure: str, col: str = "perf") -> str:
    """'' if every row of ``rows`` has a finite ``col``, else e.g. 'FF: no finite CC_raw
    (4 models)' or 'recurrent: CC_raw NaN for 3 of 48 models (left out)'."""
    n = len(rows)
    k = n_finite(rows[col]) if n else 0
    if n == 0 or k == n:
        return ""
    if k == 0:
        return f"{name}: no finite {measure} ({n} model{'s' if n != 1 else ''})"
    return f"{name}: {measure} NaN for {n - k} of {n} models (left out)"


def note_panel(ax, text: str, y: float = 0.5, va: str = "center") -> None:
    """Write ``text`` (what is missing from this panel) across the panel at height ``y`` (axes
    coordinates)."""
    if text:
        ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va=va, fontsize=7,
                color="#b2182b", wrap=True, zorder=10,
                bbox={"boxstyle": "round", "fc": "white", "ec": "#b2182b", "alpha": 0.85, "lw": 0.6})


def types_text(summ: pd.DataFrame) -> str:
    """'no-avg T = 4; 2-avg T = 2, 3' for rows with ``readout`` and ``iterations``."""
    parts = []
    for mode in modes_in(summ["readout"]):
        Ts = sorted(int(t) for t in summ.loc[summ["readout"] == mode, "iterations"])
        parts.append(f"{mode} T = {', '.join(map(str, Ts))}")
    return "; ".join(parts)


def unpaired_note(part: pd.DataFrame, family: str, partner_family: str, what: str) -> str:
    """'3 recurrent models without their FF partner (left out)', or '' when every model of
    ``family`` in ``part`` has its partner there."""
    from analysis.load import select

    rows = select(part, family)
    ids = set(select(part, partner_family)["config_id"])
    n = int((~rows["partner_id"].isin(ids)).sum())
    return f"{n} {family} model{'s' if n != 1 else ''} without their {what} partner (left out)" if n else ""


def merged_legend(axes, order=READOUT_MODES, **kw) -> None:
    """One legend on the last of ``axes`` with every labelled artist of all of them, each label
    once, labels in ``order`` first (readout modes) then as found; none if nothing is labelled."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    rank = {m: i for i, m in enumerate(order)}
    idx = sorted(range(len(labels)), key=lambda i: rank.get(labels[i], len(rank) + i))
    if handles:
        axes[-1].legend([handles[i] for i in idx], [labels[i] for i in idx], loc="center left",
                        bbox_to_anchor=(1.01, 0.5), frameon=False, **kw)


def finish_data(data: pd.DataFrame, df: pd.DataFrame, notes=()) -> pd.DataFrame:
    """The CSV of a figure: ``data`` with columns ``metric`` (the performance measure of ``df``)
    and ``note`` (what the figure could not draw, joined to any per-row note already there).
    Without rows, one row holding the metric and the note, so the CSV still says why."""
    note = join_notes(*notes)
    out = data.copy()
    if out.empty:
        return pd.DataFrame([{**{c: np.nan for c in out.columns}, "metric": metric_of(df),
                              "note": note}])
    out["metric"] = metric_of(df)
    if "note" in out.columns:
        out["note"] = [join_notes(n, note) for n in out["note"]]
    else:
        out["note"] = note
    return out


def baseline_rows(baselines: pd.DataFrame | None, split: int) -> pd.DataFrame:
    """The baselines of split ``split`` with a finite test performance, as figure-CSV rows:
    series "baseline", predictor, description, perf_mean (analysis.load.read_baselines)."""
    cols = ["series", "predictor", "description", "perf_mean"]
    if baselines is None or baselines.empty:
        return pd.DataFrame(columns=cols)
    b = baselines[(baselines["split_seed"] == int(split)) & baselines["perf"].notna()]
    return pd.DataFrame({"series": "baseline", "predictor": b["predictor"].to_numpy(),
                         "description": b["description"].to_numpy(),
                         "perf_mean": b["perf"].to_numpy(dtype=float)}, columns=cols)


def draw_baselines(ax, rows: pd.DataFrame) -> None:
    """Labelled horizontal lines at the baselines' performance (rows from :func:`baseline_rows`)."""
    for r in rows.itertuples():
        color, ls, label = BASELINE_STYLES.get(r.predictor, ("#7f7f7f", ":", r.predictor))
        ax.axhline(r.perf_mean, color=color, ls=ls, lw=1.2, zorder=1,
                   label=f"{label}: {r.perf_mean:.3f}")


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
