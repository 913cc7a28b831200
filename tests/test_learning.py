"""The training loop learns: a short training on the built-in recurrent dataset.

The simulated dataset is the one the built-in example trains on (the 2,250 bundled NS stimuli,
recurrent circuit, 34 neurons, 8 trials, seed 0). A 16-channel, 3-block feed-forward model with a
CI-sized budget must explain a real part of the explainable variance: mean test cc_norm2 above
0.3 (a model that predicts each neuron's mean response scores 0).
"""

import json
from pathlib import Path

from rcpb.cli import main
from rcpb.data.simulate import simulate_file

ROOT = Path(__file__).resolve().parents[1]


def test_feedforward_model_learns_the_builtin_dataset(tmp_path):
    data = tmp_path / "sim_recurrent.h5"
    simulate_file(ROOT / "data" / "ns2250_stimuli_74px.h5", data, circuit="recurrent",
                  n_neurons=34, n_trials=8, seed=0)
    config = {
        "config_id": "ff3-learning-check", "family": "ff", "arch": "ff",
        "dataset": "sim_recurrent", "dataset_file": str(data),
        "preprocess": {"crop": 48, "downsample": 2, "neuron_scale": None,
                       "split_sizes": [1400, 350, 500]},
        "split_seed": 0, "train_fraction": 1.0, "channels": 16, "blocks": 3,
        "act": "relu", "first_block_order": "bn_act", "loss": "mse", "model_seed": 0,
        "train": {"batch_size": 64, "lr": 0.01, "lr_decay": 3.0, "phases": 3, "eval_every": 25,
                  "patience": 4, "max_steps": 300},
    }
    out = tmp_path / "model"
    assert main(["train", json.dumps(config), "--out", str(out), "--threads", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n_excluded"] == 0
    assert metrics["test"]["cc_norm2"] > 0.3, metrics["test"]["cc_norm2"]
