"""Recurrent vs feed-forward figures: paper fig. 3a (9, 10, 26), 3d-f (11, 27) and 6a-b (14, 15, 18-20).

Every function takes the whole results table plus the split seed (and training fraction) and
returns ``(figure, data, headline)``: the matplotlib figure, the numbers drawn (written next to
the figure as CSV, with the performance measure in ``metric`` and what could not be drawn in
``note``) and a one-line headline. Models whose performance is NaN are left out and the panel
says so; raises NoData when the needed models are absent and NoFinite when none of them has a
finite performance.

Performance is the table's measure (``perf``: CC_norm^2, or CC_raw without a noise ceiling);
the "best" type of fig. 3d-f and 6a-b is the one with the highest mean *validation*
performance (``val_perf``), as in table 1, and its test performance is what is shown. The best
FF (the FF depth with the highest mean validation performance, analysis.tables.ff_depths) is
drawn as a dashed line next to the size-matched FF, and the baselines of the split
(``baselines``: analysis.load.read_baselines; the truth ceiling and the drive-only predictor)
as labelled horizontal lines; without baselines none are drawn.

The CSV of fig. 3a, 3d and 6a-b has a column ``series`` saying what each row is: "pair" (fig.
3a: one dot), "recurrent" (a recurrent type), "size-matched FF" (the size-matched FF line),
"FF depth" (an FF depth, ``best_ff`` marking the best FF; fig. 3d draws every depth, the others
the best FF's line), "baseline" (``predictor``, ``description``, ``perf_mean``).
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import PERF, VAL_PERF, fraction_text, pairs, select
from analysis.tables import (best_cell, comparison_units, ff_depths,
                             size_matched_ff)
from analysis.plots.common import (
    BEST_FF_COLOR, FF_COLOR, NoData, NoFinite, baseline_rows, dataset_name, draw_baselines,
    finish_data, fraction_colors, identity_line, join_notes, measure_name, merged_legend,
    missing_perf, mode_color, modes_in, n_finite, note_panel, num, padded_limits, perf_label,
    style, types_text, unpaired_note, where,
)

BEST_LABEL = "best (chosen on validation)"


def _best_ff_rows(depths: pd.DataFrame) -> pd.DataFrame:
    """The best FF of each split and fraction of :func:`ff_depths` with a finite test mean, as
    figure-CSV rows (series "FF depth", best_ff True)."""
    best = depths[depths["best"].astype(bool) & depths["perf_mean"].notna()]
    return _depth_rows(best)


def _depth_rows(depths: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`ff_depths` as figure-CSV rows: series "FF depth", readout "ff", blocks,
    n_models, perf_mean, perf_sem, val_perf_mean, size_matched, best_ff."""
    return pd.DataFrame({
        "series": "FF depth", "readout": "ff", "train_fraction": depths["train_fraction"].to_numpy(),
        "blocks": depths["blocks"].to_numpy(), "n_models": depths["n_models"].to_numpy(),
        "perf_mean": depths["perf_mean"].to_numpy(), "perf_sem": depths["perf_sem"].to_numpy(),
        "val_perf_mean": depths["val_mean"].to_numpy(),
        "size_matched": depths["size_matched"].to_numpy(dtype=bool),
        "best_ff": depths["best"].to_numpy(dtype=bool)})


def _flags(data: pd.DataFrame) -> pd.DataFrame:
    """The boolean columns of a figure's CSV (best, best_ff, size_matched) False where a row
    does not set them."""
    for col in ("best", "best_ff", "size_matched"):
        if col in data.columns:
            data[col] = data[col].fillna(False).astype(bool)
    return data


def _best_ff_label(row) -> str:
    return f"best FF ({int(row['blocks'])} blocks, chosen on validation)"


