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
    assert d.k[0] == 2 and d.k_max[0] == 2 and d.n_stimuli_used[0] == 3
    assert metrics.cc_max(HAND)[0] == pytest.approx(0.8100925873)
    # the same by the module docstring's route: trial means [1/3 + ...] are [10/3, 10/3] for
    # both positions, so the position effects are 0 and the residuals are the within-stimulus
    # deviations (-1, 1), (2, -2), (-1, 1): SS_res = 12 on (M - 1)(K - 1) = 2 df -> sigma^2 = 6;
    # var(t, ddof 1) = 16/3, SP = 16/3 - 6 / 2 = 7/3.
    assert d.noise_var[0] == pytest.approx(6.0)


# HAND with a third trial for stimulus 3: [5, 7, 6], n = (2, 2, 3), worked by hand.
#   target t = all-trial means [2, 2, 6] (as in HAND): var(t, ddof 1) = 16/3, ddof 0 = 32/9
#   position means of the within-stimulus deviations: sums (-1 + 2 - 1, 1 - 2 + 1, 0) = 0,
#   so the position effects b are 0 and SS_res = (1 + 1) + (4 + 4) + (1 + 1 + 0) = 12 on
#   N - M - P + 1 = 7 - 3 - 3 + 1 = 2 df -> sigma^2 = 6; mean(1/n) = (1/2 + 1/2 + 1/3) / 3 = 4/9
#   SP = 16/3 - 6 * 4/9 = 8/3; cc_max = sqrt((8/3) / (32/9)) = sqrt(3/4)
UNEQUAL = [[1, 3, nan], [4, 0, nan], [5, 7, 6]]


def test_cc_max_hand_worked_unequal_repeats():
    r = np.array(UNEQUAL, dtype=float)[:, :, None]
    d = metrics.cc_max_details(r)
    assert d.sp[0] == pytest.approx(8 / 3)
    assert d.var_y[0] == pytest.approx(32 / 9)
    assert d.noise_var[0] == pytest.approx(6.0)
    assert d.cc_max[0] == pytest.approx(np.sqrt(3 / 4))
    assert (d.k[0], d.k_max[0], d.n_stimuli_used[0]) == (2, 3, 3)
    # k = 2: the first two trials of every stimulus, i.e. HAND (the 2-trial target's ceiling)
    assert metrics.cc_max(r, k=2)[0] == pytest.approx(HAND_CC_MAX)
    np.testing.assert_allclose(metrics.trial_target(r), [[2.0], [2.0], [6.0]])
    np.testing.assert_allclose(metrics.trial_target(r, k=2), [[2.0], [2.0], [6.0]])


def test_noise_variance_ignores_position_effects_and_offsets():
    r = np.array([[1, 3, nan], [4, 0, nan], [5, 6, 7]], dtype=float)[:, :, None]
    d = metrics.cc_max_details(r)
    # a constant added to the first trial of every stimulus is a position effect: the noise
    # variance (residual of stimulus + position effects) stays the same
    shifted = r.copy()
    shifted[:, 0, 0] += 10.0
    assert metrics.cc_max_details(shifted).noise_var[0] == pytest.approx(d.noise_var[0])
    # the estimate does not depend on the origin of the response scale
    moved = metrics.cc_max_details(r + 1000.0)
    assert moved.sp[0] == pytest.approx(d.sp[0], rel=1e-9)
    assert moved.cc_max[0] == pytest.approx(d.cc_max[0], rel=1e-9)


