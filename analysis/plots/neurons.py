"""Per-neuron comparison of the best recurrent cell with its size-matched feed-forward models.

``fig_neurons(df, split, fraction, neurons)`` takes the results table (analysis.load), the
split seed, the training fraction and the per-neuron table (``results/{dataset}/neurons.csv``,
analysis.aggregate: config_id, neuron, test_cc_norm2, test_cc_raw, test_cc_max) and returns
``(figure, data, headline)`` like the other figure functions.

Which models: the recurrent models of the best (readout mode, T) cell of the split and
fraction, chosen on mean *validation* performance (analysis.tables.best_cell on the
analysis.tables.recurrent_vs_ff cells, as Table 1 does), all layer counts, configurations and
seeds, that have their size-matched FF partner (``partner_id``) in the table; the FF models
are those partners. Per neuron: the mean over the recurrent models and the mean over the FF
models of the neuron's test value of the dataset's measure (``test_cc_norm2``, or
``test_cc_raw`` when the table's measure is CC_raw; ``test_cc_raw`` squared for CC_raw^2), and
its ceiling (``test_cc_max``, mean over all those models). NaN values are left out of each
mean; a neuron without a finite value on both sides is not drawn and the figure says so.

Left panel: FF (x) vs recurrent (y) per neuron with the identity line. Right panel: the
difference (recurrent - FF) per neuron against its noise ceiling, with a zero line (against the
neuron index when no neuron has a ceiling, e.g. one trial per stimulus). The share of neurons
improved (recurrent > FF) has a 95 % exact binomial (Clopper-Pearson) interval,
``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``, which treats the neurons as
independent (they share stimuli and models, so the interval is optimistic).

CSV: one row per drawn neuron, sorted by ceiling (series "neuron": neuron, ceiling, ff_perf,
recurrent_perf, diff) with split_seed, train_fraction, readout, iterations (the chosen cell),
n_recurrent_models, n_ff_models, n_improved, n_neurons, share_improved, share_ci_low,
share_ci_high, share_ci (how the interval is computed), metric and note.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.load import metric_of, select
from analysis.plots.common import (
    FF_COLOR, NoData, NoFinite, dataset_name, finish_data, identity_line, join_notes,
    measure_name, mode_color, padded_limits, perf_label, style, unpaired_note, where,
)
from analysis.tables import best_cell, recurrent_vs_ff

#: how the interval of the share of neurons improved is computed (CSV column ``share_ci``)
SHARE_CI = "95 % exact binomial (Clopper-Pearson); neurons treated as independent"
NEURON_COLUMNS = ["neuron", "ceiling", "ff_perf", "recurrent_perf", "diff"]


def neuron_values(neurons: pd.DataFrame, metric: str) -> pd.Series:
    """The per-neuron value of the measure ``metric`` in rows of the neurons table."""
    if metric == "cc_raw2" and "test_cc_raw2" not in neurons.columns:
        return pd.to_numeric(neurons["test_cc_raw"], errors="coerce") ** 2
    col = f"test_{metric}"
    if col not in neurons.columns:
        raise NoData(f"the neurons table has no column {col}")
    return pd.to_numeric(neurons[col], errors="coerce")


def share_improved(diff) -> dict:
    """Share of neurons with a positive difference, over the finite differences ``diff``:
    n_improved, n_neurons, share_improved, share_ci_low, share_ci_high (95 % exact binomial
    interval, neurons treated as independent; NaN without neurons)."""
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    k, n = int((d > 0).sum()), int(len(d))
    if n == 0:
        return {"n_improved": 0, "n_neurons": 0, "share_improved": np.nan,
                "share_ci_low": np.nan, "share_ci_high": np.nan}
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"n_improved": k, "n_neurons": n, "share_improved": k / n,
            "share_ci_low": float(ci.low), "share_ci_high": float(ci.high)}


def chosen_models(df: pd.DataFrame, split: int, fraction: float):
    """(best cell, recurrent rows of the cell with their partner present, their FF partners,
    notes) for a split and fraction; raises NoData without recurrent/FF pairs."""
    part = select(df, None, split, fraction)
    rec_all = select(part, "recurrent")
    if rec_all.empty:
        raise NoData(f"no recurrent models in split {split}, fraction {fraction}")
    cells = recurrent_vs_ff(part)
    best = best_cell(cells)
    if best is None:
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no recurrent cell "
                       f"has a validation {measure_name(df)}, so none can be chosen")
    mode, T = best["readout"], int(best["iterations"])
    cell = rec_all[(rec_all["readout"] == mode) & (rec_all["iterations"] == T)]
    ff_all = select(part, "ff")
    paired = cell[cell["partner_id"].isin(set(ff_all["config_id"]))]
    if paired.empty:
        raise NoData(f"no recurrent models of the chosen cell ({mode}, T = {T}) with a "
                     f"feed-forward partner in split {split}")
    ff = ff_all[ff_all["config_id"].isin(set(paired["partner_id"]))]
    notes = [unpaired_note(pd.concat([cell, ff_all]), "recurrent", "ff", "FF")]
    return best, paired, ff, notes


def per_neuron(neurons: pd.DataFrame, rec: pd.DataFrame, ff: pd.DataFrame,
               metric: str) -> pd.DataFrame:
    """One row per neuron (in index order): neuron, ceiling (mean test_cc_max over the models of
    both sides), ff_perf and recurrent_perf (mean over the side's models of the neuron's value of
    ``metric``), diff (recurrent_perf - ff_perf). NaN values are left out of each mean."""
    rows = neurons[neurons["config_id"].isin(set(rec["config_id"]) | set(ff["config_id"]))].copy()
    rows["_value"] = neuron_values(rows, metric)
    rows["_ceiling"] = (pd.to_numeric(rows["test_cc_max"], errors="coerce")
                        if "test_cc_max" in rows.columns else np.nan)
    rec_ids, ff_ids = set(rec["config_id"]), set(ff["config_id"])
    ids = sorted(pd.to_numeric(rows["neuron"]).astype(int).unique())
    out = pd.DataFrame({"neuron": ids})
    by = rows.assign(neuron=pd.to_numeric(rows["neuron"]).astype(int)).groupby("neuron")
    out["ceiling"] = by["_ceiling"].mean().reindex(ids).to_numpy(dtype=float)
    for name, side in (("ff_perf", ff_ids), ("recurrent_perf", rec_ids)):
        sub = rows[rows["config_id"].isin(side)].assign(
            neuron=lambda r: pd.to_numeric(r["neuron"]).astype(int))
        out[name] = sub.groupby("neuron")["_value"].mean().reindex(ids).to_numpy(dtype=float)
    out["diff"] = out["recurrent_perf"] - out["ff_perf"]
    return out


def fig_neurons(df: pd.DataFrame, split: int, fraction: float,
                neurons: pd.DataFrame | None = None):
    """Per-neuron recurrent vs size-matched FF of the validation-best cell (module docstring)."""
    if neurons is None or neurons.empty:
        raise NoData("no per-neuron table (results/{dataset}/neurons.csv, pass --neurons)")
    best, rec, ff, notes = chosen_models(df, split, fraction)
    mode, T = best["readout"], int(best["iterations"])
    measure, label = measure_name(df), perf_label(df)
    metric = metric_of(df)
    table = per_neuron(neurons, rec, ff, metric)
    if table.empty:
        raise NoData(f"the neurons table has no rows for the chosen models ({mode}, T = {T})")
    ok = np.isfinite(table["ff_perf"]) & np.isfinite(table["recurrent_perf"])
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} of {len(table)} neurons without a finite {measure} "
                     "on both sides (not drawn)")
    part = select(df, None, split, fraction)
    if not ok.any():
        raise NoFinite(f"{dataset_name(part)}, {where(split, fraction, part)}: no neuron with a "
                       f"finite {measure} for both the recurrent and the FF models "
                       f"({join_notes(*notes)})")
    drawn = table[ok].sort_values(["ceiling", "neuron"], na_position="last").reset_index(drop=True)
    share = share_improved(drawn["diff"])
    has_ceiling = bool(np.isfinite(drawn["ceiling"]).any())
    if not has_ceiling:
        notes.append("no neuron has a noise ceiling: differences drawn in neuron order")
    elif drawn["ceiling"].isna().any():
        notes.append(f"{int(drawn['ceiling'].isna().sum())} drawn neurons without a ceiling "
                     "(not in the right panel)")

    style()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    color = mode_color(mode)
    ax1.scatter(drawn["ff_perf"], drawn["recurrent_perf"], s=14, alpha=0.75, color=color,
                edgecolors="none", rasterized=True)
    identity_line(ax1, *padded_limits(drawn["ff_perf"], drawn["recurrent_perf"]))
    ax1.set_xlabel(f"size-matched FF (mean of {len(ff)} models)\n{label}")
    ax1.set_ylabel(f"recurrent {mode}, T = {T} (mean of {len(rec)} models)\n{label}")
    ax1.text(0.04, 0.96, f"{share['n_improved']} of {share['n_neurons']} above the diagonal",
             transform=ax1.transAxes, ha="left", va="top", fontsize=8, color="#444444")
    x = drawn["ceiling"] if has_ceiling else drawn["neuron"]
    ax2.scatter(x, drawn["diff"], s=14, alpha=0.75, color=color, edgecolors="none",
                rasterized=True)
    ax2.axhline(0.0, color=FF_COLOR, lw=0.9, ls="--", zorder=0)
    ax2.set_xlabel("noise ceiling CC$_{max}$ of the neuron (test, mean over the models)"
                   if has_ceiling else "neuron (index; no noise ceiling)")
    ax2.set_ylabel(f"recurrent - FF ({measure})")
    pct = f"{100 * share['share_improved']:.0f} %"
    ci = f"[{100 * share['share_ci_low']:.0f} %, {100 * share['share_ci_high']:.0f} %]"
    headline = (f"recurrent ({mode}, T = {T}, chosen on validation) above size-matched FF for "
                f"{share['n_improved']} of {share['n_neurons']} neurons ({pct}, 95 % CI {ci}, "
                "exact binomial, neurons treated as independent)")
    text_notes = join_notes(*notes)
    fig.suptitle(f"{dataset_name(part)}, {where(split, fraction, part)}: per-neuron {measure}, "
                 f"recurrent vs size-matched FF\n" + "\n".join(textwrap.wrap(headline, 110))
                 + ("\n" + "\n".join(textwrap.wrap(text_notes, 110)) if text_notes else ""),
                 y=1.02)
    fig.tight_layout()

    data = drawn[NEURON_COLUMNS].assign(
        series="neuron", split_seed=int(split), train_fraction=float(fraction), readout=mode,
        iterations=T, n_recurrent_models=len(rec), n_ff_models=len(ff), **share,
        share_ci=SHARE_CI)
    return fig, finish_data(data, df, notes), headline
