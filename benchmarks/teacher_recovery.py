"""How close do students get to a teacher ground truth, and what stops them?

    python benchmarks/teacher_recovery.py [--dataset data/teacher_recurrent.h5] [--config config.yaml]

Run after the example (it reads the teacher's dataset file and the example's dataset block and
training settings). Trains, with the example's schedule and seed 0, on the dataset's split 0:

- the recurrent student of the teacher's own structure from its usual initialisation;
- the same student started *at the teacher's weights* (readout included);
- the feed-forward students of 2 and 3 blocks;
- the two recurrent students and the 2-block student again at a tenth of the learning rate;

and prints for each the test CC_norm^2 before training and the CC_norm^2 of its best checkpoint
on the training, validation and test stimuli, next to the truth's. A student started at the teacher that stays near the truth, while
the same student from its usual initialisation stays far below on training stimuli too, says
that optimisation (not data or capacity) limits how close students get; a large gap between
training and test says the data do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import torch

    from rcpb.baselines import score_predictors
    from rcpb.config import load_config
    from rcpb.data.prepare import prepare
    from rcpb.data.teachers import load_teacher
    from rcpb.models import build
    from rcpb.train import train

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="data/teacher_recurrent.h5")
    p.add_argument("--name", default="teacher_recurrent", help="the dataset's name in --config")
    p.add_argument("--config", default="config.yaml")
    a = p.parse_args(argv)

    torch.set_num_threads(1)
    cfg = load_config(a.config)
    preprocess = cfg["datasets"][a.name]["preprocess"]
    data = prepare(a.dataset, preprocess, 0, 1.0)
    teacher = load_teacher(a.dataset)
    base = {k: teacher.teacher_config[k] for k in
            ("channels", "act", "first_block_order", "input_size", "n_neurons")}
    base.update(model_seed=0, loss="mse", train=cfg["training"])
    rec = _structure(teacher.teacher_config)
    slow = {**base, "train": {**cfg["training"], "lr": cfg["training"]["lr"] / 10}}
    students = [
        ("recurrent, usual init", {**base, **rec}, False),
        ("recurrent, at the teacher", {**base, **rec}, True),
        ("FF 2 blocks", {**base, "arch": "ff", "blocks": 2}, False),
        ("FF 3 blocks", {**base, "arch": "ff", "blocks": 3}, False),
        ("recurrent, usual init, lr/10", {**slow, **rec}, False),
        ("recurrent, at teacher, lr/10", {**slow, **rec}, True),
        ("FF 2 blocks, lr/10", {**slow, "arch": "ff", "blocks": 2}, False),
    ]
    truth = {r["predictor"]: r for r in score_predictors(a.dataset, a.name, preprocess, [0],
                                                         splits=("train", "val", "test"))}
    t = truth["truth"]
    print(f"{'model':28s} {'start':>7s} {'train':>7s} {'val':>7s} {'test':>7s} {'steps':>6s} "
          f"{'s':>6s}   (start: test CC_norm^2 before training)")
    print(f"{'truth':28s} {'':7s} {t['train_cc_norm2']:7.3f} {t['val_cc_norm2']:7.3f} "
          f"{t['test_cc_norm2']:7.3f}")
    for label, config, at_teacher in students:
        model = build(config)
        if at_teacher:
            _start_at_teacher(model, teacher, data)
        model.eval()
        before = _cc(model, data, "test", config)
        start = time.perf_counter()
        result = train(model, data, config)
        wall = time.perf_counter() - start
        model.load_state_dict(result.best_state)
        cells = [_cc(model, data, split, config) for split in ("train", "val", "test")]
        print(f"{label:28s} {before:7.3f} {cells[0]:7.3f} {cells[1]:7.3f} {cells[2]:7.3f} "
              f"{sum(result.steps_per_phase):6d} {wall:6.1f}")
    return 0


def _cc(model, data, split: str, config: dict) -> float:
    """CC_norm^2 of ``model`` (eval mode) on ``split`` of ``data``."""
    import numpy as np
    import torch

    from rcpb.train import predict, score

    pred = predict(model, torch.as_tensor(getattr(data, f"x_{split}")))
    return score(pred.numpy().astype(np.float64), data, split, config)["cc_norm2"]


def _start_at_teacher(model, teacher, data) -> None:
    """Copy the teacher's weights into ``model`` and scale each neuron's readout (feature
    weights and bias, a positive factor that ReLU passes through) to the training targets'
    units by least squares; the trainer then keeps that bias instead of initialising it."""
    import torch

    from rcpb.train import predict

    model.load_state_dict(teacher.state_dict())
    out = predict(model, torch.as_tensor(data.x_train)).double()
    y = torch.as_tensor(data.y_train).double()
    oc, yc = out - out.mean(0), y - y.mean(0)
    gain = ((oc * yc).sum(0) / (oc * oc).sum(0).clamp_min(1e-12)).clamp_min(1e-6)
    with torch.no_grad():
        model.readout.wf.mul_(gain[:, None].float())
        model.readout.bias.mul_(gain.float())
    model.readout.init_bias = lambda mean_response: None


def _structure(teacher_config: dict) -> dict:
    keys = ("arch", "recurrent_layers", "iterations", "readout", "blocks")
    return {k: teacher_config[k] for k in keys if k in teacher_config}


if __name__ == "__main__":
    raise SystemExit(main())
