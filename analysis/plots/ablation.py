"""Path-ablation figures: paper fig. 6g-i (24, 25) for ``rm`` sets and a figure for le/ge sets.

Each function returns ``(figure, data, headline)`` like analysis.plots.compare.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from analysis.load import select
from analysis.plots.common import PERF_AXIS, NoData, dataset_name, mode_color, modes_in, style, where
from analysis.tables import ablation_table


def _first_removed(text: str) -> int:
    head = text.split("-")[0].split(",")[0]
    return int(head) if head.isdigit() else 0


def fig6gi(df: pd.DataFrame, split: int, fraction: float):
    """Performance of multi-path models with 1, 2, 3 (...) path lengths removed (fig. 6g-i).

    One row of panels per (recurrent layers, T, readout mode), one column per number of removed
    lengths. Points: mean ± s.e.m. over models of each removed set; dashed line: mean of the
    unablated multi-path partners; open circle: the worst set among the largest removal size.
    Data: the ablation_rm table rows drawn, with ``worst`` flagging the circled set.
    """
    part = select(df, None, split, fraction)
    tab = ablation_table(part, "ablation_rm")
    if tab.empty:
        raise NoData(f"no models of family ablation_rm in {where(split, fraction)}")
    tab = tab[tab["kind"] == "rm"].copy()
    if tab.empty:
        raise NoData(f"no rm ablations in {where(split, fraction)}")
    style()
    groups = []
    for (L, T), g in tab.groupby(["recurrent_layers", "iterations"]):
        for mode in modes_in(g["readout"]):
            groups.append((int(L), int(T), mode, g[g["readout"] == mode]))
    sizes = sorted(tab["n_removed"].unique())
    fig, axes = plt.subplots(len(groups), len(sizes), squeeze=False, sharey="row",
                             figsize=(2.7 * len(sizes) + 1.0, 2.5 * len(groups) + 0.8),
                             gridspec_kw={"width_ratios": [max(len(tab[tab["n_removed"] == k]["removed"].unique()), 2)
                                                           for k in sizes]})
    tab["worst"] = False
    heads = []
    for i, (L, T, mode, g) in enumerate(groups):
        full = g.sort_values("full_n_models", ascending=False)["full_mean"].dropna()
        largest = g[g["n_removed"] == g["n_removed"].max()]
        worst_idx = largest["perf_mean"].idxmin() if largest["perf_mean"].notna().any() else None
        if worst_idx is not None:
            tab.loc[worst_idx, "worst"] = True
            heads.append(f"{mode} (L{L}, T{T}): worst removal {tab.loc[worst_idx, 'removed']} "
                         f"({tab.loc[worst_idx, 'change_pct']:+.1f} %)")
        for j, k in enumerate(sizes):
            ax = axes[i, j]
            s = g[g["n_removed"] == k].copy()
            s = s.assign(_o=s["removed"].map(_first_removed)).sort_values("_o")
            x = np.arange(len(s))
            ax.errorbar(x, s["perf_mean"], yerr=s["perf_sem"], marker="o", ms=4, ls="-", lw=1,
                        capsize=2, color=mode_color(mode))
            if len(full):
                ax.axhline(full.iloc[0], ls="--", lw=1, color="black",
                           label=f"full model (n = {int(g['full_n_models'].max())})")
            if worst_idx is not None and worst_idx in s.index:
                pos = list(s.index).index(worst_idx)
                ax.scatter([pos], [s.loc[worst_idx, "perf_mean"]], s=160, facecolors="none",
                           edgecolors="black", lw=1.2, zorder=5, label="worst removal")
            ax.set_xticks(x)
            ax.set_xticklabels(s["removed"], rotation=45 if len(s) > 5 else 0)
            ax.set_xlim(-0.6, max(len(s) - 0.4, 1.4))
            n = int(s["n_models"].max()) if len(s) else 0
            ax.set_title(f"{mode}, {L} layer{'s' if L > 1 else ''}, T = {T}\nremove {k} length"
                         f"{'s' if k > 1 else ''} (n = {n})")
            ax.set_xlabel("removed path lengths")
            if j == 0:
                ax.set_ylabel(PERF_AXIS)
        handles, labels = axes[i, -1].get_legend_handles_labels()
        for ax in axes[i]:
            h, lab = ax.get_legend_handles_labels()
            for hh, ll in zip(h, lab):
                if ll not in labels:
                    handles.append(hh)
                    labels.append(ll)
        if handles:
            axes[i, -1].legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5),
                               frameon=False)
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\npath ablations "
                 "(multi-path models with path lengths removed)")
    fig.tight_layout()
    cols = ["split_seed", "train_fraction", "recurrent_layers", "iterations", "readout", "ablation",
            "removed", "n_removed", "n_models", "perf_mean", "perf_sem", "full_n_models", "full_mean",
            "change_pct", "paired_gain_pct", "paired_gain_ci_low_pct", "paired_gain_ci_high_pct",
            "wilcoxon_p", "worst", "note"]
    return fig, tab[cols], "; ".join(heads)


def fig_lege(df: pd.DataFrame, split: int, fraction: float):
    """Change in performance when keeping only lengths <= k (le) or >= k (ge), vs k.

    Rows: le, ge; columns: readout mode; one line per T (colour), y = mean over seed-averaged
    configurations of ablated / unablated multi-path partner - 1 in % (± s.e.m.).
    Data: the ablation_lege table rows drawn.
    """
    part = select(df, None, split, fraction)
    tab = ablation_table(part, "ablation_lege")
    if tab.empty:
        raise NoData(f"no models of family ablation_lege in {where(split, fraction)}")
    tab = tab[tab["kind"].isin(["le", "ge"])]
    if tab.empty:
        raise NoData(f"no le/ge ablations in {where(split, fraction)}")
    style()
    kinds = [k for k in ("le", "ge") if k in set(tab["kind"])]
    modes = modes_in(tab["readout"])
    Ts = sorted(int(t) for t in tab["iterations"].unique())
    cmap = plt.get_cmap("viridis")
    tcol = {T: cmap(0.1 + 0.75 * i / max(len(Ts) - 1, 1)) for i, T in enumerate(Ts)}
    fig, axes = plt.subplots(len(kinds), len(modes), squeeze=False, sharex=True, sharey=True,
                             figsize=(2.8 * len(modes) + 1.2, 2.6 * len(kinds) + 0.9))
    for i, kind in enumerate(kinds):
        for j, mode in enumerate(modes):
            ax = axes[i, j]
            ax.axhline(0, color="black", lw=0.8, ls="--")
            for L, gl in tab[(tab["kind"] == kind) & (tab["readout"] == mode)].groupby("recurrent_layers"):
                for T, s in gl.groupby("iterations"):
                    s = s.sort_values("k")
                    ax.errorbar(s["k"], s["paired_gain_pct"], yerr=s["paired_gain_sem_pct"],
                                marker="o", ms=3, lw=1, capsize=1.5, color=tcol[int(T)],
                                ls="-" if int(L) == 1 else ":", label=f"T = {int(T)}")
            word = "≤" if kind == "le" else "≥"
            ax.set_title(f"{mode}: keep lengths {word} k")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == len(kinds) - 1:
                ax.set_xlabel("k (path length)")
            if j == 0:
                ax.set_ylabel("change vs full\nmulti-path model (%)")
    handles = [plt.Line2D([], [], color=tcol[T], marker="o", ms=3, label=f"T = {T}") for T in Ts]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
               title="iterations")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\nkeeping only short (le) or "
                 "long (ge) paths")
    fig.tight_layout()
    worst = tab.loc[tab["paired_gain_pct"].idxmin()] if tab["paired_gain_pct"].notna().any() else None
    head = "no paired data" if worst is None else (
        f"largest loss: {worst['readout']} T={int(worst['iterations'])} {worst['ablation']} "
        f"({worst['paired_gain_pct']:+.1f} %)")
    return fig, tab, head
