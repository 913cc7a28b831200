"""Prediction metrics (SPEC 5; paper appendix C.4): cc_raw, cc_max, cc_norm2.

Pure numpy. Shapes:

- ``responses``: ``[stimuli, trials, neurons]``, one value per trial, NaN where a trial is
  missing (the pattern of missing trials may differ between neurons);
- ``pred``, ``target``: ``[stimuli, neurons]`` (``target`` = trial-averaged responses);
- every per-neuron result: ``[neurons]``.

Noise ceiling (Schoppe et al. 2016, eq. 29). For one neuron, take the stimuli with at least
2 valid (non-NaN) trials and the first K valid trials of each, K = the smallest valid-trial count
among those stimuli (or K = ``k`` if given; then only stimuli with >= ``k`` valid trials are
used). With ``y`` of shape ``[M stimuli, K trials]``::

    var_y  = var_M(mean_K y)                                        (ddof 0)
    SP     = (var_M(sum_K y) - sum_k var_M(y[:, k])) / (K (K - 1))  (ddof 1 in both)
    cc_max = sqrt(SP / var_y)

``cc_max`` is NaN (no defined ceiling) where SP <= 0, var_y = 0 or fewer than 2 stimuli are
repeated. ``SP`` is an unbiased estimate of the variance of the true response over stimuli, so
``cc_max`` estimates the correlation between the K-trial average and the true mean response
(it can exceed 1 slightly by chance, and by sqrt(M / (M - 1)) for noise-free data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcpb.errors import RcpbError

STD_EPS = 1e-5  # cc_raw is 0 when the prediction or the target has a smaller std


@dataclass
class CCMax:
    """Noise ceiling per neuron with how it was computed; every field is ``[neurons]``.

    cc_max: float (NaN where undefined); sp: signal power SP; var_y: variance of the K-trial
    average (ddof 0); k: trials used per stimulus;
    n_stimuli_used: number of stimuli entering the estimate (k and n_stimuli_used are 0 when
    fewer than 2 stimuli are repeated).
    """

    cc_max: np.ndarray
    sp: np.ndarray
    var_y: np.ndarray
    k: np.ndarray
    n_stimuli_used: np.ndarray


def _check_responses(responses) -> np.ndarray:
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim != 3:
        raise RcpbError(f"responses must be [stimuli, trials, neurons]; got shape {r.shape}.")
    return r


def cc_max_details(responses, k: int | None = None) -> CCMax:
    """Noise ceiling of every neuron (see the module docstring for the formula).

    responses: ``[stimuli, trials, neurons]``, NaN = missing trial.
    k: trials per stimulus to use (>= 2); None = the smallest valid-trial count among the
    stimuli with >= 2 valid trials, chosen per neuron.
    Returns a :class:`CCMax` with ``[neurons]`` arrays.
    """
    r = _check_responses(responses)
    if k is not None and (int(k) != k or k < 2):
        raise RcpbError(f"cc_max: the number of trials k must be an integer >= 2 (got {k}); "
                        f"set it to null to use the smallest repeat count.")
    n_neurons = r.shape[2]
    out = CCMax(cc_max=np.full(n_neurons, np.nan), sp=np.full(n_neurons, np.nan),
                var_y=np.full(n_neurons, np.nan), k=np.zeros(n_neurons, dtype=int),
                n_stimuli_used=np.zeros(n_neurons, dtype=int))
    for n in range(n_neurons):
        y = r[:, :, n]                                    # [stimuli, trials]
        valid = ~np.isnan(y)
        counts = valid.sum(axis=1)
        used = counts >= (2 if k is None else k)
        if used.sum() < 2:
            continue
        kn = int(counts[used].min()) if k is None else int(k)
        # valid trials first, in their original order; keep the first kn of each used stimulus
        order = np.argsort(~valid[used], axis=1, kind="stable")[:, :kn]
        ym = np.take_along_axis(y[used], order, axis=1)   # [M, K]
        var_y = ym.mean(axis=1).var(ddof=0)
        sp = (ym.sum(axis=1).var(ddof=1) - ym.var(axis=0, ddof=1).sum()) / (kn * (kn - 1))
        out.sp[n], out.var_y[n], out.k[n], out.n_stimuli_used[n] = sp, var_y, kn, used.sum()
        if sp > 0 and var_y > 0:
            out.cc_max[n] = np.sqrt(sp / var_y)
    return out


def cc_max(responses, k: int | None = None) -> np.ndarray:
    """Noise ceiling ``[neurons]`` from ``responses [stimuli, trials, neurons]``; NaN where
    undefined (SP <= 0 or fewer than 2 repeated stimuli). See :func:`cc_max_details`."""
    return cc_max_details(responses, k).cc_max


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
    p0, t0 = np.where(ok, p, 0.0), np.where(ok, t, 0.0)
    dp = np.where(ok, p0 - p0.sum(axis=0) / safe_n, 0.0)
    dt = np.where(ok, t0 - t0.sum(axis=0) / safe_n, 0.0)
    sp = np.sqrt((dp ** 2).sum(axis=0) / safe_n)
    st = np.sqrt((dt ** 2).sum(axis=0) / safe_n)
    defined = (n >= 2) & (sp >= STD_EPS) & (st >= STD_EPS)
    cov = (dp * dt).sum(axis=0) / safe_n
    return np.where(defined, cov / np.where(defined, sp * st, 1.0), 0.0)


def cc_norm2(pred, target, cc_max) -> np.ndarray:
    """Normalised explained variance ``(cc_raw / cc_max)^2`` per neuron -> ``[neurons]``.

    pred, target: ``[stimuli, neurons]``; cc_max: ``[neurons]`` (from :func:`cc_max`, which
    uses all stimuli's trials). NaN where ``cc_max`` is NaN or not positive.
    """
    ceiling = np.asarray(cc_max, dtype=np.float64)
    raw = cc_raw(pred, target)
    if ceiling.shape != raw.shape:
        raise RcpbError(f"cc_norm2: cc_max has shape {ceiling.shape}, expected "
                        f"{raw.shape} (one value per neuron).")
    defined = np.isfinite(ceiling) & (ceiling > 0)
    return np.where(defined, (raw / np.where(defined, ceiling, 1.0)) ** 2, np.nan)


def summarize(pred, target, cc_max) -> dict:
    """Model performance on one set of stimuli.

    pred, target: ``[stimuli, neurons]``; cc_max: ``[neurons]``. Returns a dict:
    ``cc_norm2`` (mean over neurons with a defined ceiling; NaN if none has one),
    ``cc_raw`` and ``cc_raw2`` (mean of cc_raw and of cc_raw^2 over all neurons),
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
        "n_excluded": int((~defined).sum()),
        "n_neurons": int(raw.size),
        "cc_norm2_per_neuron": [float(v) for v in norm2],
        "cc_raw_per_neuron": [float(v) for v in raw],
    }
