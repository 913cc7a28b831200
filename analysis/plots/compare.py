"""Recurrent vs feed-forward figures: paper fig. 3a (9, 10, 26), 3d-f (11, 27) and 6a-b (14, 15, 18-20).

Every function takes the whole results table plus the split seed (and training fraction) and
returns ``(figure, data, headline)``: the matplotlib figure, the numbers drawn (written next to
the figure as CSV) and a one-line headline. Raises NoData when the needed models are absent.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import PERF, fraction_text, select
from analysis.plots.common import (
    FF_COLOR, PERF_AXIS, NoData, dataset_name, fraction_colors, identity_line, mode_color,
    modes_in, padded_limits, style, where,
)
from analysis.tables import seed_averaged_pairs


def fig3a(df: pd.DataFrame, split: int):
    """24 panels (rows readout mode, columns T): seed-averaged recurrent vs matched FF models.

    Dots coloured by training fraction; dashed identity line. Data: one row per aggregated
    pair (split_seed, train_fraction, readout, iterations, recurrent_layers, channels, ...,
    n_seeds, ff_perf, recurrent_perf).
    """
    part = select(df, None, split)
    pr = seed_averaged_pairs(part, "recurrent", "ff")
    if pr.empty:
        raise NoData(f"no recurrent models with a feed-forward partner in split {split}")
    style()
    modes = modes_in(pr["readout"])
    Ts = sorted(int(t) for t in pr["iterations"].unique())
    colors = fraction_colors(pr["train_fraction"])
    fig, axes = plt.subplots(len(modes), len(Ts), figsize=(max(1.75 * len(Ts) + 1.3, 6.5),
                                                           1.75 * len(modes) + 1.6),
                             sharex=True, sharey=True, squeeze=False)
    lo, hi = padded_limits(pr[PERF], pr[f"ref_{PERF}"])
    gains = []
    for i, mode in enumerate(modes):
        for j, T in enumerate(Ts):
            ax = axes[i, j]
            cell = pr[(pr["readout"] == mode) & (pr["iterations"] == T)]
            for frac, c in cell.groupby("train_fraction"):
                ax.scatter(c[f"ref_{PERF}"], c[PERF], s=9, alpha=0.75, color=colors[frac],
                           edgecolors="none", rasterized=True)
            identity_line(ax, lo, hi)
            if len(cell):
                win = float((cell[PERF] > cell[f"ref_{PERF}"]).mean())
                gains.append(win)
                ax.text(0.04, 0.96, f"{100 * win:.0f} % above", transform=ax.transAxes,
                        ha="left", va="top", fontsize=7, color="#444444")
            if i == 0:
                ax.set_title(f"T = {T}")
            if j == 0:
                ax.set_ylabel(mode, fontweight="bold")
            ax.tick_params(labelsize=7)
            ax.locator_params(nbins=4)
    handles = [plt.Line2D([], [], ls="", marker="o", color=colors[f],
                          label=fraction_text(f, select(part, None, None, f))) for f in sorted(colors)]
    n_per = pr.groupby(["train_fraction", "readout", "iterations"]).size()
    fig.legend(handles=handles, title=f"training data (up to {int(n_per.max())} pairs per panel and fraction)",
               loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.supxlabel(f"feed-forward model {PERF_AXIS}")
    fig.supylabel(f"recurrent model {PERF_AXIS}")
    overall = float((pr[PERF] > pr[f"ref_{PERF}"]).mean())
    headline = f"recurrent above matched FF in {100 * overall:.0f} % of {len(pr)} seed-averaged pairs"
    fig.suptitle(f"{dataset_name(part)}, {where(split)}: recurrent vs size-matched FF models "
                 f"(seeds averaged)\n{headline}", y=1.06)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    data = pr.rename(columns={PERF: "recurrent_perf", f"ref_{PERF}": "ff_perf"})
    keep = [c for c in ["split_seed", "train_fraction", "readout", "iterations", "recurrent_layers",
                        "channels", "act", "first_block_order", "loss", "n_seeds", "ff_perf",
                        "recurrent_perf"] if c in data.columns]
    return fig, data[keep], headline


def type_summary(rec: pd.DataFrame) -> pd.DataFrame:
    """Mean, s.e.m. and n of performance and average path length per (readout, iterations)."""
    rows = []
    for (mode, T), c in rec.groupby(["readout", "iterations"]):
        rows.append({"readout": mode, "iterations": int(T), "n_models": int(c[PERF].notna().sum()),
                     "perf_mean": c[PERF].mean(), "perf_sem": stats.sem(c[PERF]),
                     "avg_path_length": c["avg_path_length"].mean()})
    return pd.DataFrame(rows, columns=["readout", "iterations", "n_models", "perf_mean", "perf_sem",
                                       "avg_path_length"])


def _ff_summary(ff: pd.DataFrame) -> dict:
    return {"readout": "ff", "iterations": np.nan, "n_models": int(ff[PERF].notna().sum()),
            "perf_mean": ff[PERF].mean() if len(ff) else math.nan, "perf_sem": stats.sem(ff[PERF]),
            "avg_path_length": ff["avg_path_length"].mean() if len(ff) else math.nan}


def perf_vs_T_panel(ax, rec: pd.DataFrame, ff: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Draw performance vs T per readout mode (s.e.m. bars) and the FF mean with its s.e.m. band.

    Returns the drawn numbers (one row per type plus one "ff" row) and a headline with the best
    type and its gain over the FF average.
    """
    summ = type_summary(rec)
    ffs = _ff_summary(ff)
    Ts = sorted(summ["iterations"].unique())
    step = float(np.min(np.diff(Ts))) if len(Ts) > 1 else 1.0
    offsets = np.linspace(-0.12, 0.12, max(len(modes_in(summ["readout"])), 1)) * step
    for k, mode in enumerate(modes_in(summ["readout"])):
        s = summ[summ["readout"] == mode].sort_values("iterations")
        ax.errorbar(s["iterations"] + offsets[k], s["perf_mean"], yerr=s["perf_sem"], marker="o",
                    ms=3.5, lw=1.2, capsize=2, color=mode_color(mode), label=mode)
    if ffs["n_models"]:
        m, e = ffs["perf_mean"], ffs["perf_sem"]
        ax.axhline(m, color=FF_COLOR, lw=1.4, label=f"FF ± s.e.m. (n = {ffs['n_models']})")
        if np.isfinite(e):
            ax.axhspan(m - e, m + e, color=FF_COLOR, alpha=0.12, lw=0)
    ax.set_xticks(Ts)
    if Ts:
        ax.set_xlim(Ts[0] - 0.5 * step, Ts[-1] + 0.5 * step)
    ax.set_xlabel("number of iterations T")
    ax.set_ylabel(PERF_AXIS)
    headline = "no recurrent models"
    if len(summ):
        best = summ.loc[summ["perf_mean"].idxmax()]
        headline = f"best {best['readout']}, T = {int(best['iterations'])}: {best['perf_mean']:.4f}"
        if ffs["n_models"] and ffs["perf_mean"] > 0:
            headline += f" ({100 * (best['perf_mean'] / ffs['perf_mean'] - 1):+.2f} % vs FF {ffs['perf_mean']:.4f})"
    data = pd.concat([summ, pd.DataFrame([ffs])], ignore_index=True)
    return data, headline


