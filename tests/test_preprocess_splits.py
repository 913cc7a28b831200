"""Preprocessing (SPEC 2.2), splits and training fractions (SPEC 2.3), prepare()."""

import numpy as np
import pytest

from rcpb.data.format import write_dataset
from rcpb.data.prepare import prepare
from rcpb.data.preprocess import (center_crop, downsample, neuron_scale_factors,
                                  preprocess_images, trial_average)
from rcpb.data.splits import (make_split, n_for_fraction, split_indices, split_sizes,
                              training_order, training_subset)
from rcpb.errors import RcpbError

# --- preprocessing ---------------------------------------------------------------------


def test_center_crop_takes_the_middle():
    images = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    out = center_crop(images, 3)  # offsets (5-3)//2 = 1 and (6-3)//2 = 1
    np.testing.assert_array_equal(out[1], images[1, 1:4, 1:4])
    assert center_crop(images, None) is images
    with pytest.raises(RcpbError, match="crop = 6 does not fit images of 5x6"):
        center_crop(images, 6)


def test_downsample_local_means_by_hand():
    images = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    out = downsample(images, 2)
    # blocks {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}
    np.testing.assert_array_equal(out, [[[2.5, 4.5], [10.5, 12.5]]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(downsample(images, 1), images.astype(np.float32))
    with pytest.raises(RcpbError, match="does not divide"):
        downsample(np.zeros((1, 6, 6)), 4)


def test_preprocess_images_keeps_any_aspect_ratio():
    x = preprocess_images(np.ones((3, 10, 12), np.uint8) * 7, crop=8, factor=2)
    assert x.shape == (3, 1, 4, 4) and x.dtype == np.float32 and np.all(x == 7)
    # no crop: 10 x 12 -> 5 x 6 (rows, columns), the ratio kept
    assert preprocess_images(np.ones((3, 10, 12), np.uint8), crop=None, factor=2).shape == \
        (3, 1, 5, 6)


def test_rectangular_crop_takes_the_middle_rows_and_columns():
    images = np.arange(2 * 9 * 14).reshape(2, 9, 14)
    out = center_crop(images, [4, 8])     # offsets (9-4)//2 = 2 rows, (14-8)//2 = 3 columns
    np.testing.assert_array_equal(out[1], images[1, 2:6, 3:11])
    np.testing.assert_array_equal(center_crop(images, [5, 5]), center_crop(images, 5))
    with pytest.raises(RcpbError, match=r"crop = \[4, 15\] does not fit images of 9x14"):
        center_crop(images, [4, 15])
    x = preprocess_images(images.astype(np.uint8), crop=[4, 8], factor=2)
    assert x.shape == (2, 1, 2, 4)


def test_trial_average_ignores_nan():
    responses = np.array([[[1.0, 10.0], [np.nan, 20.0], [3.0, np.nan]]])  # [1, 3, 2]
    np.testing.assert_allclose(trial_average(responses), [[2.0, 15.0]])


def test_neuron_scale_factors_by_hand():
    targets = np.array([[1.0, 4.0], [3.0, 0.0]])  # neuron means 2 and 2
    np.testing.assert_allclose(neuron_scale_factors(targets, 0.5), [0.25, 0.25])
    with pytest.raises(RcpbError, match="neuron\\(s\\) 1"):
        neuron_scale_factors(np.array([[1.0, 0.0], [2.0, 0.0]]), 0.5)


# --- splits ----------------------------------------------------------------------------


def test_split_sizes_reproduce_imagenet_8k_and_64_16_20():
    assert split_sizes(8000) == (5120, 1280, 1600)  # paper, ImageNet 8K
    assert split_sizes(2250) == (1440, 360, 450)  # rule; the paper used 1400/350/500
    assert split_sizes(100) == (64, 16, 20)
    assert split_sizes(3) == (1, 1, 1)
    with pytest.raises(RcpbError):
        split_sizes(2)


def test_make_split_sizes_disjoint_and_deterministic():
    split = make_split(2250, seed=0, sizes=(1400, 350, 500))  # the paper's NS 2250 sizes
    train, val, test = split_indices(split)
    assert (train.size, val.size, test.size) == (1400, 350, 500)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(2250))
    default = make_split(8000, seed=4)
    assert np.bincount(default).tolist() == [5120, 1280, 1600]
    assert np.array_equal(make_split(100, seed=1), make_split(100, seed=1))
    assert not np.array_equal(make_split(100, seed=1), make_split(100, seed=2))


def test_training_fractions_are_nested_prefixes():
    train = np.flatnonzero(make_split(2250, 0, sizes=(1400, 350, 500)) == 0)
    subsets = {f: training_subset(train, f, seed=3) for f in (0.25, 0.5, 1.0)}
    assert [subsets[f].size for f in (0.25, 0.5, 1.0)] == [350, 700, 1400]  # paper sizes
    assert set(subsets[0.25]) <= set(subsets[0.5]) <= set(subsets[1.0]) == set(train)
    order = training_order(train, seed=3)
    assert set(order[:350]) == set(subsets[0.25])
    assert np.array_equal(training_order(train, 3), order)  # deterministic
    assert not np.array_equal(training_order(train, 4), order)
    assert n_for_fraction(5120, 0.25) == 1280
    with pytest.raises(RcpbError, match="train_fraction"):
        n_for_fraction(10, 0.0)


# --- prepare ---------------------------------------------------------------------------


@pytest.fixture
def dataset_file(tmp_path, make_dataset):
    """40 stimuli of 10x10 px, 3 trials (one missing for stimulus 0), 2 neurons."""
    ds = make_dataset(n=40, h=10, w=10, trials=3, neurons=2, seed=5)
    ds.responses = ds.responses + 1.0  # positive means, so scaling is defined
    ds.responses[0, 1, :] = np.nan
    path = tmp_path / "d.h5"
    write_dataset(path, ds)
    return path, ds


def test_prepare_arrays_by_hand(dataset_file):
    path, ds = dataset_file
    p = prepare(str(path), {"crop": 8, "downsample": 2, "neuron_scale": None},
                split_seed=0, train_fraction=1.0)
    assert p.input_size == 4 and p.n_neurons == 2 and p.n_train_full == 26  # 40 -> 26/6/8
    assert p.x_train.shape == (26, 1, 4, 4) and p.x_val.shape == (6, 1, 4, 4)
    assert p.x_test.shape == (8, 1, 4, 4) and p.y_test.shape == (8, 2)
    for a in (p.x_train, p.y_train, p.x_val, p.y_val, p.x_test, p.y_test, p.responses):
        assert a.dtype == np.float32
    s = int(p.test_index[0])
    block = ds.images[s, 1:3, 1:3].astype(float)  # crop offset 1, first 2x2 block
    assert p.x_test[0, 0, 0, 0] == pytest.approx(block.mean())
    np.testing.assert_allclose(p.y_test[0], ds.responses[s].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(p.responses, ds.responses)
    all_index = np.concatenate([p.train_index, p.val_index, p.test_index])
    assert np.array_equal(np.sort(all_index), np.arange(40))
    if 0 in p.train_index:  # stimulus 0 has a missing trial: mean of the two valid ones
        row = int(np.flatnonzero(p.train_index == 0)[0])
        np.testing.assert_allclose(p.y_train[row], ds.responses[0, [0, 2]].mean(axis=0))


def test_prepare_fractions_nested_and_deterministic(dataset_file):
    path, _ = dataset_file
    pre = {"crop": None, "downsample": 2, "neuron_scale": None}
    quarter, half, full = (prepare(str(path), pre, 7, f) for f in (0.25, 0.5, 1.0))
    assert quarter.train_index.size == 7 and half.train_index.size == 13  # 6.5 -> 7 of 26
    assert set(quarter.train_index) <= set(half.train_index) <= set(full.train_index)
    assert np.array_equal(quarter.test_index, full.test_index)  # same split
    again = prepare(str(path), pre, 7, 0.25)
    for name in ("x_train", "y_train", "x_test", "y_test", "test_index"):
        assert np.array_equal(getattr(again, name), getattr(quarter, name))
    other = prepare(str(path), pre, 8, 1.0)
    assert not np.array_equal(other.test_index, full.test_index)


def test_prepare_uses_stored_split(tmp_path, make_dataset):
    split = np.array([2, 1] + [0] * 8, np.int8)
    path = tmp_path / "d.h5"
    write_dataset(path, make_dataset(n=10, split=split))
    p = prepare(str(path), {"crop": None, "downsample": None, "neuron_scale": None}, 0, 1.0)
    assert p.test_index.tolist() == [0] and p.val_index.tolist() == [1]
    assert p.train_index.tolist() == list(range(2, 10)) and p.input_size == 8


def test_prepare_neuron_scale(dataset_file):
    path, ds = dataset_file
    pre = {"crop": None, "downsample": 1, "neuron_scale": 0.5}
    full = prepare(str(path), pre, 0, 1.0)
    np.testing.assert_allclose(full.y_train.mean(axis=0), [0.5, 0.5], rtol=1e-5)
    means = trial_average(ds.responses)[full.train_index].mean(axis=0)
    np.testing.assert_allclose(full.responses, ds.responses * (0.5 / means), rtol=1e-5)
    np.testing.assert_allclose(full.y_test, trial_average(full.responses)[full.test_index],
                               rtol=1e-5)
    quarter = prepare(str(path), pre, 0, 0.25)  # scale from the full training set
    np.testing.assert_allclose(quarter.y_test, full.y_test)


def test_prepare_errors(dataset_file, tmp_path, make_dataset):
    path, _ = dataset_file
    with pytest.raises(RcpbError, match="unknown key"):
        prepare(str(path), {"crop": 8, "resize": 2}, 0, 1.0)
    with pytest.raises(RcpbError, match="preprocess.downsample"):
        prepare(str(path), {"downsample": 1.5}, 0, 1.0)
    neg = make_dataset(n=10)
    neg.responses[0, 0, 0] = -1.0
    write_dataset(tmp_path / "neg.h5", neg)
    prepare(str(tmp_path / "neg.h5"), {}, 0, 1.0, loss="mse")
    with pytest.raises(RcpbError, match="negative"):
        prepare(str(tmp_path / "neg.h5"), {}, 0, 1.0, loss="poisson")


def test_prepare_split_sizes(dataset_file, tmp_path, make_dataset):
    path, _ = dataset_file
    pre = {"crop": None, "downsample": 2, "neuron_scale": None, "split_sizes": [20, 8, 12]}
    p = prepare(str(path), pre, 0, 0.5)
    assert (p.n_train_full, p.x_val.shape[0], p.x_test.shape[0]) == (20, 8, 12)
    assert p.x_train.shape[0] == 10
    with pytest.raises(RcpbError, match="sum to"):
        prepare(str(path), {**pre, "split_sizes": [20, 8, 11]}, 0, 1.0)
    with pytest.raises(RcpbError, match="split_sizes"):
        prepare(str(path), {**pre, "split_sizes": [20, 8]}, 0, 1.0)
    stored = tmp_path / "stored.h5"
    write_dataset(stored, make_dataset(n=10, split=np.array([2, 1] + [0] * 8, np.int8)))
    with pytest.raises(RcpbError, match="its own 'split'"):
        prepare(str(stored), {**pre, "split_sizes": [8, 1, 1]}, 0, 1.0)


# --- which split: stored or generated (preprocess.split) --------------------------------


@pytest.fixture
def stored_file(tmp_path, make_dataset):
    """40 stimuli with a stored split: test 0-7, validation 8-13, train 14-39."""
    split = np.array([2] * 8 + [1] * 6 + [0] * 26, np.int8)
    path = tmp_path / "stored.h5"
    write_dataset(path, make_dataset(n=40, split=split))
    return path


def test_split_option_stored_or_generated(stored_file, dataset_file):
    pre = {"crop": None, "downsample": None, "neuron_scale": None}
    # absent: the file's split, for every split seed
    a, b = (prepare(str(stored_file), pre, seed, 1.0) for seed in (0, 1))
    assert a.split_source == b.split_source == "stored"
    assert a.test_index.tolist() == b.test_index.tolist() == list(range(8))
    assert prepare(str(stored_file), {**pre, "split": "stored"}, 0, 1.0).split_source == "stored"
    # generated: one split per seed, the stored one ignored (default sizes 26 / 6 / 8 of 40)
    gen = {**pre, "split": "generated"}
    c, d = (prepare(str(stored_file), gen, seed, 1.0) for seed in (0, 1))
    assert c.split_source == d.split_source == "generated"
    assert not np.array_equal(c.test_index, d.test_index)
    assert (c.n_train_full, c.val_index.size, c.test_index.size) == (26, 6, 8)
    assert np.array_equal(c.test_index, np.flatnonzero(make_split(40, 0) == 2))
    # with split_sizes, allowed once the split is generated
    sized = prepare(str(stored_file), {**gen, "split_sizes": [20, 10, 10]}, 0, 1.0)
    assert (sized.n_train_full, sized.val_index.size, sized.test_index.size) == (20, 10, 10)
    # a file without a split: generated; asking for the stored one is an error
    path, _ = dataset_file
    assert prepare(str(path), pre, 0, 1.0).split_source == "generated"
    with pytest.raises(RcpbError, match="stores no 'split'.*split: generated"):
        prepare(str(path), {**pre, "split": "stored"}, 0, 1.0)
    with pytest.raises(RcpbError, match="preprocess.split"):
        prepare(str(path), {**pre, "split": "random"}, 0, 1.0)
    with pytest.raises(RcpbError, match="preprocess.ceiling_stimuli"):
        prepare(str(path), {**pre, "ceiling_stimuli": "test"}, 0, 1.0)
    assert prepare(str(path), {**pre, "ceiling_stimuli": "all"}, 0, 1.0).ceiling_stimuli == "all"
    assert prepare(str(path), pre, 0, 1.0).ceiling_stimuli == "evaluated"


def test_two_split_seeds_with_a_stored_split_are_an_error(stored_file, dataset_file):
    from rcpb.data.prepare import check_split_seeds

    with pytest.raises(RcpbError) as info:
        check_split_seeds(str(stored_file), {}, [0, 1, 1], name="mine")
    message = str(info.value)
    for words in ("stored.h5", "stores its own 'split'", "split_seed [0, 1]",
                  "split: generated", "datasets.mine.preprocess"):
        assert words in message
    assert check_split_seeds(str(stored_file), {}, [3, 3]) == "stored"   # one seed is fine
    assert check_split_seeds(str(stored_file), {"split": "generated"}, [0, 1]) == "generated"
    path, _ = dataset_file
    assert check_split_seeds(str(path), {"split_sizes": None}, [0, 1]) == "generated"
    with pytest.raises(RcpbError, match="stores no 'split'"):
        check_split_seeds(str(path), {"split": "stored"}, [0])


def test_split_options_enter_config_ids_only_when_set():
    from rcpb.grid import expand_dataset

    grids = {"g": {"common": {"train_fraction": [1.0], "channels": [4], "act": ["relu"],
                              "first_block_order": ["bn_act"], "loss": ["mse"],
                              "model_seed": [0]},
                   "ff": {"blocks": [3]}}}
    plain = expand_dataset("d", {"file": "d.h5", "grid": "g", "preprocess": {}}, grids, {})
    assert set(plain[0]["preprocess"]) == {"crop", "downsample", "neuron_scale"}
    nulls = {"split": None, "ceiling_stimuli": None, "split_sizes": None}
    same = expand_dataset("d", {"file": "d.h5", "grid": "g", "preprocess": nulls}, grids, {})
    assert same[0]["config_id"] == plain[0]["config_id"]
    for key, value in (("split", "generated"), ("ceiling_stimuli", "all")):
        cfg = expand_dataset("d", {"file": "d.h5", "grid": "g", "preprocess": {key: value}},
                             grids, {})[0]
        assert cfg["preprocess"][key] == value and cfg["config_id"] != plain[0]["config_id"]
