"""The checks of a provided dataset file that the workflow runs at its start, before any job.

:func:`check_dataset_file` validates the file against its dataset's ``preprocess`` section and
training configurations (the losses decide whether negative responses are an error; a stored
split with more than one split_seed; split sizes; the model input size; a time window and a
grid that time-binned responses can take) and returns the warnings about its training split
(rcpb.data.validate.training_warnings). A file without a time axis is read a block of stimuli
at a time (rcpb.data.validate.load_trial_means: the trial means of every stimulus and the
trials of the repeated ones), so the process that schedules the jobs never holds all trials of
a large recording; a time-binned file is read whole.
"""

from __future__ import annotations

import numpy as np

from rcpb.errors import RcpbError
from rcpb.sizes import hw

#: the first convolution's kernel (px): the smallest model input
MIN_INPUT = 9


def check_dataset_file(path: str, preprocess: dict, configs: list[dict],
                       name: str) -> list[str]:
    """Check the dataset file ``path`` of dataset ``name`` (its resolved ``preprocess`` dict and
    training ``configs``, rcpb.grid.expand); return the warnings. Raises RcpbError naming the
    file or field and the fix."""
    from rcpb import grid
    from rcpb.data.prepare import _time_binned, check_split_seeds, time_window
    from rcpb.data.preprocess import preprocess_images
    from rcpb.data.validate import load_dataset, load_trial_means, training_warnings

    loss = "poisson" if any(c["loss"] == "poisson" for c in configs) else None
    clip = preprocess.get("clip_negative")
    means = None
    if _time_binned(path):
        data = load_dataset(path, loss=loss, clip_negative=clip)
        time_window(preprocess.get("time_window"), data.n_bins, int(data.attrs["stim_on_bin"]),
                    int(data.attrs["stim_off_bin"]), path)
        grid.check_time_binned_grid(configs, f"datasets.{name}")
    else:
        if preprocess.get("time_window") is not None:
            raise RcpbError(f"{path}: preprocess.time_window is set, but the file's responses "
                            "have no time axis; remove time_window.")
        data, means, _ = load_trial_means(path, loss=loss, clip_negative=clip)
    size = preprocess_images(data.images[:1], preprocess.get("crop"),
                             preprocess.get("downsample") or 1).shape[-2:]
    if min(hw(tuple(size))) < MIN_INPUT:
        raise RcpbError(f"preprocess: the model input would be {size[0]} x {size[1]} px, but "
                        f"the first layer's {MIN_INPUT} x {MIN_INPUT} convolution needs at least "
                        f"{MIN_INPUT} px; use a larger crop or a smaller downsample factor.")
    models = {(c["train_fraction"], c["channels"]) for c in configs}
    warnings = training_warnings(data, preprocess, models, tuple(int(s) for s in size),
                                 means=means)
    # a stored split is the same for every split_seed: more than one is an error
    check_split_seeds(data, preprocess, (c["split_seed"] for c in configs), source=path,
                      name=name)
    return warnings


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