def fig3d(df: pd.DataFrame, split: int, fraction: float):
    """Performance vs T per readout mode (all recurrent models), FF average as a line (fig. 3d-f)."""
    part = select(df, None, split, fraction)
    rec, ff = select(part, "recurrent"), select(part, "ff")
    if rec.empty:
        raise NoData(f"no recurrent models in {where(split, fraction)}")
    style()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    data, headline = perf_vs_T_panel(ax, rec, ff)
    ax.set_title(f"{dataset_name(part)}, {where(split, fraction, part)}\n{headline}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="readout mode")
    fig.tight_layout()
    return fig, data.assign(recurrent_layers="all"), headline


def fig6ab(df: pd.DataFrame, split: int, fraction: float):
    """Performance vs T per readout mode, one panel per number of recurrent layers (fig. 6a-b).

    The FF line of a panel is the size-matched FF (2 * layers + 1 blocks).
    """
    part = select(df, None, split, fraction)
    rec, ff = select(part, "recurrent"), select(part, "ff")
    if rec.empty:
        raise NoData(f"no recurrent models in {where(split, fraction)}")
    style()
    layers = sorted(int(x) for x in rec["recurrent_layers"].dropna().unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(4.4 * len(layers) + 1.2, 3.6), squeeze=False)
    datas, heads = [], []
    for ax, L in zip(axes[0], layers):
        d, h = perf_vs_T_panel(ax, rec[rec["recurrent_layers"] == L], ff[ff["blocks"] == 2 * L + 1])
        ax.set_title(f"{L} recurrent layer{'s' if L > 1 else ''} (FF: {2 * L + 1} blocks)\n{h}")
        datas.append(d.assign(recurrent_layers=L))
        heads.append(f"{L} layer(s): {h}")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="readout mode")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}")
    fig.tight_layout()
    return fig, pd.concat(datas, ignore_index=True), "; ".join(heads)
