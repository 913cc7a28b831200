"""The per-neuron figure (analysis.plots.neurons, ``python -m analysis.figures neurons``) on a
hand-built results table and neurons table whose numbers are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis import figures, workflow
from analysis.load import normalise
from analysis.plots.neurons import share_improved

NAN = math.nan


def _results() -> pd.DataFrame:
    """Two FF models (seeds 0, 1; 3 blocks) and two recurrent cells of two seeds each:
    no-avg T = 2 (validation 0.50, test 0.30) and 2-avg T = 3 (validation 0.40, test 0.60).
    Validation chooses no-avg T = 2, although 2-avg T = 3 is better on test."""
    rows = []
    common = {"dataset": "hand", "split_seed": 0, "train_fraction": 1.0, "channels": 8,
              "act": "relu", "first_block_order": "bn_act", "loss": "mse", "n_train": 40}
    for seed in (0, 1):
        rows.append({**common, "config_id": f"ff-{seed}", "family": "ff", "arch": "ff",
                     "partner_id": "", "model_seed": seed, "blocks": 3,
                     "test_cc_norm2": 0.25, "val_cc_norm2": 0.25})
        for cid, mode, T, val, test in (("a", "no-avg", 2, 0.50, 0.30), ("b", "2-avg", 3, 0.40, 0.60)):
            rows.append({**common, "config_id": f"rec-{cid}{seed}", "family": "recurrent",
                         "arch": "recurrent", "partner_id": f"ff-{seed}", "model_seed": seed,
                         "blocks": 3, "recurrent_layers": 1, "iterations": T, "readout": mode,
                         "test_cc_norm2": test, "val_cc_norm2": val})
    df = pd.DataFrame(rows)
    df["test_cc_raw"] = df["test_cc_norm2"] / 2
    df["val_cc_raw"] = df["val_cc_norm2"] / 2
    return df


# per model: (neuron -> test_cc_norm2, test_cc_max)
_NEURONS = {
    #            neuron 0     neuron 1     neuron 2     neuron 3     neuron 4
    "ff-0":   [(0.2, 0.8), (0.1, 0.4), (0.5, 0.9), (0.0, 0.6), (NAN, 0.7)],
    "ff-1":   [(0.4, 0.8), (0.3, 0.6), (0.5, 0.9), (0.2, 0.6), (NAN, 0.7)],
    "rec-a0": [(0.5, 0.8), (0.1, 0.4), (0.6, 0.9), (0.2, 0.6), (0.3, 0.7)],
    "rec-a1": [(0.3, 0.8), (0.1, 0.6), (0.8, 0.9), (0.2, 0.6), (0.3, 0.7)],
    # the cell that is better on test: every neuron worse than FF, ceilings 0 (must not be used)
    "rec-b0": [(0.0, 0.0)] * 5,
    "rec-b1": [(0.0, 0.0)] * 5,
}


def _neurons() -> pd.DataFrame:
    return pd.DataFrame([{"config_id": cid, "neuron": i, "test_cc_norm2": v,
                          "test_cc_raw": v / 2 if v == v else NAN, "test_cc_max": c}
                         for cid, values in _NEURONS.items() for i, (v, c) in enumerate(values)])


# hand-worked: means over ff-0/ff-1 and rec-a0/rec-a1; ceilings mean over all four models
EXPECTED = pd.DataFrame({
    "neuron": [1, 3, 0, 2],  # sorted by ceiling
    "ceiling": [0.5, 0.6, 0.8, 0.9],
    "ff_perf": [0.2, 0.1, 0.3, 0.5],
    "recurrent_perf": [0.1, 0.2, 0.4, 0.7],
    "diff": [-0.1, 0.1, 0.1, 0.2],
})
# 3 of 4 improved; exact (Clopper-Pearson) 95 % interval: the upper bound solves
# P(X >= 4 | p) = p^4 = 0.975, the lower one P(X >= 3 | p) = 4 p^3 (1 - p) + p^4 = 0.025
CI_HIGH = 0.975 ** 0.25


def _ci_low() -> float:
    lo, hi = 0.0, 1.0
    for _ in range(100):  # bisection of 4p^3 - 3p^4 = 0.025 (increasing on [0, 1])
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 4 * mid ** 3 - 3 * mid ** 4 < 0.025 else (lo, mid)
    return lo


def _render(tmp_path, df, neurons, split=0, fraction=1.0):
    out = {ext: tmp_path / f"neurons.{ext}" for ext in ("png", "pdf", "csv")}
    headline = figures.render("neurons", df, split, fraction, str(out["png"]), str(out["pdf"]),
                              str(out["csv"]), neurons=neurons)
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    assert out["pdf"].read_bytes()[:4] == b"%PDF"
    return pd.read_csv(out["csv"]), headline


def test_share_improved_exact_binomial_interval():
    s = share_improved([-0.1, 0.1, 0.1, 0.2, NAN])
    assert (s["n_improved"], s["n_neurons"]) == (3, 4)
    assert s["share_improved"] == 0.75
    assert _ci_low() == pytest.approx(0.194120, abs=1e-6)
    assert s["share_ci_low"] == pytest.approx(_ci_low(), abs=1e-9)
    assert s["share_ci_high"] == pytest.approx(CI_HIGH, abs=1e-9)
    assert math.isnan(share_improved([NAN])["share_improved"])


def test_per_neuron_means_share_and_validation_chosen_cell(tmp_path):
    data, headline = _render(tmp_path, normalise(_results()), _neurons())
    assert list(data["series"]) == ["neuron"] * 4
    # the validation-best cell, not the test-best one (which would give 0 of 4 improved)
    assert set(data["readout"]) == {"no-avg"} and set(data["iterations"]) == {2}
    assert set(data["n_recurrent_models"]) == {2} and set(data["n_ff_models"]) == {2}
    for col in EXPECTED.columns:
        np.testing.assert_allclose(data[col].to_numpy(dtype=float),
                                   EXPECTED[col].to_numpy(dtype=float), atol=1e-12, err_msg=col)
    assert set(data["n_improved"]) == {3} and set(data["n_neurons"]) == {4}
    np.testing.assert_allclose(data["share_improved"], 0.75)
    np.testing.assert_allclose(data["share_ci_low"], _ci_low(), atol=1e-9)
    np.testing.assert_allclose(data["share_ci_high"], CI_HIGH, atol=1e-9)
    assert set(data["metric"]) == {"cc_norm2"}
    assert "independent" in data["share_ci"].iloc[0]
    # neuron 4 has no FF value: left out and named
    assert "1 of 5 neurons without a finite CC_norm^2 on both sides" in data["note"].iloc[0]
    assert "3 of 4 neurons (75 %, 95 % CI [19 %, 99 %]" in headline
    assert "no-avg, T = 2, chosen on validation" in headline
    assert "independent" in headline


def test_cc_raw_table_uses_the_per_neuron_cc_raw(tmp_path):
    data, _ = _render(tmp_path, normalise(_results(), metric="cc_raw"), _neurons())
    assert set(data["metric"]) == {"cc_raw"}
    np.testing.assert_allclose(data["recurrent_perf"], EXPECTED["recurrent_perf"] / 2, atol=1e-12)
    np.testing.assert_allclose(data["diff"], EXPECTED["diff"] / 2, atol=1e-12)


def test_without_ceiling_column_draws_in_neuron_order(tmp_path):
    data, _ = _render(tmp_path, normalise(_results()), _neurons().drop(columns="test_cc_max"))
    assert data["ceiling"].isna().all() and list(data["neuron"]) == [0, 1, 2, 3]
    assert "no neuron has a noise ceiling" in data["note"].iloc[0]


def test_without_neurons_or_recurrent_models_a_placeholder_says_why(tmp_path):
    df = normalise(_results())
    data, headline = _render(tmp_path, df, None)
    assert "neurons.csv" in headline and list(data.columns) == ["note", "metric"]
    data, headline = _render(tmp_path, df[df["family"] == "ff"], _neurons())
    assert "no recurrent models" in headline


def test_cli(tmp_path):
    results, neurons = tmp_path / "results.csv", tmp_path / "neurons.csv"
    _results().to_csv(results, index=False)
    _neurons().to_csv(neurons, index=False)
    out = {ext: tmp_path / f"cli.{ext}" for ext in ("png", "pdf", "csv")}
    assert figures.main(["neurons", "--results", str(results), "--neurons", str(neurons),
                         "--split", "0", "--fraction", "100",
                         *[a for ext, p in out.items() for a in (f"--{ext}", str(p))]]) == 0
    data = pd.read_csv(out["csv"])
    np.testing.assert_allclose(data["diff"], EXPECTED["diff"], atol=1e-12)
    assert figures.main(["neurons", "--results", str(results), "--neurons",
                         str(tmp_path / "missing.csv"), "--fraction", "100"]) == 2


def test_workflow_builds_it_per_split_and_fraction_with_recurrent_models():
    config = {"datasets": {"d": {"grid": "g"}},
              "grids": {"g": {"common": {"train_fraction": [0.5, 1.0]}, "ff": {},
                              "recurrent": {}}}}
    targets = workflow.targets(config, "d")
    for frac in ("50", "100"):
        for ext in ("png", "pdf", "csv"):
            assert f"results/d/figures/split0/frac{frac}/neurons.{ext}" in targets
    config["grids"]["g"].pop("recurrent")
    assert not any("neurons" in t for t in workflow.targets(config, "d"))
