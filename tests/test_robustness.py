"""Bad input, everywhere: each row of the table in docs/robustness.md is one case here.

Every malformed config, dataset file or importer input must stop with one RcpbError whose
message names the file or field and the problem (checked on its key words); a warning where
the input is valid but cannot be used well. The config cases run the checks the workflow runs
at start (schema, grid expansion, pack settings: ``rcpb grid CONFIG`` runs the same), the
dataset cases ``load_dataset`` and the workflow's start-up checks of a file against its
preprocess section, the importer cases ``import_dataset``; two cases run the command line.
"""

import copy
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from test_config_errors import config as base_config
from test_data_import import arrays  # noqa: F401  (a fixture)
from test_data_validate import error_of

from rcpb import grid
from rcpb.config import load_config, validate_config
from rcpb.data.importers import import_dataset
from rcpb.data.prepare import check_split_seeds, prepare, split_source
from rcpb.data.preprocess import preprocess_images
from rcpb.data.validate import load_dataset, load_trial_means, training_warnings
from rcpb.errors import RcpbError

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------ config


def config_error(cfg: dict) -> str:
    """The message of the RcpbError that the workflow's start-up checks of ``cfg`` raise."""
    with pytest.raises(RcpbError) as exc:
        validate_config(cfg)
        grid.expand(cfg)
        grid.pack_settings(cfg)
    return str(exc.value)


