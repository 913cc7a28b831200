"""Recurrent cells vs the controls that isolate recurrence (analysis.controls).

``fig_controls(df, split, fraction)`` returns ``(figure, data, headline)`` like the other figure
functions. One panel per recurrent cell type (a shared x axis); in each, one row per recurrent configuration
(recurrent layers, T, readout mode) and control: the paired effect recurrent - control (mean
over the units of replication) with its 95 % t-interval, a dashed zero line, and the two
conv parameter counts (recurrent / control). Points without an interval (fewer than
analysis.stats.MIN_PAIRS pairs) are drawn hollow and say so. Data: the rows of
analysis.controls.controls_table for the split and fraction.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.controls import CONTROLS, controls_in
from analysis.load import select
from rcpb.cell_kinds import CELLS
from analysis.plots.common import (
    FF_COLOR, NoData, NoFinite, dataset_name, finish_data, measure_name, style, where,
)

CONTROL_COLORS = dict(zip(CONTROLS.values(),
                          ("#333333", "#1b9e77", "#d95f02", "#7570b3", "#e7298a")))


def _count(v) -> str:
    return "?" if not np.isfinite(v) else f"{int(round(v)):,}"


def fig_controls(df: pd.DataFrame, split: int, fraction: float):
    """Effects of each recurrent cell over its controls (module docstring)."""
    table = controls_in(df, split, fraction)
    if table.empty:
        raise NoData("no recurrent model with a control (size-matched, wider, deeper or "
                     "unrolled-depth FF, or a minimally unrolled twin)")
    part = select(df, None, split, fraction)
    measure = measure_name(df)
    drawn = table[np.isfinite(table["diff_mean"].astype(float))]
    if drawn.empty:
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no finite "
                       f"{measure} for any recurrent model and its control")
    present = set(drawn["cell"])
    cells = [c for c in CELLS if c in present] + sorted(present - set(CELLS))
    style()
    heights = [max(1.6, 0.34 * (drawn["cell"] == c).sum() + 0.8) for c in cells]
    fig, axes = plt.subplots(len(cells), 1, figsize=(8.5, sum(heights) + 0.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False, sharex=True)
    for ax, cell in zip(axes[:, 0], cells):
        rows = drawn[drawn["cell"] == cell].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows()):
            color = CONTROL_COLORS.get(r["control"], FF_COLOR)
            has_ci = np.isfinite(float(r["diff_ci_low"]))
            if has_ci:
                ax.errorbar(r["diff_mean"], yi, xerr=[[r["diff_mean"] - r["diff_ci_low"]],
                                                      [r["diff_ci_high"] - r["diff_mean"]]],
                            fmt="o", color=color, capsize=3, ms=5)
            else:
                ax.plot(r["diff_mean"], yi, "o", mfc="white", color=color, ms=5)
        labels = [f"L{int(r['recurrent_layers'])} T{int(r['iterations'])} {r['readout']} vs "
                  f"{r['control']} ({_count(r['recurrent_conv_params'])} / "
                  f"{_count(r['control_conv_params'])} conv params)"
                  + ("" if np.isfinite(float(r["diff_ci_low"])) else ", no CI")
                  for _, r in rows.iterrows()]
        ax.set_yticks(y, labels, fontsize=7)
        ax.axvline(0.0, color=FF_COLOR, lw=0.9, ls="--", zorder=0)
        ax.set_title(f"cell {cell}", fontsize=9, loc="left")
        ax.tick_params(labelbottom=True)
        ax.set_xlabel(f"recurrent - control ({measure}), mean with 95 % t-interval")
    better = drawn[drawn["diff_ci_low"].astype(float) > 0]
    worse = drawn[drawn["diff_ci_high"].astype(float) < 0]
    headline = (f"{len(drawn)} recurrent-vs-control comparisons: recurrent better (CI above 0) "
                f"in {len(better)}, worse (CI below 0) in {len(worse)}, no interval or "
                f"inconclusive in {len(drawn) - len(better) - len(worse)}")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}: recurrent cells vs "
                 "their controls\n" + "\n".join(textwrap.wrap(headline, 100)), y=1.0)
    fig.tight_layout()
    notes = [] if len(drawn) == len(table) else [
        f"{len(table) - len(drawn)} comparisons without a finite {measure} (not drawn)"]
    return fig, finish_data(table.assign(series="comparison"), df, notes), headline
