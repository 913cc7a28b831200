"""Path-ablation figures: paper fig. 6g-i (24, 25) for ``rm`` sets and a figure for le/ge sets.

Each function returns ``(figure, data, headline)`` like analysis.plots.compare: ablation sets or
unablated partners without a finite performance are left out of what is drawn, the panel and the
CSV's ``note`` say so, and NoFinite is raised when nothing at all is left to draw.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from analysis.load import select
from analysis.plots.common import (
    NoData, NoFinite, dataset_name, finish_data, join_notes, measure_name, missing_perf, mode_color,
    modes_in, note_panel, num, perf_label, style, where,
)
from analysis.tables import ablation_table


def _ablation_notes(part: pd.DataFrame, tab: pd.DataFrame, family: str, measure: str) -> list[str]:
    """What an ablation figure cannot draw: ablated models with NaN performance, sets whose
    unablated partners are missing or NaN."""
    rows = select(part, family)
    notes = [missing_perf(f"ablated models ({family})", rows, measure)]
    no_full = int((tab["full_n_models"] == 0).sum())
    if no_full:
        notes.append(f"{no_full} of {len(tab)} ablation sets without an unablated multi-path partner "
                     f"with a finite {measure} (partner missing or NaN)")
    return notes


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
    measure = measure_name(df)
    notes = _ablation_notes(part, tab, "ablation_rm", measure)
    if tab["perf_mean"].isna().all() and tab["full_mean"].isna().all():
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no ablated or unablated "
                       f"multi-path model with a finite {measure} ({join_notes(*notes)})")
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
            change = num(tab.loc[worst_idx, "change_pct"], "+.1f")
            vs = f"{change} %" if change != "n/a" else "no full model to compare with"
            heads.append(f"{mode} (L{L}, T{T}): worst removal {tab.loc[worst_idx, 'removed']} ({vs})")
        else:
            notes.append(f"{mode} (L{L}, T{T}): no ablation set with a finite {measure}")
        if not len(full):
            notes.append(f"{mode} (L{L}, T{T}): no unablated multi-path partner with a finite {measure}")
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
            missing = []
            if len(s) and s["perf_mean"].isna().all():
                missing.append(f"no finite {measure}")
            elif s["perf_mean"].isna().any():
                missing.append(f"no finite {measure}: " + ", ".join(s.loc[s["perf_mean"].isna(), "removed"]))
            if not len(full) and j == 0:
                missing.append(f"full model: no finite {measure}")
            note_panel(ax, "\n".join(missing), y=0.03, va="bottom")
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
                ax.set_ylabel(perf_label(df))
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
            "p", "wilcoxon_p", "worst", "note"]
    data = tab[[c for c in cols if c in tab.columns]]
    return fig, finish_data(data, df, notes), "; ".join(heads) or f"no ablation set with a finite {measure}"


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
    measure = measure_name(df)
    notes = _ablation_notes(part, tab, "ablation_lege", measure)
    gone = int(tab["paired_gain_pct"].isna().sum())
    if gone == len(tab):
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no le/ge ablation with a "
                       f"finite {measure} on both sides of the pair ({join_notes(*notes)})")
    if gone:
        notes.append(f"{gone} of {len(tab)} le/ge sets without a paired change (not drawn)")
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
            panel = tab[(tab["kind"] == kind) & (tab["readout"] == mode)]
            if len(panel) and panel["paired_gain_pct"].isna().all():
                note_panel(ax, f"no pair with a\nfinite {measure}")
            for L, gl in panel.groupby("recurrent_layers"):
                for T, s in gl.groupby("iterations"):
                    s = s[s["paired_gain_pct"].notna()].sort_values("k")
                    if s.empty:
                        continue
                    ax.errorbar(s["k"], s["paired_gain_pct"], yerr=s["paired_gain_sem_pct"],
                                marker="o", ms=3, lw=1, capsize=1.5, color=tcol[int(T)],
                                ls="-" if int(L) == 1 else ":", label=f"T = {int(T)}")
            word = "≤" if kind == "le" else "≥"
            ax.set_title(f"{mode}: keep lengths {word} k")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == len(kinds) - 1:
                ax.set_xlabel("k (path length)")
            if j == 0:
                ax.set_ylabel(f"{perf_label(df)}:\nchange vs full multi-path model (%)")
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
    return fig, finish_data(tab, df, notes), head
