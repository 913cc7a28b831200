"""Multi-path and path-length figures: paper fig. 4c-d (12, 13), 6c-d (16, 17, 21-23), 6e-f.

Each function returns ``(figure, data, headline)`` like analysis.plots.compare: NaN values
(performance, path lengths) are left out of what is drawn, the panel and the CSV's ``note`` say
so, and NoFinite is raised when nothing at all is left to draw.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import PERF, pairs, path_columns, select
from analysis.plots.common import (
    FF_COLOR, LENGTH_AXIS, NoData, NoFinite, dataset_name, finish_data, identity_line, join_notes,
    measure_name, merged_legend, missing_perf, mode_color, modes_in, n_finite, note_panel, num,
    padded_limits, perf_label, style, types_text, unpaired_note, where,
)
from analysis.plots.compare import type_summary


def fig4cd(df: pd.DataFrame, split: int, fraction: float):
    """Multi-path models vs their recurrent twins: (c) performance, (d) average path length.

    One dot per multi-path model (coloured by readout mode), identity line, Pearson r and n in
    each panel title; pairs with a NaN on either side are not drawn. Data: one row per pair.
    """
    part = select(df, None, split, fraction)
    pr = pairs(part, "multipath", "recurrent")
    if pr.empty:
        raise NoData(f"no multi-path models with a recurrent twin in {where(split, fraction)}")
    measure = measure_name(df)
    notes = [unpaired_note(part, "multipath", "recurrent", "recurrent"),
             missing_perf("multi-path", pr, measure),
             missing_perf("recurrent twins", pr, measure, col=f"ref_{PERF}")]
    panels = ((PERF, perf_label(df), "c", "performance", f"finite {measure}"),
              ("avg_path_length", LENGTH_AXIS, "d", "average path length", "average path lengths"))
    finite = {col: np.isfinite(pr[f"ref_{col}"].to_numpy(dtype=float))
              & np.isfinite(pr[col].to_numpy(dtype=float)) for col, *_ in panels}
    for col, _, _, what, _ in panels:
        k = int(finite[col].sum())
        if 0 < k < len(pr):
            notes.append(f"{what}: {len(pr) - k} of {len(pr)} pairs with a NaN (not drawn)")
        elif k == 0:
            notes.append(f"{what}: no pair with a finite value on both sides")
    if not any(f.any() for f in finite.values()):
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no multi-path/recurrent "
                       f"pair with a finite {measure} or average path length ({join_notes(*notes)})")
    style()
    fig, axes = plt.subplots(1, 2, figsize=(9.2, 4.2))
    heads = []
    for ax, (col, label, tag, what, needs) in zip(axes, panels):
        ok = finite[col]
        x, y = pr.loc[ok, f"ref_{col}"], pr.loc[ok, col]
        for mode in modes_in(pr.loc[ok, "readout"]):
            m = pr.loc[ok, "readout"] == mode
            ax.scatter(x[m], y[m], s=10, alpha=0.7, color=mode_color(mode), label=mode,
                       edgecolors="none", rasterized=True)
        identity_line(ax, *padded_limits(x, y))
        if not ok.any():
            note_panel(ax, f"no pair with {needs}\non both sides ({len(pr)} pairs)")
        r, n = stats.pearson(x, y)
        ax.set_title(f"({tag}) {what}: Pearson r = {num(r, '.3f')} (n = {n})")
        ax.set_xlabel(f"recurrent model {label}")
        ax.set_ylabel(f"multi-path model {label}")
        heads.append(f"{what} r = {num(r, '.3f')}")
    merged_legend(list(axes), title="readout mode")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\nmulti-path vs recurrent models")
    fig.tight_layout()
    keep = ["split_seed", "train_fraction", "readout", "iterations", "recurrent_layers", "channels",
            "model_seed", "config_id", "ref_config_id", PERF, f"ref_{PERF}", "avg_path_length",
            "ref_avg_path_length"]
    data = pr[[c for c in keep if c in pr.columns]].rename(columns={
        PERF: "multipath_perf", f"ref_{PERF}": "recurrent_perf",
        "avg_path_length": "multipath_avg_path_length", "ref_avg_path_length": "recurrent_avg_path_length",
        "config_id": "multipath_id", "ref_config_id": "recurrent_id"})
    return fig, finish_data(data, df, notes), f"n = {len(pr)} pairs; " + ", ".join(heads)


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


def _layer_parts(part: pd.DataFrame, split: int, fraction: float):
    """(recurrent rows, FF rows, sorted layer counts) of ``part`` (the rows of a split and
    fraction); NoData if no recurrent model is there."""
    rec, ff = select(part, "recurrent"), select(part, "ff")
    if rec.empty:
        raise NoData(f"no recurrent models in {where(split, fraction)}")
    layers = sorted(int(x) for x in rec["recurrent_layers"].dropna().unique())
    return rec, ff, layers


def fig6cd(df: pd.DataFrame, split: int, fraction: float):
    """Type-average performance vs type-average path length per readout mode (fig. 6c-d).

    One panel per number of recurrent layers; points of one mode joined in order of T; the
    size-matched FF model placed at its length (2 for 3 blocks, 4 for 5 blocks); black circles
    mark the example types of fig. 6e-f (chosen on path length alone). Types or FF models
    without a finite performance or path length are not drawn; the panel says so.
    """
    part = select(df, None, split, fraction)
    rec, ff, layers = _layer_parts(part, split, fraction)
    measure = measure_name(df)
    style()
    fig, axes = plt.subplots(1, len(layers), figsize=(4.4 * len(layers) + 1.2, 3.8), squeeze=False)
    datas, notes, any_drawn = [], [], False
    for ax, L in zip(axes[0], layers):
        rl = rec[rec["recurrent_layers"] == L]
        summ = type_summary(rl)
        ex = choose_examples(summ)
        ok = summ["perf_mean"].notna() & summ["avg_path_length"].notna()
        panel = [missing_perf("recurrent", rl, measure)]
        if 0 < summ["perf_mean"].isna().sum() < len(summ):
            panel.append(f"types without a finite {measure}: "
                         f"{types_text(summ[summ['perf_mean'].isna()])}")
        if summ["avg_path_length"].isna().any():
            panel.append("types without an average path length: "
                         f"{types_text(summ[summ['avg_path_length'].isna()])}")
        drawn = bool(ok.any())
        for mode in modes_in(summ.loc[ok, "readout"]):
            s = summ[ok & (summ["readout"] == mode)].sort_values("iterations")
            ax.plot(s["avg_path_length"], s["perf_mean"], marker="o", ms=3.5, lw=1.2,
                    color=mode_color(mode), label=mode)
        exd = ex[ex["perf_mean"].notna()]
        if len(exd):
            ax.scatter(exd["avg_path_length"], exd["perf_mean"], s=90, facecolors="none",
                       edgecolors="black", lw=1.1, zorder=5, label="example (6e-f)")
        f = ff[ff["blocks"] == 2 * L + 1]
        row_ff = None
        if not len(f):
            panel.append(f"no size-matched FF ({2 * L + 1} blocks)")
        elif n_finite(f[PERF]) == 0 or not np.isfinite(f["avg_path_length"].mean()):
            panel.append(missing_perf(f"FF ({2 * L + 1} blocks)", f, measure)
                         or f"FF ({2 * L + 1} blocks): no path length")
        else:
            panel.append(missing_perf(f"FF ({2 * L + 1} blocks)", f, measure))
            x, y, e = f["avg_path_length"].mean(), f[PERF].mean(), stats.sem(f[PERF])
            ax.errorbar([x], [y], yerr=[e] if np.isfinite(e) else None, marker="*", ms=10,
                        color=FF_COLOR, ls="", label="size-matched FF (± s.e.m.)")
            # label left of the star: the star sits at the right edge, next to the legend
            ax.annotate(f"FF, {2 * L + 1} blocks", (x, y), xytext=(-8, 4), textcoords="offset points",
                        ha="right", fontsize=7, color=FF_COLOR)
            row_ff = {"readout": "ff", "iterations": np.nan, "n_models": n_finite(f[PERF]),
                      "perf_mean": y, "perf_sem": e, "avg_path_length": x}
            drawn = True
        panel = [n for n in panel if n]
        note_panel(ax, "\n".join(panel), y=0.5 if not drawn else 0.03,
                   va="center" if not drawn else "bottom")
        any_drawn |= drawn
        notes += [f"{L} layer(s): {n}" for n in panel]
        ax.set_xlabel(LENGTH_AXIS)
        ax.set_ylabel(perf_label(df))
        ax.set_title(f"{L} recurrent layer{'s' if L > 1 else ''}")
        d = summ.assign(example=summ.index.isin(ex.index))
        if row_ff:
            d = pd.concat([d, pd.DataFrame([{**row_ff, "example": False}])], ignore_index=True)
        datas.append(d.assign(recurrent_layers=L))
    if not any_drawn:
        plt.close(fig)
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no type with a finite "
                       f"{measure} and average path length ({join_notes(*notes)})")
    merged_legend(list(axes[0]))
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}\nperformance vs average "
                 "path length (type averages)")
    fig.tight_layout()
    data = pd.concat(datas, ignore_index=True)
    heads = []
    for L, d in data[data["readout"] != "ff"].groupby("recurrent_layers"):
        r, n = stats.pearson(d["avg_path_length"], d["perf_mean"])
        heads.append(f"{int(L)} layer(s): r(length, performance) = {num(r, '.2f')} over {n} types")
    return fig, finish_data(data, df, notes), "; ".join(heads)


def fig6ef(df: pd.DataFrame, split: int, fraction: float):
    """Path-length distributions of the example types chosen by choose_examples (fig. 6e-f).

    Rows: number of recurrent layers; columns: readout mode. Bars: mean over the type's models
    of path_p{d} (fraction of total path strength at length d). Data: one row per (layers,
    readout, T, length).
    """
    part = select(df, None, split, fraction)
    rec, _, layers = _layer_parts(part, split, fraction)
    pcols = path_columns(rec)
    if not pcols or rec[pcols].isna().all().all():
        raise NoData(f"no path-length distributions (path_p columns) in {where(split, fraction)}")
    measure = measure_name(df)
    chosen = {L: choose_examples(type_summary(rec[rec["recurrent_layers"] == L])) for L in layers}
    ncol = max(len(c) for c in chosen.values())
    notes = [f"{L} layer(s): no type with an average path length" for L in layers if chosen[L].empty]
    if ncol == 0:
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no recurrent type with "
                       "a finite average path length, so no example types")
    style()
    fig, axes = plt.subplots(len(layers), ncol, figsize=(max(2.5 * ncol + 0.8, 6.0), 2.6 * len(layers) + 1.0),
                             squeeze=False, sharey=True)
    rows, heads = [], []
    for i, L in enumerate(layers):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(chosen[L]):
                ax.axis("off")
                if j == 0:
                    note_panel(ax, f"{L} layer{'s' if L > 1 else ''}: no type with an\n"
                                   "average path length")
                continue
            ex = chosen[L].iloc[j]
            m = rec[(rec["recurrent_layers"] == L) & (rec["readout"] == ex["readout"])
                    & (rec["iterations"] == ex["iterations"])]
            p = m[pcols].mean()
            lengths = np.array([int(c[6:]) for c in pcols])
            ok = p.notna().to_numpy()
            ax.bar(lengths[ok], p.to_numpy()[ok], color=mode_color(ex["readout"]), width=0.8)
            ax.set_xticks(lengths[ok])
            if not ok.any():
                note_panel(ax, "no path-length\ndistribution")
                notes.append(f"{L} layer(s), {ex['readout']} T = {int(ex['iterations'])}: "
                             "no path-length distribution")
            if not np.isfinite(ex["perf_mean"]):
                notes.append(f"{L} layer(s), {ex['readout']} T = {int(ex['iterations'])}: "
                             f"no finite {measure}")
            ax.set_title(f"{ex['readout']}, T = {int(ex['iterations'])}\navg length "
                         f"{ex['avg_path_length']:.2f}, {measure} {num(ex['perf_mean'], '.3f')}")
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
    data = pd.DataFrame(rows, columns=["recurrent_layers", "readout", "iterations", "n_models",
                                       "avg_path_length", "perf_mean", "path_length", "p"])
    return fig, finish_data(data, df, notes), "examples: " + "; ".join(heads)
