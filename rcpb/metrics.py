"""Prediction metrics (SPEC 5; paper appendix C.4): cc_raw, cc_max, cc_norm2.

Pure numpy. Shapes:

- ``responses``: ``[stimuli, trials, neurons]``, one value per trial, NaN where a trial is
  missing (the pattern of missing trials may differ between neurons);
- ``pred``, ``target``: ``[stimuli, neurons]`` (``target`` = trial-averaged responses);
- every per-neuron result: ``[neurons]``.

Noise ceiling of the target actually used (SPEC 5)
--------------------------------------------------
``cc_max`` estimates the correlation between the target and the true mean response. The target
(SPEC 2.2, :func:`rcpb.data.preprocess.trial_average`) is the mean of *all* valid trials of a
stimulus, so the ceiling is computed for each stimulus' own trial count ``n_i``. For one neuron,
take the M stimuli with at least 2 valid trials (their valid trials in order: position
``j = 0 .. n_i - 1`` is the j-th valid trial), ``t_i`` = mean of stimulus i's trials::

    var_y   = var_M(t)                                  (ddof 0: the target's own variance)
    sigma^2 = SS_res / (N - M - P + 1)                   (noise variance)
    SP      = var_M(t, ddof 1) - sigma^2 * mean_M(1 / n_i)
    cc_max  = sqrt(SP / var_y)

``SS_res`` is the residual sum of squares of the least-squares fit ``y_ij = a_i + b_j``
(stimulus plus trial-position effects) to the N valid trials, P the number of trial positions
(the largest ``n_i``); ``N - M - P + 1`` is its residual degrees of freedom (>= M - 1).

Why: with ``y_ij = mu_i + e_ij``, independent noise of variance sigma^2,
``E[var_M(t, ddof 1)] = var_M(mu, ddof 1) + mean_M(sigma^2 / n_i)``, so SP is an unbiased
estimate of the signal power (the variance over stimuli of the true means) whatever the
``n_i``; the noise term is the expected noise variance of the target. ``var_y`` is the observed
variance of the very target that ``cc_raw`` correlates with: when the ceiling is taken on the
evaluated stimuli (the default of :func:`rcpb.train.evaluate`) and all of them are repeated,
the target's variance cancels in ``cc_raw / cc_max`` and ``cc_norm2 = cov(pred, t)^2 /
(var(pred) SP)``, leaving no second noisy estimate of it. Removing the trial-position effects
``b_j`` (drifts shared by the j-th presentation of every stimulus) is what Schoppe et al. 2016
(eq. 29) do: with EQUAL repeats (every stimulus K trials) the formula above *is* theirs::

    SP = (var_M(sum_K y) - sum_k var_M(y[:, k])) / (K (K - 1))   (ddof 1 in both)
    var_y = var_M(mean_K y)                                        (ddof 0)

(the two-way residual mean square is ``SS_res / ((M - 1)(K - 1))``, and the identity
``SP = var_M(t, ddof 1) - SS_res / ((M - 1)(K - 1) K)`` follows from splitting the sum of
squares into stimulus, trial and residual parts). Pooling sigma^2 over stimuli assumes the noise
variance does not depend on how many trials a stimulus has (trials missing at random); with
Poisson-like noise (variance ~ rate) SP stays unbiased to first order on average over which
stimuli have fewer trials (the tests check the true rates score cc_norm2 ~1 on such data). Using K = the smallest repeat count for a target that averages every trial (the former
rule) under-states the ceiling: with 10 trials per stimulus and 2.5 % of the stimuli at 2, the
true rates scored cc_norm2 = 1.19.

``k`` (the paper's "first 8 of 8-10 trials"): only stimuli with >= k valid trials enter, with
their first k valid trials, and the target that the ceiling describes is then the mean of the
first k valid trials (:func:`trial_target` with the same ``k``).

``cc_max`` is NaN (no defined ceiling) where SP <= 0, var_y = 0 or fewer than 2 stimuli are
repeated. It can exceed 1 slightly by chance (and by sqrt(M / (M - 1)) for noise-free data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcpb.errors import RcpbError

STD_EPS = 1e-5  # cc_raw is 0 when the prediction or the target has a smaller std
#: Which stimuli a split's noise ceiling comes from (``preprocess.ceiling_stimuli``, SPEC 5):
#: ``evaluated`` = the split's own stimuli (those cc_raw is computed on; the default), ``all`` =
#: every stimulus of the dataset (the paper's choice).
CEILING_STIMULI = ("evaluated", "all")


@dataclass
class CCMax:
    """Noise ceiling per neuron with how it was computed; every field is ``[neurons]``.

    cc_max: float (NaN where undefined); sp: signal power SP; var_y: observed variance (ddof 0)
    of the target the ceiling describes, over the stimuli used; noise_var: sigma^2, the noise
    variance of one trial (pooled residual mean square); k / k_max: smallest / largest number of
    trials per used stimulus (both = ``k`` when it is given; k < k_max means unequal repeats,
    each stimulus with its own count); n_stimuli_used: number of stimuli entering the estimate
    (k, k_max and n_stimuli_used are 0 when fewer than 2 stimuli are repeated).
    """

    cc_max: np.ndarray
    sp: np.ndarray
    var_y: np.ndarray
    k: np.ndarray
    n_stimuli_used: np.ndarray
    k_max: np.ndarray | None = None
    noise_var: np.ndarray | None = None


def _check_responses(responses) -> np.ndarray:
    """``responses`` as an array in its own dtype: the functions below take one neuron's trials
    at a time to float64, never a float64 copy of every neuron's."""
    r = np.asarray(responses)
    if r.ndim != 3:
        raise RcpbError(f"responses must be [stimuli, trials, neurons]; got shape {r.shape}.")
    return r


