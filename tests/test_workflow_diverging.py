"""End to end with trainings that diverge: an absurd learning rate makes every training's loss
infinite; the workflow still ends with its tables, figures and report, results.csv records each
training with status failed and the reason, and the report says how many were left out. (That a
diverging training stops alone while its pack mates train on as alone: tests/test_pack.py; the
tables without the failed rows: tests/test_faults.py.)"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_diverging_trainings_are_recorded_and_left_out_to_the_report(tmp_path,
                                                                     tiny_workflow_config):
    cfg = copy.deepcopy(tiny_workflow_config)
    cfg["training"]["lr"] = 1e30
    grid = cfg["grids"]["g"]
    cfg["grids"]["g"] = {"common": grid["common"], "ff": {"blocks": [3]},
                         "recurrent": {"recurrent_layers": [1], "iterations": [2],
                                       "readout": ["no-avg"]}}
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(tmp_path / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    for args in (["-c2"], ["--report", str(tmp_path / "report.html")]):
        out = subprocess.run([sys.executable, "-m", "snakemake", *args, "-s",
                              str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
                              str(tmp_path / "config.yaml")],
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "tiny"
    results = pd.read_csv(res / "results.csv")
    assert len(results) == 2 and set(results["status"]) == {"failed"}
    assert results["failure"].str.contains("nan|inf").all()
    assert results["test_cc_raw"].isna().all()
    failed = pd.read_csv(res / "failed.csv")
    assert sorted(failed["config_id"]) == sorted(results["config_id"])
    assert json.loads((res / "summary.json").read_text())["n_failed"] == 2
    assert "Left out: 2 failed trainings" in (res / "tables" / "table1.md").read_text()
    assert (res / "figures" / "split0" / "frac100" / "fig3d.png").stat().st_size > 0
    assert "2 training(s) diverged" in (tmp_path / "report.html").read_text()
