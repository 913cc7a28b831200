"""Importers (.npz, MATLAB v5 and v7.3) and the 'rcpb data' command line."""

import h5py
import numpy as np
import pytest
import scipy.io

from rcpb.cli import main
from rcpb.data.importers import arrange_axes, import_dataset
from rcpb.data.validate import load_dataset
from rcpb.errors import RcpbError

N, H, W, T, K = 12, 5, 7, 3, 4  # stimuli, rows, columns, trials, neurons


@pytest.fixture
def arrays():
    """Canonical arrays: images uint8 [N, H, W], responses float [N, T, K], split [N]."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(N, H, W), dtype=np.uint8)
    responses = rng.poisson(2.0, size=(N, T, K)).astype(np.float64)
    responses[0, 2, :] = np.nan  # a missing trial
    split = np.array([0] * 8 + [1] * 2 + [2] * 2)
    return images, responses, split


def check_round_trip(out, images, responses, split=None):
    ds = load_dataset(out)
    np.testing.assert_array_equal(ds.images, images)
    assert ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.responses, responses.astype(np.float32))
    if split is not None:
        np.testing.assert_array_equal(ds.split, split)
    return ds


def test_arrange_axes_moves_and_adds_axes():
    a = np.arange(24).reshape(2, 3, 4)  # axes "hwn": h=2, w=3, n=4
    b = arrange_axes(a, "hwn", "nhw", "images")
    assert b.shape == (4, 2, 3) and b[3, 1, 2] == a[1, 2, 3]
    c = arrange_axes(np.arange(6).reshape(3, 2), "ns", "stn", "responses")
    assert c.shape == (2, 1, 3) and c[1, 0, 2] == 5  # neuron 2, stimulus 1
    with pytest.raises(RcpbError, match="not valid"):
        arrange_axes(a, "hwx", "nhw", "images")
    with pytest.raises(RcpbError, match="3 axes"):
        arrange_axes(a, "nh", "nhw", "images")


def test_npz_round_trip_with_axis_orders(tmp_path, arrays):
    images, responses, split = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, imgs=images.transpose(1, 2, 0), resp=responses.transpose(2, 1, 0),
             part=split, ids=np.array([f"n{i}" for i in range(K)]))
    out = tmp_path / "out" / "rec.h5"
    import_dataset(src, out, images="imgs", responses="resp", images_axes="hwn",
                   responses_axes="nts", split="part", neuron_ids="ids", name="rec")
    ds = check_round_trip(out, images, responses, split)
    assert ds.neuron_ids == ["n0", "n1", "n2", "n3"] and ds.attrs["name"] == "rec"


def test_npz_single_trial_responses_get_a_trial_axis(tmp_path, arrays):
    images, responses, _ = arrays
    src = tmp_path / "single.npz"
    np.savez(src, images=images, r=responses[:, 1, :])  # [stimuli, neurons]
    out = tmp_path / "single.h5"
    import_dataset(src, out, images="images", responses="r")  # 2-D defaults to "sn"
    check_round_trip(out, images, responses[:, 1:2, :])


def test_mat_v5_round_trip(tmp_path, arrays):
    images, responses, split = arrays
    src = tmp_path / "rec.mat"
    # MATLAB users typically hold images as [h, w, n] and responses as [n, t, s]
    scipy.io.savemat(src, {"stim": images.transpose(1, 2, 0),
                           "resp": responses.transpose(2, 1, 0),
                           "split": split[None, :]})  # a 1 x N row vector
    out = tmp_path / "rec.h5"
    import_dataset(src, out, images="stim", responses="resp", images_axes="hwn",
                   responses_axes="nts", split="split")
    check_round_trip(out, images, responses, split)


def write_v73_like(path, variables):
    """A MATLAB v7.3-like file: HDF5 with a 512-byte 'MATLAB 7.3 MAT-file' user block and
    every variable stored column-major, i.e. h5py sees the transpose of MATLAB's size()
    (assumption checked against MATLAB's documented v7.3 layout, not a real MATLAB file)."""
    classes = {"f": "double", "u": "uint8", "U": "char"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if value.dtype.kind == "U":  # char matrix: one row per string, uint16 codes
                value = np.array([[ord(c) for c in row] for row in value], np.uint16)
                f[name] = value.T
                f[name].attrs["MATLAB_class"] = np.bytes_("char")
                continue
            f[name] = np.asarray(value).T
            f[name].attrs["MATLAB_class"] = np.bytes_(classes[value.dtype.kind])
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, created by rcpb tests".ljust(116))


@pytest.mark.parametrize("suffix", [".mat", ".v73"])
def test_mat_v73_round_trip_undoes_transposition(tmp_path, arrays, suffix):
    images, responses, split = arrays
    src = tmp_path / f"rec{suffix}"  # detected by suffix .mat or by the MATLAB header
    write_v73_like(src, {"stim": images.transpose(1, 2, 0),  # MATLAB size: [H, W, N]
                         "resp": responses,  # MATLAB size: [N, T, K]
                         "split": split[:, None].astype(np.float64),  # N x 1 column
                         "ids": np.array(["v1a", "v1b", "v2a", "v2b"])})  # K x 3 char
    with h5py.File(src, "r") as f:
        assert f["stim"].shape == (N, W, H)  # what h5py sees: reversed
    out = tmp_path / "rec.h5"
    import_dataset(src, out, images="stim", responses="resp", images_axes="hwn",
                   responses_axes="stn", split="split", neuron_ids="ids")
    ds = check_round_trip(out, images, responses, split)
    assert ds.neuron_ids == ["v1a", "v1b", "v2a", "v2b"]


def test_unknown_array_name_lists_available(tmp_path, arrays):
    images, responses, _ = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, images=images, responses=responses)
    with pytest.raises(RcpbError, match="no array named 'resp'.*images, responses"):
        import_dataset(src, tmp_path / "o.h5", images="images", responses="resp")


def test_invalid_result_writes_nothing(tmp_path, arrays):
    images, responses, _ = arrays
    responses[3] = np.nan  # stimulus 3 has no valid trial
    src = tmp_path / "rec.npz"
    np.savez(src, images=images, responses=responses)
    out = tmp_path / "o.h5"
    with pytest.raises(RcpbError, match="stimuli 3"):
        import_dataset(src, out, images="images", responses="responses")
    assert list(tmp_path.iterdir()) == [src]  # neither the file nor a temporary


# --- command line -------------------------------------------------------------------

def test_cli_validate_ok_and_error(write_tiny, tmp_path, capsys):
    good = write_tiny()
    assert main(["data", "validate", str(good)]) == 0
    assert "valid dataset" in capsys.readouterr().out
    responses = np.ones((20, 3, 4), np.float32)
    responses[0, 0, 0] = -1
    bad = write_tiny("bad.h5", responses=responses)
    assert main(["data", "validate", str(bad)]) == 0
    capsys.readouterr()
    assert main(["data", "validate", str(bad), "--loss", "poisson"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rcpb: error: {bad}:") and "negative" in err
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["data", "validate", str(tmp_path / "missing.h5")]) == 2
    assert "not found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_cli_summary_json(write_tiny, capsys):
    import json

    assert main(["data", "summary", "--json", str(write_tiny())]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_stimuli"] == 20 and summary["n_neurons"] == 4


def test_cli_import(tmp_path, arrays, capsys):
    images, responses, _ = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, im=images.transpose(1, 2, 0), r=responses)
    out = tmp_path / "rec.h5"
    args = ["data", "import", str(src), "--out", str(out), "--images", "im",
            "--responses", "r"]
    assert main(args) == 2  # default images axes nhw: 12 stimuli of 7 px vs 5 responses
    assert "number of stimuli" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--images-axes", "hwn", "--name", "rec"]) == 0
    assert "wrote" in capsys.readouterr().out
    check_round_trip(out, images, responses)


def test_cli_simulate_passes_options(tmp_path, monkeypatch, write_tiny, capsys):
    import sys
    import types

    calls = []
    target = write_tiny("sim.h5")
    images = write_tiny("imgs.h5")

    def fake_simulate_file(**kwargs):
        calls.append(kwargs)

    fake = types.ModuleType("rcpb.data.simulate")
    fake.simulate_file = fake_simulate_file  # the simulator itself is tested on its own
    monkeypatch.setitem(sys.modules, "rcpb.data.simulate", fake)
    assert main(["data", "simulate", "--circuit", "feedforward", "--out", str(target),
                 "--images", str(images), "--neurons", "5", "--trials", "2", "--seed", "3",
                 "--input-size", "37", "--crop", "36", "--downsample", "2"]) == 0
    assert calls == [dict(images_file=str(images), out=str(target), circuit="feedforward",
                          n_neurons=5, n_trials=2, seed=3, input_size=37, teacher_input=(36, 2))]
    assert "valid dataset" in capsys.readouterr().out


def test_cli_simulate_missing_images(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    assert main(["data", "simulate", "--out", str(out), "--images",
                 str(tmp_path / "none.h5")]) == 2
    assert "image file not found (--images)" in capsys.readouterr().err
    assert not out.exists()
