"""Metrics (SPEC 5) against hand-worked numbers and against simulated ground truth."""

from pathlib import Path

import numpy as np
import pytest

from rcpb import metrics
from rcpb.errors import RcpbError

nan = np.nan
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "ns2250_stimuli_74px.h5"

# 3 stimuli x 2 trials of one neuron, worked by hand:
#   stimulus 1: [1, 3]  sum 4   mean 2
#   stimulus 2: [4, 0]  sum 4   mean 2
#   stimulus 3: [5, 7]  sum 12  mean 6
# trial 1 [1, 4, 5]: mean 10/3, squared deviations 49/9 + 4/9 + 25/9 = 78/9, var(ddof 1) = 13/3
# trial 2 [3, 0, 7]: mean 10/3, squared deviations 1/9 + 100/9 + 121/9 = 222/9, var = 37/3
# sums [4, 4, 12]:   mean 20/3, squared deviations 64/9 + 64/9 + 256/9 = 384/9, var = 64/3
# SP = (64/3 - 13/3 - 37/3) / (K (K - 1)) = (14/3) / 2 = 7/3
# means [2, 2, 6]: mean 10/3, squared deviations 16/9 + 16/9 + 64/9 = 96/9, var(ddof 0) = 32/9
# cc_max = sqrt((7/3) / (32/9)) = sqrt(21/32)
HAND = np.array([[1, 3], [4, 0], [5, 7]], dtype=float)[:, :, None]
HAND_CC_MAX = np.sqrt(21 / 32)


def test_cc_max_hand_worked():
    d = metrics.cc_max_details(HAND)
    assert d.sp[0] == pytest.approx(7 / 3)
    assert d.var_y[0] == pytest.approx(32 / 9)
    assert d.cc_max[0] == pytest.approx(HAND_CC_MAX)
    assert d.k[0] == 2 and d.n_stimuli_used[0] == 3
    assert metrics.cc_max(HAND)[0] == pytest.approx(0.8100925873)


def test_cc_max_uses_first_valid_trials_and_only_repeated_stimuli():
    # neuron 0: the same numbers as HAND once NaNs are skipped, the first 2 valid trials of
    # stimulus 3 are taken (K = smallest repeat count = 2), stimulus 4 (one trial) is left out.
    # neuron 1: a different NaN pattern: only stimulus 3 is repeated -> no ceiling.
    r = np.array([
        [[1, 9], [nan, nan], [3, nan]],
        [[nan, 1], [4, nan], [0, nan]],
        [[5, 2], [7, 4], [9, 6]],
        [[8, nan], [nan, 5], [nan, nan]],
    ], dtype=float)
    d = metrics.cc_max_details(r)
    assert d.cc_max[0] == pytest.approx(HAND_CC_MAX)
    assert d.k[0] == 2 and d.n_stimuli_used[0] == 3
    assert np.isnan(d.cc_max[1]) and d.n_stimuli_used[1] == 0 and d.k[1] == 0
    # with k = 3 only stimulus 3 has enough trials for neuron 0 -> undefined
    assert np.isnan(metrics.cc_max(r, k=3)[0])
    # k = 2 given explicitly equals the automatic choice here
    assert metrics.cc_max(r, k=2)[0] == pytest.approx(HAND_CC_MAX)


def test_cc_max_k_limits_trials_per_stimulus():
    # with k = 2 only the first two trials count: the third trial (huge values) is ignored
    r = np.concatenate([HAND, np.array([100.0, -50.0, 3.0])[:, None, None]], axis=1)
    assert metrics.cc_max(r, k=2)[0] == pytest.approx(HAND_CC_MAX)
    assert metrics.cc_max(r)[0] != pytest.approx(HAND_CC_MAX)
    with pytest.raises(RcpbError):
        metrics.cc_max(r, k=1)


def test_cc_max_undefined_cases():
    # sums are equal for every stimulus: var(sum) = 0 < sum of trial variances -> SP < 0
    neg = np.array([[0, 4], [4, 0], [2, 2]], dtype=float)[:, :, None]
    assert metrics.cc_max_details(neg).sp[0] < 0
    assert np.isnan(metrics.cc_max(neg)[0])
    # no repeated stimulus at all
    single = np.array([[1, nan], [nan, 2], [3, nan]], dtype=float)[:, :, None]
    d = metrics.cc_max_details(single)
    assert np.isnan(d.cc_max[0]) and d.k[0] == 0 and d.n_stimuli_used[0] == 0
    with pytest.raises(RcpbError):
        metrics.cc_max(np.zeros((3, 2)))


