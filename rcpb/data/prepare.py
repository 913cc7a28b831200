"""From a dataset file and a preprocessing config to the arrays training uses.

``prepare`` = validate (``rcpb.data.validate``) + split (``rcpb.data.splits``) +
preprocess (``rcpb.data.preprocess``). numpy only.

Which split (``preprocess.split``, SPEC 2.3): ``stored`` = the file's ``split``; ``generated``
= one drawn from ``split_seed`` with ``split_sizes``, ignoring a stored split; absent = stored
when the file has a split, generated otherwise (:func:`split_source`). A stored split is the same
for every ``split_seed``, so several split seeds with a stored split would train one partition
several times: :func:`check_split_seeds` rejects that before any job runs (the workflow calls it
for every dataset file), and the results record the ``split_source`` used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rcpb.data.format import is_time_binned
from rcpb.data.preprocess import neuron_scale_factors, preprocess_images
from rcpb.data.splits import make_split, split_indices, training_subset
from rcpb.data.validate import load_dataset, load_trial_means
from rcpb.metrics import CEILING_STIMULI
from rcpb.errors import RcpbError
from rcpb.sizes import hw, is_size, size_value

PREPROCESS_KEYS = ("crop", "downsample", "neuron_scale", "split_sizes", "split",
                   "ceiling_stimuli", "clip_negative", "time_window")
SPLIT_SOURCES = ("stored", "generated")


@dataclass
class Prepared:
    """Model-ready data; all arrays float32 except the index arrays.

    x_*: [n, 1, h, w] images (raw grey values, cropped and downsampled);
    y_*: [n, neurons] trial-averaged responses (NaN-aware), scaled per neuron if
    ``neuron_scale`` is set; time-binned files: [n, K, neurons], the K bins ``bins`` of
    ``preprocess.time_window`` (:func:`time_window`), and ``responses`` [stimuli, trials,
    K * neurons] (column k * neurons + n: neuron n in bin k); responses: [stimuli, trials,
    neurons] raw trials of
    all stimuli, scaled like the targets (for cc_max), or of the stimuli ``trial_stimuli``
    only (int64, sorted: those with >= 2 valid trials for some neuron, the only trials a noise
    ceiling uses; each other stimulus has one valid trial, its target); n_train_full: size of the
    100 % training set; test_index / train_index / val_index: stimulus indices
    (int64, sorted) of the rows of x_test / x_train / x_val (the rows of ``responses`` the
    val/test noise ceilings come from); split_source: "stored" (the file's split) or
    "generated" (from split_seed); ceiling_stimuli: "evaluated" or "all", which stimuli a
    split's noise ceiling comes from (``rcpb.metrics.split_ceiling``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    responses: np.ndarray
    input_size: int | list[int]   # model input: s (square) or [h, w] (rcpb.sizes)
    n_neurons: int
    n_train_full: int
    test_index: np.ndarray
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None
    split_source: str = "generated"
    ceiling_stimuli: str = "evaluated"
    trial_stimuli: np.ndarray | None = None   # rows of responses; None: every stimulus
    bins: np.ndarray | None = None   # time-binned data: the file's bins fitted (int64 [K])


def time_window(window: dict | None, n_bins: int, stim_on: int, stim_off: int,
                source: str = "the dataset file") -> np.ndarray:
    """The bins of a time-binned file that models fit: ``preprocess.time_window`` = {"offset":
    the bin of iteration 1, "bins": how many}, defaults the stimulus-on bins (offset
    ``stim_on``, ``stim_off - stim_on`` bins). Returns int64 [bins], ``offset + t - 1`` for
    iteration t = 1..bins; RcpbError naming the field when the window leaves the file's bins.
    """
    window = dict(window or {})
    unknown = sorted(set(window) - {"offset", "bins"})
    if unknown:
        raise RcpbError(f"preprocess.time_window: unknown key(s) {', '.join(unknown)}; the keys "
                        "are offset (the bin of iteration 1) and bins (how many bins to fit).")
    offset = window.get("offset", stim_on)
    count = window.get("bins", stim_off - stim_on)
    for key, value, low in (("offset", offset, 0), ("bins", count, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise RcpbError(f"preprocess.time_window.{key} = {value!r}; give a whole number "
                            f">= {low}.")
    if offset + count > n_bins:
        raise RcpbError(f"{source}: preprocess.time_window (offset {offset}, bins {count}) "
                        f"ends at bin {offset + count - 1}, but the file has {n_bins} time bins "
                        f"(0..{n_bins - 1}); lower offset or bins.")
    return np.arange(offset, offset + count, dtype=np.int64)


def _load_window(path, preprocess: dict, loss: str | None):
    """load_trial_means for a time-binned file: ``(ds, means, stimuli, bins)`` with the
    window's bins (:func:`time_window`) flattened bin-major into the neuron axis, column
    ``k * neurons + n`` = neuron n in bin k (responses ``[stimuli, trials, K * neurons]``,
    trials of the repeated stimuli only; means ``[stimuli, K * neurons]``)."""
    from rcpb.data.preprocess import trial_average
    from rcpb.metrics import repeated_stimuli

    ds = load_dataset(path, loss=loss, clip_negative=preprocess.get("clip_negative"),
                      skip=("true_rates", "baselines"))
    a = ds.attrs
    bins = time_window(preprocess.get("time_window"), ds.n_bins, int(a["stim_on_bin"]),
                       int(a["stim_off_bin"]), str(path))
    s, trials, neurons, _ = ds.responses.shape
    flat = np.ascontiguousarray(ds.responses[..., bins].transpose(0, 1, 3, 2)).reshape(
        s, trials, bins.size * neurons)
    stimuli = repeated_stimuli(flat)
    ds.responses = flat[stimuli]
    return ds, trial_average(flat), stimuli, bins


def _check_preprocess(preprocess: dict) -> tuple:
    """(crop, factor, scale, sizes) from a preprocess dict; RcpbError naming a bad key."""
    preprocess = dict(preprocess or {})
    unknown = sorted(set(preprocess) - set(PREPROCESS_KEYS))
    if unknown:
        raise RcpbError(f"preprocess: unknown key(s) {', '.join(unknown)}; known keys are "
                        f"{', '.join(PREPROCESS_KEYS)}.")
    crop, factor, scale, sizes = (preprocess.get(k) for k in PREPROCESS_KEYS[:4])
    if preprocess.get("split") not in (None,) + SPLIT_SOURCES:
        raise RcpbError(f"preprocess.split = {preprocess['split']!r}; use stored (the file's "
                        f"split), generated (drawn from split_seed) or leave it out.")
    if preprocess.get("ceiling_stimuli") not in (None,) + CEILING_STIMULI:
        raise RcpbError(f"preprocess.ceiling_stimuli = {preprocess['ceiling_stimuli']!r}; use "
                        f"evaluated (each split's own stimuli), all, or leave it out.")
    if crop is not None and not is_size(crop):
        raise RcpbError(f"preprocess.crop = {crop!r}; use a positive integer (a square), "
                        f"[h, w] (two positive integers: rows, columns) or null.")
    if factor is not None and (isinstance(factor, bool) or int(factor) != factor or factor < 1):
        raise RcpbError(f"preprocess.downsample = {factor!r}; use a positive integer or null.")
    if scale is not None and (isinstance(scale, bool) or not float(scale) > 0):
        raise RcpbError(f"preprocess.neuron_scale = {scale!r}; use a positive number or null.")
    if sizes is not None:
        if (not isinstance(sizes, (list, tuple)) or len(sizes) != 3
                or any(isinstance(v, bool) or int(v) != v or v < 1 for v in sizes)):
            raise RcpbError(f"preprocess.split_sizes = {sizes!r}; use three positive integers "
                            "[train, validation, test] or null.")
        sizes = tuple(int(v) for v in sizes)
    return (None if crop is None else size_value(*hw(crop)), 1 if factor is None else int(factor),
            None if scale is None else float(scale), sizes)


def prepare(dataset_file: str, preprocess: dict, split_seed: int, train_fraction: float,
            loss: str | None = None) -> Prepared:
    """Load, validate, split and preprocess a dataset file (SPEC 2.2, 2.3).

    preprocess: {"crop": px as s or [h, w], or None, "downsample": int factor or None,
    "neuron_scale": float or None, "split_sizes": [train, val, test] or None,
    "split": "stored" / "generated" / absent, "ceiling_stimuli": "evaluated" / "all" /
    absent (= evaluated), "clip_negative": a tolerance or absent (rcpb.data.validate)}.
    The split is the file's (``split_source`` "stored") or one generated
    from ``split_seed`` with ``split_sizes`` (default: ``rcpb.data.splits.split_sizes``), see
    :func:`split_source`. ``train_fraction`` in (0, 1] takes a
    nested prefix of the seeded training order. ``neuron_scale`` uses each neuron's
    mean over the full (100 %) training set, so targets are identical across
    training fractions. ``loss`` "poisson" rejects negative responses.
    Deterministic in its arguments.
    """
    crop, factor, scale, sizes = _check_preprocess(preprocess)
    bins = None
    if is_time_binned(dataset_file):   # targets and trials [.., K * neurons], bin-major
        ds, targets, trial_stimuli, bins = _load_window(dataset_file, preprocess or {}, loss)
    elif (preprocess or {}).get("time_window") is not None:
        raise RcpbError(f"{dataset_file}: preprocess.time_window is set, but the file's "
                        "responses have no time axis; remove time_window.")
    else:   # the trial means of every stimulus and the trials of the repeated ones (in blocks)
        ds, targets, trial_stimuli = load_trial_means(
            dataset_file, loss=loss, clip_negative=(preprocess or {}).get("clip_negative"))
    n_neurons = ds.n_neurons // (1 if bins is None else bins.size)
    source = split_source(ds, preprocess, dataset_file)
    split = ds.split if source == "stored" else make_split(ds.n_stimuli, split_seed, sizes)
    train_full, val_index, test_index = split_indices(split)
    train_index = training_subset(train_full, train_fraction, split_seed)

    responses = ds.responses  # [stimuli of trial_stimuli, trials, neurons]
    if scale is not None:   # one factor per neuron (over its stimuli and fitted bins)
        factors = np.tile(neuron_scale_factors(
            targets[train_full].reshape(-1, n_neurons), scale), targets.shape[1] // n_neurons)
        responses = (responses * factors).astype(np.float32)
        targets *= factors    # in place: float64 products rounded to float32, as astype does

    def rows(a, index):   # [n, neurons], time-binned [n, K, neurons]
        out = np.ascontiguousarray(a[index], dtype=np.float32)
        return out if bins is None else out.reshape(len(index), bins.size, n_neurons)

    def inputs(index):   # each split's images alone: no float32 copy of all of them besides
        return preprocess_images(ds.images[index], crop, factor)  # [n, 1, h, w]

    x_train = inputs(train_index)
    return Prepared(
        x_train=x_train, y_train=rows(targets, train_index),
        x_val=inputs(val_index), y_val=rows(targets, val_index),
        x_test=inputs(test_index), y_test=rows(targets, test_index),
        responses=responses, input_size=size_value(*x_train.shape[-2:]), n_neurons=n_neurons,
        n_train_full=int(train_full.size), test_index=test_index.astype(np.int64),
        train_index=train_index.astype(np.int64), val_index=val_index.astype(np.int64),
        split_source=source,
        ceiling_stimuli=(preprocess or {}).get("ceiling_stimuli") or "evaluated",
        trial_stimuli=None if trial_stimuli.size == ds.n_stimuli else trial_stimuli,
        bins=bins,
    )


def split_source(dataset, preprocess: dict | None, source: str = "the dataset file") -> str:
    """"stored" or "generated": where the split of ``dataset`` comes from under ``preprocess``.

    dataset: a validated ``Dataset`` (its ``split`` int8 [stimuli] or None); preprocess: the
    dataset's preprocess dict (``split``, ``split_sizes``); source: the file, for messages.
    ``split`` absent = stored when the file has one, generated otherwise. Raises RcpbError for
    ``split: stored`` without a stored split, and for ``split_sizes`` with a stored split.
    """
    preprocess = dict(preprocess or {})
    _check_preprocess(preprocess)
    wanted = preprocess.get("split")
    if wanted == "stored" and dataset.split is None:
        raise RcpbError(f"{source}: preprocess.split = stored, but the file stores no 'split'; "
                        "use split: generated (drawn from split_seed) or store a split in the "
                        "file ('rcpb data import --split NAME').")
    result = wanted or ("stored" if dataset.split is not None else "generated")
    if result == "stored" and preprocess.get("split_sizes") is not None:
        raise RcpbError(f"{source}: the file has its own 'split', and preprocess.split_sizes "
                        "asks for a generated one; remove split_sizes from the config, or set "
                        "preprocess.split: generated to ignore the stored split.")
    return result


def check_split_seeds(dataset, preprocess: dict | None, split_seeds, source: str | None = None,
                      name: str | None = None) -> str:
    """Check a dataset's split settings against the split seeds of its grids; returns the
    :func:`split_source` ("stored" / "generated").

    dataset: a validated ``Dataset`` or the path of a dataset file; preprocess: the dataset's
    preprocess dict; split_seeds: the ``split_seed`` of every training of the dataset (any
    iterable of ints); name: the dataset's name in the config, for the message (which the
    workflow prefixes with ``datasets.{name}:``).
    With a stored split every split seed trains on the same partition, so more than one
    distinct seed is an RcpbError naming the dataset, the field and the fix.
    """
    if isinstance(dataset, (str, Path)):
        source = source or str(dataset)
        dataset = load_dataset(dataset)
    source = source or "the dataset file"
    result = split_source(dataset, preprocess, source)
    seeds = sorted({int(s) for s in split_seeds})
    if result == "stored" and len(seeds) > 1:
        where = f"datasets.{name}.preprocess" if name else "the dataset's preprocess section"
        raise RcpbError(
            f"{source} stores its own 'split', so split_seed {seeds} would train the same "
            f"partition {len(seeds)} times; set 'split: generated' in {where} to draw one split "
            "per split_seed (with split_sizes, ignoring the stored split), or list a single "
            "split_seed in this dataset's grids.")
    return result
