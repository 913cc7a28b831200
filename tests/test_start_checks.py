"""What the workflow reads of a provided dataset file before and beside the jobs, in blocks: the
start checks (rcpb.data.start_checks) and the summary (rcpb.data.validate.summarize_file) give
the warnings, errors and facts of the whole file."""

import numpy as np
import pytest

from rcpb.data.format import write_dataset
from rcpb.data.start_checks import check_dataset_file
from rcpb.data.validate import (load_dataset, load_trial_means, responses_range,
                                summarize_dataset, summarize_file, training_warnings)
from rcpb.errors import RcpbError

from conftest import tiny_dataset


def _configs(**over):
    return [dict({"loss": "mse", "train_fraction": 1.0, "channels": 4, "split_seed": 0,
                  "family": "ff", "arch": "ff"}, **over)]


def _single_and_repeated(tmp_path, constant=None):
    """240 stimuli: the first 40 with 4 trials, the others one valid trial (NaN padded)."""
    ds = tiny_dataset(n=240, h=20, w=20, trials=4, neurons=5, seed=3)
    ds.responses[40:, 1:] = np.nan
    if constant is not None:
        ds.responses[:, :, constant] = np.where(np.isnan(ds.responses[:, :, constant]), np.nan,
                                                2.0)
    write_dataset(tmp_path / "d.h5", ds)
    return tmp_path / "d.h5"


def test_the_range_from_repeated_trials_and_means_is_the_range_of_every_trial(tmp_path):
    path = _single_and_repeated(tmp_path)
    whole = load_dataset(path).responses
    ds, means, stimuli = load_trial_means(path)
    assert stimuli.size == 40 < whole.shape[0]           # only the repeated trials are held
    low, high = responses_range(ds.responses, means)
    np.testing.assert_array_equal(low, np.nanmin(whole, axis=(0, 1)))
    np.testing.assert_array_equal(high, np.nanmax(whole, axis=(0, 1)))


def test_start_checks_warn_as_the_whole_file_does(tmp_path):
    path = _single_and_repeated(tmp_path, constant=2)
    pre = {"crop": None, "downsample": 1}
    warnings = check_dataset_file(str(path), pre, _configs(), "d")
    expected = training_warnings(load_dataset(path), pre, {(1.0, 4)}, (20, 20))
    assert warnings == expected
    assert any("neuron(s) 2 have the same response" in w for w in warnings)


def test_start_checks_stop_on_a_model_input_smaller_than_the_first_kernel(tmp_path):
    path = _single_and_repeated(tmp_path)
    with pytest.raises(RcpbError, match=r"model input would be 5 x 5 px.*9 x 9"):
        check_dataset_file(str(path), {"crop": None, "downsample": 4}, _configs(), "d")
    with pytest.raises(RcpbError, match="no time axis"):
        check_dataset_file(str(path), {"time_window": {"offset": 0}}, _configs(), "d")


@pytest.mark.parametrize("case", ["mixed", "all_repeated", "none_repeated", "true_rates"])
def test_the_summary_in_blocks_equals_the_summary_of_the_whole_file(tmp_path, case):
    if case == "mixed":
        path = _single_and_repeated(tmp_path)
    else:
        ds = tiny_dataset(n=30, trials=3, neurons=4, seed=5)
        if case == "none_repeated":
            ds.responses[:, 1:] = np.nan
        if case == "true_rates":
            ds.true_rates = np.ones((30, 4), dtype=np.float32)
        path = tmp_path / "d.h5"
        write_dataset(path, ds)
    whole = summarize_dataset(load_dataset(path))
    assert summarize_file(path) == whole
    assert whole["has_true_rates"] == (case == "true_rates")
