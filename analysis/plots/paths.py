"""Multi-path and path-length figures: paper fig. 4c-d (12, 13), 6c-d (16, 17, 21-23), 6e-f.

Each function returns ``(figure, data, headline)`` like analysis.plots.compare.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import PERF, pairs, path_columns, select
from analysis.plots.common import (
    FF_COLOR, LENGTH_AXIS, PERF_AXIS, NoData, dataset_name, identity_line, mode_color, modes_in,
    padded_limits, style, where,
)
from analysis.plots.compare import type_summary


def fig4cd(df: pd.DataFrame, split: int, fraction: float):
    """Multi-path models vs their recurrent twins: (c) performance, (d) average path length.

    One dot per multi-path model (coloured by readout mode), identity line, Pearson r and n in
    each panel title. Data: one row per pair.
    """
    part = select(df, None, split, fraction)
    pr = pairs(part, "multipath", "recurrent")
    if pr.empty:
        raise NoData(f"no multi-path models with a recurrent twin in {where(split, fraction)}")
    style()
    fig, axes = plt.subplots(1, 2, figsize=(9.2, 4.2))
    heads = []
    for ax, col, label, tag in ((axes[0], PERF, PERF_AXIS, "c"),
                                (axes[1], "avg_path_length", LENGTH_AXIS, "d")):
        x, y = pr[f"ref_{col}"], pr[col]
        for mode in modes_in(pr["readout"]):
            m = pr["readout"] == mode
            ax.scatter(x[m], y[m], s=10, alpha=0.7, color=mode_color(mode), label=mode,
                       edgecolors="none", rasterized=True)
        identity_line(ax, *padded_limits(x, y))
        r, n = stats.pearson(x, y)
        what = "performance" if col == PERF else "average path length"
        ax.set_title(f"({tag}) {what}: Pearson r = {r:.3f} (n = {n})")
        ax.set_xlabel(f"recurrent model {label}")
        ax.set_ylabel(f"multi-path model {label}")
        heads.append(f"{what} r = {r:.3f}")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="readout mode")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\nmulti-path vs recurrent models")
    fig.tight_layout()
    keep = ["split_seed", "train_fraction", "readout", "iterations", "recurrent_layers", "channels",
            "model_seed", "config_id", "ref_config_id", PERF, f"ref_{PERF}", "avg_path_length",
            "ref_avg_path_length"]
    data = pr[[c for c in keep if c in pr.columns]].rename(columns={
        PERF: "multipath_perf", f"ref_{PERF}": "recurrent_perf",
        "avg_path_length": "multipath_avg_path_length", "ref_avg_path_length": "recurrent_avg_path_length",
        "config_id": "multipath_id", "ref_config_id": "recurrent_id"})
    return fig, data, f"n = {len(pr)} pairs; " + ", ".join(heads)


def choose_examples(summ: pd.DataFrame) -> pd.DataFrame:
    """One type (readout, T) per readout mode with average path lengths as similar as possible.

    ``summ``: type_summary() rows of one layer count. Among the combinations with one T per
    mode (T >= 2 where available: T = 1 has a single path), picks the one with the smallest
    range of type-average path lengths; ties go to the longer mean length. Returns the chosen
    rows (subset of ``summ``), in mode order.
    """
    summ = summ[np.isfinite(summ["avg_path_length"])]
    if summ.empty:
        return summ
    if (summ["iterations"] >= 2).any():
        summ = summ[summ["iterations"] >= 2]
    modes = modes_in(summ["readout"])
    options = [summ[summ["readout"] == m].index.tolist() for m in modes]
    best, best_key = None, None
    for combo in itertools.product(*options):
        lens = summ.loc[list(combo), "avg_path_length"].to_numpy()
        key = (round(float(lens.max() - lens.min()), 9), -float(lens.mean()))
        if best_key is None or key < best_key:
            best, best_key = combo, key
    return summ.loc[list(best)]


def _layer_parts(part: pd.DataFrame):
    rec, ff = select(part, "recurrent"), select(part, "ff")
    if rec.empty:
        raise NoData("no recurrent models")
    layers = sorted(int(x) for x in rec["recurrent_layers"].dropna().unique())
    return rec, ff, layers


def fig6cd(df: pd.DataFrame, split: int, fraction: float):
    """Type-average performance vs type-average path length per readout mode (fig. 6c-d).

    One panel per number of recurrent layers; points of one mode joined in order of T; the
    size-matched FF model placed at its length (2 for 3 blocks, 4 for 5 blocks); black circles
    mark the example types of fig. 6e-f.
    """
    part = select(df, None, split, fraction)
    try:
        rec, ff, layers = _layer_parts(part)
    except NoData:
        raise NoData(f"no recurrent models in {where(split, fraction)}") from None
    style()
    fig, axes = plt.subplots(1, len(layers), figsize=(4.4 * len(layers) + 1.2, 3.8), squeeze=False)
    datas = []
    for ax, L in zip(axes[0], layers):
        summ = type_summary(rec[rec["recurrent_layers"] == L])
        ex = choose_examples(summ)
        for mode in modes_in(summ["readout"]):
            s = summ[summ["readout"] == mode].sort_values("iterations")
            ax.plot(s["avg_path_length"], s["perf_mean"], marker="o", ms=3.5, lw=1.2,
                    color=mode_color(mode), label=mode)
        ax.scatter(ex["avg_path_length"], ex["perf_mean"], s=90, facecolors="none",
                   edgecolors="black", lw=1.1, zorder=5, label="example (6e-f)")
        f = ff[ff["blocks"] == 2 * L + 1]
        row_ff = None
        if len(f):
            x, y, e = f["avg_path_length"].mean(), f[PERF].mean(), stats.sem(f[PERF])
            ax.errorbar([x], [y], yerr=[e] if np.isfinite(e) else None, marker="*", ms=10,
                        color=FF_COLOR, ls="", label="size-matched FF (± s.e.m.)")
            # label left of the star: the star sits at the right edge, next to the legend
            ax.annotate(f"FF, {2 * L + 1} blocks", (x, y), xytext=(-8, 4), textcoords="offset points",
                        ha="right", fontsize=7, color=FF_COLOR)
            row_ff = {"readout": "ff", "iterations": np.nan, "n_models": len(f), "perf_mean": y,
                      "perf_sem": e, "avg_path_length": x}
        ax.set_xlabel(LENGTH_AXIS)
        ax.set_ylabel(PERF_AXIS)
        ax.set_title(f"{L} recurrent layer{'s' if L > 1 else ''}")
        d = summ.assign(example=summ.index.isin(ex.index))
        if row_ff:
            d = pd.concat([d, pd.DataFrame([{**row_ff, "example": False}])], ignore_index=True)
        datas.append(d.assign(recurrent_layers=L))
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\nperformance vs average "
                 "path length (type averages)")
    fig.tight_layout()
    data = pd.concat(datas, ignore_index=True)
    heads = []
    for L, d in data[data["readout"] != "ff"].groupby("recurrent_layers"):
        r, n = stats.pearson(d["avg_path_length"], d["perf_mean"])
        heads.append(f"{int(L)} layer(s): r(length, performance) = {r:.2f} over {n} types")
    return fig, data, "; ".join(heads)


def fig6ef(df: pd.DataFrame, split: int, fraction: float):
    """Path-length distributions of the example types chosen by choose_examples (fig. 6e-f).

    Rows: number of recurrent layers; columns: readout mode. Bars: mean over the type's models
    of path_p{d} (fraction of total path strength at length d). Data: one row per (layers,
    readout, T, length).
    """
    part = select(df, None, split, fraction)
    try:
        rec, _, layers = _layer_parts(part)
    except NoData:
        raise NoData(f"no recurrent models in {where(split, fraction)}") from None
    pcols = path_columns(rec)
    if not pcols or rec[pcols].isna().all().all():
        raise NoData(f"no path-length distributions (path_p columns) in {where(split, fraction)}")
    style()
    chosen = {L: choose_examples(type_summary(rec[rec["recurrent_layers"] == L])) for L in layers}
    ncol = max(len(c) for c in chosen.values())
    fig, axes = plt.subplots(len(layers), ncol, figsize=(max(2.5 * ncol + 0.8, 6.0), 2.6 * len(layers) + 1.0),
                             squeeze=False, sharey=True)
    rows, heads = [], []
    for i, L in enumerate(layers):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(chosen[L]):
                ax.axis("off")
                continue
            ex = chosen[L].iloc[j]
            m = rec[(rec["recurrent_layers"] == L) & (rec["readout"] == ex["readout"])
                    & (rec["iterations"] == ex["iterations"])]
            p = m[pcols].mean()
            lengths = np.array([int(c[6:]) for c in pcols])
            ok = p.notna().to_numpy()
            ax.bar(lengths[ok], p.to_numpy()[ok], color=mode_color(ex["readout"]), width=0.8)
            ax.set_xticks(lengths[ok])
            ax.set_title(f"{ex['readout']}, T = {int(ex['iterations'])}\navg length "
                         f"{ex['avg_path_length']:.2f}, perf {ex['perf_mean']:.3f}")
            ax.set_xlabel("path length (convs)")
            if j == 0:
                ax.set_ylabel(f"{L} layer{'s' if L > 1 else ''}\nfraction of path strength")
            for d, v in zip(lengths[ok], p.to_numpy()[ok]):
                rows.append({"recurrent_layers": L, "readout": ex["readout"],
                             "iterations": int(ex["iterations"]), "n_models": len(m),
                             "avg_path_length": ex["avg_path_length"], "perf_mean": ex["perf_mean"],
                             "path_length": int(d), "p": float(v)})
        row_lengths = [r["path_length"] for r in rows if r["recurrent_layers"] == L]
        if row_lengths:
            for ax in axes[i]:
                ax.set_xlim(min(row_lengths) - 0.6, max(row_lengths) + 0.6)
        ex = chosen[L]
        heads.append(f"{L} layer(s): " + ", ".join(f"{r.readout} T={int(r.iterations)} "
                                                    f"(len {r.avg_path_length:.2f})" for r in ex.itertuples()))
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\npath-length distributions "
                 "of types with similar average length")
    fig.tight_layout()
    return fig, pd.DataFrame(rows), "examples: " + "; ".join(heads)
