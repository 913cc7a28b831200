"""From a dataset file and a preprocessing config to the arrays training uses.

``prepare`` = validate (``rcpb.data.validate``) + split (``rcpb.data.splits``) +
preprocess (``rcpb.data.preprocess``). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcpb.data.preprocess import neuron_scale_factors, preprocess_images, trial_average
from rcpb.data.splits import make_split, split_indices, training_subset
from rcpb.data.validate import load_dataset
from rcpb.errors import RcpbError

PREPROCESS_KEYS = ("crop", "downsample", "neuron_scale", "split_sizes")


@dataclass
class Prepared:
    """Model-ready data; all arrays float32 except the index arrays.

    x_*: [n, 1, S, S] images (raw grey values, cropped and downsampled);
    y_*: [n, neurons] trial-averaged responses (NaN-aware), scaled per neuron if
    ``neuron_scale`` is set; responses: [stimuli, trials, neurons] raw trials of
    all stimuli, scaled like the targets (for cc_max); n_train_full: size of the
    100 % training set; test_index / train_index / val_index: stimulus indices
    (int64, sorted) of the rows of x_test / x_train / x_val.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    responses: np.ndarray
    input_size: int
    n_neurons: int
    n_train_full: int
    test_index: np.ndarray
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None


def _check_preprocess(preprocess: dict) -> tuple:
    preprocess = dict(preprocess or {})
    unknown = sorted(set(preprocess) - set(PREPROCESS_KEYS))
    if unknown:
        raise RcpbError(f"preprocess: unknown key(s) {', '.join(unknown)}; known keys are "
                        f"{', '.join(PREPROCESS_KEYS)}.")
    crop, factor, scale, sizes = (preprocess.get(k) for k in PREPROCESS_KEYS)
    for key, value in (("crop", crop), ("downsample", factor)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise RcpbError(f"preprocess.{key} = {value!r}; use a positive integer or null.")
    if scale is not None and (isinstance(scale, bool) or not float(scale) > 0):
        raise RcpbError(f"preprocess.neuron_scale = {scale!r}; use a positive number or null.")
    if sizes is not None:
        if (not isinstance(sizes, (list, tuple)) or len(sizes) != 3
                or any(isinstance(v, bool) or int(v) != v or v < 1 for v in sizes)):
            raise RcpbError(f"preprocess.split_sizes = {sizes!r}; use three positive integers "
                            "[train, validation, test] or null.")
        sizes = tuple(int(v) for v in sizes)
    return (None if crop is None else int(crop), 1 if factor is None else int(factor),
            None if scale is None else float(scale), sizes)


def prepare(dataset_file: str, preprocess: dict, split_seed: int, train_fraction: float,
            loss: str | None = None) -> Prepared:
    """Load, validate, split and preprocess a dataset file (SPEC 2.2, 2.3).

    preprocess: {"crop": int px or None, "downsample": int factor or None,
    "neuron_scale": float or None, "split_sizes": [train, val, test] or None}. The file's
    ``split`` is used when present, else one generated from ``split_seed`` with
    ``split_sizes`` (default: ``rcpb.data.splits.split_sizes``). ``train_fraction`` in (0, 1] takes a
    nested prefix of the seeded training order. ``neuron_scale`` uses each neuron's
    mean over the full (100 %) training set, so targets are identical across
    training fractions. ``loss`` "poisson" rejects negative responses.
    Deterministic in its arguments.
    """
    crop, factor, scale, sizes = _check_preprocess(preprocess)
    ds = load_dataset(dataset_file, loss=loss)
    if ds.split is not None and sizes is not None:
        raise RcpbError(f"{dataset_file}: the file has its own 'split', and preprocess.split_sizes "
                        "asks for a generated one; remove split_sizes from the config (or the "
                        "split from the file).")
    split = ds.split if ds.split is not None else make_split(ds.n_stimuli, split_seed, sizes)
    train_full, val_index, test_index = split_indices(split)
    train_index = training_subset(train_full, train_fraction, split_seed)

    x = preprocess_images(ds.images, crop, factor)  # [stimuli, 1, S, S]
    responses = ds.responses.astype(np.float32)
    targets = trial_average(responses)  # [stimuli, neurons]
    if scale is not None:
        factors = neuron_scale_factors(targets[train_full], scale)
        responses = (responses * factors).astype(np.float32)
        targets = (targets * factors).astype(np.float32)

    def rows(a, index):
        return np.ascontiguousarray(a[index], dtype=np.float32)

    return Prepared(
        x_train=rows(x, train_index), y_train=rows(targets, train_index),
        x_val=rows(x, val_index), y_val=rows(targets, val_index),
        x_test=rows(x, test_index), y_test=rows(targets, test_index),
        responses=responses, input_size=int(x.shape[-1]), n_neurons=ds.n_neurons,
        n_train_full=int(train_full.size), test_index=test_index.astype(np.int64),
        train_index=train_index.astype(np.int64), val_index=val_index.astype(np.int64),
    )
