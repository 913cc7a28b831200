"""Reading the results table and building the comparisons every table and figure uses.

The only input of the analysis is ``results/{dataset}/results.csv`` (one row per training,
columns in CONTRACTS: the flattened config plus test/val metrics and path statistics).
This module reads and checks it, selects rows by split seed and training fraction, attaches each
model's partner (``partner_id``: recurrent -> size-matched FF, multipath -> recurrent twin,
ablation -> unablated multipath model) and averages over initialisation seeds.

Failed trainings: a row whose ``status`` is ``failed`` (analysis.aggregate: a training that
diverged, or an alias trained as one) has no metrics. :func:`normalise`, which every table and
figure reads the results through, keeps only the rows with status ``ok`` (a table without the
column: every row) and records how many it left out (:func:`n_failed`, :func:`failed_note`).

Performance is one measure per dataset (:data:`METRICS`), chosen when the table is read: the
column ``perf`` holds it on the test stimuli, ``val_perf`` on the validation stimuli, and
``metric`` its name. The default, ``auto``, is ``cc_norm2`` when any model has a defined noise
ceiling and ``cc_raw`` otherwise (a dataset without repeated trials has no ceiling).
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pandas as pd

from analysis.aggregate import STATUS_FAILED, STATUS_OK
from analysis.labels import fraction_label
from rcpb.atomic_files import read_csv_file
from rcpb.chains import READOUT_MODES  # noqa: F401  (the analysis takes it from here)
from rcpb.errors import RcpbError
from rcpb.grid import FAMILIES

PERF = "perf"          # the dataset's performance measure on the test stimuli
VAL_PERF = "val_perf"  # the same measure on the validation stimuli (model selection)

# measure -> (axis label, plain-text name); each is the mean over neurons of a per-neuron value
METRICS = {
    "cc_norm2": ("CC$_{norm}^2$", "CC_norm^2"),
    "cc_raw": ("CC$_{raw}$, no noise ceiling", "CC_raw"),
    "cc_raw2": ("CC$_{raw}^2$, no noise ceiling", "CC_raw^2"),
}
METRIC_CHOICES = ("auto", *METRICS)

REQUIRED = ("config_id", "family", "split_seed", "train_fraction", "model_seed", "partner_id")
#: DataFrame.attrs key of a normalised table: the number of failed trainings left out
N_FAILED = "n_failed"

# Columns that are outcomes or bookkeeping, never part of a configuration: everything else
# (hyperparameters) identifies a configuration, and rows differing only in `model_seed` are
# averaged as one "aggregated model" (paper fig. 3 and 9).
_NOT_CONFIG = {
    "config_id", "partner_id", "model_seed", "dataset_file", "device", "threads",
    "n_params", "n_conv_params", "n_train", "wall_time_s", "best_step", "avg_path_length",
    "path_entropy", "input_size", "n_neurons", "steps_per_phase", "status", "failure",
    "metric",
    "trained_as", "split_source", "steps", "phases", "phases_stopped_early",
    PERF, VAL_PERF,
}
#: configuration columns that describe the architecture: a recurrent model and the feed-forward
#: model it is compared with differ in these and agree in every other configuration column
ARCH_COLUMNS = ("family", "arch", "blocks", "recurrent_layers", "iterations", "readout",
                "ablation", "allowed_lengths", "cell")
_NOT_CONFIG_PREFIX = ("test_", "val_", "path_p")


def choose_metric(df: pd.DataFrame, requested: str = "auto") -> str:
    """The performance measure of a results table: ``requested`` unless it is ``auto``, which is
    ``cc_norm2`` when some model has a finite ``test_cc_norm2`` and ``cc_raw`` otherwise."""
    if requested not in METRIC_CHOICES:
        raise RcpbError(f"metric {requested!r}: unknown; use one of {', '.join(METRIC_CHOICES)}.")
    if requested != "auto":
        return requested
    norm2 = pd.to_numeric(df.get("test_cc_norm2", pd.Series(dtype=float)), errors="coerce")
    return "cc_norm2" if np.isfinite(norm2.to_numpy(dtype=float)).any() else "cc_raw"


def metric_of(df: pd.DataFrame) -> str:
    """Name of the performance measure in ``perf`` (``cc_norm2`` for a table without rows)."""
    if "metric" in df.columns and len(df):
        return str(df["metric"].iloc[0])
    return "cc_norm2"


def perf_axis(metric: str) -> str:
    """Axis label of the performance measure, e.g. 'performance (CC$_{norm}^2$)'."""
    return f"performance ({METRICS[metric][0]})"


def perf_text(metric: str) -> str:
    """Plain-text name of the performance measure, e.g. 'CC_norm^2'."""
    return METRICS[metric][1]


def read_results(path: str, metric: str = "auto") -> pd.DataFrame:
    """Read and check a results table; returns one row per trained model.

    ``metric``: the performance measure (:data:`METRIC_CHOICES`; see :func:`choose_metric`),
    copied into the columns ``perf`` (test), ``val_perf`` (validation, NaN if the table has no
    such column) and ``metric`` (its name).
    Raises RcpbError naming the file when it is missing, empty, truncated (it ends inside a
    line: delete it and rerun its target) or lacks a required column. Only the rows with
    ``status`` ok are kept (see :func:`normalise`). Normalises types:
    ``family``/``readout``/``ablation``/``partner_id`` as str (missing -> ""),
    ``train_fraction`` float, ``split_seed``/``model_seed`` int, ``iterations``/
    ``recurrent_layers``/``blocks``/``channels`` float (NaN where not applicable).
    """
    if not os.path.exists(path):
        raise RcpbError(
            f"{path}: results table not found; run the aggregation first "
            "(`snakemake results/<dataset>/results.csv` or `rcpb aggregate`)."
        )
    fix = f"delete {path} and rerun its target (`snakemake {path}`)"
    try:
        df = read_csv_file(path, fix=fix, low_memory=False)
    except pd.errors.EmptyDataError:
        raise RcpbError(f"{path}: results table is empty (no header line); {fix}.") from None
    return normalise(df, source=path, metric=metric)


def normalise(df: pd.DataFrame, source: str = "results table", metric: str = "auto") -> pd.DataFrame:
    """Check required columns and normalise types of a results DataFrame (see read_results).

    The one place where failed trainings leave the analysis: only rows with ``status`` ok are
    returned (every row of a table without ``status``); the number left out is in
    ``attrs[N_FAILED]`` (:func:`n_failed`). Raises RcpbError for another status value."""
    df, left_out = _trained_rows(df, source)
    df = _normalise(df, source, metric)
    df.attrs[N_FAILED] = left_out
    return df


def _trained_rows(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, int]:
    """(rows with status ok, number of failed rows left out)."""
    if "status" not in df.columns:
        return df, 0
    status = df["status"].fillna("").astype(str)
    unknown = sorted(set(status) - {STATUS_OK, STATUS_FAILED})
    if unknown:
        raise RcpbError(f"{source}: column status has value(s) {', '.join(map(repr, unknown))}; "
                        f"expected {STATUS_OK!r} or {STATUS_FAILED!r} (rerun the aggregation).")
    ok = (status == STATUS_OK).to_numpy()
    return df.loc[ok], int((~ok).sum())


def n_failed(df: pd.DataFrame) -> int:
    """Failed trainings (status failed) that :func:`normalise` left out of ``df``."""
    return int(df.attrs.get(N_FAILED, 0))


def failed_note(df: pd.DataFrame) -> str:
    """One line for a table or figure: how many failed trainings were left out; "" for none."""
    k = n_failed(df)
    if not k:
        return ""
    return (f"Left out: {k} failed training{'s' if k != 1 else ''} (status failed in the "
            "results table, no metrics; failed.csv gives the reasons).")


def _normalise(df: pd.DataFrame, source: str, metric: str) -> pd.DataFrame:
    metric = choose_metric(df, metric)
    missing = [c for c in (*REQUIRED, f"test_{metric}") if c not in df.columns]
    if missing:
        raise RcpbError(
            f"{source}: missing column(s) {', '.join(missing)}; the table must be written by "
            "`rcpb aggregate` (columns listed in the results-table contract)."
        )
    df = df.copy()
    for col in ("family", "readout", "ablation", "partner_id", "config_id", "allowed_lengths"):
        if col in df.columns:
            df[col] = df[col].fillna("").astype(str)
        else:
            df[col] = ""
    # the recurrent cell type (rcpb.cell_kinds): "rcpb" for every recurrent and multi-path
    # model that does not name another (tables written before the axis existed), "" for FF
    cell = df["cell"].fillna("").astype(str) if "cell" in df.columns else pd.Series("", df.index)
    has_cell = df["arch"].isin(["recurrent", "multipath"]) if "arch" in df.columns else \
        ~df["family"].str.startswith("ff")
    df["cell"] = cell.where(~(has_cell & (cell == "")), "rcpb")
    for col in ("iterations", "recurrent_layers", "blocks", "channels"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df["train_fraction"] = pd.to_numeric(df["train_fraction"], errors="coerce").astype(float)
    for col in ("split_seed", "model_seed"):
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    df[PERF] = pd.to_numeric(df[f"test_{metric}"], errors="coerce")
    val = f"val_{metric}"
    df[VAL_PERF] = pd.to_numeric(df[val], errors="coerce") if val in df.columns else np.nan
    df["metric"] = metric
    if "avg_path_length" not in df.columns:
        df["avg_path_length"] = np.nan
    # a feed-forward model is one path of length blocks - 1 (Conv(3) blocks after CPB1; SPEC 6)
    ff = (df["family"] == "ff") & df["avg_path_length"].isna()
    df.loc[ff, "avg_path_length"] = df.loc[ff, "blocks"] - 1
    unknown = sorted(set(df["family"]) - set(FAMILIES))
    if unknown:
        raise RcpbError(
            f"{source}: unknown family value(s) {', '.join(map(repr, unknown))}; "
            f"expected one of {', '.join(FAMILIES)}."
        )
    return df


# --------------------------------------------------------------------------- baselines

BASELINE_COLUMNS = ("split_seed", "predictor", "description", PERF, VAL_PERF)


def read_baselines(path: str | None, metric: str) -> pd.DataFrame:
    """The baselines of a dataset for the performance measure ``metric``.

    ``path``: ``results/{dataset}/baselines.csv`` (columns dataset, split_seed, predictor,
    description, test_cc_norm2, test_cc_raw, val_cc_norm2, val_cc_raw; one row per split seed
    and predictor). Returns one row per (split_seed, predictor) with the columns
    :data:`BASELINE_COLUMNS`: ``perf`` is ``test_{metric}`` and ``val_perf`` ``val_{metric}``
    (NaN when the file has no such column, e.g. for cc_raw2), plus, for time-binned data, the
    file's ``test_profile_cc`` and ``test_bin{b}_*`` columns. No path, a missing file, an empty
    file or a header alone (a dataset without a known truth) give a table without rows.
    Raises RcpbError naming the file when it lacks ``split_seed`` or ``predictor``.
    """
    empty = pd.DataFrame(columns=list(BASELINE_COLUMNS))
    if not path or not os.path.exists(path):
        return empty
    try:
        raw = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return empty
    missing = [c for c in ("split_seed", "predictor") if c not in raw.columns]
    if missing:
        raise RcpbError(f"{path}: missing column(s) {', '.join(missing)}; a baselines table "
                        "has one row per split seed and predictor.")
    if raw.empty:
        return empty
    out = pd.DataFrame({
        "split_seed": pd.to_numeric(raw["split_seed"], errors="coerce").fillna(0).astype(int),
        "predictor": raw["predictor"].fillna("").astype(str),
        "description": raw["description"].fillna("").astype(str)
        if "description" in raw.columns else "",
    })
    for col, source in ((PERF, f"test_{metric}"), (VAL_PERF, f"val_{metric}")):
        out[col] = pd.to_numeric(raw[source], errors="coerce") if source in raw.columns else np.nan
    # time-binned data: the predictors' per-bin values, as the models' (analysis.dynamics)
    binned = [c for c in raw.columns if c.startswith("test_bin") or c == "test_profile_cc"]
    for col in binned:
        out[col] = pd.to_numeric(raw[col], errors="coerce")
    return out[list(BASELINE_COLUMNS) + binned].reset_index(drop=True)


def baseline_value(baselines: pd.DataFrame | None, split: int, predictor: str) -> float:
    """Test performance of ``predictor`` on split ``split`` (NaN when the baselines lack it)."""
    if baselines is None or baselines.empty:
        return math.nan
    rows = baselines[(baselines["split_seed"] == int(split)) & (baselines["predictor"] == predictor)]
    return float(rows[PERF].iloc[0]) if len(rows) else math.nan


# --------------------------------------------------------------------------- selection


def select(df: pd.DataFrame, family: str | None = None, split: int | None = None,
           fraction: float | None = None) -> pd.DataFrame:
    """Rows of one family (None = all) for a split seed and training fraction (None = all)."""
    m = np.ones(len(df), dtype=bool)
    if family is not None:
        m &= (df["family"] == family).to_numpy()
    if split is not None:
        m &= (df["split_seed"] == int(split)).to_numpy()
    if fraction is not None:
        m &= np.isclose(df["train_fraction"].to_numpy(dtype=float), float(fraction), rtol=0, atol=1e-9)
    return df.loc[m]


def study_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the study's comparisons: every model except recurrent models of a cell other
    than RCPB (they and the control families appear in analysis.controls only; the control
    families are never selected by the study's tables, which select families by name)."""
    return df[~((df["family"] == "recurrent") & ~df["cell"].isin(["", "rcpb"]))]


