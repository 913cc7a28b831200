"""Tables computed from the results table (paper tables 1 and 3, plus paired statistics).

Definitions (performance = the dataset's measure on the test stimuli, column ``perf``:
CC_norm^2, or CC_raw for a dataset without noise ceiling; see analysis.load):

- *Size-matched FF* (paper table 1 column 2, "FF average"): the feed-forward models that are
  some recurrent model's partner (``partner_id``: ``2 * recurrent_layers + 1`` blocks, same
  hyperparameters and seed), of the split and training fraction; mean with its s.e.m. over
  models. FF models of other depths are not part of it (they would mix depths).
- *Best FF*: among the FF depths (``blocks``) of a split and training fraction, the one with the
  highest mean **validation** performance over its models (ties: fewer blocks); its models'
  test performance is what is reported for it (:func:`ff_depths`, :func:`best_ff_blocks`).
- *Type average* of a recurrent type or *cell* (readout mode, T): mean over all recurrent models
  of that type (both layer counts, all hyperparameters and seeds), s.e.m. over models.
- *Gain* (paper table 1 column 4): ``type average / size-matched FF average - 1``, in %;
  ``bestff_gain_pct`` the same over the best FF's average.
- *Best cell*: the cell with the highest mean **validation** performance (never the test
  performance, which is what is reported for it). The paper chose on test data; doing so turns
  noise into a gain (the maximum of 8 noisy cells is biased upwards). With ``selection =
  "seed_halves"`` the best cell and the best FF are chosen on the validation performance of the
  first half of the initialisation seeds and reported from the models of the other half alone,
  so the estimate shares no trained model with the choice.
- *All cells*: the mean of the type averages over every cell looked at, reported next to the
  best cell with the number of cells.
- *Paired statistics* (beyond the paper, analysis.stats): each recurrent model is paired with
  its size-matched FF partner (columns without prefix) and with the best-FF model of the same
  configuration apart from the architecture (same split, fraction, channels, activation,
  first-block order, loss and seed; columns ``bestff_*``). The unit of replication
  (:func:`comparison_units`, column ``unit``) is a configuration, its seeds averaged; a
  comparison with exactly one configuration has its seeds as units instead (pairs matched on
  ``model_seed``). Effect: mean paired difference with a t-interval; relative gain: ratio of
  means with Fieller's interval; p: paired t-test (Wilcoxon signed-rank alongside); Holm-adjusted
  p over the cells of a (split, fraction). Below ``stats.MIN_PAIRS`` pairs no interval or
  p-value. For *all cells* (``all_*``, ``all_bestff_*``), the unit is an FF configuration,
  paired with the mean of all its recurrent partners over the cells.
- *Baselines* (``truth_perf``, ``drive_perf``): the test performance of the split's
  non-model predictors from ``results/{dataset}/baselines.csv`` (analysis.load.read_baselines):
  the simulator's true mean rates (the ceiling any model can reach) and the circuit's
  feed-forward drive alone (what a model without context could reach); NaN when absent.

Multi-path vs recurrent and ablated vs unablated multi-path models use the same paired
statistics with their own partners.

Entry point: ``python -m analysis.tables NAME --results results/D/results.csv --csv OUT.csv
--md OUT.md [--metric M] [--selection S] [--baselines results/D/baselines.csv]`` with NAME one
of table1, recurrent_vs_ff, multipath_vs_recurrent, ablation_rm, ablation_lege.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

from analysis import stats
from analysis.labels import blocks_label, fmt, join_notes
from analysis.load import (
    ARCH_COLUMNS, METRIC_CHOICES, PERF, READOUT_MODES, VAL_PERF, baseline_value, config_columns,
    failed_note, fraction_label, fraction_text, metric_of, n_train_of, pairs, perf_text,
    read_baselines, read_results, removed_lengths, seed_average, select, set_text, study_rows,
)
from rcpb.atomic_files import write_text_atomic
from rcpb.errors import RcpbError

SELECTIONS = ("validation", "seed_halves")

#: the units of replication of a paired comparison (column ``unit``)
UNIT_CONFIGS = "configurations, seeds averaged"
UNIT_SEEDS = "seeds of the one configuration"

PAIRED_COLUMNS = [
    "n_pairs", "unit", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
    "paired_gain_sem_pct", "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p", "wilcoxon_p",
]
#: predictors of baselines.csv with a column of their own in Table 1 and the cells table
BASELINE_PREDICTORS = ("truth", "drive")
BASELINE_COLUMNS = [f"{p}_perf" for p in BASELINE_PREDICTORS]
#: the best FF of a (split, fraction): depth, models, validation mean (the criterion), test mean
BESTFF_COLUMNS = ["bestff_blocks", "bestff_n_models", "bestff_val_mean", "bestff_mean",
                  "bestff_sem"]


def _mode_order(modes) -> list[str]:
    known = [m for m in READOUT_MODES if m in set(modes)]
    return known + sorted(set(modes) - set(known))


def _paired_columns(treat, ref, unit: str = UNIT_CONFIGS) -> dict:
    """Paired statistics (analysis.stats.paired_comparison) of two aligned arrays, gains in %;
    ``unit`` names what a pair is."""
    s = stats.paired_comparison(np.asarray(treat, dtype=float), np.asarray(ref, dtype=float))
    return {
        "n_pairs": s["n_pairs"], "unit": unit, "diff_mean": s["diff_mean"],
        "diff_ci_low": s["diff_ci_low"], "diff_ci_high": s["diff_ci_high"],
        "paired_gain_pct": 100 * s["gain"], "paired_gain_sem_pct": 100 * s["gain_se"],
        "paired_gain_ci_low_pct": 100 * s["gain_ci_low"],
        "paired_gain_ci_high_pct": 100 * s["gain_ci_high"],
        "p": s["p"], "wilcoxon_p": s["wilcoxon_p"], "note": s["note"],
    }


def comparison_units(model_pairs: pd.DataFrame, pool=()) -> tuple[pd.DataFrame, str]:
    """The units of replication of one comparison and their name (UNIT_CONFIGS or UNIT_SEEDS).

    ``model_pairs``: one row per model with ``perf`` and its reference's ``ref_perf`` (from
    analysis.load.pairs or :func:`best_ff_pairs`). A unit is a configuration: the rows are
    averaged over ``model_seed`` (analysis.load.seed_average), then over the configuration
    columns in ``pool`` (e.g. readout and iterations for "all cells"). When that leaves exactly
    one unit with finite values on both sides, the seeds are the units instead: the rows are
    averaged within each ``model_seed`` (pairs matched on the seed), so one configuration with
    6 seeds gives 6 pairs. Returns a frame with ``perf`` and ``ref_perf``, one row per unit.
    """
    values = [PERF, f"ref_{PERF}"]
    if model_pairs.empty:
        return pd.DataFrame(columns=values), UNIT_CONFIGS
    keys = [c for c in config_columns(model_pairs)
            if not c.startswith("ref_") and c not in pool and c != "n_seeds"]
    units = seed_average(model_pairs, values)
    if pool:
        units = units.groupby(keys, dropna=False)[values].mean().reset_index()
    if int(units[values].notna().all(axis=1).sum()) != 1:
        return units, UNIT_CONFIGS
    seeds = model_pairs.groupby([*keys, "model_seed"], dropna=False)[values].mean().reset_index()
    return seeds, UNIT_SEEDS


def _compare(model_pairs: pd.DataFrame, pool=(), prefix: str = "") -> dict:
    """Paired columns (PAIRED_COLUMNS and ``note``, under ``prefix``) of one comparison's model
    pairs, over its units of replication (:func:`comparison_units`)."""
    units, unit = comparison_units(model_pairs, pool)
    out = _paired_columns(units[PERF], units[f"ref_{PERF}"], unit)
    return {prefix + k: v for k, v in out.items()}


def _add_holm(out: pd.DataFrame, family_keys: list[str], prefix: str = "") -> pd.DataFrame:
    out[prefix + "p_holm"] = np.nan
    if out.empty:
        return out
    for _, idx in out.groupby(family_keys, dropna=False).groups.items():
        out.loc[idx, prefix + "p_holm"] = stats.holm(out.loc[idx, prefix + "p"].to_numpy())
    return out


def seed_averaged_pairs(df: pd.DataFrame, family: str, partner_family: str) -> pd.DataFrame:
    """Pairs (family row, partner row) averaged over initialisation seeds.

    Returns one row per configuration with ``perf``, ``ref_perf``, ``val_perf``,
    ``ref_val_perf``, ``avg_path_length``, ``ref_avg_path_length`` (seed means) and ``n_seeds``.
    """
    p = pairs(df, family, partner_family)
    return seed_average(p, [PERF, f"ref_{PERF}", VAL_PERF, f"ref_{VAL_PERF}", "avg_path_length",
                            "ref_avg_path_length"])


# --------------------------------------------------------------------------- feed-forward depths


def size_matched_ff(df: pd.DataFrame) -> pd.DataFrame:
    """The FF rows of ``df`` that are the partner of some recurrent row of ``df``."""
    ids = set(select(df, "recurrent")["partner_id"])
    ff = select(df, "ff")
    return ff[ff["config_id"].isin(ids)]


def ff_depths(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (split_seed, train_fraction, blocks) of the FF models of ``df``.

    Columns: split_seed, train_fraction, blocks, n_models (with a finite test performance),
    val_mean (mean validation performance: the selection criterion), perf_mean, perf_sem (test),
    size_matched (some recurrent model of the split and fraction has a partner of this depth),
    best (the best FF: the depth with the highest val_mean of its split and fraction; ties:
    fewer blocks). Sorted by split, fraction, blocks.
    """
    cols = ["split_seed", "train_fraction", "blocks", "n_models", "val_mean", "perf_mean",
            "perf_sem", "size_matched", "best"]
    ff = select(df, "ff")
    ff = ff[ff["blocks"].notna()]
    rows = []
    for (split, frac), part in ff.groupby(["split_seed", "train_fraction"]):
        matched = set(size_matched_ff(select(df, None, split, frac))["config_id"])
        for blocks, d in part.groupby("blocks"):
            rows.append({"split_seed": int(split), "train_fraction": float(frac),
                         "blocks": int(blocks), "n_models": int(d[PERF].notna().sum()),
                         "val_mean": d[VAL_PERF].mean(), "perf_mean": d[PERF].mean(),
                         "perf_sem": stats.sem(d[PERF]),
                         "size_matched": bool(d["config_id"].isin(matched).any()), "best": False})
    out = pd.DataFrame(rows, columns=cols)
    for _, g in out.groupby(["split_seed", "train_fraction"]):
        best = best_cell(g, "val_mean")
        if best is not None:
            out.loc[best.name, "best"] = True
    return out


