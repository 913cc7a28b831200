"""Time-binned responses: recurrent models vs their size-matched FF, bin by bin (docs/dynamics.md).

A dataset with a time axis (``responses [stimuli, trials, neurons, bins]``) is fitted over the
bins of its ``preprocess.time_window``: a recurrent model's iteration t predicts bin
``offset + t - 1`` through its one readout, a feed-forward model predicts the same for every bin
(rcpb.train.bin_outputs). The aggregation (analysis.aggregate) writes, per model, the test
performance of every fitted bin b (``test_bin{b}_cc_raw``, ``test_bin{b}_cc_norm2``, the
latter with that bin's own noise ceiling), the population means of prediction and target per bin
(``test_bin{b}_pred``, ``test_bin{b}_true``) and the time-profile correlation ``test_profile_cc``
(per stimulus and neuron, Pearson over the bins; 0 for a prediction constant in time).

:func:`dynamics_table` compares each recurrent configuration with its size-matched FF (its
``partner_id``) on each of these measures, with the paired statistics of every table
(analysis.tables.comparison_units: configurations, or seeds when there is one configuration).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.load import PERF, pairs, select

KEYS = ["split_seed", "train_fraction", "cell", "recurrent_layers", "iterations", "readout"]
COLUMNS = [*KEYS, "measure", "bin", "n_models", "recurrent_mean", "ff_mean", "truth"]
#: the measures other than the per-bin performance
PROFILE = "time profile (profile_cc)"
MEAN = "mean over bins"


def fitted_bins(df: pd.DataFrame, value: str = "cc_raw") -> list[int]:
    """The file bins with a ``test_bin{b}_{value}`` column, sorted."""
    found = (re.fullmatch(rf"test_bin(\d+)_{value}", c) for c in df.columns)
    return sorted(int(m.group(1)) for m in found if m)


def is_time_binned(df: pd.DataFrame) -> bool:
    """Whether a results table holds models fitted to time-binned data."""
    return bool(fitted_bins(df)) and "test_profile_cc" in df.columns


def _measures(df: pd.DataFrame) -> list[tuple[str, float, str]]:
    """(measure label, bin or NaN, results column) of every compared measure."""
    metric = str(df["metric"].iloc[0]) if "metric" in df.columns and len(df) else "cc_raw"
    out = [(PROFILE, np.nan, "test_profile_cc"), (f"{MEAN} ({metric})", np.nan, PERF)]
    out += [(f"bin {b} ({metric})", float(b), f"test_bin{b}_{metric}")
            for b in fitted_bins(df, metric)]
    return out


def dynamics_table(df: pd.DataFrame, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (split, fraction, cell, recurrent layers, T, readout) and measure (the
    time-profile correlation, the performance averaged over bins, the performance of each bin):
    recurrent and size-matched FF means and the paired statistics of recurrent - FF
    (analysis.tables.PAIRED_COLUMNS, ``note``), ``p_holm`` over the measures and configurations
    of a split and fraction, and ``truth``: the same measure of the simulator's true rates
    (analysis.load.read_baselines; NaN for recordings), what a model could reach. Empty without
    time-binned models."""
    from analysis.tables import PAIRED_COLUMNS, _add_holm, _paired_columns, comparison_units

    columns = [*COLUMNS, *PAIRED_COLUMNS, "note"]
    if not is_time_binned(df):
        return pd.DataFrame(columns=columns)
    rows = []
    for label, b, column in _measures(df):
        d = df.copy()
        d[PERF] = pd.to_numeric(d[column], errors="coerce")
        p = pairs(d, "recurrent", "ff")
        for key, one in p.groupby(KEYS, dropna=False):
            units, unit = comparison_units(one)
            row = dict(zip(KEYS, key))
            row.update(measure=label, bin=b, n_models=int(len(one)),
                       recurrent_mean=units[PERF].mean(), ff_mean=units[f"ref_{PERF}"].mean(),
                       truth=_truth(baselines, key[0], column))
            row.update(_paired_columns(units[PERF], units[f"ref_{PERF}"], unit))
            rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    return _add_holm(out, ["split_seed", "train_fraction"]).reset_index(drop=True)


def _truth(baselines: pd.DataFrame | None, split: int, column: str) -> float:
    """The true rates' value of results ``column`` on split seed ``split`` (NaN without)."""
    if baselines is None or baselines.empty:
        return np.nan
    rows = baselines[(baselines["split_seed"] == split) & (baselines["predictor"] == "truth")]
    if rows.empty or column not in rows.columns:
        return np.nan
    return float(rows[column].iloc[0])


def dynamics_in(df: pd.DataFrame, split: int, fraction: float,
                baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`dynamics_table` of one split seed and training fraction."""
    return dynamics_table(select(df, None, split, fraction), baselines)


def per_bin(df: pd.DataFrame, value: str, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per bin on the test stimuli, ``test_bin{b}_{value}`` (``value``: "cc_raw", "cc_norm2",
    or "pred", the population-mean prediction): one row per (series, bin) with ``mean``,
    ``ci_low``, ``ci_high`` (95 % t-interval over the models, their seeds; none below
    analysis.stats.MIN_PAIRS) and ``n``, a series per recurrent configuration and FF depth
    (:func:`series_groups`); for "pred" also the series "observed", the population-mean target,
    the trial average (the same for every model of a split); with ``baselines`` (of the split)
    the series "truth", the simulator's true rates."""
    from analysis.stats import MIN_PAIRS, t_interval

    rows = []
    bins = fitted_bins(df, value)
    if value == "pred":
        for b in bins:
            seen = pd.to_numeric(df[f"test_bin{b}_true"], errors="coerce").dropna()
            rows.append({"series": "observed", "bin": b, "mean": seen.mean(), "ci_low": np.nan,
                         "ci_high": np.nan, "n": int(len(seen) > 0)})
    truth = None if baselines is None else baselines[baselines["predictor"] == "truth"]
    if truth is not None and len(truth):
        for b in bins:
            column = f"test_bin{b}_{value}"
            v = float(truth[column].iloc[0]) if column in truth.columns else np.nan
            rows.append({"series": "truth", "bin": b, "mean": v, "ci_low": np.nan,
                         "ci_high": np.nan, "n": 1})
    for name, group in series_groups(df):
        for b in bins:
            v = pd.to_numeric(group[f"test_bin{b}_{value}"], errors="coerce").dropna().to_numpy()
            lo, hi = t_interval(v) if len(v) >= MIN_PAIRS else (np.nan, np.nan)
            rows.append({"series": name, "bin": b, "mean": v.mean() if len(v) else np.nan,
                         "ci_low": lo, "ci_high": hi, "n": len(v)})
    return pd.DataFrame(rows, columns=["series", "bin", "mean", "ci_low", "ci_high", "n"])


def series_groups(df: pd.DataFrame):
    """(label, rows) of the recurrent configurations (cell, L, T, readout) and the FF depths."""
    rec = df[df["family"] == "recurrent"]
    for (cell, layers, t, readout), g in rec.groupby(
            ["cell", "recurrent_layers", "iterations", "readout"], dropna=False):
        yield f"recurrent {cell} L{int(layers)} T{int(t)}", g
    ff = df[df["family"] == "ff"]
    for blocks, g in ff.groupby("blocks"):
        yield f"FF {int(blocks)} blocks", g
