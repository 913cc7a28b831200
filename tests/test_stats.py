"""Paired statistics valid at their n (analysis.stats): t-interval, ratio of means with
Fieller's interval, "too few pairs", Wilcoxon, Holm."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis import stats


def test_sem_by_hand():
    # std ddof 1 of 1..4 = sqrt(5/3); / sqrt(4)
    assert stats.sem([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert stats.sem([1, np.nan, 3]) == pytest.approx(math.sqrt(2) / math.sqrt(2))
    assert math.isnan(stats.sem([0.3]))
    assert math.isnan(stats.sem([]))


def test_t_interval_of_a_small_sample_by_hand():
    # 1..6: mean 3.5, sd sqrt(3.5), s.e.m. sqrt(3.5 / 6); t(0.975, 5 df) = 2.5706 (printed tables)
    lo, hi = stats.t_interval([1, 2, 3, 4, 5, 6])
    half = 2.5706 * math.sqrt(3.5 / 6)
    assert lo == pytest.approx(3.5 - half, abs=1e-4)
    assert hi == pytest.approx(3.5 + half, abs=1e-4)


def test_t_interval_covers_the_true_mean_at_its_nominal_rate_with_six_pairs():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.02, 0.05, size=(4000, 6))
    covered = np.mean([lo <= 0.02 <= hi for lo, hi in map(stats.t_interval, draws)])
    # 95 % nominal; binomial s.d. of the rate over 4000 draws is 0.0034
    assert covered == pytest.approx(0.95, abs=0.012)


@pytest.mark.parametrize("n", [0, 1, 2, stats.MIN_PAIRS - 1])
def test_below_min_pairs_no_interval_and_no_p_only_a_note(n):
    ref = np.linspace(0.3, 0.5, n)
    s = stats.paired_comparison(ref + 0.05, ref)
    assert s["n_pairs"] == n
    for key in ("diff_ci_low", "diff_ci_high", "gain_se", "gain_ci_low", "gain_ci_high", "p",
                "wilcoxon_p"):
        assert math.isnan(s[key]), key
    assert f"n = {n}: too few pairs for a CI" in s["note"]
    if n:
        assert s["diff_mean"] == pytest.approx(0.05)  # point estimates are still given


def test_min_pairs_is_at_least_six():
    assert stats.MIN_PAIRS >= 6


def test_ratio_of_means_differs_from_mean_of_ratios():
    # five pairs at +20 % and one weak reference at +100 %: the mean of the ratios is +33 %,
    # the ratio of the means 3.1 / 2.55 - 1 = +21.6 %
    treat = np.array([0.6, 0.6, 0.6, 0.6, 0.6, 0.1])
    ref = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.05])
    s = stats.paired_comparison(treat, ref)
    assert s["gain"] == pytest.approx(3.1 / 2.55 - 1)
    assert np.mean(treat / ref - 1) == pytest.approx(1 / 3)
    assert s["diff_mean"] == pytest.approx((5 * 0.1 + 0.05) / 6)
    assert s["gain_ci_low"] < s["gain"] < s["gain_ci_high"]


def test_fieller_interval_ends_are_where_the_paired_t_test_turns_significant():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.3, 0.6, 12)
    treat = ref * 1.05 + rng.normal(0, 0.02, 12)
    lo, hi = stats.ratio_gain_ci(treat, ref)
    for g in (lo, hi):
        assert sps.ttest_1samp(treat - (1 + g) * ref, 0).pvalue == pytest.approx(0.05, abs=1e-6)
    mid = treat.mean() / ref.mean() - 1
    assert lo < mid < hi


def test_fieller_with_a_constant_reference_is_the_t_interval_scaled():
    ref = np.full(8, 0.5)
    treat = np.array([0.52, 0.55, 0.49, 0.58, 0.51, 0.56, 0.53, 0.50])
    lo, hi = stats.ratio_gain_ci(treat, ref)
    tlo, thi = stats.t_interval(treat)
    assert lo == pytest.approx(tlo / 0.5 - 1) and hi == pytest.approx(thi / 0.5 - 1)


def test_constant_gain_gives_a_point_interval():
    ref = np.array([0.2, 0.4, 0.5, 0.3, 0.6, 0.45])
    s = stats.paired_comparison(ref * 1.1, ref)
    assert s["gain_ci_low"] == pytest.approx(0.1)
    assert s["gain_ci_high"] == pytest.approx(0.1)


def test_paired_p_values_match_scipy():
    rng = np.random.default_rng(2)
    ref = rng.uniform(0.3, 0.6, 10)
    treat = ref + rng.normal(0.01, 0.02, 10)
    s = stats.paired_comparison(treat, ref)
    assert s["p"] == pytest.approx(sps.ttest_rel(treat, ref).pvalue)
    assert s["wilcoxon_p"] == pytest.approx(sps.wilcoxon(treat - ref).pvalue)
    # the CI excludes 0 exactly when p < 0.05
    assert (s["diff_ci_low"] > 0 or s["diff_ci_high"] < 0) == (s["p"] < 0.05)


def test_wilcoxon_exact_by_hand():
    # five positive differences: exact two-sided p = 2 / 2^5
    assert stats.wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert stats.wilcoxon_p([0, 0, 0]) == 1.0
    assert math.isnan(stats.wilcoxon_p([0.1]))


def test_non_positive_reference_mean_gives_no_gain():
    s = stats.paired_comparison([0.1] * 6, [0.0, -0.1, 0.1, -0.05, 0.05, 0.0])
    assert math.isnan(s["gain"])
    assert "reference mean <= 0" in s["note"]
    assert s["diff_mean"] == pytest.approx(0.1)


def test_non_finite_pairs_dropped():
    s = stats.paired_comparison([0.3, np.nan, 0.6], [0.2, 0.4, np.nan])
    assert s["n_pairs"] == 1


def test_holm_by_hand():
    adj = stats.holm([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, 1 * 0.04, then running maximum
    np.testing.assert_allclose(adj[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adj[3])


def test_pearson_small_n_is_nan():
    assert math.isnan(stats.pearson([1, 2], [1, 2])[0])
    r, n = stats.pearson([1, 2, 3, 4], [2, 4, 6, 8.5])
    assert n == 4 and r == pytest.approx(np.corrcoef([1, 2, 3, 4], [2, 4, 6, 8.5])[0, 1])
