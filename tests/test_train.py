"""Training: losses and regularisers by hand, the phase schedule, determinism, the command."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from rcpb.atomic_files import read_json, save_atomic, write_json_atomic
from rcpb.cli import main
from rcpb.commands.train import load_config, resolve_config
from rcpb.errors import RcpbError
from rcpb.pack.trainer import minibatches
from rcpb.train import (
    LOG_COLUMNS,
    prediction_loss,
    readout_l1,
    smoothness,
    train,
)


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- losses


def test_mse_and_poisson_by_hand():
    pred = torch.tensor([[1.0, 2.0], [0.5, 4.0]])
    y = torch.tensor([[0.0, 2.0], [1.5, 1.0]])
    # squared errors 1, 0, 1, 9 -> mean 2.75
    assert prediction_loss(pred, y, "mse").item() == pytest.approx(2.75)
    eps = 1e-5
    terms = [1 - 0 * math.log(1 + eps), 2 - 2 * math.log(2 + eps),
             0.5 - 1.5 * math.log(0.5 + eps), 4 - 1 * math.log(4 + eps)]
    assert prediction_loss(pred, y, "poisson").item() == pytest.approx(sum(terms) / 4, rel=1e-6)


def test_loss_of_several_iterations_is_mean_of_per_iteration_losses():
    torch.manual_seed(0)
    preds = torch.rand(3, 5, 4) + 0.1
    y = torch.rand(5, 4)
    for loss in ("mse", "poisson"):
        per_iteration = [prediction_loss(p, y, loss).item() for p in preds]
        assert prediction_loss(preds, y, loss).item() == pytest.approx(np.mean(per_iteration), rel=1e-6)


def test_nan_targets_are_ignored_and_give_finite_gradients():
    pred = torch.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    y = torch.tensor([[0.0, float("nan")], [3.0, 1.0]])
    value = prediction_loss(pred, y, "mse")
    assert value.item() == pytest.approx((1 + 0 + 16) / 3)
    value.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[0, 1].item() == 0.0


def test_unknown_loss_is_a_user_error():
    with pytest.raises(RcpbError, match="loss"):
        prediction_loss(torch.zeros(2, 2), torch.zeros(2, 2), "l2")


# ----------------------------------------------------------------------------- regularisers


def test_readout_l1_by_hand():
    ws = torch.tensor([[[1.0, -2.0], [0.0, 1.0]],     # sum |ws| = 4
                       [[0.5, 0.5], [-0.5, 0.5]]])    # sum |ws| = 2
    wf = torch.tensor([[1.0, -1.0, 0.5],               # sum |wf| = 2.5
                       [0.0, 3.0, -1.0]])              # sum |wf| = 4
    # mean(4 * 2.5, 2 * 4) = 9
    assert readout_l1(ws, wf).item() == pytest.approx(9.0)


def test_smoothness_of_constant_and_delta_kernels():
    # Constant 9x9 kernel: L sums to 0, so interior points vanish; with zero padding an edge
    # point loses one side (0.25 + 0.5 + 0.25 = 1) -> -c, a corner keeps -3 + 0.5 + 0.5 + 0.25
    # = -1.75 -> ||Lw||^2 = c^2 (28 * 1 + 4 * 1.75^2) = 40.25 c^2, ||w||^2 = 81 c^2.
    const = torch.full((2, 1, 9, 9), 0.3)
    assert smoothness(const).item() == pytest.approx(2 * 40.25 / 81, rel=1e-6)
    # Delta at the centre: L*w is L itself, ||L||^2 = 9 + 4 * 0.25 + 4 * 0.0625 = 10.25.
    delta = torch.zeros(1, 3, 9, 9)
    delta[0, :, 4, 4] = 2.0
    assert smoothness(delta).item() == pytest.approx(3 * 10.25, rel=1e-6)


# ----------------------------------------------------------------------------- stand-in models


class _Readout(nn.Module):
    def __init__(self, n_neurons: int, channels: int, side: int):
        super().__init__()
        self.ws = nn.Parameter(torch.randn(n_neurons, side, side) * 0.01)
        self.wf = nn.Parameter(torch.randn(n_neurons, channels) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    @torch.no_grad()
    def init_bias(self, mean_response):
        self.bias.copy_(mean_response)

    def forward(self, h):
        pooled = nn.functional.adaptive_avg_pool2d(h, self.ws.shape[1])
        return torch.einsum("bcxy,nxy,nc->bn", pooled, self.ws, self.wf) + self.bias


class TinyModel(nn.Module):
    """Stand-in with the training interface: first_conv, readout.ws/wf/bias/init_bias, [n_out, B, N]."""

    def __init__(self, n_neurons: int = 3, channels: int = 2, n_out: int = 1, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.first_conv = nn.Conv2d(1, channels, 9, bias=False)
        self.readout = _Readout(n_neurons, channels, 2)
        self.n_out = n_out

    def forward(self, x):
        h = torch.relu(self.first_conv(x))
        z = self.readout(h)
        return torch.stack([z * (1 + 0.1 * i) for i in range(self.n_out)])


class ScriptedModel(TinyModel):
    """Trains like TinyModel but its validation loss (MSE against zero targets) follows
    ``script``; records the readout bias at every validation and at every training step."""

    def __init__(self, script):
        super().__init__(n_neurons=1)
        self.script = list(script)
        self.at_eval = []    # bias value at each validation
        self.at_train = []   # bias value at each training forward

    def forward(self, x):
        if self.training:
            self.at_train.append(self.readout.bias.detach().clone())
            return super().forward(x)
        self.at_eval.append(self.readout.bias.detach().clone())
        value = self.script.pop(0)
        return torch.full((1, x.shape[0], 1), math.sqrt(value))


def _toy_data(n_train=40, n_val=10, n_test=10, size=12, neurons=3, seed=0):
    rng = np.random.default_rng(seed)

    def split(n):
        x = rng.normal(size=(n, 1, size, size)).astype(np.float32)
        y = rng.poisson(2.0, size=(n, neurons)).astype(np.float32)
        return x, y

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_val), split(n_test)
    return SimpleNamespace(x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys)


def _config(**train):
    base = {"batch_size": 8, "lr": 1e-2, "lr_decay": 3.0, "phases": 3, "eval_every": 2,
            "patience": 3, "max_steps": 10, "readout_l1": 0.01, "smoothness": 5e-6, "data_seed": 0}
    return {"loss": "mse", "train": {**base, **train}}


# ----------------------------------------------------------------------------- schedule


def test_phases_patience_best_carried_and_restored():
    # Evaluations: step 0, then one per step (eval_every 1), patience 2.
    script = [5.0,                      # step 0: initial best
              4.0, 3.0, 3.5, 3.2,       # phase 1: best 3.0 at step 2, then 2 misses -> stop (4 steps)
              3.0, 2.5, 2.6, 2.7,       # phase 2: 3.0 ties (no), 2.5 best at step 6, 2 misses
              4.0, 4.0]                 # phase 3: 2 misses -> stop after 2 steps
    model = ScriptedModel(script)
    data = _toy_data(neurons=1)
    data.y_val = np.zeros_like(data.y_val)
    result = train(model, data, _config(eval_every=1, patience=2, max_steps=100, lr=1e-2))
    assert result.steps_per_phase == [4, 4, 2]
    assert result.best_step == 6
    assert result.best_val_loss == pytest.approx(2.5)
    assert [r["step"] for r in result.log] == list(range(11))
    assert [r["phase"] for r in result.log] == [1] * 5 + [2] * 4 + [3] * 2
    assert [r["lr"] for r in result.log[1:]] == pytest.approx([1e-2] * 4 + [1e-2 / 3] * 4 + [1e-2 / 9] * 2)
    # Evaluation k happens after training step k; the recorded bias at evaluation k is the
    # state after step k. Phase 2 starts from the step-2 state, phase 3 from the step-6 state,
    # and the returned model is the step-6 state.
    assert torch.equal(model.at_train[4], model.at_eval[2])
    assert torch.equal(model.at_train[8], model.at_eval[6])
    assert torch.equal(model.readout.bias.detach(), model.at_eval[6])
    assert torch.equal(result.best_state["readout.bias"], model.at_eval[6])
    # the weights did move during phase 1 after the best step (so the restore is observable)
    assert not torch.equal(model.at_eval[4], model.at_eval[2])


def test_optimizer_state_is_restored_at_phase_end(monkeypatch):
    # Phase 2 must start from the Adam moments saved with the best checkpoint: replay the
    # first phase-2 step by hand from the recorded state and compare.
    script = [5.0, 4.0, 3.0, 3.5, 3.2, 9.0, 9.0, 9.0, 9.0]
    model = ScriptedModel(script)
    data = _toy_data(neurons=1)
    data.y_val = np.zeros_like(data.y_val)
    saved = {}
    from rcpb.pack.engines import LoopEngine

    real_snapshot = LoopEngine.snapshot

    def spy(engine, k):
        real_snapshot(engine, k)
        saved[len(model.at_eval)] = engine.best[k]

    monkeypatch.setattr(LoopEngine, "snapshot", spy)
    train(model, data, _config(eval_every=1, patience=2, max_steps=100, phases=2, lr=1e-2))
    best_opt = saved[3][1]  # snapshot taken after the 3rd evaluation (step 2)
    step_counts = {int(s["step"]) for s in best_opt["state"].values()}
    assert step_counts == {2}
    # after phase 2 (never better) the model is back at the step-2 state
    assert torch.equal(model.readout.bias.detach(), model.at_eval[2])


def test_max_steps_stops_phase_and_evaluates_last_step():
    model = TinyModel()
    result = train(model, _toy_data(), _config(eval_every=4, patience=1000, max_steps=10))
    assert result.steps_per_phase == [10, 10, 10]
    assert [r["step"] for r in result.log] == [0, 4, 8, 10, 14, 18, 20, 24, 28, 30]
    assert result.best_val_loss == min(r["val_loss"] for r in result.log)
    first = next(r for r in result.log if r["val_loss"] == result.best_val_loss)
    assert result.best_step == first["step"]
    assert set(result.log[0]) == set(LOG_COLUMNS)


def test_patience_stop_when_nothing_improves():
    # lr = 0: the model never changes, so no evaluation is strictly better than step 0.
    result = train(TinyModel(), _toy_data(), _config(lr=0.0, eval_every=2, patience=3, max_steps=100))
    assert result.steps_per_phase == [6, 6, 6]
    assert result.best_step == 0
    assert len({r["val_loss"] for r in result.log}) == 1


def test_training_lowers_validation_loss_and_initialises_bias():
    data = _toy_data(n_train=64, neurons=3)
    model = TinyModel(n_neurons=3, n_out=3)
    result = train(model, data, _config(max_steps=30, eval_every=5, patience=5, lr=3e-2))
    assert result.best_val_loss <= result.log[0]["val_loss"]
    # the step-0 prediction is (nearly) the mean training response: the bias was initialised
    with torch.no_grad():
        model2 = TinyModel(n_neurons=3, n_out=1)
        model2.readout.init_bias(torch.tensor(data.y_train.mean(0)))
        pred = model2(torch.tensor(data.x_val))[0]
    assert torch.allclose(pred, torch.tensor(data.y_train.mean(0)).expand_as(pred), atol=0.05)


def test_same_seeds_same_result_other_data_seed_differs():
    data = _toy_data()
    a = train(TinyModel(seed=1), data, _config())
    b = train(TinyModel(seed=1), data, _config())
    c = train(TinyModel(seed=1), data, _config(data_seed=7))
    assert a.log == b.log and a.best_step == b.best_step
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)
    assert [r["train_loss"] for r in a.log[1:]] != [r["train_loss"] for r in c.log[1:]]


def test_batches_drop_last_and_small_training_set():
    gen = torch.Generator().manual_seed(0)
    it = minibatches(10, 4, gen)
    epoch = [next(it) for _ in range(2)]            # 10 // 4 = 2 batches per epoch
    assert all(len(b) == 4 for b in epoch)
    assert len(set(torch.cat(epoch).tolist())) == 8  # distinct stimuli within an epoch
    it = minibatches(5, 256, torch.Generator().manual_seed(0))  # smaller than one batch
    assert sorted(next(it).tolist()) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_writers_leave_no_temporary_files(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": np.float32(1.5), "v": np.arange(3), 2: math.nan})
    save_atomic({"w": torch.ones(2)}, tmp_path / "b.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt"]
    got = read_json(tmp_path / "a.json")
    assert got["x"] == 1.5 and got["v"] == [0, 1, 2] and math.isnan(got["2"])
    assert torch.equal(torch.load(tmp_path / "b.pt")["w"], torch.ones(2))


# ----------------------------------------------------------------------------- config


def _cli_config(dataset_file, **over):
    cfg = {
        "config_id": "rec-test", "family": "recurrent", "arch": "recurrent",
        "dataset": "toy", "dataset_file": str(dataset_file),
        "preprocess": {"crop": None, "downsample": 1, "neuron_scale": None},
        "split_seed": 0, "train_fraction": 1.0, "channels": 2, "act": "softplus",
        "first_block_order": "bn_act", "loss": "poisson", "model_seed": 0,
        "blocks": None, "recurrent_layers": 1, "iterations": 2, "readout": "2-avg",
        "train": {"batch_size": 32, "eval_every": 5, "patience": 3, "max_steps": 20},
    }
    cfg.update(over)
    return cfg


def test_resolve_config_fills_paper_defaults():
    cfg = resolve_config(_cli_config("x.h5"))
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["lr_decay"] == 3.0
    assert cfg["train"]["phases"] == 3 and cfg["train"]["readout_l1"] == 0.01
    assert cfg["train"]["smoothness"] == 5e-6 and cfg["train"]["max_steps"] == 20
    assert cfg["device"] == "cpu" and cfg["threads"] == 1
    assert load_config(json.dumps(cfg)) == cfg


@pytest.mark.parametrize("change, message", [
    ({"loss": None}, "missing required field.*loss"),
    ({"arch": "rnn"}, "arch"),
    ({"iterations": None}, "needs field.*iterations"),
    ({"loss": "l1"}, "loss"),
    ({"train": {"max_step": 5}}, "unknown key.*max_step"),
    ({"train": {"patience": 0}}, "train.patience"),
    ({"train_fraction": 1.5}, "train_fraction"),
])
def test_resolve_config_errors_name_the_field(change, message):
    with pytest.raises(RcpbError, match=message):
        resolve_config(_cli_config("x.h5", **change))


def test_bad_config_text_is_a_user_error(tmp_path):
    with pytest.raises(RcpbError, match="not valid JSON"):
        load_config("{nope")
    with pytest.raises(RcpbError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.json"))


# ----------------------------------------------------------------------------- command


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    from rcpb.data.format import Dataset, write_dataset

    rng = np.random.default_rng(0)
    n, size, neurons, trials = 120, 20, 5, 4
    images = rng.integers(0, 256, size=(n, size, size)).astype(np.uint8)
    drive = images[:, 8:12, 8:12].reshape(n, -1).mean(1, keepdims=True) / 128.0
    rates = drive * np.linspace(0.5, 2.0, neurons)[None, :] + 0.2
    responses = rng.poisson(rates[:, None, :] * np.ones((1, trials, 1))).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "toy.h5"
    write_dataset(path, Dataset(images=images, responses=responses))
    return path


def _metrics_without_time(path):
    m = read_json(path)
    m.pop("wall_time_s")
    return m


def test_train_command_outputs_are_complete_and_reproducible(tmp_path, dataset_file, capsys):
    cfg = json.dumps(_cli_config(dataset_file))
    assert main(["train", cfg, "--out", str(tmp_path / "a")]) == 0
    assert main(["train", cfg, "--out", str(tmp_path / "b"), "--threads", "1"]) == 0
    a = tmp_path / "a"
    assert sorted(p.name for p in a.iterdir()) == ["best.pt", "config.json", "log.csv",
                                                     "metrics.json", "paths.json"]
    m = read_json(a / "metrics.json")
    for split in ("val", "test"):
        for key in ("cc_norm2", "cc_raw", "cc_raw2", "frac_negative_cc_raw", "loss",
                    "n_excluded", "cc_norm2_per_neuron", "cc_raw_per_neuron",
                    "cc_max_per_neuron", "ceiling_stimuli", "ceiling_fallback_neurons"):
            assert key in m[split]
        assert len(m[split]["cc_raw_per_neuron"]) == 5
        assert m[split]["ceiling_stimuli"] == "evaluated"
    for key in ("n_params", "n_conv_params", "steps_per_phase", "best_step", "wall_time_s", "n_train"):
        assert key in m
    assert m["split_source"] == "generated"  # the file stores no split
    assert len(m["steps_per_phase"]) == 3 and all(1 <= s <= 20 for s in m["steps_per_phase"])
    resolved = read_json(a / "config.json")
    assert resolved["input_size"] == 20 and resolved["n_neurons"] == 5
    assert resolved["train"]["lr"] == 1e-3
    header = (a / "log.csv").read_text().splitlines()[0]
    assert header == ",".join(LOG_COLUMNS)
    assert "avg_path_length" in read_json(a / "paths.json")
    # the saved state reproduces the reported test loss
    from rcpb import models
    from rcpb.data.prepare import prepare
    from rcpb.train import predict
    model = models.build(resolved)
    model.load_state_dict(torch.load(a / "best.pt"))
    data = prepare(resolved["dataset_file"], resolved["preprocess"], 0, 1.0, "poisson")
    assert m["n_train"] == len(data.x_train)
    pred = predict(model, torch.tensor(data.x_test))
    loss = prediction_loss(pred, torch.tensor(data.y_test), "poisson").item()
    assert loss == pytest.approx(m["test"]["loss"], rel=1e-5)
    # identical numbers from an identical run
    assert _metrics_without_time(a / "metrics.json") == _metrics_without_time(tmp_path / "b" / "metrics.json")
    assert "phase 3/3" in capsys.readouterr().err


def test_train_command_skips_finished_run_and_refuses_other_config(tmp_path, dataset_file, capsys):
    out = tmp_path / "run"
    cfg = _cli_config(dataset_file)
    assert main(["train", json.dumps(cfg), "--out", str(out)]) == 0
    before = (out / "metrics.json").read_bytes()
    mtime = os.stat(out / "metrics.json").st_mtime_ns
    capsys.readouterr()
    # same config (execution settings may differ): nothing to do
    assert main(["train", json.dumps(cfg), "--out", str(out), "--threads", "2"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert os.stat(out / "metrics.json").st_mtime_ns == mtime
    assert (out / "metrics.json").read_bytes() == before
    # a different config in the same folder is refused
    other = dict(cfg, model_seed=1)
    config_file = tmp_path / "other.json"
    config_file.write_text(json.dumps(other))
    assert main(["train", str(config_file), "--out", str(out)]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_interrupted_run_rerun_matches_uninterrupted(tmp_path, dataset_file):
    cfg = json.dumps(_cli_config(dataset_file, train={"batch_size": 16, "eval_every": 5,
                                                      "patience": 1000, "max_steps": 60}))
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(["train", cfg, "--out", str(full)]) == 0

    proc = subprocess.Popen([sys.executable, "-m", "rcpb", "train", cfg, "--out", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # stderr: "... training stimuli ..." once the model is built, then one line per phase.
    # Kill right after phase 1 of 3 has ended (its log.csv is written): mid-training.
    assert b"training stimuli" in proc.stderr.readline()
    lines = iter(proc.stderr.readline, b"")
    assert any(b"phase 1/3" in line for line in lines)
    proc.kill()
    proc.wait()
    proc.stderr.close()
    assert (cut / "log.csv").exists() and not (cut / "metrics.json").exists()

    assert main(["train", cfg, "--out", str(cut)]) == 0
    assert _metrics_without_time(cut / "metrics.json") == _metrics_without_time(full / "metrics.json")
    assert (cut / "log.csv").read_text() == (full / "log.csv").read_text()
    assert torch.equal(torch.load(cut / "best.pt")["readout.bias"],
                       torch.load(full / "best.pt")["readout.bias"])


def test_train_command_feedforward_mse_and_input_size_check(tmp_path, dataset_file, capsys):
    cfg = _cli_config(dataset_file, arch="ff", family="ff", blocks=3, recurrent_layers=None,
                      iterations=None, readout=None, loss="mse", act="relu",
                      first_block_order="act_bn", train={"batch_size": 32, "max_steps": 10, "eval_every": 5})
    assert main(["train", json.dumps(cfg), "--out", str(tmp_path / "ff")]) == 0
    m = read_json(tmp_path / "ff" / "metrics.json")
    assert math.isfinite(m["test"]["loss"])
    assert read_json(tmp_path / "ff" / "paths.json")["avg_path_length"] == 2.0
    capsys.readouterr()
    bad = dict(cfg, input_size=37)
    assert main(["train", json.dumps(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "input_size" in capsys.readouterr().err


def _evaluation_data(seed=0, n=90, trials=4, neurons=3, size=12):
    """Prepared-like data: responses of all n stimuli, val / test rows of them."""
    from rcpb.metrics import trial_target

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, size, size)).astype(np.float32)
    rates = rng.gamma(2.0, 2.0, size=(n, 1, neurons))
    responses = rng.poisson(rates, size=(n, trials, neurons)).astype(np.float32)
    responses[::7, 2:, :] = np.nan                       # some stimuli with only 2 trials
    y = trial_target(responses).astype(np.float32)
    val_index, test_index = np.arange(50, 70), np.arange(70, n)
    return SimpleNamespace(x_val=x[val_index], y_val=y[val_index], x_test=x[test_index],
                           y_test=y[test_index], responses=responses, val_index=val_index,
                           test_index=test_index, ceiling_stimuli="evaluated")


def test_evaluate_takes_the_ceiling_of_the_evaluated_stimuli():
    """Default: the test metrics' ceiling comes from the test stimuli, the validation metrics'
    from the validation stimuli (the stimuli cc_raw is computed on); 'all' = every stimulus."""
    from rcpb import metrics
    from rcpb.train import evaluate, predict

    data = _evaluation_data()
    model = TinyModel(n_neurons=3)
    out = evaluate(model, data, {"loss": "mse"})
    every = metrics.cc_max(data.responses)
    for split in ("val", "test"):
        index = getattr(data, f"{split}_index")
        own = metrics.cc_max(data.responses[index])
        assert np.isfinite(own).all() and not np.allclose(own, every)
        np.testing.assert_allclose(out[split]["cc_max_per_neuron"], own, rtol=1e-12)
        pred = predict(model, torch.tensor(getattr(data, f"x_{split}"))).numpy()
        expected = metrics.summarize(pred.astype(np.float64),
                                     getattr(data, f"y_{split}").astype(np.float64), own)
        assert out[split]["cc_norm2"] == pytest.approx(expected["cc_norm2"], rel=1e-9)
        assert out[split]["ceiling_stimuli"] == "evaluated"
        assert out[split]["ceiling_fallback_neurons"] == []
    # the paper's choice: one ceiling from all stimuli for both splits
    data.ceiling_stimuli = "all"
    out = evaluate(model, data, {"loss": "mse"})
    for split in ("val", "test"):
        np.testing.assert_allclose(out[split]["cc_max_per_neuron"], every, rtol=1e-12)
        assert out[split]["ceiling_stimuli"] == "all"
    # a neuron without repeated test stimuli borrows the noise of all stimuli, and says so
    data.ceiling_stimuli = "evaluated"
    data.responses[data.test_index, 1:, 0] = np.nan
    out = evaluate(model, data, {"loss": "mse"})
    assert out["test"]["ceiling_fallback_neurons"] == [0]
    assert out["test"]["cc_max_per_neuron"][0] == pytest.approx(
        metrics.borrowed_noise_ceiling(data.responses, data.test_index)[0])
    assert out["val"]["ceiling_fallback_neurons"] == []


def test_evaluate_with_k_trials_uses_the_k_trial_target():
    from rcpb import metrics
    from rcpb.train import evaluate, predict

    data = _evaluation_data(seed=1)
    model = TinyModel(n_neurons=3)
    out = evaluate(model, data, {"loss": "mse", "cc_max_trials": 2})
    index = data.test_index
    pred = predict(model, torch.tensor(data.x_test)).numpy().astype(np.float64)
    target = metrics.trial_target(data.responses[index], 2)
    ceiling = metrics.cc_max(data.responses[index], k=2)
    np.testing.assert_allclose(out["test"]["cc_max_per_neuron"], ceiling, rtol=1e-12)
    assert out["test"]["cc_raw_per_neuron"] == pytest.approx(list(metrics.cc_raw(pred, target)))
    # the loss stays that of the training targets (all trials)
    assert out["test"]["loss"] == pytest.approx(
        prediction_loss(torch.tensor(pred[None]), torch.tensor(data.y_test), "mse").item(),
        rel=1e-5)


def test_nan_check_can_be_skipped_when_targets_are_complete():
    pred, y = torch.rand(2, 4, 3), torch.rand(4, 3)
    for loss in ("mse", "poisson"):
        assert prediction_loss(pred, y, loss, has_nan=False).item() == prediction_loss(pred, y, loss).item()


def test_training_with_missing_targets_stays_finite():
    data = _toy_data()
    data.y_train[0, 1] = np.nan
    data.y_val[2, 0] = np.nan
    result = train(TinyModel(), data, _config(max_steps=4, eval_every=2))
    assert all(math.isfinite(r["val_loss"]) for r in result.log)
    assert all(math.isfinite(r["train_loss"]) for r in result.log[1:])
    assert all(torch.isfinite(v).all() for v in result.best_state.values())


def test_cli_from_grid_trains_the_line_with_the_folder_id(tmp_path, dataset_file, capsys):
    """--from-grid DIR reads the configuration with DIR's name from DIR/../../grid.jsonl and
    gives the same numbers as passing that configuration directly."""
    from rcpb.grid import GRID_FILE

    other = dict(_cli_config(dataset_file), config_id="other-id", model_seed=1)
    wanted = dict(_cli_config(dataset_file), config_id="wanted-id")
    grid_file = tmp_path / "results" / "d" / GRID_FILE
    grid_file.parent.mkdir(parents=True)
    grid_file.write_text("".join(json.dumps(c) + "\n" for c in (other, wanted)))
    model_dir = tmp_path / "results" / "d" / "ff" / "wanted-id"
    assert main(["train", "--from-grid", str(model_dir)]) == 0
    assert main(["train", json.dumps(wanted), "--out", str(tmp_path / "direct")]) == 0
    from_grid = json.loads((model_dir / "metrics.json").read_text())
    direct = json.loads((tmp_path / "direct" / "metrics.json").read_text())
    assert from_grid["test"] == direct["test"]
    assert json.loads((model_dir / "config.json").read_text())["config_id"] == "wanted-id"

    capsys.readouterr()
    assert main(["train", "--from-grid", str(tmp_path / "results" / "d" / "ff" / "nope")]) == 2
    assert "holds no configuration with id 'nope'" in capsys.readouterr().err
    assert main(["train", json.dumps(wanted), "--from-grid", str(model_dir)]) == 2
    assert main(["train", "--out", str(tmp_path / "x")]) == 2


def test_cli_pack_member_error_spares_the_others_and_a_rerun_retries_it(tmp_path, dataset_file,
                                                                        monkeypatch, capsys):
    """A member whose results cannot be written (here: evaluation raises) leaves no
    metrics.json; its pack mates finish, the command fails without writing the marker, and a
    rerun trains only that member."""
    import rcpb.train
    from rcpb.grid import GRID_FILE

    configs = [dict(_cli_config(dataset_file), config_id=f"m{s}", model_seed=s) for s in range(3)]
    grid_file = tmp_path / "results" / "d" / GRID_FILE
    grid_file.parent.mkdir(parents=True)
    grid_file.write_text("".join(json.dumps(c) + "\n" for c in configs))
    dirs = [tmp_path / "results" / "d" / "recurrent" / c["config_id"] for c in configs]
    marker = tmp_path / "results" / "d" / "packs" / "p.done"

    real = rcpb.train.evaluate

    def evaluate(model, data, config):
        if config["model_seed"] == 1:
            raise RuntimeError("disk trouble")
        return real(model, data, config)

    monkeypatch.setattr(rcpb.train, "evaluate", evaluate)
    args = ["train", "--from-grid", *map(str, dirs), "--slots", "2", "--done", str(marker)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "disk trouble" in err and "1 of 3 member(s) hit an error" in err
    assert [(d / "metrics.json").exists() for d in dirs] == [True, False, True]
    assert not marker.exists()
    before = (dirs[0] / "metrics.json").read_bytes()

    monkeypatch.setattr(rcpb.train, "evaluate", real)
    assert main(args) == 0
    assert read_json(marker)["members"] == {str(dirs[0]): "done-before", str(dirs[1]): "trained",
                                            str(dirs[2]): "done-before"}
    assert (dirs[0] / "metrics.json").read_bytes() == before
