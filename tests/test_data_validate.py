"""Validation of dataset files: one test per problem, plus the valid edge cases."""

import h5py
import numpy as np
import pytest

from rcpb.data.format import write_dataset
from rcpb.data.validate import format_summary, load_dataset, summarize_dataset
from rcpb.errors import RcpbError


def error_of(path, loss=None) -> str:
    with pytest.raises(RcpbError) as exc:
        load_dataset(path, loss=loss)
    message = str(exc.value)
    assert str(path) in message  # every message names the file
    return message


def test_valid_file_loads_with_canonical_dtypes(write_tiny):
    ds = load_dataset(write_tiny())
    assert ds.images.dtype == np.uint8 and ds.images.shape == (20, 8, 8)
    assert ds.responses.dtype == np.float32 and ds.responses.shape == (20, 3, 4)


def test_missing_file(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "d.h5"
    path.write_text("images,responses\n1,2\n")
    message = error_of(path)
    assert "not an HDF5 file" in message and "rcpb data import" in message


@pytest.mark.parametrize("name", ["images", "responses"])
def test_missing_required_dataset(tmp_path, name):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["images" if name == "responses" else "responses"] = np.zeros((3, 2, 2), np.float32)
    message = error_of(path)
    assert f"'{name}' is missing" in message


@pytest.mark.parametrize("field,value,expected", [
    ("responses", np.ones((19, 3, 4), np.float32), "images 20, responses 19"),
    ("split", np.zeros(18, np.int8), "split 18"),
    ("true_rates", np.ones((21, 4), np.float32), "true_rates 21"),
])
def test_stimulus_count_mismatch(write_tiny, field, value, expected):
    message = error_of(write_tiny(**{field: value}))
    assert "number of stimuli" in message and expected in message


def test_images_wrong_rank(write_tiny):
    message = error_of(write_tiny(images=np.zeros((20, 64), np.uint8)))
    assert "'images'" in message and "3-D [stimuli, H, W]" in message


def test_responses_wrong_rank(write_tiny):
    message = error_of(write_tiny(responses=np.ones((20, 4), np.float32)))
    assert "'responses'" in message and "[stimuli, trials, neurons]" in message
    assert "--responses-axes sn" in message  # says how to add the trial axis


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images(write_tiny, bad):
    images = np.zeros((20, 8, 8), np.float32)
    images[7, 2, 3] = bad
    message = error_of(write_tiny(images=images))
    assert "'images' contains NaN or inf" in message and "stimuli 7" in message


def test_stimulus_without_valid_trial_names_first_stimuli(write_tiny):
    responses = np.ones((20, 3, 4), np.float32)
    for s in (2, 5, 6, 9, 11, 15, 17):
        responses[s, :, 1] = np.nan  # neuron 1 never recorded for these stimuli
    message = error_of(write_tiny(responses=responses))
    assert "no valid (non-NaN) trial" in message
    assert "stimuli 2, 5, 6, 9, 11, ... (7 in all)" in message
    assert "neurons 1" in message


def test_inf_in_responses(write_tiny):
    responses = np.ones((20, 3, 4), np.float32)
    responses[4, 0, 0] = np.inf
    message = error_of(write_tiny(responses=responses))
    assert "'responses' contains inf" in message and "stimuli 4" in message


def test_negative_responses_only_rejected_for_poisson(write_tiny):
    responses = np.ones((20, 3, 4), np.float32)
    responses[3, 1, 2] = -0.5
    path = write_tiny(responses=responses)
    load_dataset(path)  # fine without a loss, and for mse
    load_dataset(path, loss="mse")
    message = error_of(path, loss="poisson")
    assert "negative" in message and "'poisson'" in message and "stimuli 3" in message


def test_negative_float_noise_within_a_stated_tolerance_is_clipped(write_tiny):
    """Deconvolved traces hold values like -1.2e-8: with clip_negative = 1e-6 they become 0
    (and are counted); -0.5 is beyond the tolerance and still stops a Poisson loss."""
    responses = np.ones((20, 3, 4), np.float32)
    responses[2, 0, 1] = -1.2e-8
    responses[5, 2, 3] = -1e-6          # exactly at the tolerance: clipped
    responses[7, 1, 0] = np.nan         # a missing trial stays missing
    path = write_tiny(responses=responses)
    assert "negative" in error_of(path, loss="poisson")
    ds = load_dataset(path, loss="poisson", clip_negative=1e-6)
    assert ds.responses[2, 0, 1] == 0 and ds.responses[5, 2, 3] == 0
    assert np.isnan(ds.responses[7, 1, 0]) and np.nanmin(ds.responses) == 0
    assert ds.attrs["clipped_negative"] == 2 and ds.attrs["clip_negative"] == 1e-6
    text = format_summary(summarize_dataset(ds), path)
    assert "clipped:   2 negative response values within 1e-06 of zero set to 0" in text
    # beyond the tolerance: refused, naming the tolerance
    responses[3, 1, 2] = -0.5
    path = write_tiny("beyond.h5", responses=responses)
    with pytest.raises(RcpbError, match="beyond the stated tolerance clip_negative = 1e-06"):
        load_dataset(path, loss="poisson", clip_negative=1e-6)
    assert load_dataset(path, clip_negative=1e-6).responses[3, 1, 2] == -0.5   # mse: kept
    with pytest.raises(RcpbError, match="clip_negative = -1"):
        load_dataset(path, clip_negative=-1)


def test_prepare_and_cli_take_the_tolerance(write_tiny, capsys):
    from rcpb.cli import main
    from rcpb.data.prepare import prepare

    responses = np.ones((40, 3, 4), np.float32)
    responses[0, 0, 0] = -3e-9
    path = write_tiny(n=40, h=16, w=16, responses=responses)
    data = prepare(str(path), {"clip_negative": 1e-6, "split_sizes": [20, 10, 10]}, 0, 1.0,
                   loss="poisson")
    assert np.nanmin(data.responses) == 0
    assert main(["data", "validate", str(path), "--loss", "poisson",
                 "--clip-negative", "1e-6"]) == 0
    assert "clipped:   1 negative response values" in capsys.readouterr().out


def test_small_training_sets_are_warned_about_with_their_numbers(write_tiny, capsys):
    from rcpb.cli import main
    from rcpb.data.validate import training_warnings

    # 150 stimuli: generated split 96 / 24 / 30 (80 % of the 120 left by the 20 % test set)
    ds = load_dataset(write_tiny(n=150, h=16, w=16))
    warnings = training_warnings(ds)
    assert len(warnings) == 1 and "96 stimuli (generated split), fewer than 200" in warnings[0]
    # 16 px input: CPB1 leaves 8 px, pooled to 3 x 3: 9 + 4 channels + 1 = 14 readout
    # parameters per neuron; 10 % of 96 = 10 stimuli is fewer, 50 % = 48 is not
    warnings = training_warnings(ds, None, {(0.1, 4), (0.5, 4)}, 16)
    assert len(warnings) == 2
    assert "train_fraction 0.1 gives 10 training stimuli, fewer than the 14 parameters" in warnings[1]
    # a stored split is counted as stored; 2,250 stimuli give no warning
    split = np.array([0] * 250 + [1] * 50 + [2] * 50, np.int8)
    assert training_warnings(load_dataset(write_tiny("s.h5", n=350, split=split))) == []
    assert main(["data", "validate", str(write_tiny("w.h5", n=150))]) == 0
    assert "warning: the training split has 96 stimuli" in capsys.readouterr().out


def test_split_values_outside_codes(write_tiny):
    split = np.array([0, 1, 2, 3] * 5, np.int8)
    message = error_of(write_tiny(split=split))
    assert "'split' has values outside {0, 1, 2}" in message and "(3)" in message


def test_split_with_non_integer_codes(tmp_path, make_dataset):
    path = tmp_path / "d.h5"
    write_dataset(path, make_dataset())
    with h5py.File(path, "r+") as f:
        f["split"] = np.array([0.0, 1.0, 2.0, np.nan, 0.5] * 4)
    message = error_of(path)
    assert "outside {0, 1, 2} (0.5, nan)" in message


@pytest.mark.parametrize("missing,label", [(0, "train"), (1, "validation"), (2, "test")])
def test_split_with_empty_set(write_tiny, missing, label):
    split = np.array([c for c in (0, 1, 2) if c != missing] * 10, np.int8)
    message = error_of(write_tiny(split=split))
    assert f"no {label} stimuli" in message


def test_neuron_ids_length_mismatch(write_tiny):
    message = error_of(write_tiny(neuron_ids=["a", "b", "c"]))
    assert "'neuron_ids' has 3 entries" in message and "4 neurons" in message


def test_only_some_stimuli_repeated_is_valid(write_tiny):
    responses = np.full((20, 3, 4), np.nan, np.float32)
    responses[:, 0, :] = 1.0 + np.arange(20)[:, None]  # every stimulus has one trial
    responses[15:, 1:, :] = 2.0  # only the last 5 stimuli are repeated (3 trials)
    responses[14, 1, :] = 2.0  # stimulus 14 has 2 trials
    ds = load_dataset(write_tiny(responses=responses), loss="poisson")
    summary = summarize_dataset(ds)
    assert summary["trials_min"] == 1 and summary["trials_max"] == 3
    assert summary["n_repeated"] == 6


def test_single_trial_dataset_is_valid(write_tiny):
    ds = load_dataset(write_tiny(trials=1))
    summary = summarize_dataset(ds)
    assert summary["n_repeated"] == 0
    assert "no noise ceiling" in format_summary(summary)


def test_summary_counts(tmp_path, make_dataset):
    split = np.array([0] * 12 + [1] * 3 + [2] * 5, np.int8)
    ds = make_dataset(h=6, w=10, trials=4, neurons=3, split=split,
                      true_rates=np.ones((20, 3), np.float32))
    write_dataset(tmp_path / "d.h5", ds)
    summary = summarize_dataset(load_dataset(tmp_path / "d.h5"))
    assert summary["n_stimuli"] == 20 and summary["image_size"] == [6, 10]
    assert summary["n_neurons"] == 3 and summary["trials_min"] == summary["trials_max"] == 4
    assert summary["split"] == {"train": 12, "validation": 3, "test": 5}
    assert summary["has_true_rates"] and summary["attrs"] == {"name": "tiny"}
    text = format_summary(summary, tmp_path / "d.h5")
    assert "train 12, validation 3, test 5" in text and "6x10" in text
