"""Paired statistics: s.e.m., bootstrap CI, Wilcoxon, Holm, small-n behaviour (analysis.stats)."""

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


def test_bootstrap_ci_contains_known_mean_of_large_sample():
    rng = np.random.default_rng(123)
    x = rng.normal(0.05, 0.02, size=400)  # known mean gain 5 %
    lo, hi = stats.bootstrap_mean_ci(x)
    assert lo < 0.05 < hi
    assert lo < x.mean() < hi
    # about 2 * 1.96 * 0.02 / sqrt(400) = 0.0039 wide
    assert 0.003 < hi - lo < 0.005
    # fixed seed: the same numbers every time
    assert stats.bootstrap_mean_ci(x) == (lo, hi)


def test_paired_comparison_known_gains():
    ref = np.array([0.40, 0.50, 0.20, 0.25])
    treat = ref * np.array([1.10, 1.05, 1.20, 0.95])
    s = stats.paired_comparison(treat, ref)
    assert s["n_pairs"] == 4
    assert s["gain_mean"] == pytest.approx(np.mean([0.10, 0.05, 0.20, -0.05]))
    assert s["gain_sem"] == pytest.approx(np.std([0.10, 0.05, 0.20, -0.05], ddof=1) / 2)
    assert s["diff_mean"] == pytest.approx(np.mean(treat - ref))
    assert s["gain_ci_low"] <= s["gain_mean"] <= s["gain_ci_high"]
    assert s["wilcoxon_p"] == pytest.approx(sps.wilcoxon(treat - ref).pvalue)
    assert s["note"] == ""


def test_wilcoxon_exact_by_hand():
    # five positive differences: exact two-sided p = 2 / 2^5
    assert stats.wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert stats.wilcoxon_p([0, 0, 0]) == 1.0
    assert math.isnan(stats.wilcoxon_p([0.1]))


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_pairs_gives_nan_and_a_note(n):
    s = stats.paired_comparison([0.5] * n, [0.4] * n)
    assert s["n_pairs"] == n
    for key in ("gain_sem", "gain_ci_low", "gain_ci_high", "wilcoxon_p"):
        assert math.isnan(s[key]), key
    assert f"n = {n}" in s["note"]
    if n == 1:
        assert s["gain_mean"] == pytest.approx(0.25)


def test_constant_gains_give_a_point_interval():
    ref = np.array([0.2, 0.4, 0.5])
    s = stats.paired_comparison(ref * 1.1, ref)
    assert s["gain_ci_low"] == pytest.approx(0.1)
    assert s["gain_ci_high"] == pytest.approx(0.1)


def test_non_positive_reference_left_out_of_gains():
    s = stats.paired_comparison([0.3, 0.5, 0.6], [0.0, 0.4, 0.5])
    assert s["n_pairs"] == 3
    assert s["gain_mean"] == pytest.approx(np.mean([0.25, 0.2]))
    assert "reference <= 0" in s["note"]


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
