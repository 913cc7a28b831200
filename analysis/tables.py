"""Tables computed from the results table (paper tables 1 and 3, plus paired statistics).

Definitions (performance = the dataset's measure on the test stimuli, column ``perf``:
CC_norm^2, or CC_raw for a dataset without noise ceiling; see analysis.load):

- *FF average performance* (paper table 1 column 2): mean over all feed-forward models of the
  split and training fraction (both sizes, all hyperparameters and seeds), with its s.e.m.
  over models.
- *Type average* of a recurrent type or *cell* (readout mode, T): mean over all recurrent models
  of that type (both layer counts, all hyperparameters and seeds), s.e.m. over models.
- *Gain* (paper table 1 column 4): ``type average / FF average - 1``, in %.
- *Best cell*: the cell with the highest mean **validation** performance (never the test
  performance, which is what is reported for it). The paper chose on test data; doing so turns
  noise into a gain (the maximum of 8 noisy cells is biased upwards). With ``selection =
  "seed_halves"`` the best cell is chosen on the validation performance of the first half of the
  initialisation seeds and reported from the models of the other half alone, so the estimate
  shares no trained model with the choice.
- *All cells*: the mean of the type averages over every cell looked at, reported next to the
  best cell with the number of cells.
- *Paired statistics* (beyond the paper, analysis.stats): each recurrent model and its
  size-matched FF partner (``partner_id``) are averaged over initialisation seeds; the unit is a
  configuration. Effect: mean paired difference with a t-interval; relative gain: ratio of means
  with Fieller's interval; p: paired t-test (Wilcoxon signed-rank alongside); Holm-adjusted p
  over the cells of a (split, fraction). Below ``stats.MIN_PAIRS`` pairs no interval or p-value.
  For *all cells*, the unit is an FF configuration, paired with the mean of all its recurrent
  partners over the cells.

Multi-path vs recurrent and ablated vs unablated multi-path models use the same paired
statistics with their own partners.

Entry point: ``python -m analysis.tables NAME --results results/D/results.csv --csv OUT.csv
--md OUT.md [--metric M] [--selection S]`` with NAME one of table1, recurrent_vs_ff,
multipath_vs_recurrent, ablation_rm, ablation_lege.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

from analysis import stats
from analysis.labels import fmt, join_notes
from analysis.load import (
    METRIC_CHOICES, PERF, READOUT_MODES, VAL_PERF, config_columns, fraction_label, fraction_text,
    metric_of, n_train_of, pairs, perf_text, read_results, removed_lengths, seed_average, select,
    set_text,
)
from rcpb.atomic_files import write_text_atomic
from rcpb.errors import RcpbError

SELECTIONS = ("validation", "seed_halves")

PAIRED_COLUMNS = [
    "n_pairs", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
    "paired_gain_sem_pct", "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p", "wilcoxon_p",
]


def _mode_order(modes) -> list[str]:
    known = [m for m in READOUT_MODES if m in set(modes)]
    return known + sorted(set(modes) - set(known))


def _paired_columns(treat, ref) -> dict:
    """Paired statistics (analysis.stats.paired_comparison) of two aligned arrays, gains in %."""
    s = stats.paired_comparison(np.asarray(treat, dtype=float), np.asarray(ref, dtype=float))
    return {
        "n_pairs": s["n_pairs"], "diff_mean": s["diff_mean"],
        "diff_ci_low": s["diff_ci_low"], "diff_ci_high": s["diff_ci_high"],
        "paired_gain_pct": 100 * s["gain"], "paired_gain_sem_pct": 100 * s["gain_se"],
        "paired_gain_ci_low_pct": 100 * s["gain_ci_low"],
        "paired_gain_ci_high_pct": 100 * s["gain_ci_high"],
        "p": s["p"], "wilcoxon_p": s["wilcoxon_p"], "note": s["note"],
    }


def _add_holm(out: pd.DataFrame, family_keys: list[str]) -> pd.DataFrame:
    out["p_holm"] = np.nan
    if out.empty:
        return out
    for _, idx in out.groupby(family_keys, dropna=False).groups.items():
        out.loc[idx, "p_holm"] = stats.holm(out.loc[idx, "p"].to_numpy())
    return out


def seed_averaged_pairs(df: pd.DataFrame, family: str, partner_family: str) -> pd.DataFrame:
    """Pairs (family row, partner row) averaged over initialisation seeds.

    Returns one row per configuration with ``perf``, ``ref_perf``, ``val_perf``,
    ``ref_val_perf``, ``avg_path_length``, ``ref_avg_path_length`` (seed means) and ``n_seeds``.
    """
    p = pairs(df, family, partner_family)
    return seed_average(p, [PERF, f"ref_{PERF}", VAL_PERF, f"ref_{VAL_PERF}", "avg_path_length",
                            "ref_avg_path_length"])


# --------------------------------------------------------------------------- recurrent vs FF


def recurrent_vs_ff(df: pd.DataFrame) -> pd.DataFrame:
    """The 24-cell table: one row per (split_seed, train_fraction, readout, iterations).

    Columns: split_seed, train_fraction, n_train, readout, iterations, n_models, perf_mean,
    perf_sem, val_mean (mean validation performance of the cell's models: the selection
    criterion), ff_n_models, ff_mean, ff_sem, gain_pct (paper definition), the paired columns
    (PAIRED_COLUMNS), p_holm, note.
    """
    rows = []
    rec_all = select(df, "recurrent")
    pr = seed_averaged_pairs(df, "recurrent", "ff")
    for (split, frac), rec in rec_all.groupby(["split_seed", "train_fraction"]):
        ff = select(df, "ff", split, frac)
        ff_mean = ff[PERF].mean() if len(ff) else math.nan
        ff_sem = stats.sem(ff[PERF])
        cell_pairs = select(pr, None, split, frac) if len(pr) else pr
        for (mode, T), cell in rec.groupby(["readout", "iterations"]):
            perf = cell[PERF].mean()
            cp = cell_pairs[(cell_pairs["readout"] == mode) & (cell_pairs["iterations"] == T)] \
                if len(cell_pairs) else cell_pairs
            row = {
                "split_seed": int(split), "train_fraction": float(frac),
                "n_train": _n_train(df, split, frac), "readout": mode, "iterations": int(T),
                "n_models": int(cell[PERF].notna().sum()), "perf_mean": perf,
                "perf_sem": stats.sem(cell[PERF]), "val_mean": cell[VAL_PERF].mean(),
                "ff_n_models": int(ff[PERF].notna().sum()),
                "ff_mean": ff_mean, "ff_sem": ff_sem,
                "gain_pct": 100 * (perf / ff_mean - 1) if ff_mean > 0 else math.nan,
            }
            row.update(_paired_columns(cp[PERF] if len(cp) else [], cp[f"ref_{PERF}"] if len(cp) else []))
            if not len(ff):
                row["note"] = join_notes("no feed-forward models", row["note"])
            rows.append(row)
    cols = ["split_seed", "train_fraction", "n_train", "readout", "iterations", "n_models",
            "perf_mean", "perf_sem", "val_mean", "ff_n_models", "ff_mean", "ff_sem", "gain_pct",
            *PAIRED_COLUMNS, "p_holm", "note"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "p_holm"])
    out = _add_holm(out, ["split_seed", "train_fraction"])
    out = _sort_modes(out, ["split_seed", "train_fraction", "readout", "iterations"])
    return out[cols]


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
    """The row of ``cells`` (the (readout mode, T) cells or types of one split and fraction)
    with the highest mean validation performance ``column``; None if no cell has one. Ties: the
    first in table order (readout mode order, then T). The one place a best cell is chosen:
    Table 1, the figures and the headlines, never on test data."""
    c = cells[cells[column].notna()]
    if not len(c):
        return None
    return c.loc[c[column].idxmax()]


def all_cells_pairs(df: pd.DataFrame, split: int, frac: float) -> pd.DataFrame:
    """One row per FF configuration (seeds averaged): ``ref_perf`` (the FF model) and ``perf``
    (the mean over every recurrent partner of it, all readout modes and T)."""
    pr = seed_averaged_pairs(select(df, None, split, frac), "recurrent", "ff")
    if not len(pr):
        return pd.DataFrame(columns=[PERF, f"ref_{PERF}"])
    keys = [c for c in config_columns(pr)
            if c not in ("readout", "iterations", "n_seeds") and not c.startswith("ref_")]
    return pr.groupby(keys, dropna=False)[[PERF, f"ref_{PERF}"]].mean().reset_index()


def _seed_halves(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(first half of the model seeds, second half) of the rows; None with fewer than 2 seeds."""
    seeds = sorted(df["model_seed"].unique())
    if len(seeds) < 2:
        return None
    first = seeds[: (len(seeds) + 1) // 2]
    in_first = df["model_seed"].isin(first)
    return df[in_first], df[~in_first]


def table1(df: pd.DataFrame, cells: pd.DataFrame | None = None,
           selection: str = "validation") -> pd.DataFrame:
    """Paper table 1 / 3: one row per (split_seed, train_fraction) present among FF or recurrent rows.

    Columns: split_seed, train_fraction, training_data ("25 % (350)"), selection, ff_n_models,
    ff_mean, ff_sem, n_cells, cells_mean (mean over cells of the type averages), cells_gain_pct
    (cells_mean / ff_mean - 1, %), all_* (paired statistics over FF configurations, each paired
    with the mean of its recurrent partners over all cells: all_n_pairs, all_diff_mean,
    all_diff_ci_low, all_diff_ci_high, all_paired_gain_pct, all_paired_gain_ci_low_pct,
    all_paired_gain_ci_high_pct, all_p, all_note), best_readout, best_iterations (the cell with
    the highest validation mean), best_val_mean, best_perf_mean (its test value), best_perf_sem,
    gain_pct (best cell's type average / FF average - 1), the paired columns of the best cell,
    note. With ``selection = "seed_halves"`` the best cell comes from the first half of the
    seeds and every best_* / paired value from the second half (see the module docstring).
    """
    if selection not in SELECTIONS:
        raise RcpbError(f"selection {selection!r}: unknown; use one of {', '.join(SELECTIONS)}.")
    if cells is None:
        cells = recurrent_vs_ff(df)
    rows = []
    sub = df[df["family"].isin(["ff", "recurrent"])]
    for (split, frac), part in sub.groupby(["split_seed", "train_fraction"]):
        ff = part[part["family"] == "ff"]
        c = cells[(cells["split_seed"] == split) & np.isclose(cells["train_fraction"], frac)]
        c = c[c["perf_mean"].notna()]
        cells_mean = c["perf_mean"].mean() if len(c) else math.nan
        ff_mean = ff[PERF].mean() if len(ff) else math.nan
        row = {
            "split_seed": int(split), "train_fraction": float(frac),
            "training_data": fraction_text(frac, part), "selection": selection,
            "ff_n_models": int(ff[PERF].notna().sum()), "ff_mean": ff_mean,
            "ff_sem": stats.sem(ff[PERF]), "n_cells": int(len(c)), "cells_mean": cells_mean,
            "cells_gain_pct": 100 * (cells_mean / ff_mean - 1) if ff_mean > 0 else math.nan,
        }
        ap = all_cells_pairs(part, split, frac)
        allp = _paired_columns(ap[PERF], ap[f"ref_{PERF}"])
        row.update({f"all_{k}": allp[k] for k in ALL_COLUMNS})
        row["all_note"] = allp["note"]
        choose_from, report_from, note = c, c, ""
        if selection == "seed_halves":
            halves = _seed_halves(part)
            if halves is None:
                note = "seed_halves needs at least 2 model seeds: chosen on validation instead"
            else:
                choose_from, report_from = (recurrent_vs_ff(h) for h in halves)
        best = best_cell(choose_from)
        if best is not None:
            mode, T = best["readout"], int(best["iterations"])
            rep = report_from[(report_from["readout"] == mode) & (report_from["iterations"] == T)]
            rep = rep.iloc[0] if len(rep) else pd.Series(
                {"perf_mean": np.nan, "perf_sem": np.nan, "gain_pct": np.nan,
                 **{k: np.nan for k in PAIRED_COLUMNS},
                 "note": "the chosen cell has no models in the second half of the seeds"})
            row.update({
                "best_readout": mode, "best_iterations": T, "best_val_mean": best["val_mean"],
                "best_perf_mean": rep["perf_mean"], "best_perf_sem": rep["perf_sem"],
                "gain_pct": rep["gain_pct"], **{k: rep[k] for k in PAIRED_COLUMNS},
                "note": join_notes(note, rep["note"] if isinstance(rep["note"], str) else ""),
            })
        else:
            row.update({"best_readout": "", "best_iterations": np.nan, "best_val_mean": np.nan,
                        "best_perf_mean": np.nan, "best_perf_sem": np.nan, "gain_pct": np.nan,
                        **{k: np.nan for k in PAIRED_COLUMNS},
                        "note": "no recurrent models with validation performance"
                        if len(c) else "no recurrent models"})
        if not len(ff):
            row["note"] = join_notes("no feed-forward models", row["note"])
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


ALL_COLUMNS = ["n_pairs", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
               "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p"]
TABLE1_COLUMNS = [
    "split_seed", "train_fraction", "training_data", "selection", "ff_n_models", "ff_mean",
    "ff_sem", "n_cells", "cells_mean", "cells_gain_pct", *[f"all_{k}" for k in ALL_COLUMNS],
    "all_note", "best_readout", "best_iterations", "best_val_mean", "best_perf_mean",
    "best_perf_sem", "gain_pct", *PAIRED_COLUMNS, "note",
]


# --------------------------------------------------------------------------- multipath vs recurrent


def multipath_vs_recurrent(df: pd.DataFrame) -> pd.DataFrame:
    """Multi-path models vs their recurrent twins, per (split, fraction, readout, T) and pooled.

    One row per cell plus one row per (split, fraction) with readout "all" (pooled over
    readouts, T and layers). Columns: split_seed, train_fraction, readout, iterations,
    n_models, multipath_mean, recurrent_mean, paired columns (gain = multipath / recurrent - 1,
    over seed-averaged pairs), pearson_r_perf, pearson_r_length (over individual model pairs,
    as in fig. 4c-d), p_holm, note.
    """
    pr = seed_averaged_pairs(df, "multipath", "recurrent")
    ind = pairs(df, "multipath", "recurrent")
    cols = ["split_seed", "train_fraction", "readout", "iterations", "n_models",
            "multipath_mean", "recurrent_mean", *PAIRED_COLUMNS, "pearson_r_perf",
            "pearson_r_length", "p_holm", "note"]
    rows = []
    mp = select(df, "multipath")
    for (split, frac), part in pr.groupby(["split_seed", "train_fraction"]):
        groups = [(("all", np.nan), part)] + list(part.groupby(["readout", "iterations"]))
        for (mode, T), cell in groups:
            models = select(mp, None, split, frac)
            one = select(ind, None, split, frac)
            if mode != "all":
                models = models[(models["readout"] == mode) & (models["iterations"] == T)]
                one = one[(one["readout"] == mode) & (one["iterations"] == T)]
            row = {"split_seed": int(split), "train_fraction": float(frac), "readout": mode,
                   "iterations": T, "n_models": int(len(models)),
                   "multipath_mean": cell[PERF].mean(), "recurrent_mean": cell[f"ref_{PERF}"].mean(),
                   "pearson_r_perf": stats.pearson(one[f"ref_{PERF}"], one[PERF])[0],
                   "pearson_r_length": stats.pearson(one["ref_avg_path_length"],
                                                     one["avg_path_length"])[0]}
            row.update(_paired_columns(cell[PERF], cell[f"ref_{PERF}"]))
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
    sa = seed_average(ab.drop(columns=["removed"]), [PERF, f"ref_{PERF}"])
    full = select(df, "multipath").drop_duplicates("config_id").set_index("config_id")[PERF]
    rows = []
    for key, cell in ab.groupby(keys, dropna=False):
        partners = full.reindex(cell["partner_id"].unique()).dropna()
        sp = sa
        for k, v in zip(keys, key):
            sp = sp[sp[k] == v]
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
        row.update(_paired_columns(sp[PERF], sp[f"ref_{PERF}"]))
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
    "FF average: mean over all feed-forward models of the split and fraction (± s.e.m. over "
    "models). Best cell: the (readout mode, T) with the highest mean validation performance; "
    "its test performance is reported, and the gain is its type average / FF average - 1 "
    "(paper table 1). Effect: mean over configurations (seeds averaged) of recurrent minus "
    "size-matched FF, with a t 95 % CI; relative gain: ratio of means - 1, with Fieller's 95 % "
    f"CI; p: paired t-test. Below {stats.MIN_PAIRS} pairs no CI or p-value is given. All cells: "
    "mean over every cell looked at; its paired statistics pair each FF configuration with the "
    "mean of its recurrent partners over all cells."
)


