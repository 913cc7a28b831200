"""End to end on wide frames, as mouse V1 recordings come: 36 x 64 px images, one trial per
training and validation image, repeated trials for the test images only.

Every model must see the whole 36 x 64 frame (no square crop), and the workflow must run to the
report with the test noise ceiling from the repeated test images.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_VAL, N_TEST, TEST_TRIALS, NEURONS = 150, 40, 40, 4, 5


def _write_wide_frames(path: Path) -> None:
    """Bundled natural images cut to 36 x 64 px; Poisson counts of a rectified linear model with
    a Gaussian receptive field per neuron (centres spread over the frame's width); training and
    validation images one trial each, test images ``TEST_TRIALS`` (the rest NaN)."""
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_VAL + N_TEST
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src:
        images = src["images"][:n, 19:55, 5:69]                       # [n, 36, 64]
    rows, cols = np.mgrid[0:36, 0:64]
    centres = np.linspace(10, 54, NEURONS)
    rf = np.exp(-((rows[None] - 18) ** 2 + (cols[None] - centres[:, None, None]) ** 2) / 50.0)
    x = images.astype(np.float64) / 255.0
    drive = np.einsum("shw,nhw->sn", x - x.mean(), rf) / rf.sum(axis=(1, 2))
    rates = 4.0 * np.maximum(drive / drive.std(axis=0) + 1.0, 0.0)     # [n, neurons]
    responses = np.full((n, TEST_TRIALS, NEURONS), np.nan, np.float32)
    responses[:, 0] = rng.poisson(rates)
    test = slice(N_TRAIN + N_VAL, n)
    responses[test, 1:] = rng.poisson(rates[test, None, :], (N_TEST, TEST_TRIALS - 1, NEURONS))
    split = np.repeat([0, 1, 2], [N_TRAIN, N_VAL, N_TEST]).astype(np.int8)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("responses", data=responses)
        f.create_dataset("split", data=split)


@pytest.mark.slow
def test_wide_frames_run_to_the_report_with_36x64_inputs(tmp_path, tiny_workflow_config):
    _write_wide_frames(tmp_path / "wide.h5")
    cfg = copy.deepcopy(tiny_workflow_config)
    cfg["datasets"] = {"wide": {"file": "wide.h5", "grid": "g",
                                "preprocess": {"crop": None, "downsample": 1}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))

    def snakemake(*args):
        cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
               "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    snakemake("-c2")
    snakemake("--report", str(tmp_path / "report.html"))

    ds = tmp_path / "results" / "wide"
    results = pd.read_csv(ds / "results.csv")
    assert set(results["input_size"].astype(str)) == {"36x64"}
    assert set(results["family"]) >= {"ff", "recurrent", "multipath", "ablation_rm"}
    for folder in (ds).glob("*/*/"):
        if (folder / "config.json").exists():
            assert json.loads((folder / "config.json").read_text())["input_size"] == [36, 64]
            state = torch.load(folder / "best.pt", map_location="cpu", weights_only=True)
            state = state.get("model", state)
            # readout grid: pooled_size(36 - 8) x pooled_size(64 - 8) = 10 x 19
            assert tuple(state["readout.ws"].shape) == (NEURONS, 10, 19), folder
    # the test split has repeats, so the measure is cc_norm2 with a finite test ceiling
    assert np.isfinite(results["test_cc_norm2"]).all()
    assert json.loads((ds / "summary.json").read_text())["metric"] == "cc_norm2"
    assert "The answer" in (tmp_path / "report.html").read_text()
