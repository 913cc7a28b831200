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

from rcpb.errors import RcpbError


def check_dataset_file(path: str, preprocess: dict, configs: list[dict],
                       name: str) -> list[str]:
    """Check the dataset file ``path`` of dataset ``name`` (its resolved ``preprocess`` dict and
    training ``configs``, rcpb.grid.expand); return the warnings. Raises RcpbError naming the
    file or field and the fix."""
    from rcpb import grid
    from rcpb.cost import FIRST_KERNEL            # the smallest model input (px)
    from rcpb.data.format import is_time_binned
    from rcpb.data.prepare import check_split_seeds, time_window
    from rcpb.data.preprocess import preprocess_images
    from rcpb.data.validate import load_dataset, load_trial_means, training_warnings

    loss = "poisson" if any(c["loss"] == "poisson" for c in configs) else None
    clip = preprocess.get("clip_negative")
    means = None
    if is_time_binned(path):
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
    if min(size) < FIRST_KERNEL:
        raise RcpbError(f"preprocess: the model input would be {size[0]} x {size[1]} px, but "
                        f"the first layer's {FIRST_KERNEL} x {FIRST_KERNEL} convolution needs at "
                        f"least {FIRST_KERNEL} px; use a larger crop or a smaller downsample "
                        f"factor.")
    models = {(c["train_fraction"], c["channels"]) for c in configs}
    warnings = training_warnings(data, preprocess, models, tuple(int(s) for s in size),
                                 means=means)
    # a stored split is the same for every split_seed: more than one is an error
    check_split_seeds(data, preprocess, (c["split_seed"] for c in configs), source=path,
                      name=name)
    return warnings