def best_ff_blocks(depths: pd.DataFrame) -> dict:
    """{(split_seed, train_fraction): blocks of the best FF} from :func:`ff_depths`."""
    chosen = depths[depths["best"].astype(bool)]
    return {(int(s), float(f)): int(b) for s, f, b in
            zip(chosen["split_seed"], chosen["train_fraction"], chosen["blocks"])}


def _chosen(best_blocks: dict, split, frac):
    """The best FF's blocks for (split, fraction) in ``best_blocks`` (None when there is none)."""
    for (s, f), b in best_blocks.items():
        if s == int(split) and math.isclose(f, float(frac), abs_tol=1e-9):
            return b
    return None


def match_columns(df: pd.DataFrame) -> list[str]:
    """Columns on which a model is matched with the best FF model: the configuration columns
    other than the architecture's (analysis.load.ARCH_COLUMNS), and ``model_seed``."""
    return [c for c in config_columns(df) if c not in ARCH_COLUMNS] + ["model_seed"]


def best_ff_pairs(df: pd.DataFrame, family: str = "recurrent",
                  best_blocks: dict | None = None) -> pd.DataFrame:
    """Rows of ``family`` joined with the best-FF model of the same configuration (one row per
    model), the reference's columns under the prefix ``ref_`` (``ref_perf``, ``ref_val_perf``,
    ``ref_avg_path_length``, ``ref_config_id``, ``ref_blocks``), as analysis.load.pairs.

    ``best_blocks``: {(split, fraction): blocks} (default: :func:`best_ff_blocks` of ``df``).
    The best-FF model matches on :func:`match_columns` (split, fraction, channels, activation,
    first-block order, loss, ..., seed). Rows without such a model are dropped.
    """
    rows = select(df, family)
    if best_blocks is None:
        best_blocks = best_ff_blocks(ff_depths(df))
    ff = select(df, "ff")
    keep = [(_chosen(best_blocks, s, f) == b) for s, f, b in
            zip(ff["split_seed"], ff["train_fraction"], ff["blocks"])]
    ff = ff[np.asarray(keep, dtype=bool)] if len(ff) else ff
    keys = match_columns(df)
    ref = ff[[*keys, PERF, VAL_PERF, "avg_path_length", "config_id", "blocks"]]
    ref = ref.drop_duplicates(keys).rename(
        columns={c: f"ref_{c}" for c in (PERF, VAL_PERF, "avg_path_length", "config_id", "blocks")})
    return rows.merge(ref, on=keys, how="inner")


