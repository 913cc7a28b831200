"""Recurrent cells against the controls that isolate recurrence (Nayebi et al. 2018, section 3).

Every recurrent model (any cell: ``rcpb``, ``vanilla``, ``convlstm``, ``rgc``) is compared, with
paired statistics over its units of replication (analysis.tables.comparison_units), with

- ``size-matched FF``: its partner, the FF model with 2L + 1 blocks (the study's comparison);
- ``wider FF`` (family ``ff_wider``): 2L + 1 blocks with the channel count whose convolutions
  have the recurrent model's conv parameter count as nearly as an integer allows;
- ``deeper FF`` (``ff_deeper``): more Conv(3) blocks to match that count;
- ``unrolled-depth FF`` (``ff_depth``): as many blocks as the recurrent model's unrolled depth;
- ``minimally unrolled`` (``min_unrolled``): the same recurrent model with the smallest T that
  uses every parameter once, trained with the same hyperparameters.

A control's ``partner_id`` is the recurrent model it controls for. Effect = recurrent - control
(positive: the recurrent model is better). Parameter counts (all parameters, and those of the
convolutions, which the matching uses) are given side by side, as seed means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import PERF, pairs, select

#: control family -> its label in tables and figures (the size-matched FF is the family "ff",
#: the recurrent model's own partner)
CONTROLS = {
    "ff": "size-matched FF",
    "ff_wider": "wider FF",
    "ff_deeper": "deeper FF",
    "ff_depth": "unrolled-depth FF",
    "min_unrolled": "minimally unrolled",
}
#: the grid families of the controls (beyond the study's size-matched FF)
CONTROL_FAMILIES = tuple(f for f in CONTROLS if f != "ff")
KEYS = ["split_seed", "train_fraction", "cell", "recurrent_layers", "iterations", "readout"]
COLUMNS = [*KEYS, "control", "control_family", "control_blocks", "control_channels",
           "control_iterations", "n_models", "recurrent_mean", "control_mean",
           "recurrent_params", "control_params", "recurrent_conv_params", "control_conv_params"]


def _control_pairs(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """One row per (recurrent model, its control of ``family``) with the recurrent model's
    columns, its performance as ``perf`` and the control's as ``ref_perf`` (so that
    comparison_units and the paired statistics read recurrent - control), and the control's
    blocks, channels, iterations and parameter counts under ``control_*``."""
    rec = df[df["family"] == "recurrent"].drop_duplicates("config_id")
    if family == "ff":
        p = pairs(df, "recurrent", "ff")
        ctrl = df[df["family"] == "ff"].drop_duplicates("config_id").set_index("config_id")
        ids = p["partner_id"]
    else:
        c = pairs(df, family, "recurrent")                  # control rows, ref_ = recurrent
        ctrl = c.drop_duplicates("config_id").set_index("config_id")
        by_id = rec.set_index("config_id")
        p = by_id.loc[c["partner_id"]].reset_index()
        p["_control_id"] = c["config_id"].to_numpy()
        ids = p["_control_id"]
    if p.empty:
        return p
    p = p.copy()
    p[f"ref_{PERF}"] = ctrl.loc[ids, PERF].to_numpy()
    for col, src in (("control_blocks", "blocks"), ("control_channels", "channels"),
                     ("control_iterations", "iterations"), ("control_params", "n_params"),
                     ("control_conv_params", "n_conv_params")):
        p[col] = ctrl.loc[ids, src].to_numpy() if src in ctrl.columns else np.nan
    return p.drop(columns=["_control_id"], errors="ignore")


def controls_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, fraction, cell, recurrent layers, T, readout) and control: the
    recurrent models' and the control's means and parameter counts, the paired statistics of
    recurrent - control (analysis.tables.PAIRED_COLUMNS, ``note``), and ``p_holm`` (Holm over
    the controls and cells of a split and fraction)."""
    from analysis.tables import PAIRED_COLUMNS, _add_holm, comparison_units, _paired_columns

    rows = []
    for family, label in CONTROLS.items():
        p = _control_pairs(df, family)
        if p.empty:
            continue
        p = p.copy()
        p["cell"] = p["cell"].replace("", "rcpb") if "cell" in p.columns else "rcpb"
        for key, one in p.groupby(KEYS, dropna=False):
            # the control's own settings are shared by the pairs of one key; keep them out of
            # the configuration columns that define the units
            units, unit = comparison_units(one.drop(columns=[c for c in one.columns
                                                             if c.startswith("control_")]))
            row = dict(zip(KEYS, key))
            row.update(control=label, control_family=family,
                       control_blocks=_shared(one["control_blocks"]),
                       control_channels=_shared(one["control_channels"]),
                       control_iterations=_shared(one["control_iterations"]),
                       n_models=int(len(one)), recurrent_mean=units[PERF].mean(),
                       control_mean=units[f"ref_{PERF}"].mean(),
                       recurrent_params=one["n_params"].mean() if "n_params" in one else np.nan,
                       control_params=one["control_params"].mean(),
                       recurrent_conv_params=(one["n_conv_params"].mean()
                                              if "n_conv_params" in one else np.nan),
                       control_conv_params=one["control_conv_params"].mean())
            row.update(_paired_columns(units[PERF], units[f"ref_{PERF}"], unit))
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*COLUMNS, *PAIRED_COLUMNS, "note"])
    out = _add_holm(out, ["split_seed", "train_fraction"])
    order = {label: i for i, label in enumerate(CONTROLS.values())}
    out["_order"] = out["control"].map(order)
    out = out.sort_values([*KEYS[:2], "cell", "recurrent_layers", "iterations", "readout",
                           "_order"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _shared(values: pd.Series) -> float:
    """The value the rows share (NaN when absent or when they differ)."""
    v = pd.to_numeric(values, errors="coerce").dropna().unique()
    return float(v[0]) if len(v) == 1 else np.nan


def controls_in(df: pd.DataFrame, split: int, fraction: float) -> pd.DataFrame:
    """:func:`controls_table` of one split seed and training fraction."""
    return controls_table(select(df, None, split, fraction))
