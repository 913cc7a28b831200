"""Paired statistics for model comparisons (beyond the paper).

A comparison has n paired configurations: ``treat[i]`` (e.g. a recurrent model's CC_norm^2,
averaged over initialisation seeds) and ``ref[i]`` (its matched feed-forward partner, also
seed-averaged). Reported:

- per-configuration relative gain ``g_i = treat_i / ref_i - 1`` (pairs with ``ref_i <= 0``
  are left out of the gains, and counted), its mean, s.e.m. (std ddof 1 / sqrt(n)) and a
  bootstrap confidence interval of the mean (``scipy.stats.bootstrap``, paired resampling of
  configurations, BCa, fixed seed; percentile method if BCa is undefined);
- mean paired difference ``treat - ref`` (CC_norm^2 units);
- two-sided Wilcoxon signed-rank p-value of the differences (``scipy.stats.wilcoxon``).

With fewer than 2 pairs every statistic that needs a spread is NaN and ``note`` says why;
nothing raises.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

N_RESAMPLES = 9999
CONFIDENCE = 0.95
SEED = 0


def sem(x) -> float:
    """Standard error of the mean, std (ddof 1) / sqrt(n), of the finite values; NaN if n < 2."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    return float(np.std(x, ddof=1) / math.sqrt(len(x)))


def bootstrap_mean_ci(x, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                      seed: int = SEED) -> tuple[float, float]:
    """Bootstrap confidence interval (low, high) of the mean of ``x`` [n]; (NaN, NaN) if n < 2.

    BCa with ``rng = default_rng(seed)``; when BCa is undefined (e.g. all values equal) the
    percentile interval is returned instead.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    from scipy import stats  # imported here: figures that need no test start faster

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                method=method, vectorized=True, rng=np.random.default_rng(seed),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi
    return math.nan, math.nan


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


def paired_comparison(treat, ref, confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict:
    """All paired statistics of ``treat`` [n] vs ``ref`` [n] (see module docstring).

    Returns dict: n_pairs, treat_mean, ref_mean, diff_mean, gain_mean, gain_sem, gain_ci_low,
    gain_ci_high (relative gains as fractions, 0.05 = +5 %), wilcoxon_p, note (str, "" if
    nothing to say). Pairs with a non-finite value are dropped first.
    """
    t = np.asarray(treat, dtype=float)
    r = np.asarray(ref, dtype=float)
    if t.shape != r.shape:
        raise ValueError(f"treat and ref must have the same shape, got {t.shape} and {r.shape}")
    ok = np.isfinite(t) & np.isfinite(r)
    t, r = t[ok], r[ok]
    notes = []
    pos = r > 0
    if (~pos).any():
        notes.append(f"{int((~pos).sum())} pair(s) with reference <= 0 left out of the relative gains")
    g = t[pos] / r[pos] - 1.0
    lo, hi = bootstrap_mean_ci(g, confidence, n_resamples, seed)
    if len(t) < 2:
        notes.append(f"n = {len(t)} pair(s): too few for s.e.m., confidence interval and test")
    return {
        "n_pairs": int(len(t)),
        "treat_mean": float(t.mean()) if len(t) else math.nan,
        "ref_mean": float(r.mean()) if len(r) else math.nan,
        "diff_mean": float((t - r).mean()) if len(t) else math.nan,
        "gain_mean": float(g.mean()) if len(g) else math.nan,
        "gain_sem": sem(g),
        "gain_ci_low": lo,
        "gain_ci_high": hi,
        "wilcoxon_p": wilcoxon_p(t - r),
        "note": "; ".join(notes),
    }


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