def _ff_columns(ff: pd.DataFrame, prefix: str = "ff_") -> dict:
    """n_models, mean and s.e.m. of the test performance of FF rows, under ``prefix``."""
    return {f"{prefix}n_models": int(ff[PERF].notna().sum()),
            f"{prefix}mean": ff[PERF].mean() if len(ff) else math.nan,
            f"{prefix}sem": stats.sem(ff[PERF])}


def _blocks_text(ff: pd.DataFrame) -> str:
    """'3, 5': the depths of FF rows."""
    return ", ".join(str(int(b)) for b in sorted(ff["blocks"].dropna().unique()))


def _bestff_columns(choose: pd.DataFrame, report: pd.DataFrame, split, frac) -> tuple[dict, dict]:
    """BESTFF_COLUMNS of a split and fraction: the depth chosen on the validation performance
    of ``choose``, reported from the FF models of ``report``; and the choice
    {(split, fraction): blocks} ({} when no FF has a validation performance)."""
    d = ff_depths(select(choose, None, split, frac))
    chosen = best_ff_blocks(d)
    blocks = _chosen(chosen, split, frac)
    if blocks is None:
        return {c: math.nan for c in BESTFF_COLUMNS}, chosen
    val = d.loc[d["blocks"] == blocks, "val_mean"].iloc[0]
    ff = select(report, "ff", split, frac)
    ff = ff[ff["blocks"] == blocks]
    return {"bestff_blocks": blocks, "bestff_val_mean": val, **_ff_columns(ff, "bestff_")}, chosen


def _baseline_columns(baselines: pd.DataFrame | None, split) -> dict:
    return {f"{p}_perf": baseline_value(baselines, split, p) for p in BASELINE_PREDICTORS}


def _gain(mean, ref_mean) -> float:
    return 100 * (mean / ref_mean - 1) if ref_mean > 0 else math.nan


# --------------------------------------------------------------------------- recurrent vs FF

CELL_COLUMNS = [
    "split_seed", "train_fraction", "n_train", "readout", "iterations", "n_models",
    "perf_mean", "perf_sem", "val_mean", "ff_blocks", "ff_n_models", "ff_mean", "ff_sem",
    "gain_pct", *PAIRED_COLUMNS, "p_holm", "note", *BESTFF_COLUMNS, "bestff_gain_pct",
    *[f"bestff_{c}" for c in PAIRED_COLUMNS], "bestff_p_holm", "bestff_note", *BASELINE_COLUMNS,
]


def recurrent_vs_ff(df: pd.DataFrame, baselines: pd.DataFrame | None = None,
                    best_blocks: dict | None = None) -> pd.DataFrame:
    """The 24-cell table: one row per (split_seed, train_fraction, readout, iterations).

    Columns (CELL_COLUMNS): split_seed, train_fraction, n_train, readout, iterations, n_models,
    perf_mean, perf_sem, val_mean (mean validation performance of the cell's models: the
    selection criterion); the size-matched FF of the split and fraction: ff_blocks (its depths,
    "3, 5"), ff_n_models, ff_mean, ff_sem, gain_pct (paper definition), the paired columns
    (PAIRED_COLUMNS, each recurrent model vs its partner), p_holm, note; the best FF:
    bestff_blocks, bestff_n_models, bestff_val_mean, bestff_mean, bestff_sem, bestff_gain_pct
    (perf_mean / bestff_mean - 1, %), bestff_* paired columns (each recurrent model vs the
    best-FF model of its configuration), bestff_p_holm, bestff_note; the baselines of the split
    (truth_perf, drive_perf; NaN without ``baselines``, see analysis.load.read_baselines).

    ``best_blocks``: {(split, fraction): blocks} of the best FF (default: chosen on the
    validation performance of ``df``'s FF models, :func:`ff_depths`).
    """
    rows = []
    rec_all = select(df, "recurrent")
    if best_blocks is None:
        best_blocks = best_ff_blocks(ff_depths(df))
    matched = pairs(df, "recurrent", "ff")
    best = best_ff_pairs(df, "recurrent", best_blocks)
    for (split, frac), rec in rec_all.groupby(["split_seed", "train_fraction"]):
        part = select(df, None, split, frac)
        ff = size_matched_ff(part)
        blocks = _chosen(best_blocks, split, frac)
        bff = select(part, "ff")
        bff = bff[bff["blocks"] == blocks] if blocks is not None else bff.iloc[:0]
        d = ff_depths(part)
        bestff = {"bestff_blocks": blocks if blocks is not None else math.nan,
                  "bestff_val_mean": d.loc[d["blocks"] == blocks, "val_mean"].mean()
                  if blocks is not None else math.nan,
                  **_ff_columns(bff, "bestff_")}
        cell_pairs, cell_best = select(matched, None, split, frac), select(best, None, split, frac)
        for (mode, T), cell in rec.groupby(["readout", "iterations"]):
            perf = cell[PERF].mean()
            in_cell = {"readout": mode, "iterations": T}
            row = {
                "split_seed": int(split), "train_fraction": float(frac),
                "n_train": _n_train(df, split, frac), "readout": mode, "iterations": int(T),
                "n_models": int(cell[PERF].notna().sum()), "perf_mean": perf,
                "perf_sem": stats.sem(cell[PERF]), "val_mean": cell[VAL_PERF].mean(),
                "ff_blocks": _blocks_text(ff), **_ff_columns(ff),
                **bestff, **_baseline_columns(baselines, split),
            }
            row["gain_pct"] = _gain(perf, row["ff_mean"])
            row["bestff_gain_pct"] = _gain(perf, row["bestff_mean"])
            row.update(_compare(_in(cell_pairs, in_cell)))
            row.update(_compare(_in(cell_best, in_cell), prefix="bestff_"))
            if not len(select(part, "ff")):
                row["note"] = join_notes("no feed-forward models", row["note"])
            elif not len(ff):
                row["note"] = join_notes("no size-matched feed-forward models", row["note"])
            if blocks is None and len(select(part, "ff")):
                row["bestff_note"] = join_notes("no best FF: no FF model has a validation "
                                                "performance", row["bestff_note"])
            rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in CELL_COLUMNS if not c.endswith("p_holm")])
    out = _add_holm(out, ["split_seed", "train_fraction"])
    out = _add_holm(out, ["split_seed", "train_fraction"], "bestff_")
    out = _sort_modes(out, ["split_seed", "train_fraction", "readout", "iterations"])
    return out[CELL_COLUMNS]


