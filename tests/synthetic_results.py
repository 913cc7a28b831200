"""A synthetic results table with known structure, for the analysis tests and for development.

``make_results(...)`` returns a DataFrame with the results-table columns of the contract (one row
per "trained model") whose numbers follow a known rule:

- FF performance: ``0.30 + 0.15 * train_fraction + 0.01 * (channels / 8) + config noise``;
- a recurrent model's performance = its FF partner's * (1 + ``true_gain(mode, T, fraction)``)
  + noise (sd ``noise``); the best type is 2-avg with the largest T;
- multi-path models = their recurrent twin's * (1 + N(0, ``noise``));
- path statistics from rcpb.chains with per-conv strength 0.6 and the readout weights;
- ablated multi-path models lose ``0.03 / d`` (relative) for every removed length d, so removing
  short paths hurts most;
- measures: ``test_cc_norm2`` is the performance above, ``test_cc_raw = 0.8 * sqrt(perf)``
  (clipped at 0), ``test_cc_raw2 = test_cc_raw ** 2``; validation values are the test values of
  a performance shifted by +0.01 (``val_cc_norm2 = perf + 0.01``, ``val_cc_raw`` and
  ``val_cc_raw2`` from ``perf + 0.01`` the same way): no noise, so validation ranks models
  exactly as test does. A test that needs the two to disagree sets ``val_*`` itself.

Run ``python tests/synthetic_results.py OUT.csv`` to write the full default table.
"""

from __future__ import annotations

import hashlib
import itertools
import sys

import numpy as np
import pandas as pd

from rcpb.ablation_sets import ablation_sets_adjacent, lege_sets, parse_ablation
from rcpb.chains import enumerate_chains, readout_weights

MODES = ("no-avg", "early-avg", "late-avg", "2-avg")
_MODE_SLOPE = {"no-avg": -0.006, "early-avg": 0.002, "late-avg": 0.004, "2-avg": 0.006}
STRENGTH = 0.6


def true_gain(mode: str, T: int, fraction: float) -> float:
    """Relative gain of a recurrent type over its FF partner (0.05 = +5 %)."""
    return (0.02 + _MODE_SLOPE[mode] * (T - 2)) * (1.5 - fraction)


def path_distribution(layers: int, T: int, mode: str, allowed=None) -> dict[int, float]:
    """{length: probability} from chain counts, strength STRENGTH per conv and readout weights."""
    w = readout_weights(mode, T)
    s: dict[int, float] = {}
    for c in enumerate_chains(layers, T):
        if allowed is not None and c.length not in allowed:
            continue
        s[c.length] = s.get(c.length, 0.0) + w[c.end - 1] * STRENGTH ** c.length
    tot = sum(s.values())
    return {d: v / tot for d, v in s.items()} if tot > 0 else {}


def _cid(prefix: str, *parts) -> str:
    h = hashlib.sha1(repr(parts).encode()).hexdigest()[:8]
    return f"{prefix}-{h}"


