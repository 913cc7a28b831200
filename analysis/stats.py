"""Paired statistics for model comparisons (beyond the paper; SPEC 9).

A comparison has n paired configurations: ``treat[i]`` (e.g. a recurrent model's performance,
averaged over initialisation seeds) and ``ref[i]`` (its matched feed-forward partner, also
seed-averaged). The configuration is the unit: seeds of one configuration are not independent
evidence about the model class. Reported:

- the **effect**: the mean paired difference ``mean(treat - ref)`` (in the units of the
  performance measure) with a two-sided Student t confidence interval
  ``mean +- t_{n-1} * sd / sqrt(n)`` and the paired t-test p-value of the same differences;
- the **relative gain**: the ratio of means ``mean(treat) / mean(ref) - 1`` (not the mean of
  per-pair ratios, which one weak reference inflates), with Fieller's confidence interval: the
  set of gains g whose paired t-test of ``treat - (1 + g) ref`` is not rejected at the same
  level; it is unbounded (NaN) when ``mean(ref)`` itself is not clearly above 0;
- the two-sided Wilcoxon signed-rank p-value of the differences, a check that needs no normality.

Why t-based intervals and not the bootstrap: configurations number 6 to a few hundred per
comparison, and at the small end a bootstrap interval of the mean is too narrow (with n = 2 it
is the two values themselves; percentile and BCa intervals under-cover below n ~ 20), while the
t-interval has its nominal coverage for normal differences at every n and by the central limit
theorem for larger n. One procedure at every n keeps the CI and the p-value consistent (the CI
excludes 0 exactly when p < 1 - confidence).

Below :data:`MIN_PAIRS` pairs no interval, s.e. or p-value is computed: they are NaN and the
``note`` says so ("n = 2: too few pairs for a CI"). The point estimates are always given.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

CONFIDENCE = 0.95
#: fewest pairs for which an interval or a test is reported: a Wilcoxon signed-rank test cannot
#: reach p < 0.05 (two-sided) with fewer than 6 pairs, and a t-interval from 2-5 points rests
#: entirely on the normality assumption it cannot check.
MIN_PAIRS = 6


def too_few_note(n: int) -> str:
    """The note printed instead of an interval and a p-value."""
    return f"n = {n}: too few pairs for a CI, at least {MIN_PAIRS} needed"


def sem(x) -> float:
    """Standard error of the mean, std (ddof 1) / sqrt(n), of the finite values; NaN if n < 2."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    return float(np.std(x, ddof=1) / math.sqrt(len(x)))


def t_interval(x, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student t confidence interval (low, high) of the mean of ``x`` [n]; NaN if n < 2."""
    from scipy import stats  # imported here: figures that need no test start faster

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * sem(x)
    return float(x.mean() - half), float(x.mean() + half)


def paired_t_p(diff) -> float:
    """Two-sided one-sample t-test p-value of ``diff`` [n] against 0; NaN if n < 2.

    1.0 when every difference is zero, 0.0 when all are equal and non-zero.
    """
    from scipy import stats

    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return math.nan
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def wilcoxon_p(diff) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences ``diff`` [n].

    NaN if fewer than 2 finite differences; 1.0 if every difference is zero.
    """
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return math.nan
    if np.all(d == 0):
        return 1.0
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(d).pvalue)


def ratio_gain_ci(treat, ref, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Fieller confidence interval (low, high) of ``mean(treat) / mean(ref) - 1`` for pairs.

    The gains g with ``(mean(d_g))^2 <= t^2 var(d_g) / n``, ``d_g = treat - (1 + g) ref``:
    a quadratic in ``R = 1 + g``. NaN when n < 2 or the set is not a bounded interval (the
    reference mean is not significantly above 0). Without spread (every ``treat = R ref``
    exactly) both ends are that ratio's gain.
    """
    from scipy import stats

    t = np.asarray(treat, dtype=float)
    r = np.asarray(ref, dtype=float)
    n = len(t)
    if n < 2:
        return math.nan, math.nan
    q = stats.t.ppf(0.5 + confidence / 2, n - 1) ** 2 / n
    mt, mr = t.mean(), r.mean()
    vt, vr, c = np.var(t, ddof=1), np.var(r, ddof=1), np.cov(t, r, ddof=1)[0, 1]
    # (mt - R mr)^2 - q (vt - 2 R c + R^2 vr) <= 0  <=>  a R^2 + b R + k <= 0
    a = mr ** 2 - q * vr
    b = -2 * (mt * mr - q * c)
    k = mt ** 2 - q * vt
    if a <= 0:
        return math.nan, math.nan
    disc = b * b - 4 * a * k
    if disc < 0:  # rounding when there is no spread
        disc = 0.0
    root = math.sqrt(disc)
    return float((-b - root) / (2 * a) - 1), float((-b + root) / (2 * a) - 1)


def paired_comparison(treat, ref, confidence: float = CONFIDENCE) -> dict:
    """All paired statistics of ``treat`` [n] vs ``ref`` [n] (see the module docstring).

    Pairs with a non-finite value are dropped first. Returns a dict: n_pairs, treat_mean,
    ref_mean, diff_mean, diff_ci_low, diff_ci_high, gain (ratio of means - 1, a fraction:
    0.05 = +5 %), gain_se (delta-method s.e. of the gain), gain_ci_low, gain_ci_high, p (paired
    t-test), wilcoxon_p, note ("" if nothing to say). Intervals, s.e. and p-values are NaN below
    MIN_PAIRS pairs; the gain is NaN when ``mean(ref) <= 0``.
    """
    t = np.asarray(treat, dtype=float)
    r = np.asarray(ref, dtype=float)
    if t.shape != r.shape:
        raise ValueError(f"treat and ref must have the same shape, got {t.shape} and {r.shape}")
    ok = np.isfinite(t) & np.isfinite(r)
    t, r = t[ok], r[ok]
    n = len(t)
    nan = math.nan
    out = {"n_pairs": int(n), "treat_mean": float(t.mean()) if n else nan,
           "ref_mean": float(r.mean()) if n else nan,
           "diff_mean": float((t - r).mean()) if n else nan,
           "diff_ci_low": nan, "diff_ci_high": nan, "gain": nan, "gain_se": nan,
           "gain_ci_low": nan, "gain_ci_high": nan, "p": nan, "wilcoxon_p": nan, "note": ""}
    notes = []
    if n and out["ref_mean"] > 0:
        out["gain"] = out["treat_mean"] / out["ref_mean"] - 1
    elif n:
        notes.append("reference mean <= 0: no relative gain")
    if n < MIN_PAIRS:
        notes.append(too_few_note(n))
        out["note"] = "; ".join(notes)
        return out
    d = t - r
    out["diff_ci_low"], out["diff_ci_high"] = t_interval(d, confidence)
    out["p"] = paired_t_p(d)
    out["wilcoxon_p"] = wilcoxon_p(d)
    if np.isfinite(out["gain"]):
        ratio = out["treat_mean"] / out["ref_mean"]
        out["gain_se"] = sem(t - ratio * r) / out["ref_mean"]
        out["gain_ci_low"], out["gain_ci_high"] = ratio_gain_ci(t, r, confidence)
        if not np.isfinite(out["gain_ci_low"]):
            notes.append("reference mean not clearly above 0: the gain's CI is unbounded")
    out["note"] = "; ".join(notes)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values [m] (NaN entries stay NaN and are not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def pearson(x, y) -> tuple[float, int]:
    """Pearson r of the finite pairs of ``x``, ``y`` and their count; r is NaN if n < 3 or constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan, int(len(x))
    return float(np.corrcoef(x, y)[0, 1]), int(len(x))