def fractions(df: pd.DataFrame) -> list[float]:
    """Sorted distinct training fractions in the table."""
    return sorted(float(f) for f in df["train_fraction"].dropna().unique())


def n_train_of(df: pd.DataFrame) -> float:
    """Median number of training stimuli of the rows (NaN if unknown)."""
    if "n_train" not in df.columns or df["n_train"].dropna().empty:
        return math.nan
    return float(df["n_train"].dropna().median())


def fraction_text(fraction: float, df: pd.DataFrame | None = None) -> str:
    """'25 % (350)' style label of a training fraction with its number of training stimuli."""
    n = n_train_of(df) if df is not None and len(df) else math.nan
    base = f"{fraction_label(fraction)} %"
    return base if math.isnan(n) else f"{base} ({int(round(n))})"


def config_columns(df: pd.DataFrame) -> list[str]:
    """Hyperparameter columns identifying a configuration up to the initialisation seed."""
    return [
        c for c in df.columns
        if c not in _NOT_CONFIG and not c.startswith(_NOT_CONFIG_PREFIX)
        and not c.startswith("_")
    ]


def path_columns(df: pd.DataFrame) -> list[str]:
    """``path_p{d}`` columns sorted by length d."""
    cols = [c for c in df.columns if re.fullmatch(r"path_p\d+", c)]
    return sorted(cols, key=lambda c: int(c[6:]))