def _in(rows: pd.DataFrame, values: dict) -> pd.DataFrame:
    """Rows of ``rows`` whose columns equal ``values`` ({column: value})."""
    if rows.empty:
        return rows
    m = np.ones(len(rows), dtype=bool)
    for col, v in values.items():
        m &= (rows[col] == v).to_numpy()
    return rows[m]


def _n_train(df, split, frac) -> float:
    return n_train_of(select(df, None, split, frac))


def _sort_modes(out: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if out.empty or "readout" not in out.columns:
        return out.reset_index(drop=True)
    order = {m: i for i, m in enumerate(_mode_order(out["readout"].unique()))}
    key = out["readout"].map(order)
    return (out.assign(_k=key).sort_values([c if c != "readout" else "_k" for c in by])
            .drop(columns="_k").reset_index(drop=True))


def best_cell(cells: pd.DataFrame, column: str = "val_mean") -> pd.Series | None:
    """The row of ``cells`` (the (readout mode, T) cells or types of one split and fraction, or
    the FF depths) with the highest mean validation performance ``column``; None if no row has
    one. Ties: the first in table order (readout mode order, then T; fewer blocks). The one
    place a best cell or best FF is chosen: Table 1, the figures and the headlines, never on
    test data."""
    c = cells[cells[column].notna()]
    if not len(c):
        return None
    return c.loc[c[column].idxmax()]


def _seed_halves(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(first half of the model seeds, second half) of the rows; None with fewer than 2 seeds."""
    seeds = sorted(df["model_seed"].unique())
    if len(seeds) < 2:
        return None
    first = seeds[: (len(seeds) + 1) // 2]
    in_first = df["model_seed"].isin(first)
    return df[in_first], df[~in_first]


#: cells pooled into one unit by "all cells": the size-matched FF configuration is one per
#: layer count, the best-FF configuration one for every recurrent model of a configuration
_ALL_POOL = ("readout", "iterations")
_ALL_BESTFF_POOL = ("readout", "iterations", "recurrent_layers")


def table1(df: pd.DataFrame, cells: pd.DataFrame | None = None,
           selection: str = "validation", baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper table 1 / 3: one row per (split_seed, train_fraction) present among FF or recurrent rows.

    Columns (TABLE1_COLUMNS): split_seed, train_fraction, training_data ("25 % (350)"),
    selection; the size-matched FF: ff_blocks, ff_n_models, ff_mean, ff_sem; the best FF
    (BESTFF_COLUMNS: bestff_blocks, bestff_n_models, bestff_val_mean, bestff_mean, bestff_sem);
    the baselines truth_perf, drive_perf; n_cells, cells_mean (mean over cells of the type
    averages), cells_gain_pct (cells_mean / ff_mean - 1, %); all_* (paired statistics over FF
    configurations, each paired with the mean of its recurrent partners over all cells:
    all_n_pairs, all_unit, all_diff_mean, all_diff_ci_low, all_diff_ci_high,
    all_paired_gain_pct, all_paired_gain_ci_low_pct, all_paired_gain_ci_high_pct, all_p,
    all_note) and all_bestff_* (the same against the best-FF configurations); best_readout,
    best_iterations (the cell with the highest validation mean), best_val_mean, best_perf_mean
    (its test value), best_perf_sem, gain_pct (best cell's type average / size-matched FF
    average - 1), the paired columns of the best cell vs the size-matched FF, bestff_gain_pct and
    bestff_* paired columns (the best cell vs the best FF), bestff_note, note. With
    ``selection = "seed_halves"`` the best cell and the best FF come from the first half of the
    seeds and every best_* / bestff_* / paired value of the best cell from the second half (see
    the module docstring).
    """
    if selection not in SELECTIONS:
        raise RcpbError(f"selection {selection!r}: unknown; use one of {', '.join(SELECTIONS)}.")
    if cells is None:
        cells = recurrent_vs_ff(df, baselines)
    rows = []
    sub = df[df["family"].isin(["ff", "recurrent"])]
    for (split, frac), part in sub.groupby(["split_seed", "train_fraction"]):
        ff = size_matched_ff(part)
        c = cells[(cells["split_seed"] == split) & np.isclose(cells["train_fraction"], frac)]
        c = c[c["perf_mean"].notna()]
        cells_mean = c["perf_mean"].mean() if len(c) else math.nan
        choose, report, note = part, part, ""
        if selection == "seed_halves":
            halves = _seed_halves(part)
            if halves is None:
                note = "seed_halves needs at least 2 model seeds: chosen on validation instead"
            else:
                choose, report = halves
        bestff, chosen = _bestff_columns(choose, report, split, frac)
        row = {
            "split_seed": int(split), "train_fraction": float(frac),
            "training_data": fraction_text(frac, part), "selection": selection,
            "ff_blocks": _blocks_text(ff), **_ff_columns(ff), **bestff,
            **_baseline_columns(baselines, split), "n_cells": int(len(c)), "cells_mean": cells_mean,
        }
        row["cells_gain_pct"] = _gain(cells_mean, row["ff_mean"])
        row.update(_compare(pairs(part, "recurrent", "ff"), _ALL_POOL, "all_"))
        row.update(_compare(best_ff_pairs(report, "recurrent", chosen), _ALL_BESTFF_POOL,
                            "all_bestff_"))
        if choose is part:
            choose_from, report_from = c, c
        else:
            choose_from = recurrent_vs_ff(choose)
            report_from = recurrent_vs_ff(report, best_blocks=chosen)
        best = best_cell(choose_from)
        reported = [*PAIRED_COLUMNS, "bestff_gain_pct", *[f"bestff_{k}" for k in PAIRED_COLUMNS],
                    "bestff_note"]
        if best is not None:
            mode, T = best["readout"], int(best["iterations"])
            rep = report_from[(report_from["readout"] == mode) & (report_from["iterations"] == T)]
            rep = rep.iloc[0] if len(rep) else pd.Series(
                {"perf_mean": np.nan, "perf_sem": np.nan, "gain_pct": np.nan,
                 **{k: np.nan for k in reported}, "bestff_note": "",
                 "note": "the chosen cell has no models in the second half of the seeds"})
            row.update({
                "best_readout": mode, "best_iterations": T, "best_val_mean": best["val_mean"],
                "best_perf_mean": rep["perf_mean"], "best_perf_sem": rep["perf_sem"],
                "gain_pct": rep["gain_pct"], **{k: rep[k] for k in reported},
                "note": join_notes(note, rep["note"] if isinstance(rep["note"], str) else ""),
            })
        else:
            row.update({"best_readout": "", "best_iterations": np.nan, "best_val_mean": np.nan,
                        "best_perf_mean": np.nan, "best_perf_sem": np.nan, "gain_pct": np.nan,
                        **{k: np.nan for k in reported}, "bestff_note": "",
                        "note": "no recurrent models with validation performance"
                        if len(c) else "no recurrent models"})
        if not len(select(part, "ff")):
            row["note"] = join_notes("no feed-forward models", row["note"])
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


ALL_COLUMNS = ["n_pairs", "unit", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
               "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p"]
TABLE1_COLUMNS = [
    "split_seed", "train_fraction", "training_data", "selection", "ff_blocks", "ff_n_models",
    "ff_mean", "ff_sem", *BESTFF_COLUMNS, *BASELINE_COLUMNS, "n_cells", "cells_mean",
    "cells_gain_pct", *[f"all_{k}" for k in ALL_COLUMNS], "all_note",
    *[f"all_bestff_{k}" for k in ALL_COLUMNS], "all_bestff_note", "best_readout",
    "best_iterations", "best_val_mean", "best_perf_mean", "best_perf_sem", "gain_pct",
    *PAIRED_COLUMNS, "bestff_gain_pct", *[f"bestff_{k}" for k in PAIRED_COLUMNS], "bestff_note",
    "note",
]


# --------------------------------------------------------------------------- multipath vs recurrent


def multipath_vs_recurrent(df: pd.DataFrame) -> pd.DataFrame:
    """Multi-path models vs their recurrent twins, per (split, fraction, readout, T) and pooled.

    One row per cell plus one row per (split, fraction) with readout "all" (pooled over
    readouts, T and layers). Columns: split_seed, train_fraction, readout, iterations,
    n_models, multipath_mean, recurrent_mean (means over the units), paired columns (gain =
    multipath / recurrent - 1, over seed-averaged pairs; see comparison_units), pearson_r_perf, pearson_r_length (over individual model pairs,
    as in fig. 4c-d), p_holm, note.
    """
    ind = pairs(df, "multipath", "recurrent")
    cols = ["split_seed", "train_fraction", "readout", "iterations", "n_models",
            "multipath_mean", "recurrent_mean", *PAIRED_COLUMNS, "pearson_r_perf",
            "pearson_r_length", "p_holm", "note"]
    rows = []
    mp = select(df, "multipath")
    for (split, frac), part in ind.groupby(["split_seed", "train_fraction"]):
        groups = [(("all", np.nan), part)] + list(part.groupby(["readout", "iterations"]))
        for (mode, T), one in groups:
            models = select(mp, None, split, frac)
            if mode != "all":
                models = models[(models["readout"] == mode) & (models["iterations"] == T)]
            units, unit = comparison_units(one)
            row = {"split_seed": int(split), "train_fraction": float(frac), "readout": mode,
                   "iterations": T, "n_models": int(len(models)),
                   "multipath_mean": units[PERF].mean(), "recurrent_mean": units[f"ref_{PERF}"].mean(),
                   "pearson_r_perf": stats.pearson(one[f"ref_{PERF}"], one[PERF])[0],
                   "pearson_r_length": stats.pearson(one["ref_avg_path_length"],
                                                     one["avg_path_length"])[0]}
            row.update(_paired_columns(units[PERF], units[f"ref_{PERF}"], unit))
            rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "p_holm"])
    cells = out["readout"] != "all"
    out["p_holm"] = np.nan
    if cells.any():
        sub = _add_holm(out[cells].copy(), ["split_seed", "train_fraction"])
        out.loc[cells, "p_holm"] = sub["p_holm"]
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- ablations


