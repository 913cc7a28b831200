"""Train / validation / test splits and nested training fractions (SPEC 2.3).

Split sizes for n stimuli of a generated split (when the file stores no ``split``, or the
dataset's preprocess sets ``split: generated``)::

    n_test  = round(0.2 * n)
    n_train = round(0.8 * (n - n_test))
    n_val   = n - n_test - n_train

i.e. 20 % test and the rest 80/20 into train/validation: 64/16/20 %. This gives
exactly the paper's ImageNet 8K sizes, 8000 -> 5120 / 1280 / 1600. For NS 2250 it
gives 1440 / 360 / 450; the paper used 1400 / 350 / 500 there (a 22 % test set).
To reproduce those sizes, store a ``split`` in the file, e.g. from
``make_split(2250, seed, sizes=(1400, 350, 500))``. (``round`` is half-up.)

Which stimuli go where is a seeded permutation of the stimulus indices. The
training fractions (0.25, 0.5, 1.0 of the training set) are prefixes of one
seeded shuffled order of the training stimuli, so smaller sets are nested in
larger ones. Both permutations come from ``split_seed`` (separate streams), so
the same seed gives the same sets.

A split stored in the dataset file is used as it is (``split: stored``, the default when the
file has one): then ``split_seed`` only changes the order of the training fractions, not the
partition, so a grid with several split seeds is rejected before training
(:func:`rcpb.data.prepare.check_split_seeds`); ``split: generated`` draws one split per seed.
"""

from __future__ import annotations

import math

import numpy as np

from rcpb.errors import RcpbError

TRAIN, VAL, TEST = 0, 1, 2
_SPLIT_STREAM, _ORDER_STREAM = 0, 1


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


def split_sizes(n: int) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for ``n`` stimuli by the rule in the module docstring."""
    if n < 3:
        raise RcpbError(f"a dataset with {n} stimuli cannot be split into train, validation "
                        f"and test sets; it needs at least 3 stimuli.")
    n_test = max(1, _round_half_up(0.2 * n))
    n_train = max(1, _round_half_up(0.8 * (n - n_test)))
    n_val = n - n_test - n_train
    if n_val < 1:  # only for tiny n
        n_train -= 1
        n_val += 1
    return n_train, n_val, n_test


def make_split(n: int, seed: int, sizes: tuple[int, int, int] | None = None) -> np.ndarray:
    """Seeded split codes: int8 [n], 0 train / 1 validation / 2 test.

    ``sizes`` = (n_train, n_val, n_test) summing to n; default :func:`split_sizes`.
    """
    n_train, n_val, n_test = split_sizes(n) if sizes is None else sizes
    if n_train + n_val + n_test != n or min(n_train, n_val, n_test) < 1:
        raise RcpbError(f"split sizes {n_train}/{n_val}/{n_test} must be positive and sum to "
                        f"the {n} stimuli.")
    perm = _rng(seed, _SPLIT_STREAM).permutation(n)
    split = np.empty(n, dtype=np.int8)
    split[perm[:n_train]] = TRAIN
    split[perm[n_train:n_train + n_val]] = VAL
    split[perm[n_train + n_val:]] = TEST
    return split


def training_order(train_index: np.ndarray, seed: int) -> np.ndarray:
    """The training stimuli in one seeded shuffled order: int [n_train] -> int [n_train]."""
    train_index = np.sort(np.asarray(train_index, dtype=np.int64))
    return train_index[_rng(seed, _ORDER_STREAM).permutation(train_index.size)]


def n_for_fraction(n_train: int, fraction: float) -> int:
    """Number of training stimuli used for ``fraction`` in (0, 1]: round(fraction * n_train), >= 1."""
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise RcpbError(f"train_fraction = {fraction}; use a fraction in (0, 1], "
                        f"e.g. 0.25, 0.5 or 1.0.")
    return max(1, _round_half_up(fraction * n_train))


def training_subset(train_index: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted stimulus indices of the first ``fraction`` of :func:`training_order`.

    train_index: int [n_train] -> int [round(fraction * n_train)]. Nested: the set
    for a smaller fraction is contained in the set for a larger one (same seed).
    """
    order = training_order(train_index, seed)
    return np.sort(order[:n_for_fraction(order.size, fraction)])


def split_indices(split: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) stimulus indices from split codes int [n]."""
    split = np.asarray(split)
    return tuple(np.flatnonzero(split == code) for code in (TRAIN, VAL, TEST))
