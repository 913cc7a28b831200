"""Fitting time-binned responses (docs/dynamics.md): one readout for every bin, iteration t ->
bin offset + t - 1, feed-forward models constant in time, per-bin metrics, the time window of
a dataset, and packed training equal to training alone on time-binned targets."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from rcpb import grid as rcpb_grid
from rcpb.data.prepare import Prepared, prepare, time_window
from rcpb.errors import RcpbError
from rcpb.models import build
from rcpb.pack.engines import Job, SlotData
from rcpb.pack.trainer import train_pack
from rcpb.train import bin_outputs, objective, predict, profile_cc, score, train_config

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE, NEURONS, BINS = 13, 3, 4


def _config(arch: dict, seed: int = 0, **train_over) -> dict:
    train = dict(batch_size=16, lr=0.01, lr_decay=3.0, phases=2, eval_every=10, patience=3,
                 max_steps=60, readout_l1=0.01, smoothness=5e-6, data_seed=seed)
    train.update(train_over)
    return dict(channels=4, act="relu", first_block_order="bn_act", input_size=SIZE,
                n_neurons=NEURONS, model_seed=seed, loss="mse", train=train, **arch)


RECURRENT = dict(arch="recurrent", recurrent_layers=1, iterations=3, readout="late-avg")
FF = dict(arch="ff", blocks=3)


def test_bin_k_is_iteration_k_plus_1_and_bins_past_T_hold_the_last():
    preds = torch.arange(3.0).view(3, 1, 1).expand(3, 2, NEURONS)    # iteration t-1 -> t-1
    out = bin_outputs(preds, 5)
    assert out.shape == (5, 2, NEURONS)
    assert out[:, 0, 0].tolist() == [0.0, 1.0, 2.0, 2.0, 2.0]
    one = bin_outputs(preds[:1] + 7.0, 4)                             # one output: constant
    assert out.shape[1:] == one.shape[1:] and torch.all(one == 7.0)


def test_the_readout_is_one_parameter_set_and_every_bin_sends_it_gradient():
    torch.manual_seed(0)
    model = build(_config(RECURRENT)).double()
    readout = [n for n, _ in model.named_parameters() if n.startswith("readout.")]
    assert sorted(readout) == ["readout.bias", "readout.wf", "readout.ws"]   # one set, not T
    x = torch.randn(8, 1, SIZE, SIZE, dtype=torch.float64)
    y = torch.rand(8, BINS, NEURONS, dtype=torch.float64)
    tc = {"readout_l1": 0.0, "smoothness": 0.0}
    data_loss, _ = objective(model, x, y, tc, "mse")
    grads = []
    for k in range(BINS):   # the gradient of bin k's own squared error alone
        model.zero_grad()
        pred = model(x)
        err = ((bin_outputs(pred, BINS)[k] - y[:, k]) ** 2).mean()
        err.backward()
        grads.append(model.readout.wf.grad.clone())
    assert all(g.abs().sum() > 0 for g in grads)       # every bin reaches the one readout
    model.zero_grad()
    data_loss.backward()
    # the loss is the mean over bins: its gradient is the mean of the bins' gradients
    torch.testing.assert_close(model.readout.wf.grad, sum(grads) / BINS)
    # and the loss is the mean squared error over stimuli, bins and neurons
    with torch.no_grad():
        expected = ((bin_outputs(model(x), BINS).movedim(0, 1) - y) ** 2).mean()
    assert float(data_loss.detach()) == pytest.approx(float(expected), rel=1e-12)


def test_a_feedforward_model_predicts_the_same_in_every_bin():
    model = build(_config(FF))
    x = torch.randn(5, 1, SIZE, SIZE)
    pred = predict(model, x, n_bins=BINS)
    assert pred.shape == (5, BINS, NEURONS)
    assert torch.equal(pred, pred[:, :1].expand_as(pred))
    rec = predict(build(_config(RECURRENT)), x, n_bins=BINS)
    assert not torch.equal(rec[:, 0], rec[:, 1])                    # iterations differ


def _prepared(y_test, trials, bins=(2, 3, 4)) -> Prepared:
    """Prepared data with only a test split: targets [n, K, N], trials [n, trials, K*N]."""
    n = y_test.shape[0]
    empty = np.zeros((0, 1, SIZE, SIZE), np.float32)
    return Prepared(x_train=empty, y_train=np.zeros((0,) + y_test.shape[1:]), x_val=empty,
                    y_val=np.zeros((0,) + y_test.shape[1:]), x_test=empty, y_test=y_test,
                    responses=trials, input_size=SIZE, n_neurons=y_test.shape[2],
                    n_train_full=0, test_index=np.arange(n), bins=np.asarray(bins))


def test_per_bin_metrics_equal_hand_worked_values():
    rng = np.random.default_rng(1)
    n, k, neurons = 12, 3, 2
    trials = rng.poisson(3.0, size=(n, 4, k * neurons)).astype(np.float32)
    y = trials.mean(axis=1).reshape(n, k, neurons)
    pred = y + rng.normal(scale=0.7, size=y.shape)
    out = score(pred, _prepared(y, trials), "test", {})
    for b in range(k):   # bin b: Pearson r over stimuli per neuron, averaged over neurons
        r = [np.corrcoef(pred[:, b, j], y[:, b, j])[0, 1] for j in range(neurons)]
        assert out["bins"]["cc_raw"][b] == pytest.approx(np.mean(r), rel=1e-9)
        # the bin's own ceiling: the same as scoring that bin's trials alone
        alone = score(pred[:, b], dataclasses.replace(
            _prepared(y, trials), y_test=y[:, b], bins=None,
            responses=trials[:, :, b * neurons:(b + 1) * neurons]), "test", {})
        assert out["bins"]["cc_norm2"][b] == pytest.approx(alone["cc_norm2"], nan_ok=True)
    assert out["cc_raw"] == pytest.approx(np.mean(out["bins"]["cc_raw"]))
    assert out["bins"]["bin"] == [2, 3, 4]
    assert out["bins"]["true_profile"] == pytest.approx(y.mean(axis=(0, 2)))
    assert out["bins"]["pred_profile"] == pytest.approx(pred.mean(axis=(0, 2)))


def test_profile_correlation_by_hand():
    t = np.array([[1.0, 2.0, 4.0]])[:, :, None]             # one stimulus, one neuron
    assert profile_cc(t, t)[0, 0] == pytest.approx(1.0)
    assert profile_cc(-t, t)[0, 0] == pytest.approx(-1.0)
    assert profile_cc(np.full_like(t, 3.0), t)[0, 0] == 0.0  # constant prediction: 0
    p = np.array([[2.0, 1.0, 3.0]])[:, :, None]
    # Pearson by hand: deviations (0, -1, 1) and (-4/3, -1/3, 5/3), products sum to 2,
    # squares to 2 and 14/3
    assert profile_cc(p, t)[0, 0] == pytest.approx(2 / np.sqrt(2 * 14 / 3))


def _binned_file(path, n=40, trials=3, neurons=2, n_bins=6, seed=0):
    rng = np.random.default_rng(seed)
    responses = rng.poisson(2.0, size=(n, trials, neurons, n_bins)).astype(np.float32) + 0.5
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 255, size=(n, 16, 16)).astype(np.uint8)
        f["responses"] = responses
        f.attrs.update(bin_ms=10.0, stim_on_bin=1, stim_off_bin=4)
    return responses


def test_prepare_fits_the_window_bins_with_one_scale_per_neuron(tmp_path):
    path = tmp_path / "d.h5"
    responses = _binned_file(path)
    d = prepare(str(path), {"split_sizes": [24, 8, 8], "time_window": {"offset": 2, "bins": 3}},
                0, 1.0)
    assert d.bins.tolist() == [2, 3, 4] and d.n_neurons == 2
    assert d.y_test.shape == (8, 3, 2) and d.responses.shape[2] == 6
    expected = responses[d.test_index][..., [2, 3, 4]].mean(axis=1).transpose(0, 2, 1)
    np.testing.assert_allclose(d.y_test, expected, rtol=1e-6)
    # default window: the stimulus-on bins 1..3
    assert prepare(str(path), {"split_sizes": [24, 8, 8]}, 0, 1.0).bins.tolist() == [1, 2, 3]
    # neuron_scale: one factor per neuron, its training mean over stimuli and fitted bins -> 0.5
    s = prepare(str(path), {"split_sizes": [24, 8, 8], "neuron_scale": 0.5,
                            "time_window": {"offset": 2, "bins": 3}}, 0, 1.0)
    np.testing.assert_allclose(s.y_train.mean(axis=(0, 1)), [0.5, 0.5], rtol=1e-5)
    np.testing.assert_allclose(s.y_test / d.y_test, np.broadcast_to(
        s.y_train[:1, :1] / d.y_train[:1, :1], d.y_test.shape), rtol=1e-5)


def test_a_window_outside_the_file_or_on_a_file_without_bins_is_an_error(tmp_path):
    path = tmp_path / "d.h5"
    _binned_file(path)
    with pytest.raises(RcpbError, match=r"time_window.*ends at bin 6.*6 time bins"):
        prepare(str(path), {"time_window": {"offset": 4, "bins": 3}}, 0, 1.0)
    with pytest.raises(RcpbError, match=r"time_window.bins = 0"):
        time_window({"bins": 0}, 6, 1, 4)
    with pytest.raises(RcpbError, match=r"unknown key\(s\) start"):
        time_window({"start": 1}, 6, 1, 4)
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        f["images"] = np.zeros((10, 16, 16), np.uint8)
        f["responses"] = np.ones((10, 2, 2), np.float32)
    with pytest.raises(RcpbError, match="no time axis"):
        prepare(str(flat), {"time_window": {"offset": 0}}, 0, 1.0)


def _workflow_config(readout="late-avg", family="recurrent", window=None):
    grid = {"common": {"split_seed": [0], "train_fraction": [1.0], "channels": [4],
                       "act": ["relu"], "first_block_order": ["bn_act"], "loss": ["mse"],
                       "model_seed": [0]},
            "ff": {"blocks": [3]},
            family: {"recurrent_layers": [1], "iterations": [3], "readout": [readout]}}
    pre = {"time_window": window} if window else {}
    return {"datasets": {"d": {"simulate": {"circuit": "recurrent_teacher",
                                            "dynamics": {"bins": 12, "on_bins": 5}},
                               "preprocess": pre, "grid": "g"}},
            "grids": {"g": grid}}


def test_the_grid_of_a_time_binned_dataset_is_checked_before_any_job():
    configs = rcpb_grid.expand(_workflow_config())["d"]
    rec = [c for c in configs if c["family"] == "recurrent"]
    assert rec and all(c["readout"] == "late-avg" for c in rec)
    with pytest.raises(RcpbError, match="readout 'no-avg'.*late-avg"):
        rcpb_grid.expand(_workflow_config(readout="no-avg"))
    with pytest.raises(RcpbError, match="family 'multipath' is not defined on time bins"):
        rcpb_grid.expand(_workflow_config(family="multipath"))
    with pytest.raises(RcpbError, match="datasets.d: preprocess.time_window"):
        rcpb_grid.expand(_workflow_config(window={"offset": 10, "bins": 5}))
    windowed = rcpb_grid.expand(_workflow_config(window={"offset": 2, "bins": 5}))["d"]
    assert windowed[0]["preprocess"]["time_window"] == {"bins": 5, "offset": 2}
    assert windowed[0]["config_id"] != configs[0]["config_id"]


def test_clip_negative_and_the_window_reach_the_training_config():
    cfg = _workflow_config()
    cfg["datasets"]["d"]["preprocess"]["clip_negative"] = 1e-6
    trained = rcpb_grid.expand(cfg)["d"][0]
    assert trained["preprocess"]["clip_negative"] == 1e-6
    # absent keys stay absent: ids of existing configs do not change
    assert "clip_negative" not in rcpb_grid.expand(_workflow_config())["d"][0]["preprocess"]


def _binned_slot_data(n_train, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + 40, 1, SIZE, SIZE))
    filters = rng.normal(size=(NEURONS, SIZE * SIZE)) / SIZE
    drive = np.maximum(x.reshape(len(x), -1) @ filters.T, 0)
    decay = np.array([1.0, 0.7, 0.5, 0.4])[None, :, None]         # a transient per bin
    y = drive[:, None, :] * decay + 0.2 * rng.normal(size=(len(x), BINS, NEURONS))
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return SlotData(t(x[:n_train]), t(y[:n_train]), t(x[n_train:]), t(y[n_train:]), False, False)


@pytest.mark.parametrize("arch", [FF, RECURRENT], ids=["ff", "recurrent"])
def test_packed_training_on_time_bins_equals_training_alone(arch):
    configs = [_config(arch, seed=s) for s in range(3)]
    datas = [_binned_slot_data(64, 0), _binned_slot_data(48, 1), _binned_slot_data(64, 0)]

    def run(cfgs, ds, engine, slots):
        out = {}

        def finished(job, schedule, model, wall_s):
            out[job.tag] = (schedule, {k: v.clone() for k, v in model.state_dict().items()})

        jobs = [Job(build(c).double(), d, train_config(c), c["loss"], tag=i)
                for i, (c, d) in enumerate(zip(cfgs, ds))]
        train_pack(jobs, finished, slots=slots, engine=engine)
        return out

    packed = run(configs, datas, "stacked", 2)
    for i, (c, d) in enumerate(zip(configs, datas)):
        (sa, state_a), (sb, state_b) = run([c], [d], "loop", 1)[0], packed[i]
        assert sa.steps_per_phase == sb.steps_per_phase and sa.best_step == sb.best_step
        assert sa.best_val == pytest.approx(sb.best_val, rel=1e-7)
        for key, value in state_a.items():
            torch.testing.assert_close(state_b[key], value, rtol=1e-7, atol=1e-7)


@pytest.mark.slow
def test_recurrence_finds_the_time_course_of_the_recurrent_truth_and_none_in_the_feedforward(
        tmp_path):
    """The built-in dynamics (configs/dynamics.yaml's design, one seed per model): on the
    recurrent teacher a recurrent model's time-profile correlation is above 0 (a t interval over
    the test stimuli; the FF's is 0 by definition), on the feed-forward teacher, constant in
    time, it is not (docs/dynamics.md reports the seeded comparison)."""
    import subprocess
    import sys

    from scipy import stats

    from rcpb.train import evaluate, train

    pre = {"crop": 36, "downsample": 2, "split_sizes": [1400, 350, 500],
           "time_window": {"offset": 2, "bins": 10}}
    found = {}
    for circuit in ("recurrent_teacher", "feedforward_teacher"):
        path = tmp_path / f"{circuit}.h5"
        subprocess.run([sys.executable, "-m", "rcpb", "data", "simulate", "--circuit", circuit,
                        "--out", str(path), "--neurons", "34", "--trials", "8", "--crop", "36",
                        "--downsample", "2", "--time-bins", "25", "--on-bins", "10",
                        "--latency", "2"], check=True, capture_output=True)
        data = prepare(str(path), pre, 0, 1.0)
        for name, arch in (("ff", FF), ("recurrent", dict(RECURRENT, iterations=4))):
            cfg = dict(_config(arch), channels=8, input_size=data.input_size,
                       n_neurons=data.n_neurons,
                       train=dict(batch_size=64, lr=0.01, eval_every=25, patience=4,
                                  max_steps=3000, data_seed=0))
            model = build(cfg)
            train(model, data, cfg)
            pred = predict(model, torch.as_tensor(data.x_test), n_bins=10).numpy()
            per_stimulus = np.nanmean(profile_cc(pred.astype(np.float64),
                                                 data.y_test.astype(np.float64)), axis=1)
            found[circuit, name] = per_stimulus
            assert evaluate(model, data, cfg)["test"]["profile_cc"] == pytest.approx(
                float(np.nanmean(per_stimulus)), abs=1e-6)
    for circuit in ("recurrent_teacher", "feedforward_teacher"):
        assert np.all(found[circuit, "ff"] == 0)
    rec = found["recurrent_teacher", "recurrent"]
    low, high = stats.t.interval(0.95, len(rec) - 1, rec.mean(), stats.sem(rec))
    assert low > 0.02, f"recurrent teacher: profile_cc {rec.mean():.3f} [{low:.3f}, {high:.3f}]"
    flat = found["feedforward_teacher", "recurrent"]
    low, high = stats.t.interval(0.95, len(flat) - 1, flat.mean(), stats.sem(flat))
    assert abs(flat.mean()) < 0.02 and low < 0.02, (
        f"feed-forward teacher: profile_cc {flat.mean():.3f} [{low:.3f}, {high:.3f}]")