def table1_markdown(t1: pd.DataFrame, dataset: str = "", metric: str = "cc_norm2") -> str:
    """Paper-style Markdown rendering of table1(): the best cell, then the mean over all cells."""
    header = ["split", "training data", "FF avg perf (± s.e.m., n)", "best cell on validation",
              "its test perf", "gain (%)", "effect: Δ perf [95 % CI]",
              "relative gain [95 % CI]", "p", "n pairs"]
    rows, all_rows = [], []
    for _, r in t1.iterrows():
        best = "n/a" if not r["best_readout"] else f"{r['best_readout']}, T = {int(r['best_iterations'])}"
        ff = f"{fmt(r['ff_mean'], 'perf')} ± {fmt(r['ff_sem'], 'perf')} ({r['ff_n_models']})"
        rows.append([
            str(r["split_seed"]), r["training_data"], ff, best,
            fmt(r["best_perf_mean"], "perf"), fmt(r["gain_pct"], "pct"), effect_text(r),
            gain_text(r), fmt(r["p"], "p"), fmt(r["n_pairs"], "int"),
        ])
        all_rows.append([
            str(r["split_seed"]), r["training_data"], ff, str(r["n_cells"]),
            fmt(r["cells_mean"], "perf"), fmt(r["cells_gain_pct"], "pct"),
            effect_text(r, "all_"), gain_text(r, "all_"), fmt(r["all_p"], "p"),
            fmt(r["all_n_pairs"], "int"),
        ])
    title = f"# Table 1: recurrent vs feed-forward models{' on ' + dataset if dataset else ''}\n\n"
    text = (title + measure_text(metric) + "\n\n## The best (readout mode, T), chosen on validation data\n\n"
            + markdown_table(header, rows)
            + "\n## Every (readout mode, T) cell looked at\n\n"
            + markdown_table(["split", "training data", "FF avg perf (± s.e.m., n)", "cells",
                              "mean perf over cells", "gain (%)", "effect: Δ perf [95 % CI]",
                              "relative gain [95 % CI]", "p", "n pairs (FF configs)"], all_rows)
            + "\n" + DEFINITIONS + "\n")
    if len(t1) and (t1["selection"] == "seed_halves").any():
        text += ("\nSelection by seed halves: the best cell is chosen on the validation "
                 "performance of the first half of the initialisation seeds, and everything "
                 "reported for it comes from the models of the other half.\n")
    notes = [n for col in ("note", "all_note") for n in t1[col] if isinstance(n, str) and n]
    if notes:
        text += "\nNotes: " + "; ".join(sorted(set(notes))) + "\n"
    return text


