"""Validation of dataset files (SPEC 2.1) and a short summary of a dataset.

Only numpy and h5py are imported, so a Snakefile can call :func:`load_dataset`
cheaply at start-up to reject a bad file before any job runs.

Every problem raises one :class:`rcpb.errors.RcpbError` whose message names the
file, the field (``images``, ``responses``, ``split``, ...) and what to do.
Stimuli with a single valid trial are valid: the noise ceiling (``rcpb.metrics``)
uses the stimuli with at least two valid trials.

Time-binned responses ``[stimuli, trials, neurons, time_bins]`` (``rcpb.data.format``) are
checked like 3-D ones, every bin alike, and need the file attrs ``bin_ms``, ``stim_on_bin``
and ``stim_off_bin``; a 3-D file is checked exactly as without the time axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rcpb.data.format import Dataset, is_time_binned, read_raw
from rcpb.errors import RcpbError
from rcpb.sizes import hw, size_text

LOSSES = ("mse", "poisson")
SPLIT_NAMES = {0: "train", 1: "validation", 2: "test"}
#: Stimuli per block when checking responses: the checks' temporaries stay a block's size.
BLOCK = 1024


def _blocks(a: np.ndarray):
    """``a[i:i + BLOCK]`` for every block of stimuli (first axis): views, not copies."""
    return (a[i:i + BLOCK] for i in range(0, a.shape[0], BLOCK))


def _per_stimulus(mask: np.ndarray) -> np.ndarray:
    """``mask`` [stimuli, ...] -> [stimuli]: any True on the other axes (3-D or 4-D)."""
    return mask.reshape(mask.shape[0], -1).any(axis=1)


def _integer(value):
    """``value`` as an int if it is a whole number (not bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return None
    return int(value) if float(value).is_integer() else None


def _time_attrs(src: str, shape: tuple, attrs: dict) -> dict:
    """The checked time attrs (``bin_ms`` float, ``stim_on_bin``/``stim_off_bin`` int) of
    responses of ``shape`` [stimuli, trials, neurons, time_bins]; RcpbError naming the field."""
    n_bins = shape[3]
    if n_bins == 0:
        raise RcpbError(f"{src}: 'responses' has shape {shape}; time-binned responses need at "
                        f"least one time bin (last axis).")
    given = f"'responses' has a time axis ({n_bins} bins, shape {shape})"
    missing = [k for k in ("bin_ms", "stim_on_bin", "stim_off_bin") if k not in attrs]
    if missing:
        raise RcpbError(
            f"{src}: {given} but the file attr(s) {', '.join(repr(k) for k in missing)} are "
            f"missing. Time-binned responses need bin_ms (bin width in ms), stim_on_bin (first "
            f"bin with the image on, 0-based) and stim_off_bin (first bin after it is off); "
            f"'rcpb data import' sets them with --bin-ms MS --stim-bins ON OFF.")
    bin_ms = attrs["bin_ms"]
    if (isinstance(bin_ms, (bool, np.bool_)) or not isinstance(bin_ms, (int, float, np.number))
            or not np.isfinite(float(bin_ms)) or not float(bin_ms) > 0):
        raise RcpbError(f"{src}: attr 'bin_ms' is {bin_ms!r}; give the bin width in ms, a "
                        f"number > 0.")
    on, off = _integer(attrs["stim_on_bin"]), _integer(attrs["stim_off_bin"])
    for key, value in (("stim_on_bin", on), ("stim_off_bin", off)):
        if value is None:
            raise RcpbError(f"{src}: attr '{key}' is {attrs[key]!r}; give a bin index (a "
                            f"whole number, 0-based).")
    if not 0 <= on < n_bins:
        raise RcpbError(f"{src}: attr 'stim_on_bin' is {on}, out of range for {n_bins} time "
                        f"bins; it must be in 0..{n_bins - 1} (the first bin with the image "
                        f"on).")
    if not 0 <= off <= n_bins:
        raise RcpbError(f"{src}: attr 'stim_off_bin' is {off}, out of range for {n_bins} time "
                        f"bins; it must be in 1..{n_bins} (the first bin after the image is "
                        f"off; {n_bins} when it stays on to the end).")
    if off <= on:
        raise RcpbError(f"{src}: attr 'stim_off_bin' ({off}) <= 'stim_on_bin' ({on}); the "
                        f"image must be on for at least one bin: stim_on_bin < stim_off_bin.")
    return {"bin_ms": float(bin_ms), "stim_on_bin": on, "stim_off_bin": off}


def _first(indices, n: int = 5) -> str:
    """'3, 7, 9' or '3, 7, 9, ... (12 in all)' for an index array."""
    indices = list(np.ravel(indices))
    text = ", ".join(f"{i:g}" if isinstance(i, (float, np.floating)) else str(i)
                     for i in indices[:n])
    if len(indices) > n:
        text += f", ... ({len(indices)} in all)"
    return text


def validate(ds: Dataset, source: str | Path = "<dataset>", loss: str | None = None,
             clip_negative: float | None = None) -> Dataset:
    """Check a dataset held in memory; return it with arrays in canonical dtypes.

    images: [stimuli, H, W] uint8 (kept) or any real dtype (-> float32);
    responses: [stimuli, trials, neurons] or [stimuli, trials, neurons, time_bins] -> float32
    (4-D: the attrs ``bin_ms``, ``stim_on_bin``, ``stim_off_bin`` are required, returned as
    float, int, int); split: [stimuli] -> int8; true_rates: [stimuli, neurons] (4-D responses:
    [stimuli, neurons, time_bins]) -> float32. ``source`` names the file in messages.
    ``loss``: None, "mse" or "poisson" (Poisson requires non-negative responses).
    ``clip_negative``: a stated tolerance (>= 0, in response units): responses in
    [-clip_negative, 0) are set to 0 (float noise of deconvolved traces), counted in the
    returned attrs ``clipped_negative`` (with ``clip_negative``); larger negative values are
    left as they are (and still refused by the Poisson loss).
    """
    src = str(source)
    if loss is not None and loss not in LOSSES:
        raise RcpbError(f"loss '{loss}' is not known; use one of {', '.join(LOSSES)}.")
    if clip_negative is not None and (isinstance(clip_negative, bool)
                                      or not float(clip_negative) >= 0):
        raise RcpbError(f"clip_negative = {clip_negative!r}; use a tolerance >= 0 (response "
                        f"units), e.g. 1e-6, or leave it out.")
    for name in ("images", "responses"):
        if getattr(ds, name) is None:
            hint = (f" This file holds only images (a stimulus set): make a dataset from it "
                    f"with 'rcpb data simulate --images {src} --out DATASET.h5'."
                    if name == "responses" and ds.images is not None else
                    " Convert your data with 'rcpb data import'.")
            raise RcpbError(
                f"{src}: the required dataset '{name}' is missing. A dataset file holds "
                f"'images' [stimuli, H, W] and 'responses' [stimuli, trials, neurons] "
                f"(SPEC 2.1).{hint}")

    images = np.asarray(ds.images)
    responses = np.asarray(ds.responses)
    if images.dtype.kind not in "uif":
        raise RcpbError(f"{src}: 'images' has dtype {images.dtype}; store grayscale images as "
                        f"uint8 (0-255) or float32.")
    if responses.dtype.kind not in "uif":
        raise RcpbError(f"{src}: 'responses' has dtype {responses.dtype}; store responses as "
                        f"float32 (NaN for missing trials).")
    if images.ndim != 3:
        hint = (" For a single stimulus add a leading axis of length 1." if images.ndim == 2 else
                " Colour images must be converted to grayscale first." if images.ndim == 4 else "")
        raise RcpbError(
            f"{src}: 'images' has shape {images.shape} ({images.ndim}-D); it must be 3-D "
            f"[stimuli, H, W].{hint} 'rcpb data import --images-axes' reorders axes.")
    if responses.ndim not in (3, 4):
        hint = (" Single-trial data [stimuli, neurons] needs a trial axis of length 1 "
                "('rcpb data import --responses-axes sn' adds it)." if responses.ndim == 2 else "")
        raise RcpbError(
            f"{src}: 'responses' has shape {responses.shape} ({responses.ndim}-D); it must be "
            f"3-D [stimuli, trials, neurons] (or 4-D [stimuli, trials, neurons, time_bins] "
            f"for time-binned responses).{hint}")
    n, h, w = images.shape
    n_trials, n_neurons = responses.shape[1:3]
    if n == 0 or h == 0 or w == 0:
        raise RcpbError(f"{src}: 'images' has shape {images.shape}; it needs at least one "
                        f"stimulus and a non-empty image.")
    if n_trials == 0 or n_neurons == 0:
        raise RcpbError(f"{src}: 'responses' has shape {responses.shape}; it needs at least one "
                        f"trial and one neuron.")
    time_attrs = (_time_attrs(src, responses.shape, ds.attrs or {}) if responses.ndim == 4
                  else None)

    counts = {"images": n, "responses": responses.shape[0]}
    split = None if ds.split is None else np.asarray(ds.split)
    true_rates = None if ds.true_rates is None else np.asarray(ds.true_rates)
    if split is not None:
        if split.ndim != 1:
            raise RcpbError(f"{src}: 'split' has shape {split.shape}; it must be 1-D [stimuli] "
                            f"with 0 train / 1 validation / 2 test.")
        counts["split"] = split.shape[0]
    if true_rates is not None:
        if true_rates.ndim != responses.ndim - 1:
            want = ("2-D [stimuli, neurons]" if responses.ndim == 3 else
                    "3-D [stimuli, neurons, time_bins], as 'responses' has a time axis")
            raise RcpbError(f"{src}: 'true_rates' has shape {true_rates.shape}; it must be "
                            f"{want}.")
        if responses.ndim == 4 and true_rates.shape[2:] != responses.shape[3:]:
            raise RcpbError(f"{src}: 'true_rates' has {true_rates.shape[2]} time bins but "
                            f"'responses' has {responses.shape[3]}; both must have the same "
                            f"bins.")
        counts["true_rates"] = true_rates.shape[0]
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise RcpbError(
            f"{src}: the number of stimuli (first axis) differs between datasets: {listing}. "
            f"All must have one entry per stimulus, in the same order; check that "
            f"'responses' is [stimuli, trials, neurons] and not transposed.")
    if true_rates is not None and true_rates.shape[1] != n_neurons:
        raise RcpbError(f"{src}: 'true_rates' has {true_rates.shape[1]} neurons but 'responses' "
                        f"has {n_neurons}; both must list the same neurons.")
    if ds.neuron_ids is not None and len(ds.neuron_ids) != n_neurons:
        raise RcpbError(
            f"{src}: 'neuron_ids' has {len(ds.neuron_ids)} entries but 'responses' has "
            f"{n_neurons} neurons (last axis); give one id per neuron or drop 'neuron_ids'.")

    if images.dtype.kind == "f":
        bad = ~np.isfinite(images)
        if bad.any():
            stim = np.flatnonzero(bad.any(axis=(1, 2)))
            raise RcpbError(
                f"{src}: 'images' contains NaN or inf (stimuli {_first(stim)}). Images must be "
                f"finite; replace missing pixels (e.g. by the mean grey level) or drop those "
                f"stimuli.")
    if images.dtype != np.uint8:
        images = images.astype(np.float32)

    responses = responses.astype(np.float32, copy=False)
    # each check scans blocks of stimuli and builds its message from the whole array only
    # when it fails: no temporary of the size of the responses
    if any(np.isinf(b).any() for b in _blocks(responses)):
        stim = np.flatnonzero(_per_stimulus(np.isinf(responses)))
        raise RcpbError(
            f"{src}: 'responses' contains inf (stimuli {_first(stim)}). Use NaN to mark a "
            f"missing trial; responses must otherwise be finite.")
    # stimuli with a neuron without a valid (non-NaN) trial
    stim = np.flatnonzero(np.concatenate(
        [_per_stimulus(np.isnan(b).all(axis=1)) for b in _blocks(responses)]))
    if stim.size:
        neurons = np.flatnonzero(np.isnan(responses[stim[0]]).all(axis=0)
                                 .reshape(n_neurons, -1).any(axis=1))
        raise RcpbError(
            f"{src}: 'responses' has no valid (non-NaN) trial for stimuli {_first(stim)} "
            f"(e.g. stimulus {stim[0]}: neurons {_first(neurons)}). Every stimulus needs at "
            f"least one valid trial for every neuron{' and time bin' if time_attrs else ''}; "
            f"drop those stimuli (from 'images', "
            f"'responses' and 'split' alike) or those neurons.")
    attrs = dict(ds.attrs)
    if time_attrs is not None:
        attrs.update(time_attrs)
    if clip_negative is not None:
        def tiny(r):
            return (r < 0) & (r >= -float(clip_negative))   # NaN compares False
        clipped = sum(int(tiny(b).sum()) for b in _blocks(responses))
        if clipped:
            responses = np.where(tiny(responses), np.float32(0), responses)
        attrs.update(clip_negative=float(clip_negative), clipped_negative=clipped)
    if loss == "poisson":
        if any((b < 0).any() for b in _blocks(responses)):     # NaN compares False
            stim = np.flatnonzero(_per_stimulus(responses < 0))
            beyond = ("" if clip_negative is None else
                      f", beyond the stated tolerance clip_negative = {float(clip_negative):g}")
            raise RcpbError(
                f"{src}: 'responses' has negative values (stimuli {_first(stim)}, minimum "
                f"{np.nanmin(responses):g}{beyond}) but the loss is 'poisson', which needs "
                f"non-negative rates or counts. Use loss 'mse' for this dataset, store "
                f"responses without baseline subtraction, or, for float noise around zero, "
                f"state a tolerance (preprocess.clip_negative, rcpb data validate "
                f"--clip-negative).")

    if split is not None:
        if split.dtype.kind not in "uif" or not np.all(np.isin(split, (0, 1, 2))):
            values = np.unique(split[~np.isin(split, (0, 1, 2))]) if split.dtype.kind in "uif" \
                else split[:3]
            raise RcpbError(
                f"{src}: 'split' has values outside {{0, 1, 2}} ({_first(values)}); use "
                f"0 train, 1 validation, 2 test for every stimulus, or drop 'split' to have "
                f"it generated from split_seed.")
        split = split.astype(np.int8)
        for code, label in SPLIT_NAMES.items():
            if not np.any(split == code):
                raise RcpbError(
                    f"{src}: 'split' has no {label} stimuli (value {code}); each of train (0), "
                    f"validation (1) and test (2) needs at least one stimulus. Fix 'split' or "
                    f"drop it to have it generated from split_seed.")
    if true_rates is not None:
        if true_rates.dtype.kind not in "uif":
            raise RcpbError(f"{src}: 'true_rates' has dtype {true_rates.dtype}; store the "
                            f"noise-free rates as float32, or drop 'true_rates'.")
        true_rates = true_rates.astype(np.float32, copy=False)
        if not np.isfinite(true_rates).all():
            stim = np.flatnonzero(_per_stimulus(~np.isfinite(true_rates)))
            raise RcpbError(f"{src}: 'true_rates' contains NaN or inf (stimuli {_first(stim)}); "
                            f"the noise-free rates must be finite, or drop 'true_rates'.")

    return Dataset(images=images, responses=responses, split=split,
                   neuron_ids=None if ds.neuron_ids is None else list(ds.neuron_ids),
                   true_rates=true_rates, attrs=attrs)


def load_dataset(path: str | Path, loss: str | None = None,
                 clip_negative: float | None = None, skip=()) -> Dataset:
    """Read and validate the dataset file at ``path`` (SPEC 2.1).

    ``loss``: None, "mse" or "poisson"; with "poisson", negative responses are an
    error. ``clip_negative``: see :func:`validate`. ``skip``: optional datasets not to read
    (and so not to check), e.g. ``("true_rates", "baselines")`` (``rcpb.data.format.read_raw``).
    Returns the Dataset (images uint8 or float32 [stimuli, H, W], responses float32 [stimuli,
    trials, neurons], or [stimuli, trials, neurons, time_bins] as stored for time-binned
    files (``ds.n_bins``; attrs ``bin_ms``, ``stim_on_bin``, ``stim_off_bin``), split int8
    [stimuli] or None). Raises RcpbError naming the file, the field and the fix.
    """
    return validate(_read(path, skip), source=path, loss=loss, clip_negative=clip_negative)


def _read(path, skip=()) -> Dataset:
    """``read_raw``, with text that is not UTF-8 reported as an RcpbError naming the field."""
    try:
        return read_raw(path, skip=skip)
    except UnicodeDecodeError as exc:
        raise RcpbError(f"{path}: {_undecodable_field(path)} is not UTF-8 text ({exc.reason} at "
                        f"byte {exc.start}); store neuron ids and text attrs as UTF-8 "
                        f"strings.") from None


def _undecodable_field(path) -> str:
    """Which text of the dataset file at ``path`` is not UTF-8: 'neuron_ids' entry i or
    file attr 'key' (else 'a text field')."""
    import h5py

    def bad(value):
        if not isinstance(value, bytes):
            return False
        try:
            value.decode()
        except UnicodeDecodeError:
            return True
        return False

    with h5py.File(path, "r") as f:
        ids = f.get("neuron_ids")
        if isinstance(ids, h5py.Dataset):
            for i, value in enumerate(np.ravel(ids[()])):
                if bad(value):
                    return f"'neuron_ids' entry {i}"
        for key in f.attrs:
            try:
                if bad(f.attrs[key]):
                    return f"file attr {key!r}"
            except UnicodeDecodeError:
                return f"file attr {key!r}"
    return "a text field"


#: Bytes of ``responses`` that :func:`load_trial_means` reads from the file at a time.
READ_BYTES = 16 * 2 ** 20


def load_trial_means(path: str | Path, loss: str | None = None,
                     clip_negative: float | None = None):
    """What training needs of the dataset file at ``path``, without the whole ``responses``.

    Reads ``responses`` a block of stimuli (:data:`READ_BYTES`) at a time, checks each block as
    :func:`load_dataset` checks the whole array, and keeps the NaN-aware trial means of every
    stimulus and the trials of the repeated stimuli only (those with >= 2 valid trials for some
    neuron, the only ones a noise ceiling uses: ``rcpb.metrics.repeated_stimuli``).
    ``true_rates`` and ``baselines`` are not read. Returns ``(ds, means, stimuli)``: ``ds`` as
    load_dataset's, but ``ds.responses`` holds the trials of the stimuli ``stimuli`` (int64,
    sorted) only; ``means`` float32 [stimuli, neurons] equals
    ``rcpb.data.preprocess.trial_average`` of the whole (checked, clipped) responses. Raises
    load_dataset's RcpbError: a check that fails on a block is reported by load_dataset on the
    whole file, so the message is the same.
    """
    import h5py

    from rcpb.data.preprocess import trial_average
    from rcpb.metrics import repeated_stimuli

    skip = ("responses", "true_rates", "baselines")
    head = _read(path, skip=skip)
    try:
        with h5py.File(path, "r") as f:
            stored = f.get("responses")
            if isinstance(stored, h5py.Dataset) and stored.ndim == 4:
                raise RcpbError(      # after load_dataset's checks (below): a valid file
                    f"{path}: 'responses' is time-binned {stored.shape} [stimuli, trials, "
                    f"neurons, time_bins]; load_trial_means reads 3-D responses only (read "
                    f"time-binned files with load_dataset, which returns them as stored).")
            if (head.images is None or np.ndim(head.images) != 3
                    or not isinstance(stored, h5py.Dataset) or stored.ndim != 3):
                raise RcpbError("")              # load_dataset names the problem
            n, trials, neurons = stored.shape
            rows = max(1, READ_BYTES // max(1, trials * neurons * 4))
            means = np.empty((n, neurons), dtype=np.float32)
            kept, stimuli, clipped = [], [], 0
            for start in range(0, n, rows):
                block = validate(Dataset(images=head.images[start:start + rows],
                                         responses=stored[start:start + rows],
                                         neuron_ids=head.neuron_ids),
                                 source=path, loss=loss, clip_negative=clip_negative)
                means[start:start + rows] = trial_average(block.responses)
                repeated = repeated_stimuli(block.responses)
                kept.append(block.responses[repeated])
                stimuli.append(repeated + start)
                clipped += block.attrs.get("clipped_negative", 0)
        # the other arrays' checks (counts, split, neuron ids), the means standing in for the
        # trials (one per stimulus: a view, no copy)
        ds = validate(Dataset(images=head.images, responses=means[:, None, :], split=head.split,
                              neuron_ids=head.neuron_ids, attrs=head.attrs),
                      source=path, loss=loss, clip_negative=clip_negative)
    except RcpbError:
        load_dataset(path, loss=loss, clip_negative=clip_negative, skip=skip[1:])
        raise
    if clip_negative is not None:
        ds.attrs.update(clipped_negative=clipped)
    ds.responses = (np.concatenate(kept) if kept else
                    np.zeros((0, trials, neurons), dtype=np.float32))
    return ds, means, (np.concatenate(stimuli) if stimuli else np.zeros(0, dtype=np.int64))


def valid_trial_counts(responses: np.ndarray) -> np.ndarray:
    """Valid (non-NaN) trials per stimulus and neuron: [stimuli, trials, neurons] -> int [stimuli, neurons]."""
    return np.sum(~np.isnan(responses), axis=1)


def summed_over_bins(responses: np.ndarray) -> np.ndarray:
    """Time-binned responses [stimuli, trials, neurons, time_bins] summed over the bins (a
    trial with a NaN bin is NaN: missing); 3-D responses are returned as they are."""
    return responses if responses.ndim < 4 else responses.sum(axis=3)


def trial_facts(counts: np.ndarray) -> dict:
    """``trials_min``, ``trials_max`` and ``n_repeated`` (stimuli with >= 2 valid trials for
    every neuron) of valid trial counts ``counts`` [stimuli, neurons]."""
    return {"trials_min": int(counts.min()), "trials_max": int(counts.max()),
            "n_repeated": int(np.sum(counts.min(axis=1) >= 2))}


def summarize_file(path: str | Path) -> dict:
    """:func:`summarize_dataset` of the dataset file at ``path``, reading a file without a time
    axis a block of stimuli at a time (:func:`load_trial_means`: the trials of the repeated
    stimuli only; every other stimulus has one valid trial for every neuron, which validation
    requires), so that the whole trial array is never held. Time-binned files are read whole."""
    import h5py

    if is_time_binned(path):
        return summarize_dataset(load_dataset(path))
    with h5py.File(path, "r") as f:
        has_true_rates = "true_rates" in f
    ds, _, held = load_trial_means(path)
    facts = trial_facts(valid_trial_counts(ds.responses)) if held.size else {}
    if held.size < ds.n_stimuli:       # the others: one valid trial for every neuron
        one = trial_facts(np.ones((1, ds.n_neurons), dtype=np.int64))
        facts = one if not facts else {
            "trials_min": min(facts["trials_min"], 1), "trials_max": facts["trials_max"],
            "n_repeated": facts["n_repeated"]}
    return summarize_dataset(ds, facts, has_true_rates)


def summarize_dataset(ds: Dataset, facts: dict | None = None,
                      has_true_rates: bool | None = None) -> dict:
    """Facts about a (validated) dataset as a JSON-friendly dict.

    Keys: n_stimuli, image_size [H, W], image_dtype, trials_min / trials_max (valid
    trials per stimulus and neuron), n_trial_slots (length of the trial axis),
    n_neurons, n_repeated (stimuli with >= 2 valid trials for every neuron),
    split ({"train": n, "validation": n, "test": n} or None), has_true_rates, attrs; for
    time-binned responses also time_bins ({"n": bins, "bin_ms", "stim_on_bin",
    "stim_off_bin"}), the trial counts then counted on the responses summed over the bins
    (a trial with a NaN bin is missing). ``facts`` and ``has_true_rates``: given by
    :func:`summarize_file`, which holds only part of the trials.
    """
    facts = facts or trial_facts(valid_trial_counts(summed_over_bins(ds.responses)))
    split = None
    if ds.split is not None:
        split = {label: int(np.sum(ds.split == code)) for code, label in SPLIT_NAMES.items()}
    attrs = {k: (v.item() if isinstance(v, np.generic) else
                 v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ds.attrs.items()}
    out = {
        "n_stimuli": ds.n_stimuli,
        "image_size": [int(ds.images.shape[1]), int(ds.images.shape[2])],
        "image_dtype": str(ds.images.dtype),
        "n_trial_slots": int(ds.responses.shape[1]),
        "trials_min": facts["trials_min"],
        "trials_max": facts["trials_max"],
        "n_neurons": ds.n_neurons,
        "n_repeated": facts["n_repeated"],
        "split": split,
        "has_true_rates": (ds.true_rates is not None if has_true_rates is None
                           else bool(has_true_rates)),
        "attrs": attrs,
    }
    if ds.n_bins is not None:
        out["time_bins"] = {"n": ds.n_bins, "bin_ms": float(ds.attrs["bin_ms"]),
                            "stim_on_bin": int(ds.attrs["stim_on_bin"]),
                            "stim_off_bin": int(ds.attrs["stim_off_bin"])}
    return out


def format_summary(summary: dict, path: str | Path | None = None) -> str:
    """A few human-readable lines for :func:`summarize_dataset`'s dict."""
    s = summary
    lines = []
    if path is not None:
        lines.append(f"{path}: valid dataset")
    h, w = s["image_size"]
    lines.append(f"  stimuli:   {s['n_stimuli']} images of {h}x{w} px ({s['image_dtype']})")
    lines.append(f"  neurons:   {s['n_neurons']}")
    bins = s.get("time_bins")
    summed = ""
    if bins:
        on, off = bins["stim_on_bin"], bins["stim_off_bin"]
        lines.append(f"  time bins: {bins['n']} x {bins['bin_ms']:g} ms (image on bins "
                     f"{on}-{off - 1})")
        summed = " (responses summed over the time bins)"
    lines.append(f"  trials:    {s['trials_min']}-{s['trials_max']} valid per stimulus "
                 f"(trial axis {s['n_trial_slots']}){summed}")
    note = "" if s["n_repeated"] else "  (no noise ceiling: cc_norm2 undefined, cc_raw only)"
    lines.append(f"  repeated:  {s['n_repeated']} stimuli with >= 2 valid trials{note}{summed}")
    if s["split"] is None:
        lines.append("  split:     none stored (generated from split_seed, about 64/16/20 %)")
    else:
        sp = s["split"]
        lines.append(f"  split:     train {sp['train']}, validation {sp['validation']}, "
                     f"test {sp['test']} (stored)")
    if s["has_true_rates"]:
        lines.append("  true_rates: present (simulated data)")
    attrs = dict(s["attrs"])
    if bins:
        for key in ("bin_ms", "stim_on_bin", "stim_off_bin"):
            attrs.pop(key, None)
    if "clip_negative" in attrs:
        lines.append(f"  clipped:   {attrs.pop('clipped_negative', 0)} negative response values "
                     f"within {attrs.pop('clip_negative'):g} of zero set to 0 (clip_negative)")
    for key in sorted(attrs):
        value = str(attrs[key])
        if len(value) > 100:
            value = value[:97] + "..."
        lines.append(f"  attr {key}: {value}")
    return "\n".join(lines)


#: Below this many training stimuli a model is likely to learn little: a warning, not an error.
MIN_TRAIN_STIMULI = 200


def responses_range(responses: np.ndarray, means: np.ndarray | None = None):
    """Per neuron, the smallest and largest response over every stimulus, trial and time bin
    (NaN ignored): ``(low, high)``, float arrays [neurons]. ``responses``: [stimuli, trials,
    neurons(, bins)]; with ``means`` [stimuli, neurons] (load_trial_means: ``responses`` then
    holds the trials of the repeated stimuli only, and every other stimulus' one valid trial is
    its mean) the range covers the means too, which is the range of every trial."""
    others = tuple(a for a in range(responses.ndim) if a != 2)
    low = np.fmin.reduce(responses, axis=others) if responses.shape[0] else None
    high = np.fmax.reduce(responses, axis=others) if responses.shape[0] else None
    if means is not None:
        m_low, m_high = np.fmin.reduce(means, axis=0), np.fmax.reduce(means, axis=0)
        low = m_low if low is None else np.fmin(low, m_low)
        high = m_high if high is None else np.fmax(high, m_high)
    return low, high


def training_warnings(ds: Dataset, preprocess: dict | None = None, models=(),
                      input_size=None, means: np.ndarray | None = None) -> list[str]:
    """Warnings (not errors) about the training split of a validated dataset, each naming the
    numbers: fewer than :data:`MIN_TRAIN_STIMULI` training stimuli (the stored split, or the
    split ``preprocess`` generates), and, for each (train_fraction, channels) in ``models`` at
    model input ``input_size`` (s or [h, w] px, rcpb.sizes), fewer training stimuli than the
    parameters of one neuron's readout (pooled h x w spatial weights + channels feature weights
    + 1 bias), which the data
    then cannot determine, and neurons whose response is the same on every trial of every
    stimulus (their cc_raw is 0 for every model: rcpb.metrics).

    Raises RcpbError (the workflow checks this before any job) when ``preprocess.split_sizes``
    do not add up to the stimuli, or ``preprocess.neuron_scale`` is set and a neuron never
    responds above 0 (its training mean cannot be scaled). ``means``: with ``ds`` from
    :func:`load_trial_means`, the trial means it returned (rcpb.data.start_checks)."""
    from rcpb.cost import FIRST_KERNEL, pooled_size      # torch-free
    from rcpb.data.prepare import split_source
    from rcpb.data.splits import n_for_fraction, split_sizes

    if split_source(ds, preprocess) == "stored":
        n_train, how = int(np.sum(ds.split == 0)), "stored split"
    else:
        sizes = (preprocess or {}).get("split_sizes") or split_sizes(ds.n_stimuli)
        if sum(sizes) != ds.n_stimuli:
            raise RcpbError(f"preprocess.split_sizes = {list(sizes)} add up to {sum(sizes)} "
                            f"stimuli, but the dataset has {ds.n_stimuli}; give [train, "
                            f"validation, test] sizes that add up to {ds.n_stimuli}, or null.")
        n_train, how = int(sizes[0]), "generated split"
    out = []
    low, high = responses_range(ds.responses, means)   # per neuron; NaN ignored
    if (preprocess or {}).get("neuron_scale") is not None and np.any(high <= 0):
        raise RcpbError(f"preprocess.neuron_scale: neuron(s) {_first(np.flatnonzero(high <= 0))} "
                        f"never respond above 0, so their training mean cannot be scaled; set "
                        f"neuron_scale to null or remove those neurons.")
    if n_train < MIN_TRAIN_STIMULI:
        out.append(f"the training split has {n_train} stimuli ({how}), fewer than "
                   f"{MIN_TRAIN_STIMULI}: models will likely learn little (cc_raw near 0).")
    if input_size is not None and min(hw(input_size)) >= FIRST_KERNEL:
        ph, pw = (pooled_size(s - FIRST_KERNEL + 1) for s in hw(input_size))
        for fraction, channels in sorted(set(models)):
            n = n_for_fraction(n_train, fraction)
            per_neuron = ph * pw + channels + 1
            if n < per_neuron:
                out.append(f"train_fraction {fraction:g} gives {n} training stimuli, fewer than "
                           f"the {per_neuron} parameters of one neuron's readout ({ph}x{pw} "
                           f"spatial + {channels} feature weights + 1 bias at "
                           f"{size_text(input_size)} px "
                           f"input): the data cannot determine them.")
    constant = np.flatnonzero(low == high)
    if constant.size:
        out.append(f"neuron(s) {_first(constant)} have the same response ({low[constant[0]]:g} "
                   f"for neuron {constant[0]}) on every trial of every stimulus: no model can "
                   f"predict them (cc_raw 0); consider removing them.")
    return out
