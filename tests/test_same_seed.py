"""Same seed, same numbers through the whole workflow, however the trainings are packed.

The tiny workflow (7 trainings: 1 feed-forward, 2 recurrent, 2 multi-path, 2 rm-ablations) is
run twice on CPU in float32, in separate folders:

- solo: pack_size 1, pack_slots 1: every training is a job (a process) of its own;
- packed: pack_size 8, pack_slots 3: one job per architecture, the 4 multi-path models trained
  3 at a time in one process (the 4th takes the first free slot), the 2 recurrent ones together.

Both must give the same results.csv (every column but the wall time), the same training curve
(log.csv) and the same best.pt of every model: exactly, not within a tolerance. That a killed
and rerun workflow gives the numbers of an uninterrupted one is tests/test_kill_anywhere.py.
"""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import torch
from test_kill_anywhere import RESULTS, assert_same_results, learning, model_folders
from test_pack_workflow import command, prepare

#: (pack_size, pack_slots) of the two runs
LAYOUTS = {"solo": (1, 1), "packed": (8, 3)}


def seed_config(tiny, pack_size: int, pack_slots: int) -> dict:
    """The tiny workflow on data it learns (tests/test_kill_anywhere.py: learning), 30 steps
    per model (7 evaluations in each log.csv), packed as given."""
    cfg = learning(tiny, max_steps=30)
    cfg.update(pack_size=pack_size, pack_slots=pack_slots)
    return cfg


@pytest.mark.slow
def test_solo_and_packed_trainings_give_the_same_numbers(tmp_path, tiny_workflow_config):
    folders, procs = {}, {}
    for name, (size, slots) in LAYOUTS.items():
        folders[name] = tmp_path / name
        prepare(folders[name], seed_config(tiny_workflow_config, size, slots))
        with open(tmp_path / f"{name}.log", "w") as log:     # both at once: separate folders
            procs[name] = subprocess.Popen(command(folders[name], "-c1"), stdout=log,
                                           stderr=subprocess.STDOUT)
    for name, proc in procs.items():
        assert proc.wait(timeout=900) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    solo, packed = folders["solo"], folders["packed"]

    # the layouts really differ: 7 jobs of one training each vs 3 jobs, up to 3 at once
    markers = {name: sorted((f / "results/tiny/packs").glob("*.done"))
               for name, f in folders.items()}
    assert (len(markers["solo"]), len(markers["packed"])) == (7, 3)
    models = model_folders(solo)
    assert len(models) == 7 and model_folders(packed) == models
    slots = {name: sorted(json.loads((f / m / "metrics.json").read_text())["pack"]["slots"]
                          for m in models) for name, f in folders.items()}
    assert slots == {"solo": [1] * 7, "packed": [1, 2, 2, 3, 3, 3, 3]}, slots

    diff = assert_same_results(packed / RESULTS, solo / RESULTS, atol=0.0)
    print(f"\nsolo vs packed: largest difference in results.csv {diff}")
    best_steps = pd.read_csv(solo / RESULTS)["best_step"]
    assert (best_steps > 0).all(), "a model kept its initial weights: compare trained models"
    for m in models:
        assert (packed / m / "log.csv").read_text() == (solo / m / "log.csv").read_text(), m
        a = torch.load(packed / m / "best.pt", weights_only=True)
        b = torch.load(solo / m / "best.pt", weights_only=True)
        assert a.keys() == b.keys(), m
        for key in a:
            assert torch.equal(a[key], b[key]), (m, key)