def make_results(fractions=(0.25, 0.5, 1.0), split_seeds=(0,), channels=(8, 16),
                 acts=("relu", "softplus"), losses=("mse", "poisson"), orders=("bn_act",),
                 model_seeds=(0, 1), layers=(1, 2), iterations=(2, 3, 4, 5, 6, 7), modes=MODES,
                 multipath=True, ablation_rm=True, ablation_lege=True, ablation_T=7,
                 lege_T=(2, 3, 4), noise=0.005, seed=0, dataset="synthetic") -> pd.DataFrame:
    """The synthetic results table (see module docstring). Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    max_len = max([*iterations, ablation_T, *lege_T]) + 1
    rows = []

    def base_row(family, arch, split, frac, ch, act, order, loss, ms):
        return {
            "family": family, "arch": arch, "dataset": dataset,
            "dataset_file": f"data/{dataset}.h5", "split_seed": split, "train_fraction": frac,
            "channels": ch, "act": act, "first_block_order": order, "loss": loss,
            "model_seed": ms, "blocks": np.nan, "recurrent_layers": np.nan, "iterations": np.nan,
            "readout": "", "ablation": "", "allowed_lengths": "", "partner_id": "",
            "n_train": int(round(1400 * frac)), "input_size": 37, "n_neurons": 34,
        }

    def add_paths(row, dist):
        row["avg_path_length"] = sum(d * p for d, p in dist.items())
        row["path_entropy"] = -sum(p * np.log(p) for p in dist.values() if p > 0)
        for d in range(1, max_len + 1):
            row[f"path_p{d}"] = dist.get(d, np.nan)

    def add_metrics(row, perf):
        row["test_cc_norm2"] = perf
        row["test_cc_raw"] = np.sqrt(max(perf, 0)) * 0.8
        row["test_cc_raw2"] = row["test_cc_raw"] ** 2
        row["test_loss"] = 1 - perf
        row["test_n_excluded"] = 0
        row["val_cc_norm2"] = perf + 0.01
        row["val_cc_raw"] = np.sqrt(max(perf + 0.01, 0)) * 0.8
        row["val_cc_raw2"] = row["val_cc_raw"] ** 2
        row["val_loss"] = 1 - perf
        row["n_params"] = 1000 * row["channels"]
        row["n_conv_params"] = 900 * row["channels"]
        row["wall_time_s"] = 10.0
        row["best_step"] = 500

    variants = list(itertools.product(split_seeds, fractions, channels, acts, orders, losses))
    mp_ids = {}
    for split, frac, ch, act, order, loss in variants:
        cfg_effect = rng.normal(0, 0.02)
        for ms in model_seeds:
            for L in layers:
                blocks = 2 * L + 1
                ff = base_row("ff", "ff", split, frac, ch, act, order, loss, ms)
                ff["blocks"] = blocks
                ff["config_id"] = _cid("ff", split, frac, ch, act, order, loss, ms, blocks)
                ff_perf = 0.30 + 0.15 * frac + 0.01 * ch / 8 + cfg_effect + rng.normal(0, noise)
                add_metrics(ff, ff_perf)
                ff["avg_path_length"] = blocks - 1
                ff["path_entropy"] = 0.0
                rows.append(ff)
                for T, mode in itertools.product(iterations, modes):
                    rec = base_row("recurrent", "recurrent", split, frac, ch, act, order, loss, ms)
                    rec.update(recurrent_layers=L, iterations=T, readout=mode, partner_id=ff["config_id"])
                    rec["config_id"] = _cid("rec", split, frac, ch, act, order, loss, ms, L, T, mode)
                    perf = ff_perf * (1 + true_gain(mode, T, frac)) + rng.normal(0, noise)
                    add_metrics(rec, perf)
                    add_paths(rec, path_distribution(L, T, mode))
                    rows.append(rec)
                    if multipath:
                        mp = dict(rec, family="multipath", arch="multipath", partner_id=rec["config_id"])
                        mp["config_id"] = _cid("mp", split, frac, ch, act, order, loss, ms, L, T, mode)
                        add_metrics(mp, perf * (1 + rng.normal(0, noise)))
                        d = path_distribution(L, T, mode)
                        add_paths(mp, d)
                        mp["avg_path_length"] += rng.normal(0, 0.05)
                        rows.append(mp)
                        mp_ids[(split, frac, ch, act, order, loss, ms, L, T, mode)] = (mp["config_id"], mp["test_cc_norm2"])

    def add_ablations(family, names_for_T, Ts):
        for split, frac, ch, act, order, loss in variants:
            if frac != max(fractions):
                continue
            for ms, T, mode in itertools.product(model_seeds, Ts, modes):
                key = (split, frac, ch, act, order, loss, ms, 1, T, mode)
                if key not in mp_ids:
                    continue
                pid, full = mp_ids[key]
                for name in names_for_T(T):
                    allowed = parse_ablation(name, 1, T)
                    removed = [d for d in range(1, T + 1) if d not in allowed]
                    ab = base_row(family, "multipath", split, frac, ch, act, order, loss, ms)
                    ab.update(recurrent_layers=1, iterations=T, readout=mode, ablation=name,
                              allowed_lengths=",".join(map(str, allowed)), partner_id=pid)
                    ab["config_id"] = _cid("ab", family, *key, name)
                    loss_rel = sum(0.03 / d for d in removed)
                    add_metrics(ab, full * (1 - loss_rel) + rng.normal(0, noise))
                    add_paths(ab, path_distribution(1, T, mode, allowed))
                    rows.append(ab)

    if multipath and ablation_rm and 1 in layers and ablation_T in iterations:
        add_ablations("ablation_rm",
                      lambda T: [n for k in (1, 2, 3) for n in ablation_sets_adjacent(k, 1, T)],
                      [ablation_T])
    if multipath and ablation_lege and 1 in layers:
        add_ablations("ablation_lege", lambda T: lege_sets(T, 1), [T for T in lege_T if T in iterations])

    df = pd.DataFrame(rows)
    path_cols = [f"path_p{d}" for d in range(1, max_len + 1)]
    first = [c for c in df.columns if c not in path_cols]
    return df[first + path_cols]


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "synthetic_results.csv"
    make_results().to_csv(out, index=False)
    print(out)