# --------------------------------------------------------------------------- pairs


def pairs(df: pd.DataFrame, family: str, partner_family: str) -> pd.DataFrame:
    """Rows of ``family`` joined with their partner rows (one row per model).

    Returns the family's rows with the partner's columns added under the prefix ``ref_``
    (``ref_test_cc_norm2``, ``ref_avg_path_length``, ``ref_config_id``, ...). Rows whose
    partner is missing from the table are dropped. Partners must be of ``partner_family``.
    """
    rows = df[df["family"] == family]
    refs = df[df["family"] == partner_family].drop_duplicates("config_id").set_index("config_id")
    keep = rows["partner_id"].isin(refs.index)
    rows = rows[keep]
    ref_cols = [PERF, VAL_PERF, "avg_path_length", "path_entropy", "n_params", *path_columns(df)]
    ref_cols = [c for c in ref_cols if c in refs.columns]
    joined = refs.loc[rows["partner_id"], ref_cols].add_prefix("ref_")
    joined.index = rows.index
    out = pd.concat([rows, joined], axis=1)
    out["ref_config_id"] = rows["partner_id"].to_numpy()
    return out


def seed_average(df: pd.DataFrame, value_cols: list[str]) -> pd.DataFrame:
    """Average ``value_cols`` over rows that differ only in ``model_seed``.

    Returns one row per configuration: the configuration columns, the averaged values and
    ``n_seeds`` (number of models averaged: those with a finite first value).
    """
    if df.empty:
        return pd.DataFrame(columns=[*config_columns(df), *value_cols, "n_seeds"])
    keys = [c for c in config_columns(df) if not c.startswith("ref_")]
    g = df.groupby(keys, dropna=False, sort=True)
    out = g[value_cols].mean()
    out["n_seeds"] = g[value_cols[0]].count()  # seeds with a finite first value (the mean's n)
    return out.reset_index()


def removed_lengths(ablation: str, recurrent_layers: int, iterations: int) -> list[int]:
    """Path lengths an ablation removes (sorted), from rcpb.ablation_sets.parse_ablation."""
    from rcpb.ablation_sets import parse_ablation
    from rcpb.chains import existing_lengths

    allowed = parse_ablation(ablation, int(recurrent_layers), int(iterations))
    return [d for d in existing_lengths(int(recurrent_layers), int(iterations)) if d not in allowed]


def set_text(lengths: list[int]) -> str:
    """[2, 3, 4] -> "2-4", [3] -> "3", [1, 3] -> "1,3"."""
    if not lengths:
        return "none"
    if lengths == list(range(lengths[0], lengths[-1] + 1)) and len(lengths) > 1:
        return f"{lengths[0]}-{lengths[-1]}"
    return ",".join(map(str, lengths))
