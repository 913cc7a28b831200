"""The dynamics table and figure (analysis.dynamics): paired recurrent - size-matched FF effects
per measure against hand-computed values, and the figure's data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.dynamics import PROFILE, dynamics_table, fitted_bins, per_bin
from analysis.load import normalise

BINS = (2, 3, 4)


def _results(rng):
    rows = []
    for seed in range(6):
        for family, blocks, t, partner in (("ff", 3, np.nan, ""),
                                           ("recurrent", np.nan, 4, f"ff-s{seed}")):
            row = {"config_id": f"{'ff' if family == 'ff' else 'rec'}-s{seed}", "family": family,
                   "arch": family, "partner_id": partner, "split_seed": 0, "train_fraction": 1.0,
                   "model_seed": seed, "blocks": blocks, "iterations": t,
                   "recurrent_layers": np.nan if family == "ff" else 1,
                   "readout": "" if family == "ff" else "late-avg", "channels": 8,
                   "test_profile_cc": 0.0 if family == "ff" else rng.normal(0.07, 0.01)}
            for b in BINS:
                row[f"test_bin{b}_cc_raw"] = rng.normal(0.4, 0.02)
                row[f"test_bin{b}_pred"] = rng.normal(0.08, 0.001)
                row[f"test_bin{b}_true"] = 0.08 + 0.001 * b
            row["test_cc_raw"] = np.mean([row[f"test_bin{b}_cc_raw"] for b in BINS])
            rows.append(row)
    return normalise(pd.DataFrame(rows), metric="cc_raw")


def test_paired_effects_per_measure_equal_hand_computed_values():
    df = _results(np.random.default_rng(0))
    assert fitted_bins(df) == list(BINS)
    table = dynamics_table(df)
    assert len(table) == 2 + len(BINS)
    rec = df[df["family"] == "recurrent"].sort_values("model_seed")
    ff = df[df["family"] == "ff"].sort_values("model_seed")
    for measure, column in ((PROFILE, "test_profile_cc"), ("bin 3 (cc_raw)", "test_bin3_cc_raw"),
                            ("mean over bins (cc_raw)", "test_cc_raw")):
        diff = rec[column].to_numpy() - ff[column].to_numpy()
        row = table[table["measure"] == measure].iloc[0]
        assert row["n_pairs"] == 6 and row["diff_mean"] == pytest.approx(diff.mean())
        low, high = stats.t.interval(0.95, 5, diff.mean(), stats.sem(diff))
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((low, high))


def test_profiles_hold_the_observed_mean_and_each_series_with_its_interval():
    df = _results(np.random.default_rng(1))
    data = per_bin(df, "pred")
    observed = data[data["series"] == "observed"]
    assert observed["mean"].tolist() == pytest.approx([0.08 + 0.001 * b for b in BINS])
    rec = data[data["series"] == "recurrent rcpb L1 T4"].set_index("bin")
    values = df.loc[df["family"] == "recurrent", "test_bin2_pred"]
    assert rec.loc[2, "mean"] == pytest.approx(values.mean())
    assert rec.loc[2, "n"] == 6 and rec.loc[2, "ci_low"] < values.mean() < rec.loc[2, "ci_high"]
    assert set(data["series"]) == {"observed", "recurrent rcpb L1 T4", "FF 3 blocks"}


def test_the_truth_of_simulated_data_comes_from_the_baselines():
    df = _results(np.random.default_rng(2))
    baselines = pd.DataFrame([{"split_seed": 0, "predictor": "truth", "description": "",
                               "perf": 0.45, "val_perf": 0.44, "test_profile_cc": 0.17,
                               **{f"test_bin{b}_cc_raw": 0.4 + 0.01 * b for b in BINS},
                               **{f"test_bin{b}_pred": 0.09 for b in BINS}}])
    table = dynamics_table(df, baselines).set_index("measure")
    assert table.loc[PROFILE, "truth"] == 0.17
    assert table.loc["mean over bins (cc_raw)", "truth"] == 0.45
    assert table.loc["bin 3 (cc_raw)", "truth"] == pytest.approx(0.43)
    assert dynamics_table(df)["truth"].isna().all()          # recordings: no truth
    truth = per_bin(df, "cc_raw", baselines).query("series == 'truth'")
    assert truth["mean"].tolist() == pytest.approx([0.42, 0.43, 0.44])
