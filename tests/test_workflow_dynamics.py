"""End to end on time-binned responses: a simulated recurrent teacher with time bins trains FF
and recurrent (late-avg) models over the stimulus-on window, and the per-bin columns, the
dynamics table and figure reach the report; a grid the time bins cannot take stops the workflow
before any job."""

import copy
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _setup(tmp_path, tiny_workflow_config, recurrent=None):
    cfg = copy.deepcopy(tiny_workflow_config)
    ds = cfg["datasets"]["tiny"]
    ds["simulate"] = {"circuit": "recurrent_teacher", "images": "images.h5", "neurons": 6,
                      "trials": 4, "seed": 0,
                      "dynamics": {"bins": 10, "on_bins": 4, "latency": 1, "bin_ms": 10}}
    ds["preprocess"] = {"crop": 36, "downsample": 2, "time_window": {"offset": 1, "bins": 4}}
    common = cfg["grids"]["g"]["common"] | {"channels": [8], "model_seed": [0, 1]}
    cfg["grids"]["g"] = {"common": common, "ff": {"blocks": [3]},
                         "recurrent": recurrent or {"recurrent_layers": [1], "iterations": [4],
                                                    "readout": ["late-avg"]}}
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(tmp_path / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))


def _snakemake(tmp_path, *args):
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
           "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_time_binned_data_runs_to_the_report(tmp_path, tiny_workflow_config):
    _setup(tmp_path, tiny_workflow_config)
    for args in (["-c2"], ["--report", str(tmp_path / "report.html")]):
        out = _snakemake(tmp_path, *args)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "tiny"
    results = pd.read_csv(res / "results.csv")
    assert len(results) == 4
    # the fitted window's bins 1..4, per model; the FF model's profile correlation is 0
    for b in (1, 2, 3, 4):
        assert results[f"test_bin{b}_cc_raw"].notna().all()
    assert "test_bin0_cc_raw" not in results and "test_bin5_cc_raw" not in results
    ff = results[results["family"] == "ff"]
    assert (ff["test_profile_cc"] == 0).all()
    # the mean over bins is the reported cc_raw
    bins = results[[f"test_bin{b}_cc_raw" for b in (1, 2, 3, 4)]].mean(axis=1)
    assert (bins - results["test_cc_raw"]).abs().max() < 1e-9
    table = pd.read_csv(res / "tables" / "dynamics.csv")
    assert "time profile (profile_cc)" in set(table["measure"])
    assert len(table) == 2 + 4        # profile, mean over bins, 4 bins
    assert (res / "figures" / "split0" / "frac100" / "dynamics.png").stat().st_size > 0
    baselines = pd.read_csv(res / "baselines.csv")
    truth = baselines[baselines["predictor"] == "truth"].iloc[0]
    assert truth["test_cc_raw"] > 0.3
    # the truth's per-bin values sit beside the models' (the table's truth column)
    assert {"test_profile_cc", "test_bin1_cc_raw", "test_bin4_pred"} <= set(baselines.columns)
    assert table["truth"].notna().all()
    assert "Time bins: recurrent vs FF" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_a_readout_that_cannot_fit_bins_stops_the_workflow_before_any_job(
        tmp_path, tiny_workflow_config):
    _setup(tmp_path, tiny_workflow_config,
           recurrent={"recurrent_layers": [1], "iterations": [4], "readout": ["no-avg"]})
    out = _snakemake(tmp_path, "-c1")
    assert out.returncode != 0
    assert "readout 'no-avg'" in out.stderr and "late-avg" in out.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.done"))