def ablation_pairs(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Ablated models with their unablated multi-path partner and the removed lengths.

    One row per ablated model (seeds not averaged) with ``removed`` (list of lengths),
    ``removed_text`` ("2-4"), ``n_removed``, ``kind`` (rm/le/ge/only), ``k`` (for le/ge)
    and ``ref_test_cc_norm2`` (NaN when the partner is missing).
    """
    rows = select(df, family).copy()
    if rows.empty:
        return rows.assign(removed=[], removed_text=[], n_removed=[], kind=[], k=[], shared_with=[],
                           **{f"ref_{PERF}": []})
    removed = [removed_lengths(a, L, T) for a, L, T in
               zip(rows["ablation"], rows["recurrent_layers"], rows["iterations"])]
    rows["removed"] = removed
    rows["removed_text"] = [set_text(r) for r in removed]
    rows["n_removed"] = [len(r) for r in removed]
    rows["kind"] = rows["ablation"].str.extract(r"^(rm|only|le|ge)", expand=False).fillna("")
    rows["k"] = pd.to_numeric(rows["ablation"].str.extract(r"^(?:le|ge)(\d+)$", expand=False),
                              errors="coerce")
    full = select(df, "multipath").drop_duplicates("config_id").set_index("config_id")[PERF]
    rows[f"ref_{PERF}"] = rows["partner_id"].map(full)
    rows["shared_with"] = shared_training_names(df, rows)
    return rows


def shared_training_names(df: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """For each row, the name of the training that stands for it ("" when it is its own): an
    ablation whose kept lengths equal another's is trained once (rcpb.grid), and aggregation
    gives the other names rows with ``trained_as`` = that training's id."""
    if "trained_as" not in rows.columns:
        return [""] * len(rows)
    names = {r.config_id: (r.ablation or "full model") for r in df.itertuples()}
    return [names.get(t, t) if isinstance(t, str) and t else "" for t in rows["trained_as"]]


def ablation_table(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Ablated vs unablated multi-path models, one row per ablation set and readout mode.

    Groups by (split_seed, train_fraction, recurrent_layers, iterations, readout, ablation).
    Columns: those keys, kind, k, removed (text), n_removed, shared_with (the ablation trained
    for this name when it is the same set of kept lengths, "full model" for the unablated
    multi-path model; "" when trained as itself), n_models, perf_mean, perf_sem,
    full_n_models, full_mean (mean of the distinct unablated partners), change_pct
    (perf_mean / full_mean - 1, %), paired columns (seed-averaged ablated vs its own partner),
    note.
    """
    ab = ablation_pairs(df, family)
    keys = ["split_seed", "train_fraction", "recurrent_layers", "iterations", "readout", "ablation"]
    cols = [*keys, "kind", "k", "removed", "n_removed", "shared_with", "n_models", "perf_mean", "perf_sem",
            "full_n_models", "full_mean", "change_pct", *PAIRED_COLUMNS, "note"]
    if ab.empty:
        return pd.DataFrame(columns=cols)
    full = select(df, "multipath").drop_duplicates("config_id").set_index("config_id")[PERF]
    rows = []
    for key, cell in ab.groupby(keys, dropna=False):
        partners = full.reindex(cell["partner_id"].unique()).dropna()
        fm = partners.mean() if len(partners) else math.nan
        row = dict(zip(keys, key))
        row.update({
            "kind": cell["kind"].iloc[0], "k": cell["k"].iloc[0],
            "removed": cell["removed_text"].iloc[0], "n_removed": int(cell["n_removed"].iloc[0]),
            "shared_with": ", ".join(sorted(set(cell["shared_with"]) - {""})),
            "n_models": int(cell[PERF].notna().sum()), "perf_mean": cell[PERF].mean(),
            "perf_sem": stats.sem(cell[PERF]), "full_n_models": int(len(partners)),
            "full_mean": fm, "change_pct": 100 * (cell[PERF].mean() / fm - 1) if fm > 0 else math.nan,
        })
        row.update(_compare(cell.drop(columns=["removed"])))
        if not len(partners):
            row["note"] = "; ".join(filter(None, ["unablated multi-path partner missing", row["note"]]))
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    out["_first"] = [int(r.split("-")[0].split(",")[0]) if r[:1].isdigit() else 0 for r in out["removed"]]
    out = _sort_modes(out, ["split_seed", "train_fraction", "recurrent_layers", "iterations",
                            "readout", "kind", "k", "n_removed", "_first"])
    return out[cols]


# --------------------------------------------------------------------------- rendering


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table from header and string cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _interval(row, low: str, high: str, kind: str, prefix: str = "") -> str:
    """'[lo, hi]', or why there is none ("n = 2: too few pairs for a CI")."""
    lo, hi = row[prefix + low], row[prefix + high]
    if isinstance(lo, float) and np.isfinite(lo) and np.isfinite(hi):
        return f"[{fmt(lo, kind)}, {fmt(hi, kind)}]"
    n = row[prefix + "n_pairs"]
    if isinstance(n, (int, float, np.integer)) and np.isfinite(n) and n < stats.MIN_PAIRS:
        return f"({stats.too_few_note(int(n))})"
    return "[n/a]"


def effect_text(row, prefix: str = "") -> str:
    """'+0.0123 [+0.0040, +0.0206]': mean paired difference and its 95 % CI."""
    return (f"{fmt(row[prefix + 'diff_mean'], 'diff')} "
            f"{_interval(row, 'diff_ci_low', 'diff_ci_high', 'diff', prefix)}")


def gain_text(row, prefix: str = "") -> str:
    """'+3.41 % [+1.02, +5.90]': paired relative gain (ratio of means) and its 95 % CI."""
    ci = _interval(row, "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "pct", prefix)
    return f"{fmt(row[prefix + 'paired_gain_pct'], 'pct')} % {ci if ci.startswith('[') else ''}".strip()


def measure_text(metric: str) -> str:
    """What 'performance' means in a table, for its caption."""
    if metric == "cc_norm2":
        return ("Performance: test CC_norm^2 (squared correlation with the trial-averaged response "
                "over the squared noise ceiling), mean over neurons with a defined ceiling.")
    return (f"Performance: test {perf_text(metric)}, mean over neurons; the dataset has no noise "
            f"ceiling (no repeated trials) or the config asks for {perf_text(metric)}, so the "
            "values are not normalised by it.")


DEFINITIONS = (
    "Size-matched FF: the feed-forward models that are the recurrent models' partners "
    "(2 x recurrent layers + 1 blocks, same hyperparameters and seed), mean ± s.e.m. over models "
    "(paper: FF average). Best FF: the FF depth with the highest mean validation performance "
    "of the split and fraction; its test performance is reported. Best cell: the (readout mode, "
    "T) with the highest mean validation performance; its test performance is reported, and the "
    "gain is its type average / FF average - 1 (paper table 1). Effect: mean over pairs of "
    "recurrent minus FF, with a t 95 % CI; relative gain: ratio of means - 1, with Fieller's "
    f"95 % CI; p: paired t-test. Below {stats.MIN_PAIRS} pairs no CI or p-value is given. Against "
    "the best FF each recurrent model is paired with the best-FF model of the same "
    "configuration (split, fraction, channels, activation, first-block order, loss, seed). All "
    "cells: mean over every cell looked at; its paired statistics pair each FF configuration "
    "with the mean of its recurrent partners over all cells."
)


def units_text(table: pd.DataFrame, columns=None) -> str:
    """'Pairs: configurations, seeds averaged.' (or which comparisons have seeds as units) from
    the ``unit`` columns of a table (every column named ``unit`` or ``*_unit`` by default)."""
    columns = columns or [c for c in table.columns if c == "unit" or c.endswith("_unit")]
    units = {u for c in columns if c in table.columns for u in table[c] if isinstance(u, str) and u}
    if not units:
        return ""
    if units == {UNIT_CONFIGS}:
        return f"Pairs: {UNIT_CONFIGS}."
    if units == {UNIT_SEEDS}:
        return f"Pairs: {UNIT_SEEDS} (every comparison has exactly one configuration)."
    return (f"Pairs: {UNIT_CONFIGS}, except in comparisons with exactly one configuration, "
            f"where they are the {UNIT_SEEDS} (column ``unit``).")


def baselines_text(baselines: pd.DataFrame | None, splits=None, metric: str = "cc_norm2") -> str:
    """'Baselines (test CC_norm^2, not trained models): split 0: truth 0.9800 (the simulator's
    true mean rates), drive 0.4100 (...).' for the split seeds ``splits`` (all when None);
    "" without baselines."""
    if baselines is None or baselines.empty:
        return ""
    b = baselines if splits is None else baselines[baselines["split_seed"].isin(list(splits))]
    parts = []
    for split, g in b.groupby("split_seed"):
        items = [f"{r.predictor} {fmt(r.perf, 'perf')}" + (f" ({r.description})" if r.description else "")
                 for r in g.itertuples()]
        parts.append(f"split {int(split)}: " + ", ".join(items))
    if not parts:
        return ""
    return f"Baselines (test {perf_text(metric)}, not trained models): " + "; ".join(parts) + "."


def _ff_text(r, prefix: str = "ff_") -> str:
    return (f"{fmt(r[prefix + 'mean'], 'perf')} ± {fmt(r[prefix + 'sem'], 'perf')} "
            f"({fmt(r[prefix + 'n_models'], 'int')})")


def table1_markdown(t1: pd.DataFrame, dataset: str = "", metric: str = "cc_norm2",
                    baselines: pd.DataFrame | None = None) -> str:
    """Paper-style Markdown rendering of table1(): the best cell, then the mean over all cells,
    each against the size-matched FF and against the best FF; then the baselines of the splits
    (``baselines``: analysis.load.read_baselines) and the units of the pairs."""
    stat_header = ["effect: Δ perf [95 % CI]", "relative gain [95 % CI]", "p", "n pairs"]
    rows, best_rows, all_rows, all_best_rows = [], [], [], []
    for _, r in t1.iterrows():
        best = "n/a" if not r["best_readout"] else f"{r['best_readout']}, T = {int(r['best_iterations'])}"
        where = [str(r["split_seed"]), r["training_data"]]
        ff, bff = _ff_text(r), f"{blocks_label(r['bestff_blocks'])}: {_ff_text(r, 'bestff_')}"
        rows.append([*where, f"{ff}, {r['ff_blocks'] or 'n/a'} blocks", best,
                     fmt(r["best_perf_mean"], "perf"), fmt(r["gain_pct"], "pct"), effect_text(r),
                     gain_text(r), fmt(r["p"], "p"), fmt(r["n_pairs"], "int")])
        best_rows.append([*where, bff, best, fmt(r["best_perf_mean"], "perf"),
                          fmt(r["bestff_gain_pct"], "pct"), effect_text(r, "bestff_"),
                          gain_text(r, "bestff_"), fmt(r["bestff_p"], "p"),
                          fmt(r["bestff_n_pairs"], "int")])
        all_rows.append([*where, ff, str(r["n_cells"]), fmt(r["cells_mean"], "perf"),
                         fmt(r["cells_gain_pct"], "pct"), effect_text(r, "all_"),
                         gain_text(r, "all_"), fmt(r["all_p"], "p"), fmt(r["all_n_pairs"], "int")])
        all_best_rows.append([*where, bff, str(r["n_cells"]), fmt(r["cells_mean"], "perf"),
                              fmt(_gain(r["cells_mean"], r["bestff_mean"]), "pct"),
                              effect_text(r, "all_bestff_"), gain_text(r, "all_bestff_"),
                              fmt(r["all_bestff_p"], "p"), fmt(r["all_bestff_n_pairs"], "int")])
    title = f"# Table 1: recurrent vs feed-forward models{' on ' + dataset if dataset else ''}\n\n"
    text = (title + measure_text(metric)
            + "\n\n## The best (readout mode, T), chosen on validation data\n\n"
            + "### vs the size-matched FF\n\n"
            + markdown_table(["split", "training data", "size-matched FF (± s.e.m., n)",
                              "best cell on validation", "its test perf", "gain (%)",
                              *stat_header], rows)
            + "\n### vs the best FF (depth chosen on validation data)\n\n"
            + markdown_table(["split", "training data", "best FF: test perf (± s.e.m., n)",
                              "best cell on validation", "its test perf", "gain (%)",
                              *stat_header], best_rows)
            + "\n## Every (readout mode, T) cell looked at\n\n### vs the size-matched FF\n\n"
            + markdown_table(["split", "training data", "size-matched FF (± s.e.m., n)", "cells",
                              "mean perf over cells", "gain (%)", *stat_header[:3],
                              "n pairs (FF configs)"], all_rows)
            + "\n### vs the best FF\n\n"
            + markdown_table(["split", "training data", "best FF: test perf (± s.e.m., n)",
                              "cells", "mean perf over cells", "gain (%)", *stat_header[:3],
                              "n pairs (best-FF configs)"], all_best_rows)
            + "\n" + DEFINITIONS + "\n")
    for line in (units_text(t1), baselines_text(baselines, set(t1["split_seed"]), metric)):
        if line:
            text += "\n" + line + "\n"
    if len(t1) and (t1["selection"] == "seed_halves").any():
        text += ("\nSelection by seed halves: the best cell and the best FF are chosen on the "
                 "validation performance of the first half of the initialisation seeds, and "
                 "everything reported for them comes from the models of the other half.\n")
    notes = [n for col in ("note", "all_note", "bestff_note", "all_bestff_note") for n in t1[col]
             if isinstance(n, str) and n]
    if notes:
        text += "\nNotes: " + "; ".join(sorted(set(notes))) + "\n"
    return text


def cells_markdown(cells: pd.DataFrame, dataset: str = "", metric: str = "cc_norm2",
                   baselines: pd.DataFrame | None = None) -> str:
    """recurrent_vs_ff() as Markdown grids per (split, fraction): rows readout, columns T; one
    grid against the size-matched FF and one against the best FF.

    Each cell: type average ± s.e.m.; gain % (paper definition); effect [95 % CI]; Holm p.
    """
    text = f"# Recurrent vs feed-forward, every readout mode and T{' on ' + dataset if dataset else ''}\n\n"
    text += (measure_text(metric) + " Cell: type average (± s.e.m.); gain over the FF average "
             "(%); effect: mean paired difference [t 95 % CI] (or why there is none); paired "
             "t-test p, Holm-adjusted within the (split, fraction). The size-matched FF are the "
             "recurrent models' partners; the best FF is the FF depth with the highest mean "
             "validation performance, each recurrent model paired with the best-FF model of "
             "its configuration.\n\n")
    for (split, frac), part in cells.groupby(["split_seed", "train_fraction"]):
        Ts = sorted(part["iterations"].unique())
        ff = part.iloc[0]
        text += (f"## split {split}, {fraction_label(frac)} % training data: size-matched FF "
                 f"({ff['ff_blocks'] or 'n/a'} blocks) {fmt(ff['ff_mean'], 'perf')} ± "
                 f"{fmt(ff['ff_sem'], 'perf')} ({ff['ff_n_models']} models); best FF "
                 f"({blocks_label(ff['bestff_blocks'])}) {fmt(ff['bestff_mean'], 'perf')} ± "
                 f"{fmt(ff['bestff_sem'], 'perf')} ({fmt(ff['bestff_n_models'], 'int')} models)\n\n")
        for title, prefix in (("vs the size-matched FF", ""), ("vs the best FF", "bestff_")):
            rows = []
            for mode in _mode_order(part["readout"].unique()):
                line = [mode]
                for T in Ts:
                    c = part[(part["readout"] == mode) & (part["iterations"] == T)]
                    if c.empty:
                        line.append("")
                        continue
                    r = c.iloc[0]
                    line.append(
                        f"{fmt(r['perf_mean'], 'perf')} ± {fmt(r['perf_sem'], 'perf')}; "
                        f"{fmt(r[prefix + 'gain_pct'], 'pct')} %; {effect_text(r, prefix)}; "
                        f"p {fmt(r[prefix + 'p_holm'], 'p')}"
                    )
                rows.append(line)
            text += (f"### {title}\n\n"
                     + markdown_table(["readout \\ T", *[f"T = {int(T)}" for T in Ts]], rows) + "\n")
    if cells.empty:
        text += "No recurrent models in the results table.\n"
    for line in (units_text(cells), baselines_text(baselines, set(cells["split_seed"]), metric)):
        if line:
            text += line + "\n\n"
    return text


def generic_markdown(table: pd.DataFrame, title: str, columns: list[str],
                     metric: str = "cc_norm2") -> str:
    """Markdown of selected columns with numeric formatting by column name."""
    def kind(c):
        if c.endswith("_pct"):
            return "pct"
        if c in ("p", "p_holm", "wilcoxon_p"):
            return "p"
        if c.startswith("diff_"):
            return "diff"
        if c.startswith("n_") or c.endswith(("_params", "_blocks", "_channels", "_iterations")) \
                or c in ("split_seed", "iterations", "recurrent_layers", "k"):
            return "int"
        if c == "train_fraction":
            return "frac"
        if c.endswith(("_mean", "_sem", "pearson_r_perf", "pearson_r_length")) or c == "truth":
            return "perf"
        return "str"
    cols = [c for c in columns if c in table.columns]
    rows = [[fmt(r[c], kind(c)) if not (isinstance(r[c], str)) else r[c] for c in cols]
            for _, r in table.iterrows()]
    body = markdown_table(cols, rows) if len(rows) else "No models of this family in the results table.\n"
    units = units_text(table)
    return (f"# {title}\n\n{measure_text(metric)} Paired statistics as in Table 1 (below "
            f"{stats.MIN_PAIRS} pairs no CI or p-value; the note says so).\n\n" + body
            + (f"\n{units}\n" if units else ""))


# --------------------------------------------------------------------------- CLI

TABLES = ("table1", "recurrent_vs_ff", "multipath_vs_recurrent", "ablation_rm", "ablation_lege",
          "controls", "dynamics")
_PAIRED_MD = ["n_pairs", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
              "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p"]


def build(name: str, df: pd.DataFrame, dataset: str = "", selection: str = "validation",
          baselines: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
    """Compute table ``name`` and its Markdown rendering; ``baselines``
    (analysis.load.read_baselines) go into Table 1 and the cells table."""
    metric = metric_of(df)
    on = f" on {dataset}" if dataset else ""
    if name == "controls":
        from analysis.controls import controls_table

        t = controls_table(df)
        md = generic_markdown(t, "Recurrent cells vs their controls" + on,
                              ["split_seed", "train_fraction", "cell", "recurrent_layers",
                               "iterations", "readout", "control", "control_blocks",
                               "control_channels", "control_iterations", "recurrent_conv_params",
                               "control_conv_params", "recurrent_params", "control_params",
                               "recurrent_mean", "control_mean", *_PAIRED_MD, "p_holm", "note"],
                              metric)
        return t, md
    if name == "dynamics":
        from analysis.dynamics import dynamics_table

        t = dynamics_table(df, baselines)
        md = generic_markdown(t, "Time bins: recurrent vs size-matched FF" + on,
                              ["split_seed", "train_fraction", "cell", "recurrent_layers",
                               "iterations", "readout", "measure", "n_models", "recurrent_mean",
                               "ff_mean", "truth", *_PAIRED_MD, "p_holm", "note"], metric)
        return t, md
    df = study_rows(df)     # the study's tables: the RCPB cell (other cells: "controls")
    if name == "table1":
        t = table1(df, selection=selection, baselines=baselines)
        return t, table1_markdown(t, dataset, metric, baselines)
    if name == "recurrent_vs_ff":
        t = recurrent_vs_ff(df, baselines)
        return t, cells_markdown(t, dataset, metric, baselines)
    if name == "multipath_vs_recurrent":
        t = multipath_vs_recurrent(df)
        md = generic_markdown(t, "Multi-path models vs their recurrent twins" + on,
                              ["split_seed", "train_fraction", "readout", "iterations", "n_models",
                               "multipath_mean", "recurrent_mean", *_PAIRED_MD, "p_holm",
                               "pearson_r_perf", "pearson_r_length", "note"], metric)
        return t, md
    if name in ("ablation_rm", "ablation_lege"):
        t = ablation_table(df, name)
        md = generic_markdown(t, f"Path ablations ({name}) vs unablated multi-path models" + on,
                              ["split_seed", "train_fraction", "recurrent_layers", "iterations",
                               "readout", "ablation", "removed", "shared_with", "n_models", "perf_mean", "perf_sem",
                               "full_mean", "change_pct", *_PAIRED_MD, "note"], metric)
        return t, md
    raise RcpbError(f"table {name!r}: unknown; use one of {', '.join(TABLES)}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.tables", description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=TABLES)
    ap.add_argument("--results", required=True, help="results/{dataset}/results.csv")
    ap.add_argument("--csv", required=True, help="output CSV")
    ap.add_argument("--md", required=True, help="output Markdown")
    ap.add_argument("--dataset", default="", help="dataset name for titles")
    ap.add_argument("--metric", default="auto", choices=METRIC_CHOICES,
                    help="performance measure (default: cc_norm2 when defined, else cc_raw)")
    ap.add_argument("--selection", default="validation", choices=SELECTIONS,
                    help="how Table 1's best cell is chosen")
    ap.add_argument("--baselines", default=None,
                    help="results/{dataset}/baselines.csv (optional; missing or empty: no "
                         "baselines)")
    args = ap.parse_args(argv)
    try:
        df = read_results(args.results, metric=args.metric)
        baselines = read_baselines(args.baselines, metric_of(df))
        t, md = build(args.name, df, args.dataset, args.selection, baselines)
        if failed_note(df):     # failed trainings: read_results left them out
            md += f"\n{failed_note(df)}\n"
    except RcpbError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text_atomic(args.csv, t.to_csv(index=False))
    write_text_atomic(args.md, md)
    print(f"{args.name}: {len(t)} rows -> {args.csv}, {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