def _cell_units(part: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Recurrent/FF pairs of a split as the units of each (fraction, readout, T) cell's paired
    statistics (comparison_units), and the units' name(s)."""
    model_pairs = pairs(part, "recurrent", "ff")
    if model_pairs.empty:
        return model_pairs, ""
    frames, names = [], []
    for _, cell in model_pairs.groupby(["train_fraction", "readout", "iterations"]):
        units, name = comparison_units(cell)
        frames.append(units)
        names.append(name)
    return pd.concat(frames, ignore_index=True), " / ".join(dict.fromkeys(names))


def fig3a(df: pd.DataFrame, split: int, baselines: pd.DataFrame | None = None):
    """24 panels (rows readout mode, columns T): recurrent vs matched FF models, one dot per
    unit of replication of the cell's paired statistics (analysis.tables.comparison_units:
    configurations with seeds averaged, or the seeds of a single configuration).

    Dots coloured by training fraction; dashed identity line; in every panel a dashed
    horizontal line per fraction at the best FF's test mean (in the fraction's colour) and the
    split's baselines. Pairs with a NaN performance on either side are not drawn and not
    counted. Data: one row per aggregated pair (series "pair": split_seed, train_fraction,
    readout, iterations, recurrent_layers, channels, ..., n_seeds, ff_perf, recurrent_perf), one
    per fraction's best FF (series "FF depth") and per baseline (series "baseline"), metric,
    note.
    """
    part = select(df, None, split)
    pr, units = _cell_units(part)
    if pr.empty:
        raise NoData(f"no recurrent models with a feed-forward partner in split {split}")
    measure, label = measure_name(df), perf_label(df)
    x, y = pr[f"ref_{PERF}"].to_numpy(dtype=float), pr[PERF].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    notes = [unpaired_note(part, "recurrent", "ff", "FF"),
             missing_perf("recurrent", select(part, "recurrent"), measure),
             missing_perf("FF", select(part, "ff"), measure)]
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} of {len(pr)} pairs ({units}) without a finite "
                     f"{measure} on both sides (not drawn)")
    if not ok.any():
        raise NoFinite(f"{dataset_name(part)}, {where(split)}: no recurrent/FF pair with a finite "
                       f"{measure} ({join_notes(*notes)})")
    style()
    modes = modes_in(pr["readout"])
    Ts = sorted(int(t) for t in pr["iterations"].unique())
    colors = fraction_colors(pr["train_fraction"])
    fig, axes = plt.subplots(len(modes), len(Ts), figsize=(max(1.75 * len(Ts) + 1.3, 6.5),
                                                           1.75 * len(modes) + 1.6),
                             sharex=True, sharey=True, squeeze=False)
    fin = pr[ok]
    best_ff = _best_ff_rows(ff_depths(part))
    best_ff = best_ff[best_ff["train_fraction"].isin(list(colors))]
    bl = baseline_rows(baselines, split)
    lo, hi = padded_limits(x[ok], y[ok], best_ff["perf_mean"], bl["perf_mean"])
    for i, mode in enumerate(modes):
        for j, T in enumerate(Ts):
            ax = axes[i, j]
            cell = fin[(fin["readout"] == mode) & (fin["iterations"] == T)]
            for frac, c in cell.groupby("train_fraction"):
                ax.scatter(c[f"ref_{PERF}"], c[PERF], s=9, alpha=0.75, color=colors[frac],
                           edgecolors="none", rasterized=True)
            for b in best_ff.itertuples():
                ax.axhline(b.perf_mean, color=colors[b.train_fraction], ls="--", lw=0.9, zorder=1)
            draw_baselines(ax, bl)
            identity_line(ax, lo, hi)
            if len(cell):
                win = float((cell[PERF] > cell[f"ref_{PERF}"]).mean())
                ax.text(0.04, 0.96, f"{100 * win:.0f} % above", transform=ax.transAxes,
                        ha="left", va="top", fontsize=7, color="#444444")
            elif ((pr["readout"] == mode) & (pr["iterations"] == T)).any():
                note_panel(ax, f"no pair with\nfinite {measure}")
            if i == 0:
                ax.set_title(f"T = {T}")
            if j == 0:
                ax.set_ylabel(mode, fontweight="bold")
            ax.tick_params(labelsize=7)
            ax.locator_params(nbins=4)
    handles = [plt.Line2D([], [], ls="", marker="o", color=colors[f],
                          label=fraction_text(f, select(part, None, None, f))) for f in sorted(colors)]
    handles += [plt.Line2D([], [], ls="--", color=colors[b.train_fraction],
                           label=f"best FF, {fraction_text(b.train_fraction)}: {int(b.blocks)} "
                                 f"blocks (chosen on validation), {b.perf_mean:.3f}")
                for b in best_ff.itertuples()]
    handles += [h for h, _ in zip(*axes[0, 0].get_legend_handles_labels())]
    n_per = fin.groupby(["train_fraction", "readout", "iterations"]).size()
    legend_rows = -(-len(handles) // 3)
    fig.legend(handles=handles, title=f"training data (up to {int(n_per.max())} pairs per panel "
               "and fraction) and reference lines", loc="upper center",
               ncol=min(len(handles), 3), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.supxlabel(f"feed-forward model {label}")
    fig.supylabel(f"recurrent model {label}")
    overall = float((fin[PERF] > fin[f"ref_{PERF}"]).mean())
    headline = f"recurrent above matched FF in {100 * overall:.0f} % of {len(fin)} pairs ({units})"
    if (~ok).any():
        headline += f" ({int((~ok).sum())} pairs with NaN {measure} left out)"
    fig.suptitle(f"{dataset_name(part)}, {where(split)}: recurrent vs size-matched FF models"
                 f"\n{headline}", y=1.06)
    fig.tight_layout(rect=(0, 0, 1, 0.95 - 0.025 * (legend_rows - 1)))
    data = pr.rename(columns={PERF: "recurrent_perf", f"ref_{PERF}": "ff_perf"})
    keep = [c for c in ["split_seed", "train_fraction", "readout", "iterations", "recurrent_layers",
                        "channels", "act", "first_block_order", "loss", "model_seed", "n_seeds",
                        "ff_perf",
                        "recurrent_perf"] if c in data.columns]
    data = _flags(pd.concat([data[keep].assign(series="pair"),
                             best_ff.assign(split_seed=int(split)),
                             bl.assign(split_seed=int(split))], ignore_index=True))
    return fig, finish_data(data, df, notes), headline


def type_summary(rec: pd.DataFrame) -> pd.DataFrame:
    """Per (readout, iterations), in readout-mode order then T: n_models (with a finite test
    performance), mean and s.e.m. of the test performance, mean validation performance
    (``val_perf_mean``, the selection criterion) and mean average path length. NaN values are
    left out of each mean; a type whose models are all NaN has a NaN mean."""
    rows = []
    for (mode, T), c in rec.groupby(["readout", "iterations"]):
        rows.append({"readout": mode, "iterations": int(T), "n_models": int(c[PERF].notna().sum()),
                     "perf_mean": c[PERF].mean(), "perf_sem": stats.sem(c[PERF]),
                     "val_perf_mean": c[VAL_PERF].mean() if VAL_PERF in c.columns else math.nan,
                     "avg_path_length": c["avg_path_length"].mean()})
    out = pd.DataFrame(rows, columns=["readout", "iterations", "n_models", "perf_mean", "perf_sem",
                                      "val_perf_mean", "avg_path_length"])
    if out.empty:
        return out
    order = {m: i for i, m in enumerate(modes_in(out["readout"]))}
    return (out.assign(_o=out["readout"].map(order)).sort_values(["_o", "iterations"])
            .drop(columns="_o").reset_index(drop=True))


def _ff_summary(ff: pd.DataFrame) -> dict:
    return {"series": "size-matched FF", "readout": "ff", "iterations": np.nan,
            "n_models": int(ff[PERF].notna().sum()),
            "perf_mean": ff[PERF].mean() if len(ff) else math.nan, "perf_sem": stats.sem(ff[PERF]),
            "val_perf_mean": ff[VAL_PERF].mean() if len(ff) and VAL_PERF in ff.columns else math.nan,
            "avg_path_length": ff["avg_path_length"].mean() if len(ff) else math.nan}


def perf_vs_T_panel(ax, rec: pd.DataFrame, ff: pd.DataFrame, df: pd.DataFrame,
                    ff_name: str = "size-matched FF", ff_label: str | None = None,
                    best_ff: pd.Series | None = None, baselines: pd.DataFrame | None = None,
                    ) -> tuple[pd.DataFrame, str, list[str], bool]:
    """Draw performance vs T per readout mode (s.e.m. bars), the size-matched FF mean with its
    s.e.m. band, the best FF's mean (dashed) and the baselines (labelled lines).

    ``df`` is the whole table (for the measure's name); ``ff_name`` names the FF models in notes
    and ``ff_label`` is the legend label of the FF line (default: name, ± s.e.m. and n);
    ``best_ff``: the best FF's row of analysis.tables.ff_depths (None: no line);
    ``baselines``: rows of analysis.plots.common.baseline_rows. NaN performances are left out;
    types or an FF line with nothing finite are not drawn, and the panel says so. The best type
    is chosen on validation performance (analysis.tables.best_cell) and circled.

    Returns the drawn numbers (one row per type, in mode order, with ``best`` marking the type
    chosen on validation, plus one "size-matched FF" row; the best FF and the baselines are
    left to the caller), the headline (the best type's test performance and its gain over the
    size-matched FF and the best FF averages), the notes on what is missing and whether anything
    was drawn.
    """
    measure, label = measure_name(df), perf_label(df)
    summ = type_summary(rec)
    ffs = _ff_summary(ff)
    notes = [missing_perf("recurrent", rec, measure)]
    gone = summ[summ["perf_mean"].isna()]
    if len(gone) and len(gone) < len(summ):
        notes.append(f"types without a finite {measure}: {types_text(gone)}")
    if not len(ff):
        notes.append(f"no {ff_name} models")
    else:
        notes.append(missing_perf(ff_name, ff, measure))
    Ts = sorted(summ["iterations"].unique())
    step = float(np.min(np.diff(Ts))) if len(Ts) > 1 else 1.0
    modes = modes_in(summ["readout"])
    offsets = dict(zip(modes, np.linspace(-0.12, 0.12, max(len(modes), 1)) * step))
    drawn = False
    for mode in modes:
        s = summ[(summ["readout"] == mode) & summ["perf_mean"].notna()].sort_values("iterations")
        if s.empty:
            continue
        ax.errorbar(s["iterations"] + offsets[mode], s["perf_mean"], yerr=s["perf_sem"], marker="o",
                    ms=3.5, lw=1.2, capsize=2, color=mode_color(mode), label=mode)
        drawn = True
    if ffs["n_models"]:
        m, e = ffs["perf_mean"], ffs["perf_sem"]
        ax.axhline(m, color=FF_COLOR, lw=1.4,
                   label=ff_label or f"{ff_name} ± s.e.m. (n = {ffs['n_models']})")
        if np.isfinite(e):
            ax.axhspan(m - e, m + e, color=FF_COLOR, alpha=0.12, lw=0)
        drawn = True
    has_best_ff = best_ff is not None and np.isfinite(best_ff["perf_mean"])
    if has_best_ff:
        ax.axhline(best_ff["perf_mean"], color=BEST_FF_COLOR, ls="--", lw=1.3,
                   label=_best_ff_label(best_ff))
    if baselines is not None:
        draw_baselines(ax, baselines)
    ax.set_xticks(Ts)
    if Ts:
        ax.set_xlim(Ts[0] - 0.5 * step, Ts[-1] + 0.5 * step)
    ax.set_xlabel("number of iterations T")
    ax.set_ylabel(label)
    summ["best"] = False
    best = best_cell(summ, "val_perf_mean")
    if not len(summ):
        headline = "no recurrent models"
    elif best is None:
        headline = f"no best type marked: no validation {measure}"
        notes.append(headline)
    else:
        summ.loc[best.name, "best"] = True
        mode, T = best["readout"], int(best["iterations"])
        headline = f"{BEST_LABEL}: {mode}, T = {T}: test {num(best['perf_mean'])}"
        if np.isfinite(best["perf_mean"]):
            ax.scatter([T + offsets[mode]], [best["perf_mean"]], s=110, facecolors="none",
                       edgecolors="black", lw=1.1, zorder=5, label=BEST_LABEL)
            gains = []
            if ffs["n_models"] and ffs["perf_mean"] > 0:
                gains.append(f"{100 * (best['perf_mean'] / ffs['perf_mean'] - 1):+.2f} % vs "
                             f"{ff_name} {ffs['perf_mean']:.4f}")
            if has_best_ff and best_ff["perf_mean"] > 0:
                gains.append(f"{100 * (best['perf_mean'] / best_ff['perf_mean'] - 1):+.2f} % vs "
                             f"best FF ({int(best_ff['blocks'])} blocks) {best_ff['perf_mean']:.4f}")
            if gains:
                headline += f" ({'; '.join(gains)})"
    notes = [n for n in notes if n]
    note_panel(ax, "\n".join(notes), y=0.5 if not drawn else 0.03, va="center" if not drawn else "bottom")
    data = pd.concat([summ.assign(series="recurrent"), pd.DataFrame([{**ffs, "best": False}])],
                     ignore_index=True)
    return data, headline, notes, drawn


def ff_depth_panel(ax, depths: pd.DataFrame, baselines: pd.DataFrame, label: str) -> bool:
    """Every FF depth of a split and fraction (rows of analysis.tables.ff_depths): test mean ±
    s.e.m. against the number of blocks, size-matched depths filled, the best FF circled, and
    the baselines as lines. Returns whether a depth was drawn."""
    d = depths[depths["perf_mean"].notna()]
    for matched, g in d.groupby("size_matched"):
        ax.errorbar(g["blocks"], g["perf_mean"], yerr=g["perf_sem"], ls="", marker="s", ms=5,
                    capsize=2, color=FF_COLOR, mfc=FF_COLOR if matched else "white",
                    label="FF depth, size-matched" if matched else "FF depth, other")
    best = d[d["best"].astype(bool)]
    if len(best):
        ax.scatter(best["blocks"], best["perf_mean"], s=150, facecolors="none",
                   edgecolors=BEST_FF_COLOR, lw=1.4, zorder=5, label="best FF (chosen on validation)")
    draw_baselines(ax, baselines)
    blocks = sorted(int(b) for b in depths["blocks"])
    ax.set_xticks(blocks)
    if blocks:
        ax.set_xlim(blocks[0] - 0.6, blocks[-1] + 0.6)
    ax.set_xlabel("FF depth (blocks)")
    ax.set_ylabel(label)
    ax.set_title("feed-forward, every depth")
    return bool(len(d))


def _wrap(text: str, width: int = 58) -> str:
    """A headline broken into lines for a panel title."""
    return textwrap.fill(text, width, break_long_words=False)


def fig3d(df: pd.DataFrame, split: int, fraction: float, baselines: pd.DataFrame | None = None):
    """Performance vs T per readout mode (all recurrent models) with the size-matched FF average,
    the best FF and the baselines as lines (fig. 3d-f), and on the left every FF depth.

    The best type (highest mean validation performance) is circled, and so is the best FF
    depth; the headline gives the best type's test performance and its gain over the
    size-matched FF and the best FF averages.
    """
    part = select(df, None, split, fraction)
    rec, ff = select(part, "recurrent"), size_matched_ff(part)
    if rec.empty:
        raise NoData(f"no recurrent models in {where(split, fraction)}")
    depths = ff_depths(part)
    best_ff = _best_ff_rows(depths)
    bl = baseline_rows(baselines, split)
    style()
    fig, (axd, ax) = plt.subplots(1, 2, figsize=(7.6, 3.8), sharey=True,
                                  gridspec_kw={"width_ratios": [1, 3.2]})
    data, headline, notes, drawn = perf_vs_T_panel(
        ax, rec, ff, df, best_ff=best_ff.iloc[0] if len(best_ff) else None, baselines=bl)
    if not drawn:
        plt.close(fig)
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: nothing to draw "
                       f"({join_notes(*notes)})")
    ff_depth_panel(axd, depths, bl, perf_label(df))
    ax.set_ylabel("")
    ax.set_title(f"{dataset_name(part)}, {where(split, fraction, part)}\n{_wrap(headline)}")
    merged_legend([axd, ax], title="readout mode and reference lines")
    fig.tight_layout()
    data = _flags(pd.concat([data, _depth_rows(depths), bl], ignore_index=True))
    return fig, finish_data(data.assign(recurrent_layers="all"), df, notes), headline


def fig6ab(df: pd.DataFrame, split: int, fraction: float, baselines: pd.DataFrame | None = None):
    """Performance vs T per readout mode, one panel per number of recurrent layers (fig. 6a-b).

    The FF line of a panel is the size-matched FF (2 * layers + 1 blocks); the dashed line is the
    best FF of the split and fraction, the others the baselines; the best type of a panel is
    chosen on validation performance and circled.
    """
    part = select(df, None, split, fraction)
    rec, ff = select(part, "recurrent"), select(part, "ff")
    if rec.empty:
        raise NoData(f"no recurrent models in {where(split, fraction)}")
    layers = sorted(int(x) for x in rec["recurrent_layers"].dropna().unique())
    if not layers:
        raise NoData(f"no recurrent models with a number of recurrent layers in {where(split, fraction)}")
    best_ff = _best_ff_rows(ff_depths(part))
    bl = baseline_rows(baselines, split)
    style()
    fig, axes = plt.subplots(1, len(layers), figsize=(4.4 * len(layers) + 1.2, 3.6), squeeze=False)
    datas, heads, notes, any_drawn = [], [], [], False
    for ax, L in zip(axes[0], layers):
        f = ff[ff["blocks"] == 2 * L + 1]
        d, h, n, drawn = perf_vs_T_panel(ax, rec[rec["recurrent_layers"] == L], f, df,
                                         ff_name=f"FF ({2 * L + 1} blocks)",
                                         ff_label="size-matched FF ± s.e.m.",
                                         best_ff=best_ff.iloc[0] if len(best_ff) else None,
                                         baselines=bl)
        any_drawn |= drawn
        ax.set_title(f"{L} recurrent layer{'s' if L > 1 else ''} (FF: {2 * L + 1} blocks, "
                     f"n = {n_finite(f[PERF])})\n{_wrap(h)}")
        datas.append(pd.concat([d, best_ff, bl], ignore_index=True).assign(recurrent_layers=L))
        heads.append(f"{L} layer(s): {h}")
        notes += [f"{L} layer(s): {x}" for x in n]
    if not any_drawn:
        plt.close(fig)
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: nothing to draw "
                       f"({join_notes(*notes)})")
    merged_legend(list(axes[0]), title="readout mode and reference lines")
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}")
    fig.tight_layout()
    return fig, finish_data(_flags(pd.concat(datas, ignore_index=True)), df, notes), "; ".join(heads)