def _check_k(k):
    if k is not None and (isinstance(k, bool) or int(k) != k or k < 2):
        raise RcpbError(f"cc_max: the number of trials k must be an integer >= 2 (got {k}); "
                        f"set it to null to use every valid trial of each stimulus.")
    return None if k is None else int(k)


def _valid_first(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid trials moved to the front, in their order: y [stimuli, trials] -> (values with 0
    where missing, mask) both [stimuli, trials]."""
    valid = ~np.isnan(y)
    order = np.argsort(~valid, axis=1, kind="stable")
    return (np.take_along_axis(np.where(valid, y, 0.0), order, axis=1),
            np.take_along_axis(valid, order, axis=1))


def signal_power(y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """(SP, var_y, sigma^2) of one neuron (formulas in the module docstring).

    y: float [M stimuli, P positions], the j-th valid trial of each stimulus in column j, any
    value where ``w`` is False; w: bool [M, P], True for the first n_i >= 2 positions of row i
    (so the positions in use, P of them, are all linked through stimuli: the fit has P - 1
    free position effects).
    """
    y = np.where(w, y, 0.0)
    w = w.astype(np.float64)
    n = w.sum(axis=1)                                    # [M] trials per stimulus
    m, p = w.shape[0], int((w.sum(axis=0) > 0).sum())
    t = (y * w).sum(axis=1) / n                          # [M] the target (all-trial means)
    yc = w * (y - t[:, None])                            # within-stimulus deviations
    # position effects b: normal equations of sum_ij w_ij (yc_ij - (b_j - mean_i b))^2
    c = np.diag(w.sum(axis=0)) - (w / n[:, None]).T @ w  # [P, P], null space: constants
    b = np.linalg.lstsq(c, yc.sum(axis=0), rcond=None)[0]
    resid = yc - w * (b[None, :] - ((w @ b) / n)[:, None])
    noise_var = float((resid ** 2).sum() / (w.sum() - m - p + 1))
    sp = float(t.var(ddof=1) - noise_var * np.mean(1.0 / n))
    return sp, float(t.var(ddof=0)), noise_var


def cc_max_details(responses, k: int | None = None) -> CCMax:
    """Noise ceiling of every neuron (see the module docstring for the formula).

    responses: ``[stimuli, trials, neurons]``, NaN = missing trial.
    k: None = every valid trial of each stimulus with >= 2 (the ceiling of
    :func:`trial_target` ``(responses)``); an integer >= 2 = only stimuli with >= k valid trials,
    their first k (the ceiling of ``trial_target(responses, k)``).
    Returns a :class:`CCMax` with ``[neurons]`` arrays.
    """
    r = _check_responses(responses)
    k = _check_k(k)
    n_neurons = r.shape[2]
    out = CCMax(cc_max=np.full(n_neurons, np.nan), sp=np.full(n_neurons, np.nan),
                var_y=np.full(n_neurons, np.nan), k=np.zeros(n_neurons, dtype=int),
                n_stimuli_used=np.zeros(n_neurons, dtype=int),
                k_max=np.zeros(n_neurons, dtype=int), noise_var=np.full(n_neurons, np.nan))
    for i in range(n_neurons):
        y = r[:, :, i].astype(np.float64)                 # [stimuli, trials]
        counts = (~np.isnan(y)).sum(axis=1)
        used = counts >= (2 if k is None else k)
        if used.sum() < 2:
            continue
        ym, wm = _valid_first(y[used])
        p = int(counts[used].max()) if k is None else k
        ym, wm = ym[:, :p], wm[:, :p]
        sp, var_y, noise_var = signal_power(ym, wm)
        n_used = wm.sum(axis=1)
        out.sp[i], out.var_y[i], out.noise_var[i] = sp, var_y, noise_var
        out.k[i], out.k_max[i] = int(n_used.min()), int(n_used.max())
        out.n_stimuli_used[i] = int(used.sum())
        if sp > 0 and var_y > 0:
            out.cc_max[i] = np.sqrt(sp / var_y)
    return out


def cc_max(responses, k: int | None = None) -> np.ndarray:
    """Noise ceiling ``[neurons]`` from ``responses [stimuli, trials, neurons]``; NaN where
    undefined (SP <= 0 or fewer than 2 repeated stimuli). See :func:`cc_max_details`."""
    return cc_max_details(responses, k).cc_max


def repeated_stimuli(responses, block: int = 1024) -> np.ndarray:
    """Sorted indices (int64) of the stimuli with at least 2 valid trials for some neuron: the
    only stimuli a noise ceiling uses (:func:`cc_max_details`: a neuron's stimuli with >= 2,
    or >= k, valid trials), so the only trials evaluation needs (``rcpb.data.prepare``).

    responses: ``[stimuli, trials, neurons]``, NaN = missing trial; scanned ``block`` stimuli
    at a time.
    """
    r = _check_responses(responses)
    keep = [((~np.isnan(r[i:i + block])).sum(axis=1) >= 2).any(axis=1)
            for i in range(0, r.shape[0], block)]
    return np.flatnonzero(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def trial_target(responses, k: int | None = None) -> np.ndarray:
    """The target a ceiling of :func:`cc_max` ``(responses, k)`` describes -> ``[stimuli, neurons]``.

    responses: ``[stimuli, trials, neurons]``, NaN = missing trial. k None: the mean of every
    valid trial (= :func:`rcpb.data.preprocess.trial_average`); k: the mean of the first k valid
    trials (a stimulus with fewer keeps the mean of all of its trials; it is not in the
    ceiling's estimate). NaN where a stimulus has no valid trial.
    """
    r = _check_responses(responses)
    k = _check_k(k)
    out = np.full((r.shape[0], r.shape[2]), np.nan)
    for i in range(r.shape[2]):
        y, w = _valid_first(r[:, :, i].astype(np.float64))
        if k is not None:
            y, w = y[:, :k], w[:, :k]
        n = w.sum(axis=1)
        out[:, i] = np.where(n > 0, y.sum(axis=1) / np.maximum(n, 1), np.nan)
    return out


def split_ceiling(responses, index, stimuli: str = "evaluated", k: int | None = None,
                  every=None) -> tuple[np.ndarray, np.ndarray]:
    """The noise ceiling of the targets of the stimuli ``index`` -> (cc_max ``[neurons]``,
    int ``[n]`` the neurons that fell back to :func:`borrowed_noise_ceiling`).

    responses: ``[stimuli, trials, neurons]`` of every stimulus of the dataset; index: int
    ``[n]`` the evaluated stimuli (e.g. the test set); stimuli: ``"evaluated"`` = the ceiling
    from the trials of ``index`` only, except for a neuron with fewer than 2 repeated stimuli
    there (e.g. a validation set of single trials), whose ceiling borrows the one-trial noise
    variance of every repeated stimulus (listed in the second return value); ``"all"`` = the
    ceiling from every stimulus (nothing falls back); k: as in :func:`cc_max`; every:
    ``cc_max(responses, k)`` if already computed.
    """
    if stimuli not in CEILING_STIMULI:
        raise RcpbError(f"preprocess.ceiling_stimuli = {stimuli!r}; use one of "
                        f"{', '.join(CEILING_STIMULI)}.")
    r = _check_responses(responses)
    if stimuli == "all":
        every = cc_max(r, k) if every is None else every
        return np.array(every, dtype=np.float64), np.zeros(0, dtype=int)
    own = cc_max_details(r[np.asarray(index, dtype=np.int64)], k)
    fallback = np.flatnonzero(own.n_stimuli_used < 2)
    ceiling = own.cc_max.copy()
    if fallback.size:
        ceiling[fallback] = borrowed_noise_ceiling(r, index, k)[fallback]
    return ceiling, fallback


def borrowed_noise_ceiling(responses, index, k: int | None = None) -> np.ndarray:
    """Noise ceiling ``[neurons]`` of the targets of stimuli ``index`` whose own trials cannot
    give one (fewer than 2 repeated stimuli, e.g. single trials), with the noise of the others.

    sigma^2 (one trial's noise variance) comes from every repeated stimulus of ``responses``
    (:func:`cc_max_details`); the signal power from the evaluated targets ``t_i`` (the mean of
    stimulus i's ``n_i`` valid trials, at most k): ``SP = var(t, ddof=1) - sigma^2 mean(1/n_i)``
    and ``cc_max = sqrt(SP / var(t, ddof=0))``, the module's formula for exactly the targets
    being normalised (a ceiling of k-trial means would overstate that of single trials). NaN
    where sigma^2 is unknown (no repeated stimulus anywhere), SP <= 0 or fewer than 2 stimuli.
    """
    r = _check_responses(responses)
    noise_var = cc_max_details(r, k).noise_var                       # [neurons]
    evaluated = r[np.asarray(index, dtype=np.int64)]
    t = trial_target(evaluated, k)                                    # [n, neurons]
    n = (~np.isnan(evaluated)).sum(axis=1).astype(np.float64)         # [n, neurons] trials
    if k is not None:
        n = np.minimum(n, k)
    out = np.full(r.shape[2], np.nan)
    for i in range(r.shape[2]):
        ok = n[:, i] > 0
        if ok.sum() < 2 or not np.isfinite(noise_var[i]):
            continue
        sp = t[ok, i].var(ddof=1) - noise_var[i] * np.mean(1.0 / n[ok, i])
        var_y = t[ok, i].var(ddof=0)
        if sp > 0 and var_y > 0:
            out[i] = np.sqrt(sp / var_y)
    return out


def cc_raw(pred, target) -> np.ndarray:
    """Pearson correlation per neuron between ``pred`` and ``target`` (both
    ``[stimuli, neurons]``) -> ``[neurons]``.

    Stimuli where either value is NaN are skipped for that neuron. The correlation is 0 when the
    standard deviation (ddof 0) of either side is below 1e-5 (e.g. a constant prediction).
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2:
        raise RcpbError(f"cc_raw: pred and target must both be [stimuli, neurons]; got "
                        f"{p.shape} and {t.shape}.")
    ok = np.isfinite(p) & np.isfinite(t)
    n = ok.sum(axis=0)
    safe_n = np.maximum(n, 1)

    def centred(a):     # where(ok, a0 - mean, 0), in place in one copy (of [stimuli, neurons])
        d = np.where(ok, a, 0.0)
        d -= d.sum(axis=0) / safe_n
        d[~ok] = 0.0
        return d

    dp, dt = centred(p), centred(t)
    sp = np.sqrt((dp ** 2).sum(axis=0) / safe_n)
    st = np.sqrt((dt ** 2).sum(axis=0) / safe_n)
    defined = (n >= 2) & (sp >= STD_EPS) & (st >= STD_EPS)
    cov = (dp * dt).sum(axis=0) / safe_n
    return np.where(defined, cov / np.where(defined, sp * st, 1.0), 0.0)


def cc_norm2(pred, target, cc_max) -> np.ndarray:
    """Normalised explained variance ``(cc_raw / cc_max)^2`` per neuron -> ``[neurons]``.

    pred, target: ``[stimuli, neurons]``; cc_max: ``[neurons]`` (from :func:`cc_max`, the
    ceiling of the same target: see :func:`trial_target`). NaN where ``cc_max`` is NaN or not
    positive.
    """
    ceiling = np.asarray(cc_max, dtype=np.float64)
    raw = cc_raw(pred, target)
    if ceiling.shape != raw.shape:
        raise RcpbError(f"cc_norm2: cc_max has shape {ceiling.shape}, expected "
                        f"{raw.shape} (one value per neuron).")
    defined = np.isfinite(ceiling) & (ceiling > 0)
    return np.where(defined, (raw / np.where(defined, ceiling, 1.0)) ** 2, np.nan)


#: per fitted bin: (key of a time-binned summary's ``bins``, results column suffix)
BIN_COLUMNS = (("cc_raw", "cc_raw"), ("cc_norm2", "cc_norm2"), ("pred_profile", "pred"),
               ("true_profile", "true"))


def bin_columns(summary: dict) -> dict:
    """A time-binned test summary (rcpb.train.score_bins) as results-table columns:
    ``test_profile_cc`` and, per fitted bin b of the file, ``test_bin{b}_cc_raw``,
    ``test_bin{b}_cc_norm2``, ``test_bin{b}_pred`` and ``test_bin{b}_true`` (population means of
    prediction and target); JSON null (how NaN is stored) as NaN; none without bins."""
    if "bins" not in summary:
        return {}

    def number(v):
        return float("nan") if v is None else float(v)

    bins = summary["bins"]
    out = {"test_profile_cc": number(summary.get("profile_cc"))}
    for i, b in enumerate(bins["bin"]):
        for key, name in BIN_COLUMNS:
            out[f"test_bin{int(b)}_{name}"] = number(bins[key][i])
    return out


def summarize(pred, target, cc_max) -> dict:
    """Model performance on one set of stimuli.

    pred, target: ``[stimuli, neurons]``; cc_max: ``[neurons]``. Returns a dict:
    ``cc_norm2`` (mean over neurons with a defined ceiling; NaN if none has one),
    ``cc_raw`` and ``cc_raw2`` (mean of cc_raw and of cc_raw^2 over all neurons),
    ``frac_negative_cc_raw`` (fraction of neurons with cc_raw < 0: cc_raw2 hides the sign),
    ``n_excluded`` (neurons without a defined ceiling, left out of ``cc_norm2``),
    ``n_neurons``, and per-neuron lists ``cc_norm2_per_neuron`` (NaN where excluded) and
    ``cc_raw_per_neuron``.
    """
    raw = cc_raw(pred, target)
    norm2 = cc_norm2(pred, target, cc_max)
    defined = np.isfinite(norm2)
    return {
        "cc_norm2": float(norm2[defined].mean()) if defined.any() else float("nan"),
        "cc_raw": float(raw.mean()),
        "cc_raw2": float((raw ** 2).mean()),
        "frac_negative_cc_raw": float((raw < 0).mean()),
        "n_excluded": int((~defined).sum()),
        "n_neurons": int(raw.size),
        "cc_norm2_per_neuron": [float(v) for v in norm2],
        "cc_raw_per_neuron": [float(v) for v in raw],
    }