def cells_markdown(cells: pd.DataFrame, dataset: str = "", metric: str = "cc_norm2") -> str:
    """recurrent_vs_ff() as one Markdown grid per (split, fraction): rows readout, columns T.

    Each cell: type average ± s.e.m.; gain % (paper definition); effect [95 % CI]; Holm p.
    """
    text = f"# Recurrent vs feed-forward, every readout mode and T{' on ' + dataset if dataset else ''}\n\n"
    text += (measure_text(metric) + " Cell: type average (± s.e.m.); gain over the FF average "
             "(%); effect: mean paired difference [t 95 % CI] (or why there is none); paired "
             "t-test p, Holm-adjusted within the (split, fraction).\n\n")
    for (split, frac), part in cells.groupby(["split_seed", "train_fraction"]):
        Ts = sorted(part["iterations"].unique())
        ff = part.iloc[0]
        text += (f"## split {split}, {fraction_label(frac)} % training data: FF average "
                 f"{fmt(ff['ff_mean'], 'perf')} ± {fmt(ff['ff_sem'], 'perf')} "
                 f"({ff['ff_n_models']} models)\n\n")
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
                    f"{fmt(r['gain_pct'], 'pct')} %; {effect_text(r)}; "
                    f"p {fmt(r['p_holm'], 'p')}"
                )
            rows.append(line)
        text += markdown_table(["readout \\ T", *[f"T = {int(T)}" for T in Ts]], rows) + "\n"
    if cells.empty:
        text += "No recurrent models in the results table.\n"
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
        if c.startswith("n_") or c in ("split_seed", "iterations", "recurrent_layers", "k"):
            return "int"
        if c == "train_fraction":
            return "frac"
        if c.endswith(("_mean", "_sem", "pearson_r_perf", "pearson_r_length")):
            return "perf"
        return "str"
    cols = [c for c in columns if c in table.columns]
    rows = [[fmt(r[c], kind(c)) if not (isinstance(r[c], str)) else r[c] for c in cols]
            for _, r in table.iterrows()]
    body = markdown_table(cols, rows) if len(rows) else "No models of this family in the results table.\n"
    return (f"# {title}\n\n{measure_text(metric)} Paired statistics as in Table 1 (below "
            f"{stats.MIN_PAIRS} pairs no CI or p-value; the note says so).\n\n" + body)


# --------------------------------------------------------------------------- CLI

TABLES = ("table1", "recurrent_vs_ff", "multipath_vs_recurrent", "ablation_rm", "ablation_lege")
_PAIRED_MD = ["n_pairs", "diff_mean", "diff_ci_low", "diff_ci_high", "paired_gain_pct",
              "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "p"]


def build(name: str, df: pd.DataFrame, dataset: str = "",
          selection: str = "validation") -> tuple[pd.DataFrame, str]:
    """Compute table ``name`` and its Markdown rendering."""
    metric = metric_of(df)
    on = f" on {dataset}" if dataset else ""
    if name == "table1":
        t = table1(df, selection=selection)
        return t, table1_markdown(t, dataset, metric)
    if name == "recurrent_vs_ff":
        t = recurrent_vs_ff(df)
        return t, cells_markdown(t, dataset, metric)
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
    args = ap.parse_args(argv)
    try:
        df = read_results(args.results, metric=args.metric)
        t, md = build(args.name, df, args.dataset, args.selection)
    except RcpbError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text_atomic(args.csv, t.to_csv(index=False))
    write_text_atomic(args.md, md)
    print(f"{args.name}: {len(t)} rows -> {args.csv}, {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