def test_cc_max_uses_valid_trials_and_only_repeated_stimuli():
    # neuron 0: UNEQUAL once NaNs are skipped (valid trials keep their order), stimulus 4
    # (one trial) is left out; with k = 2 the first 2 valid trials: HAND.
    # neuron 1: a different NaN pattern: only stimulus 3 is repeated -> no ceiling.
    r = np.array([
        [[1, 9], [nan, nan], [3, nan]],
        [[nan, 1], [4, nan], [0, nan]],
        [[5, 2], [7, 4], [6, 6]],
        [[8, nan], [nan, 5], [nan, nan]],
    ], dtype=float)
    d = metrics.cc_max_details(r)
    assert d.cc_max[0] == pytest.approx(np.sqrt(3 / 4))
    assert d.k[0] == 2 and d.k_max[0] == 3 and d.n_stimuli_used[0] == 3
    assert np.isnan(d.cc_max[1]) and d.n_stimuli_used[1] == 0 and d.k[1] == 0
    # with k = 3 only stimulus 3 has enough trials for neuron 0 -> undefined
    assert np.isnan(metrics.cc_max(r, k=3)[0])
    assert metrics.cc_max(r, k=2)[0] == pytest.approx(HAND_CC_MAX)
    # the targets these ceilings describe: all valid trials, or the first 2 valid ones
    np.testing.assert_allclose(metrics.trial_target(r)[:, 0], [2, 2, 6, 8])
    np.testing.assert_allclose(metrics.trial_target(r, k=2)[:, 0], [2, 2, 6, 8])
    np.testing.assert_allclose(metrics.trial_target(r)[:, 1], [9, 1, 4, 5])
    with pytest.raises(RcpbError, match="k must be an integer"):
        metrics.trial_target(r, k=1)


def _schoppe(y):
    """Schoppe et al. 2016 eq. 29 worked independently of rcpb: y [M stimuli, K trials]."""
    k = y.shape[1]
    sp = (y.sum(axis=1).var(ddof=1) - y.var(axis=0, ddof=1).sum()) / (k * (k - 1))
    var_y = y.mean(axis=1).var(ddof=0)
    return sp, var_y


@pytest.mark.parametrize("k", [2, 3, 8, 10])
def test_equal_repeats_give_schoppe_et_al(k):
    """Every stimulus K trials, no NaN: the formula is exactly Schoppe et al.'s."""
    rng = np.random.default_rng(k)
    rates = rng.gamma(2.0, 2.0, size=(150, 1, 4))
    drift = 0.3 * np.arange(k)[None, :, None]                   # trial-position effects
    r = rng.poisson(rates + drift, size=(150, k, 4)).astype(float) + 50.0
    d = metrics.cc_max_details(r)
    for n in range(4):
        sp, var_y = _schoppe(r[:, :, n])
        assert d.sp[n] == pytest.approx(sp, rel=1e-9, abs=1e-12)
        assert d.var_y[n] == pytest.approx(var_y, rel=1e-12)
        assert d.cc_max[n] == pytest.approx(np.sqrt(sp / var_y), rel=1e-9)
        assert d.k[n] == d.k_max[n] == k
    # k given = the first k trials, the same formula
    sub = metrics.cc_max_details(r, k=2)
    sp, var_y = _schoppe(r[:, :2, 0])
    assert sub.cc_max[0] == pytest.approx(np.sqrt(sp / var_y), rel=1e-9)


def _first_k_ceiling(r):
    """The former rule, for comparison: the first K valid trials, K = the smallest count."""
    out = []
    for n in range(r.shape[2]):
        counts = (~np.isnan(r[:, :, n])).sum(axis=1)
        used = counts >= 2
        y = r[used, :, n][:, :counts[used].min()]   # valid trials come first in these data
        sp, var_y = _schoppe(y)
        out.append(np.sqrt(sp / var_y) if sp > 0 else nan)
    return np.array(out)


