"""Time-binned responses: recurrent vs feed-forward models bin by bin (analysis.dynamics).

``fig_dynamics(df, split, fraction)`` returns ``(figure, data, headline)`` like the other figure
functions. Panel a: test performance per fitted bin of each recurrent configuration and each FF
depth (mean over seeds, 95 % t-interval; the measure of the dataset, each bin with its own noise
ceiling), and of the simulator's true rates where the data are simulated (the baselines: what a
model could reach). Panel b: the population's mean response per bin on the test stimuli,
observed (the trial-averaged target), the true rates where known, and each model series'
prediction. Panel c: the paired effects
recurrent - size-matched FF on the time-profile correlation and on the performance averaged over
bins, with 95 % CIs (analysis.dynamics.dynamics_table). A feed-forward model predicts the same for
every bin: its profile is flat and its profile correlation 0 by definition.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.dynamics import MEAN, PROFILE, dynamics_in, is_time_binned, per_bin
from analysis.load import select
from analysis.plots.common import NoData, dataset_name, finish_data, measure_name, style, where

TRUTH_COLOR = "#000000"
_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
_FF_COLORS = ("#555555", "#888888", "#aaaaaa", "#cccccc")


def _colors(series) -> dict:
    rec = [s for s in series if s.startswith("recurrent")]
    ff = [s for s in series if s.startswith("FF")]
    out = {"observed": TRUTH_COLOR, "truth": "#b2182b"}
    out.update({s: _COLORS[i % len(_COLORS)] for i, s in enumerate(rec)})
    out.update({s: _FF_COLORS[i % len(_FF_COLORS)] for i, s in enumerate(ff)})
    return out


def _lines(ax, data: pd.DataFrame, colors: dict) -> None:
    for name, g in data.groupby("series", sort=False):
        color = colors.get(name, "#999999")
        dashed = name.startswith("FF") or name == "truth"
        ax.plot(g["bin"], g["mean"], "-" if not dashed else "--", marker="o", ms=3,
                color=color, lw=2.2 if name in ("observed", "truth") else 1.4,
                label="truth (true rates)" if name == "truth" else name)
        if g["ci_low"].notna().any():
            ax.fill_between(g["bin"], g["ci_low"], g["ci_high"], color=color, alpha=0.18, lw=0)


def fig_dynamics(df: pd.DataFrame, split: int, fraction: float,
                 baselines: pd.DataFrame | None = None):
    """Per-bin performance, population profiles and paired effects (module docstring)."""
    part = select(df, None, split, fraction)
    if not is_time_binned(part):
        raise NoData("no model fitted to time-binned responses")
    metric = str(part["metric"].iloc[0])
    measure = measure_name(part)
    truth = None if baselines is None else baselines[baselines["split_seed"] == split]
    perf = per_bin(part, metric, truth)
    profile = per_bin(part, "pred", truth)
    table = dynamics_in(df, split, fraction, baselines)
    effects = table[table["measure"].isin([PROFILE, f"{MEAN} ({metric})"])]
    colors = _colors(list(dict.fromkeys(profile["series"])))
    style()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    _lines(axes[0], perf, colors)
    axes[0].set_xlabel("time bin (file index; iteration t = bin offset + t - 1)")
    axes[0].set_ylabel(f"test {measure} of the bin")
    axes[0].set_title("a  performance per bin (mean over seeds, 95 % CI)", loc="left", fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    _lines(axes[1], profile, colors)
    axes[1].set_xlabel("time bin")
    axes[1].set_ylabel("population mean response (test stimuli)")
    axes[1].set_title("b  mean temporal profile (population mean)", loc="left", fontsize=9)
    axes[1].legend(fontsize=7, frameon=False)
    ax = axes[2]
    labels = []
    for y, (_, r) in enumerate(effects.iloc[::-1].iterrows()):
        has_ci = np.isfinite(float(r["diff_ci_low"]))
        if has_ci:
            ax.errorbar(r["diff_mean"], y, xerr=[[r["diff_mean"] - r["diff_ci_low"]],
                                                 [r["diff_ci_high"] - r["diff_mean"]]],
                        fmt="o", color="#1b9e77", capsize=3)
        else:
            ax.plot(r["diff_mean"], y, "o", mfc="white", color="#1b9e77")
        labels.append(f"{r['cell']} L{int(r['recurrent_layers'])} T{int(r['iterations'])}: "
                      f"{r['measure']}" + ("" if has_ci else ", no CI"))
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.axvline(0.0, color="#333333", lw=0.9, ls="--", zorder=0)
    ax.set_xlabel("recurrent - size-matched FF (paired, 95 % CI)")
    ax.set_title("c  paired effects", loc="left", fontsize=9)
    parts = []
    for _, r in effects.iterrows():
        ci = (f" [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]"
              if np.isfinite(float(r["diff_ci_low"])) else " (no CI)")
        parts.append(f"T{int(r['iterations'])} {r['measure'].split(' (')[0]} "
                     f"{r['diff_mean']:+.3f}{ci}")
    headline = "recurrent - size-matched FF: " + "; ".join(parts) if parts else \
        "no recurrent model paired with its size-matched FF"
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}: time bins\n"
                 + "\n".join(textwrap.wrap(headline, 140)), y=1.02)
    fig.tight_layout()
    data = pd.concat([perf.assign(panel="a", value=f"test {metric}"),
                      profile.assign(panel="b", value="population mean"),
                      effects.assign(panel="c")], ignore_index=True)
    return fig, finish_data(data, df), headline
