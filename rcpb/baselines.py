"""Reference predictors of a simulated dataset, scored like the models (docs/ground_truth.md).

- ``truth``: the simulator's true mean rates (``true_rates``): the best any model can do;
- every array of the file's ``baselines`` group, e.g. ``drive``: a circuit's feed-forward first
  stage alone, what a model without any context could reach.

Each is scored on the validation and test stimuli of a split exactly as a trained model
(:func:`rcpb.train.score`: same targets, same noise ceiling), so its numbers sit next to the
models' in every table and figure. A dataset without ``true_rates`` (a recording) has none.
"""

from __future__ import annotations

import numpy as np

DESCRIPTIONS = {
    "truth": "the true mean rates of the ground truth (the ceiling a model can reach)",
    "drive": "the circuit's feed-forward first stage alone (no context)",
}
COLUMNS = ["dataset", "split_seed", "predictor", "description", "test_cc_norm2", "test_cc_raw",
           "val_cc_norm2", "val_cc_raw"]


def predictors(dataset_file: str, stimuli=None) -> dict:
    """``{name: predictions [stimuli, neurons]}`` of the file: truth first, then baselines;
    ``stimuli``: only these rows (int, increasing), read from the file alone."""
    import h5py

    from rcpb.data.format import read_raw

    if stimuli is None:
        ds = read_raw(dataset_file, skip=("images", "responses"))   # prepare reads those
        if ds.true_rates is None:
            return {}
        return {"truth": ds.true_rates, **ds.baselines}
    with h5py.File(dataset_file, "r") as f:
        if "true_rates" not in f:
            return {}
        out = {"truth": f["true_rates"][np.asarray(stimuli)]}
        if isinstance(f.get("baselines"), h5py.Group):
            out.update({name: f["baselines"][name][np.asarray(stimuli)]
                        for name in f["baselines"]})
        return out


def score_predictors(dataset_file: str, dataset: str, preprocess: dict, split_seeds,
                     config: dict | None = None, splits=("val", "test")) -> list[dict]:
    """One row per (split seed, predictor): ``{split}_cc_norm2``, ``{split}_cc_raw`` for each of
    ``splits`` ("train", "val", "test"), plus the COLUMNS' identifiers. ``config``: the
    training config's metric keys (``cc_max_trials``)."""
    from rcpb.data.prepare import prepare
    from rcpb.metrics import bin_columns
    from rcpb.train import score

    import h5py

    with h5py.File(dataset_file, "r") as f:
        if "true_rates" not in f:
            return []
    rows = []
    for split_seed in split_seeds:
        data = prepare(dataset_file, preprocess, int(split_seed), 1.0)
        # the predictions of the scored stimuli only, read after the preparation's peak
        stimuli = np.unique(np.concatenate([getattr(data, f"{s}_index") for s in splits]))
        preds = predictors(dataset_file, stimuli)
        for name, pred in preds.items():
            row = {"dataset": dataset, "split_seed": int(split_seed), "predictor": name,
                   "description": DESCRIPTIONS.get(name, name)}
            pred = window(pred, data.bins)
            for split in splits:
                at = np.searchsorted(stimuli, getattr(data, f"{split}_index"))
                s = score(pred[at], data, split, config or {})
                row[f"{split}_cc_norm2"], row[f"{split}_cc_raw"] = s["cc_norm2"], s["cc_raw"]
                if split == "test" and "bins" in s:    # time-binned: as the models' columns
                    row.update(bin_columns(s))      # the models' columns (rcpb.metrics)
            rows.append(row)
    return rows


def window(pred: np.ndarray, bins: np.ndarray | None) -> np.ndarray:
    """A predictor's values as the models' predictions of prepared data with time ``bins``:
    ``[stimuli, neurons, time_bins]`` -> ``[stimuli, bins, neurons]``; ``[stimuli, neurons]``
    repeated for every bin (a predictor constant in time); unchanged without bins."""
    if bins is None:
        return pred
    if pred.ndim == 3:
        return np.ascontiguousarray(pred[:, :, bins].transpose(0, 2, 1))
    return np.repeat(pred[:, None, :], len(bins), axis=1)


def write_baselines(dataset_file: str, dataset: str, preprocess: dict, split_seeds, out: str,
                    config: dict | None = None) -> None:
    """Write :func:`score_predictors`'s rows to the CSV ``out`` (header only without a truth)."""
    import pandas as pd

    from rcpb.atomic_files import atomic_path

    rows = score_predictors(dataset_file, dataset, preprocess, split_seeds, config)
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in COLUMNS))
    with atomic_path(out) as tmp:
        pd.DataFrame(rows, columns=COLUMNS + extra).to_csv(tmp, index=False)


def main(argv=None) -> int:
    """``python -m rcpb.baselines FILE --dataset NAME --preprocess JSON --split-seeds 0 1
    --out CSV [--config JSON]``: the workflow's baselines.csv."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m rcpb.baselines", description=main.__doc__)
    p.add_argument("dataset_file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--preprocess", default="{}", help="the dataset's preprocess block (JSON)")
    p.add_argument("--split-seeds", type=int, nargs="+", required=True)
    p.add_argument("--config", default="{}", help="metric keys of the training config (JSON)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    write_baselines(a.dataset_file, a.dataset, json.loads(a.preprocess), a.split_seeds, a.out,
                    json.loads(a.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