def test_cc_raw_matches_corrcoef_and_constant_is_zero():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    target[:, 1] += 2 * pred[:, 1]
    expected = [np.corrcoef(pred[:, i], target[:, i])[0, 1] for i in range(4)]
    np.testing.assert_allclose(metrics.cc_raw(pred, target), expected, rtol=1e-10)
    pred[:, 2] = 3.0                                   # constant prediction
    pred[:, 3] = 1.0 + 1e-7 * rng.normal(size=50)      # std below 1e-5
    raw = metrics.cc_raw(pred, target)
    assert raw[2] == 0 and raw[3] == 0


def test_cc_raw_skips_nan_stimuli():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(30, 1)), rng.normal(size=(30, 1))
    target[[3, 7]] = nan
    keep = np.isfinite(target[:, 0])
    expected = np.corrcoef(pred[keep, 0], target[keep, 0])[0, 1]
    assert metrics.cc_raw(pred, target)[0] == pytest.approx(expected)


def test_cc_norm2_hand_worked():
    # pred [1, 2, 3], target [1, 3, 2]: deviations (-1, 0, 1) and (-1, 1, 0),
    # cov = 1/3, both std = sqrt(2/3) -> cc_raw = 0.5; cc_max 0.8 -> (0.5 / 0.8)^2 = 0.390625
    pred = np.array([[1.0], [2.0], [3.0]])
    target = np.array([[1.0], [3.0], [2.0]])
    assert metrics.cc_raw(pred, target)[0] == pytest.approx(0.5)
    assert metrics.cc_norm2(pred, target, [0.8])[0] == pytest.approx(0.390625)
    assert np.isnan(metrics.cc_norm2(pred, target, [nan])[0])


def test_summarize_excludes_neurons_without_ceiling():
    pred = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    target = np.array([[1.0, 3.0], [3.0, 2.0], [2.0, 1.0]])   # cc_raw 0.5 and -1
    s = metrics.summarize(pred, target, np.array([0.8, nan]))
    assert s["n_neurons"] == 2 and s["n_excluded"] == 1
    assert s["cc_norm2"] == pytest.approx(0.390625)
    assert s["cc_raw"] == pytest.approx((0.5 - 1.0) / 2)
    assert s["cc_raw2"] == pytest.approx((0.25 + 1.0) / 2)
    assert s["cc_raw_per_neuron"] == pytest.approx([0.5, -1.0])
    assert s["cc_norm2_per_neuron"][0] == pytest.approx(0.390625)
    assert np.isnan(s["cc_norm2_per_neuron"][1])
    # a neuron without repeats (from cc_max) is excluded and counted the same way
    single_trials = np.array([[[1, 2]], [[5, 3]], [[4, 5]]], dtype=float)   # [3, 1 trial, 2]
    ceiling = metrics.cc_max(single_trials)
    assert np.isnan(ceiling).all()
    none = metrics.summarize(pred, target, ceiling)
    assert none["n_excluded"] == 2 and np.isnan(none["cc_norm2"])
    assert none["cc_raw"] == pytest.approx(-0.25)


def test_cc_max_estimates_the_true_ceiling_on_simulated_data():
    """cc_max = correlation between the trial average and the true rate (its definition),
    averaged over 64 simulated neurons."""
    from rcpb.data.simulate import read_images, simulate

    images, _ = read_images(BUNDLED)
    ds = simulate(images[:1500], circuit="feedforward", n_neurons=64, n_trials=8, seed=3)
    mean = ds.responses.mean(axis=1)
    truth = [np.corrcoef(mean[:, i], ds.true_rates[:, i])[0, 1] for i in range(64)]
    ceiling = metrics.cc_max(ds.responses)
    assert np.isfinite(ceiling).all()
    assert abs(np.mean(ceiling) - np.mean(truth)) < 0.03
    assert np.corrcoef(ceiling, truth)[0, 1] > 0.9
