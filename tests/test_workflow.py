"""End to end: Snakemake simulates a tiny dataset, trains every family and aggregates.

A handful of models (1 feed-forward, 2 recurrent, 2 multi-path, 2 rm- and 4 le/ge-ablations)
on 160 stimuli with a budget of 10 steps. Checks one results row per configuration of the grid
with finite metrics and the right partners, that an unchanged rerun does nothing, and that a
new seed schedules exactly the new trainings.
"""

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from rcpb import grid

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["results/tiny/results.csv", "results/tiny/neurons.csv"]
CONFIG = {
    "threads": 1,
    "training": {"batch_size": 32, "phases": 1, "eval_every": 5, "patience": 2,
                 "max_steps": 10},
    "datasets": {"tiny": {
        "simulate": {"circuit": "recurrent", "images": "images.h5", "neurons": 6, "trials": 4,
                     "seed": 0, "input_size": 37},
        "preprocess": {"crop": 36, "downsample": 2},
        "grid": "g",
    }},
    "grids": {"g": {
        "common": {"train_fraction": [1.0], "channels": [4], "act": ["relu"],
                   "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0]},
        "ff": {"blocks": [3]},
        "recurrent": {"recurrent_layers": [1], "iterations": [2],
                      "readout": ["no-avg", "2-avg"]},
        "multipath": {},
        "ablation_rm": {"readout": ["2-avg"], "remove_adjacent": [1]},
        "ablation_lege": {"readout": ["2-avg"]},
    }},
}


def snakemake(workdir, cfg, *args):
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", *TARGETS, *args, "-s", str(ROOT / "Snakefile"),
           "-d", str(workdir), "--configfile", str(workdir / "config.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def expected(cfg):
    cfg = copy.deepcopy(cfg)
    grid.validate_config(cfg)
    return {c["config_id"]: c for c in grid.expand(cfg)["tiny"]}


def planned_trainings(output):
    """Number of training jobs (rules train and train_simulated) in a dry run's job stats."""
    # a dry run prints the job stats table twice: one count per rule name
    counts = dict(re.findall(r"^(train(?:_simulated)?)\s+(\d+)\s*$", output, re.MULTILINE))
    return sum(int(n) for n in counts.values())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(workdir / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    snakemake(workdir, CONFIG, "-c2")
    return workdir


def test_one_row_per_configuration_with_finite_metrics(finished_run):
    configs = expected(CONFIG)
    assert len(configs) == 11
    results = pd.read_csv(finished_run / "results" / "tiny" / "results.csv")
    assert sorted(results["config_id"]) == sorted(configs)
    for row in results.itertuples():
        cfg = configs[row.config_id]
        assert row.family == cfg["family"]
        assert (row.partner_id if isinstance(row.partner_id, str) else None) == cfg["partner_id"]
        for column in ("test_cc_norm2", "test_cc_raw", "test_loss", "val_loss",
                       "avg_path_length"):
            assert math.isfinite(getattr(row, column)), (row.config_id, column)
        assert row.n_params > 0 and row.n_neurons == 6 and row.input_size == 18
    ablated = results[results["family"] == "ablation_rm"].set_index("ablation")
    assert ablated.loc["rm1", "allowed_lengths"] == "2"
    assert ablated.loc["rm1", "avg_path_length"] == pytest.approx(2.0)  # only length-2 paths
    ff = results[results["family"] == "ff"].iloc[0]
    assert ff["avg_path_length"] == pytest.approx(2.0)  # 3 blocks: 2 convs after CPB1

    neurons = pd.read_csv(finished_run / "results" / "tiny" / "neurons.csv")
    assert len(neurons) == 11 * 6
    assert set(neurons["config_id"]) == set(configs)


def test_unchanged_rerun_does_nothing(finished_run):
    out = snakemake(finished_run, CONFIG, "-n")
    assert "Nothing to be done" in out
    # the start-up summary counts every training of the grid, done or not
    summary = [line for line in out.splitlines() if line.startswith("rcpb grid: ")]
    assert len(summary) == 1 and f"{len(expected(CONFIG))} trainings" in summary[0]


def test_new_seed_schedules_exactly_the_new_trainings(finished_run):
    cfg = copy.deepcopy(CONFIG)
    cfg["grids"]["g"]["common"]["model_seed"] = [0, 1]
    new = set(expected(cfg)) - set(expected(CONFIG))
    assert len(new) == 11
    out = snakemake(finished_run, cfg, "-n")
    assert planned_trainings(out) == len(new)
    for config_id in new:
        assert config_id in out


@pytest.mark.parametrize("configfile", [None, "configs/paper_ns2250.yaml"])
def test_lint_passes(configfile):
    """`snakemake --lint` finds nothing, for the example and for a paper config."""
    cmd = [sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile")]
    if configfile:
        cmd += ["--configfile", str(ROOT / configfile)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr
    assert "your workflow is in a good condition" in result.stdout + result.stderr