def _unequal_repeats(seed, scale, m=800, trials=10, few=0.025, neurons=16):
    """True rates [m, neurons] (gamma, mean 2 * scale) and Poisson trials [m, trials, neurons]
    with a fraction ``few`` of the stimuli (the same for every neuron) left with 2 trials."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, scale, size=(m, neurons))
    r = rng.poisson(rates[:, None, :], size=(m, trials, neurons)).astype(float)
    r[rng.choice(m, int(round(few * m)), replace=False), 2:, :] = nan
    return rates, r


@pytest.mark.parametrize("scale", [2.0, 0.3])   # mean rate 4 and a low rate, 0.6
def test_true_rates_score_one_with_unequal_repeats(scale):
    """SPEC 5: with 10 trials and 2.5 % of the stimuli at 2, the true rates score cc_norm2 ~1.

    With the ceiling on the stimuli cc_raw is computed on, cc_norm2 of the true rates is
    cov(mu, t)^2 / (var(mu) SP), about var_0(mu) / var_1(mu) = (M - 1) / M: 1 - 1/800 here.
    Tolerance: 4 standard errors of the mean over the 4 x 16 neurons (measured from the data
    themselves) plus 2/M for that factor and the O(1/M) bias of a ratio of estimates.
    """
    values, former = [], []
    for seed in range(4):
        rates, r = _unequal_repeats(seed, scale)
        target = metrics.trial_target(r)                   # = the prepared all-trial targets
        values.append(metrics.cc_norm2(rates, target, metrics.cc_max(r)))
        former.append(metrics.cc_norm2(rates, target, _first_k_ceiling(r)))
    values = np.concatenate(values)
    assert np.isfinite(values).all()
    sem = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - 1.0) < 4 * sem + 2 / 800
    # the former rule (K = 2 for every stimulus) over-states the true rates' performance
    assert np.nanmean(np.concatenate(former)) > 1.1


def test_split_ceiling_evaluated_all_and_fallback():
    rng = np.random.default_rng(7)
    r = rng.poisson(rng.gamma(2.0, 2.0, size=(60, 1, 3)), size=(60, 4, 3)).astype(float)
    test = np.arange(40, 60)
    r[test, 1:, 2] = nan                                     # neuron 2: no repeats in test
    ceiling, fallback = metrics.split_ceiling(r, test)
    own = metrics.cc_max(r[test])
    every = metrics.cc_max(r)
    np.testing.assert_array_equal(ceiling[:2], own[:2])
    assert fallback.tolist() == [2] and np.isnan(own[2])
    # neuron 2's test targets are single trials: sigma^2 from all repeated stimuli, the signal
    # power from those single trials (worked out here from the formula)
    sigma2 = metrics.cc_max_details(r).noise_var[2]
    t = r[test, 0, 2]
    expected = np.sqrt((t.var(ddof=1) - sigma2) / t.var(ddof=0))
    assert ceiling[2] == pytest.approx(expected, rel=1e-12) and ceiling[2] < every[2]
    all_ceiling, none = metrics.split_ceiling(r, test, "all")
    np.testing.assert_array_equal(all_ceiling, every)
    assert none.size == 0
    with pytest.raises(RcpbError, match="ceiling_stimuli"):
        metrics.split_ceiling(r, test, "train")


def test_single_trial_targets_get_the_ceiling_of_single_trials():
    """Sensorium-style splits: validation images shown once, test images 4 times. Signal
    s ~ N(0, 1) per stimulus, Gaussian noise of variance 1 per trial: the true ceiling of a
    single-trial target is sqrt(1 / (1 + 1)), that of a 4-trial mean sqrt(1 / (1 + 1/4)). The
    validation split must get the first (it fell back to the second before)."""
    rng = np.random.default_rng(3)
    n_val, n_test, neurons = 4000, 1000, 4
    signal = rng.normal(size=(n_val + n_test, 1, neurons))
    r = signal + rng.normal(size=(n_val + n_test, 4, neurons))
    r[:n_val, 1:] = nan                                           # validation: one trial
    val = np.arange(n_val)
    ceiling, fallback = metrics.split_ceiling(r, val)
    assert fallback.tolist() == list(range(neurons))
    np.testing.assert_allclose(ceiling ** 2, 0.5, atol=0.03)
    test_ceiling, _ = metrics.split_ceiling(r, np.arange(n_val, n_val + n_test))
    np.testing.assert_allclose(test_ceiling ** 2, 0.8, atol=0.03)
    # the true signal then scores cc_norm2 ~ 1 on the single trials
    norm2 = metrics.cc_norm2(signal[val, 0], r[val, 0], ceiling)
    np.testing.assert_allclose(norm2, 1.0, atol=0.08)


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
    assert s["frac_negative_cc_raw"] == pytest.approx(0.5)   # cc_raw -1 < 0, 0.5 is not
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