def _set(path: str, value):
    """A change of the base config: set the value at the dotted ``path``."""
    def change(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def _drop(path: str):
    def change(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        del node[last]
    return change


def _simulated(**simulate):
    """The dataset simulated instead of read from a file."""
    def change(cfg):
        cfg["datasets"]["d"] = {"simulate": simulate, "grid": "g"}
    return change


SIM = {"circuit": "recurrent", "images": "images.h5"}

CONFIG_CASES = {
    "unknown_training_key": (_set("training.learning_rate", 0.1),
                             ["training", "'learning_rate' was unexpected"]),
    "lr_wrong_type": (_set("training.lr", "0.01"), ["training.lr", "'0.01'", "type 'number'"]),
    "lr_negative": (_set("training.lr", -0.01), ["training.lr", "-0.01", "minimum of 0"]),
    "batch_size_zero": (_set("training.batch_size", 0), ["training.batch_size", "minimum of 1"]),
    "iterations_zero": (_set("grids.g.recurrent.iterations", [0]),
                        ["grids.g.recurrent.iterations.0", "minimum of 1"]),
    "iterations_not_a_list": (_set("grids.g.recurrent.iterations", 4),
                              ["grids.g.recurrent.iterations", "not of type 'array'"]),
    "empty_seed_list": (_set("grids.g.common.model_seed", []),
                        ["grids.g.common.model_seed", "non-empty"]),
    "seed_listed_twice": (_set("grids.g.common.model_seed", [0, 0]),
                          ["model_seed", "value 0 is listed twice"]),
    "fraction_above_one": (_set("grids.g.common.train_fraction", [1.5]),
                           ["grids.g.common.train_fraction.0", "1.5", "maximum of 1"]),
    "unknown_family": (_set("grids.g.transformer", {"blocks": [2]}),
                       ["grids.g", "'transformer' was unexpected"]),
    "unknown_cell": (_set("grids.g.recurrent.cell", ["gru"]),
                     ["grids.g.recurrent.cell.0", "'gru'"]),
    "unknown_activation": (_set("grids.g.common.act", ["tanh"]),
                           ["grids.g.common.act.0", "'tanh'", "relu"]),
    "missing_axis": (_drop("grids.g.common.channels"),
                     ["grids.g.ff", "no value for axis channels"]),
    "pack_size_zero": (_set("pack_size", 0), ["pack_size", "minimum of 1"]),
    "unknown_device": (_set("device", "gpu"), ["device", "'gpu'", "cuda"]),
    "grid_not_defined": (_set("datasets.d.grid", "h"),
                         ["datasets.d.grid", "no grid 'h'", "known: g"]),
    "file_and_simulate": (_set("datasets.d.simulate", SIM),
                          ["datasets.d", "exactly one of 'file'", "'simulate'"]),
    "simulate_without_images": (_simulated(circuit="recurrent"),
                                ["datasets.d.simulate", "'images' is a required property"]),
    "simulate_one_trial": (_simulated(trials=1, **SIM),
                           ["datasets.d.simulate.trials", "minimum of 2"]),
    "unknown_preprocess_key": (_set("datasets.d.preprocess", {"resize": 2}),
                               ["datasets.d.preprocess", "'resize' was unexpected"]),
    "crop_zero": (_set("datasets.d.preprocess", {"crop": 0}), ["datasets.d.preprocess.crop"]),
    "split_sizes_two_values": (_set("datasets.d.preprocess", {"split_sizes": [10, 5]}),
                               ["datasets.d.preprocess.split_sizes", "too short"]),
    "dataset_name_with_slash": (lambda cfg: cfg.update(datasets={"a/b": cfg["datasets"]["d"]}),
                                ["datasets", "'a/b'"]),
    "ablation_without_lengths": (_set("grids.g.ablation_rm", {"readout": ["2-avg"]}),
                                 ["grids.g.ablation_rm", "remove_adjacent"]),
    "ablation_unknown_length": (_set("grids.g.ablation_rm", {"readout": ["2-avg"],
                                                             "sets": ["rm9"]}),
                                ["grids.g.ablation_rm.sets", "rm9", "1..2"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value(case):
    change, words = CONFIG_CASES[case]
    cfg = copy.deepcopy(base_config())
    change(cfg)
    message = config_error(cfg)
    for word in words:
        assert word in message, message


def test_base_config_is_valid():
    """The cases above fail because of their one change: the base config passes."""
    cfg = copy.deepcopy(base_config())
    validate_config(cfg)
    assert grid.expand(cfg)["d"] and grid.pack_settings(cfg)


@pytest.mark.parametrize("field,value", [("training.lr", float("nan")),
                                         ("training.lr", float("inf")),
                                         ("datasets.d.preprocess.neuron_scale", float("inf"))])
def test_non_finite_config_number(tmp_path, field, value):
    """YAML's .nan and .inf pass the schema's bounds (every comparison with NaN is false)."""
    import yaml

    cfg = base_config()
    _set(field, value)(cfg)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert ".nan" in path.read_text() or ".inf" in path.read_text()
    with pytest.raises(RcpbError) as exc:
        load_config(path)
    message = str(exc.value)
    assert f"{path}: {field}: {value} is not a finite number" in message, message


# -------------------------------------------- config against the dataset file (start-up)


@pytest.fixture
def tiny(write_tiny):
    """A valid tiny dataset file (20 stimuli of 8 x 8 px, 3 trials, 4 neurons), loaded."""
    return load_dataset(write_tiny())


def test_crop_larger_than_image(tiny):
    with pytest.raises(RcpbError, match=r"preprocess.crop = 100 does not fit images of 8x8 px"):
        preprocess_images(tiny.images[:1], 100, 1)


def test_downsample_not_dividing_image(tiny):
    with pytest.raises(RcpbError, match=r"preprocess.downsample = 3 does not divide .* 8x8"):
        preprocess_images(tiny.images[:1], None, 3)


def test_split_sizes_not_adding_up(tiny):
    with pytest.raises(RcpbError, match=r"preprocess.split_sizes = \[10, 5, 4\] add up to 19 "
                                        r"stimuli, but the dataset has 20"):
        training_warnings(tiny, {"split_sizes": [10, 5, 4]})
    assert training_warnings(tiny, {"split_sizes": [10, 5, 5]})   # 20: only warnings


def test_split_sizes_with_stored_split(write_tiny):
    path = write_tiny(split=np.array([0] * 12 + [1] * 4 + [2] * 4, np.int8))
    with pytest.raises(RcpbError, match="own 'split', and preprocess.split_sizes"):
        split_source(load_dataset(path), {"split_sizes": [12, 4, 4]}, str(path))


def test_stored_split_asked_for_but_absent(tiny):
    with pytest.raises(RcpbError, match="preprocess.split = stored, but the file stores no"):
        split_source(tiny, {"split": "stored"})


def test_two_split_seeds_with_stored_split(write_tiny):
    path = write_tiny(split=np.array([0] * 12 + [1] * 4 + [2] * 4, np.int8))
    with pytest.raises(RcpbError, match=r"stores its own 'split', so split_seed \[0, 1\].*"
                                        r"datasets.d.preprocess"):
        check_split_seeds(path, {}, [0, 1], name="d")


def test_neuron_scale_with_silent_neuron(write_tiny):
    responses = np.ones((20, 3, 4), np.float32)
    responses[:, :, 3] = 0.0                      # neuron 3 never responds
    ds = load_dataset(write_tiny(responses=responses))
    with pytest.raises(RcpbError, match=r"preprocess.neuron_scale: neuron\(s\) 3 never respond"):
        training_warnings(ds, {"neuron_scale": 0.5})


def test_time_window_on_file_without_time_axis(write_tiny):
    path = write_tiny()
    with pytest.raises(RcpbError, match="preprocess.time_window is set, but the file's "
                                        "responses have no time axis"):
        prepare(str(path), {"time_window": {"offset": 0, "bins": 2}}, 0, 1.0)


# ------------------------------------------------------------------------- dataset files


def raw_file(path, **datasets):
    """An HDF5 file holding exactly ``datasets`` (a dict: an empty group; ``attrs``: file
    attrs), unchecked."""
    attrs = datasets.pop("attrs", {})
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            if isinstance(value, dict):
                f.create_group(name)
            else:
                f[name] = value
        for key, value in attrs.items():
            f.attrs[key] = value
    return path


def images():
    return np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)


def responses(*bins):
    return np.random.default_rng(0).poisson(3.0, (20, 3, 4, *bins)).astype(np.float32)


TIME = {"bin_ms": 10.0, "stim_on_bin": 0, "stim_off_bin": 5}

FILE_CASES = {
    "images_bool": (dict(images=np.zeros((20, 8, 8), bool), responses=responses()),
                    ["'images' has dtype bool", "uint8"]),
    "responses_text": (dict(images=images(), responses=np.full((20, 3, 4), b"x")),
                       ["'responses' has dtype", "float32"]),
    "images_colour": (dict(images=np.zeros((20, 8, 8, 3), np.uint8), responses=responses()),
                      ["'images' has shape (20, 8, 8, 3)", "grayscale"]),
    "images_scalar": (dict(images=np.float32(3), responses=responses()),
                      ["'images' has shape ()", "3-D [stimuli, H, W]"]),
    "images_group": (dict(images={}, responses=responses()), ["'images' is an HDF5 group"]),
    "responses_minus_inf": (dict(images=images(),
                                 responses=np.where(np.arange(20)[:, None, None] == 6,
                                                    -np.inf, responses())),
                            ["'responses' contains inf", "stimuli 6"]),
    "responses_transposed": (dict(images=images(), responses=responses().transpose(2, 1, 0)),
                             ["number of stimuli", "images 20, responses 4", "transposed"]),
    "neuron_without_trials": (dict(images=images(), responses=np.concatenate(
                                  [responses()[:, :, :3], np.full((20, 3, 1), np.nan)], axis=2)),
                              ["no valid (non-NaN) trial", "neurons 3"]),
    "no_stimuli": (dict(images=np.zeros((0, 8, 8), np.uint8),
                        responses=np.zeros((0, 3, 4), np.float32)),
                   ["'images' has shape (0, 8, 8)", "at least one stimulus"]),
    "no_neurons": (dict(images=images(), responses=np.zeros((20, 3, 0), np.float32)),
                   ["'responses' has shape (20, 3, 0)", "one neuron"]),
    "split_as_words": (dict(images=images(), responses=responses(),
                            split=np.array([b"train"] * 20)),
                       ["'split' has values outside {0, 1, 2}"]),
    "true_rates_nan": (dict(images=images(), responses=responses(),
                            true_rates=np.full((20, 4), np.nan, np.float32)),
                       ["'true_rates' contains NaN or inf", "stimuli 0"]),
    "true_rates_text": (dict(images=images(), responses=responses(),
                             true_rates=np.full((20, 4), b"x")),
                        ["'true_rates' has dtype"]),
    "neuron_ids_not_utf8": (dict(images=images(), responses=responses(),
                                 neuron_ids=np.array([b"a", b"\xff\xfe", b"c", b"d"])),
                            ["'neuron_ids' entry 1", "not UTF-8"]),
    "attr_not_utf8": (dict(images=images(), responses=responses(),
                           attrs={"name": np.bytes_(b"V1 \xe9t\xe9")}),
                      ["file attr 'name'", "not UTF-8"]),
    "time_bins_zero": (dict(images=images(), responses=responses(0), attrs=TIME),
                       ["(20, 3, 4, 0)", "at least one time bin"]),
    "bin_ms_text": (dict(images=images(), responses=responses(5),
                         attrs={**TIME, "bin_ms": "10"}), ["attr 'bin_ms' is '10'", "> 0"]),
    "bin_ms_two_values": (dict(images=images(), responses=responses(5),
                               attrs={**TIME, "bin_ms": np.array([10.0, 5.0])}),
                          ["attr 'bin_ms'", "a number > 0"]),
    "stim_on_bin_fraction": (dict(images=images(), responses=responses(5),
                                  attrs={**TIME, "stim_on_bin": 1.5}),
                             ["attr 'stim_on_bin'", "1.5", "whole number"]),
    "stim_off_bin_past_end": (dict(images=images(), responses=responses(5),
                                   attrs={**TIME, "stim_off_bin": 6}),
                              ["attr 'stim_off_bin' is 6", "5 time bins"]),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_dataset_file(tmp_path, case):
    datasets, words = FILE_CASES[case]
    path = raw_file(tmp_path / "d.h5", **datasets)
    message = error_of(path)                       # names the file (error_of asserts it)
    for word in words:
        assert word in message, message
    if case != "true_rates_nan" and case != "true_rates_text":   # training never reads them
        with pytest.raises(RcpbError) as exc:      # what a training job reads: the same check
            load_trial_means(path)
        assert str(exc.value) == message


def test_one_stimulus(write_tiny):
    """A valid file (every array agrees), but no train / validation / test split exists."""
    ds = load_dataset(write_tiny(n=1))
    with pytest.raises(RcpbError, match="1 stimuli cannot be split .* at least 3 stimuli"):
        training_warnings(ds)


def test_constant_neuron_is_warned_about(write_tiny):
    """Valid, but no model can predict it (cc_raw 0 by rcpb.metrics): a warning, not an error."""
    values = responses()
    values[:, :, 2] = 4.0
    values[5, 1, 2] = np.nan                       # a missing trial does not hide it
    warnings = training_warnings(load_dataset(write_tiny(responses=values)))
    assert [w for w in warnings if "neuron(s) 2 have the same response (4 for neuron 2)" in w]
    assert not [w for w in training_warnings(load_dataset(write_tiny("ok.h5")))
                if "same response" in w]


def test_unusual_but_valid_utf8_names_round_trip(write_tiny):
    """Accented letters, spaces, commas, emoji: neuron ids are any UTF-8 text."""
    ids = ["V1 é", "n,2", "🙂", ""]
    assert load_dataset(write_tiny(neuron_ids=ids)).neuron_ids == ids


def test_negative_responses_with_poisson_loss_are_named(write_tiny):
    values = responses()
    values[3, 1, 2] = -0.5
    message = error_of(write_tiny(responses=values), loss="poisson")
    assert "negative values (stimuli 3, minimum -0.5)" in message and "'poisson'" in message


# ----------------------------------------------------------------------------- importers


def _source(tmp_path, kind, **arrays):
    """A source file of ``kind`` (npz, mat) holding ``arrays``."""
    path = tmp_path / f"rec.{kind}"
    if kind == "npz":
        np.savez(path, **arrays)
    else:
        scipy.io.savemat(path, arrays)
    return path


def import_error(tmp_path, src, **options) -> str:
    """The message of the importer's RcpbError; nothing is written."""
    out = tmp_path / "out.h5"
    kwargs = {"images": "images", "responses": "responses", **options}
    with pytest.raises(RcpbError) as exc:
        import_dataset(src, out, **kwargs)
    assert not out.exists()
    message = str(exc.value)
    assert str(src) in message
    return message


IMPORT_CASES = {
    "npz_without_responses": ("npz", {"responses": None}, {},
                              ["no array named 'responses'", "Arrays in this .npz file: images"]),
    "mat_without_images": ("mat", {"images": None}, {},
                           ["no array named 'images'", "MATLAB v5", "responses"]),
    "responses_axes_unknown_letter": ("npz", {}, {"responses_axes": "sxn"},
                                      ["axes 'sxn' are not valid", "'stn'"]),
    "responses_axes_repeated": ("npz", {}, {"responses_axes": "ssn"},
                                ["axes 'ssn' are not valid", "distinct letter"]),
    "responses_axes_too_few": ("npz", {}, {"responses_axes": "sn"},
                               ["shape (12, 3, 4) (3 axes) but axes 'sn' name 2"]),
    "images_axes_without_stimuli": ("npz", {}, {"images_axes": "hw"},
                                    ["images array 'images' axes 'hw' are not valid",
                                     "stimulus axis 'n'"]),
    "responses_axes_wrong_order": ("npz", {"responses": "nts"}, {},
                                   ["number of stimuli", "images 12, responses 4"]),
    "split_as_words": ("npz", {"part": np.array(["train"] * 12)}, {"split": "part"},
                       ["split array 'part' has dtype", "integers"]),
    "time_axis_without_bin_width": ("npz", {"responses": "binned"}, {"responses_axes": "stnb"},
                                    ["time axis 'b'", "--bin-ms MS", "--stim-bins ON OFF"]),
    "bin_width_without_time_axis": ("npz", {}, {"bin_ms": 10.0},
                                    ["--bin-ms", "no time axis 'b'"]),
}


@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_bad_import(tmp_path, arrays, case):  # noqa: F811  (the fixture)
    kind, changes, options, words = IMPORT_CASES[case]
    images_, responses_, _ = arrays
    content = {"images": images_, "responses": responses_}
    for name, value in changes.items():
        if value is None:
            del content[name]
        elif isinstance(value, str) and value == "nts":
            content[name] = responses_.transpose(2, 1, 0)
        elif isinstance(value, str) and value == "binned":
            content[name] = responses_[..., None]
        else:
            content[name] = value
    message = import_error(tmp_path, _source(tmp_path, kind, **content), **options)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("name,content", [("rec.csv", b"images,responses\n1,2\n"),
                                          ("rec.txt", b"")], ids=["csv", "empty_txt"])
def test_import_unknown_file_kind(tmp_path, name, content):
    src = tmp_path / name
    src.write_bytes(content)
    message = import_error(tmp_path, src)
    assert "not a readable .npz, MATLAB .mat (v5 or v7.3) or HDF5 file" in message


def test_import_npz_with_object_array(tmp_path, arrays):  # noqa: F811
    images_, _, _ = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, images=images_, responses=np.array([1, "a"], dtype=object))
    assert "without object arrays" in import_error(tmp_path, src)


def test_import_nwb_without_nwb_structure(tmp_path):
    pytest.importorskip("pynwb")
    from rcpb.data.nwb import import_nwb

    src = raw_file(tmp_path / "rec.nwb", x=np.zeros(3))          # HDF5, but not NWB
    with pytest.raises(RcpbError, match=r"rec.nwb: not a readable NWB file"):
        import_nwb(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------- command line


def rcpb(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rcpb", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_grid_with_nan_learning_rate(tmp_path):
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(base_config()) + "training:\n  lr: .nan\n")
    result = rcpb("grid", "c.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("rcpb: error: c.yaml: training.lr: nan is not a finite")
    assert "Traceback" not in result.stderr


def test_cli_import_with_wrong_axes(tmp_path, arrays):  # noqa: F811
    images_, responses_, _ = arrays
    np.savez(tmp_path / "rec.npz", images=images_, responses=responses_)
    result = rcpb("data", "import", "rec.npz", "--out", "out.h5", "--images", "images",
                  "--responses", "responses", "--responses-axes", "stx", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "rcpb: error: rec.npz: responses array 'responses' axes 'stx' are not valid" \
        in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.h5").exists()
