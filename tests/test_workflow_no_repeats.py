"""End to end on a dataset without repeated trials (one trial per stimulus, as trial means come).

Such a dataset has no noise ceiling: the workflow must run to the report anyway, with every
table and figure measuring performance as CC_raw and saying so, and the report opening on the
answer (generated from the summaries).
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
import yaml

ROOT = Path(__file__).resolve().parents[1]


def means_config(tiny):
    """The tiny workflow's grid (tests/conftest.py) without the multi-path families, on a file
    of trial means."""
    cfg = copy.deepcopy(tiny)
    cfg["datasets"] = {"means": {"file": "means.h5", "preprocess": {"crop": 36, "downsample": 2},
                                 "grid": "g"}}
    cfg["grids"]["g"] = {k: v for k, v in cfg["grids"]["g"].items()
                         if k in ("common", "ff", "recurrent")}
    return cfg


def _write_trial_means(path: Path, n: int = 160, neurons: int = 5) -> None:
    """Bundled images and one response per stimulus: a rectified contrast response plus noise."""
    rng = np.random.default_rng(0)
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src:
        images = src["images"][:n]
    centre = images[:, 27:47, 27:47].astype(np.float32)
    drive = centre.std(axis=(1, 2))[:, None] * rng.uniform(0.5, 1.5, neurons)[None, :]
    rates = np.maximum(drive / drive.mean(), 0) + rng.normal(0, 0.2, (n, neurons))
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("responses", data=rates[:, None, :].astype(np.float32))


@pytest.mark.slow
def test_dataset_without_repeats_runs_to_the_report_in_cc_raw(tmp_path, tiny_workflow_config):
    _write_trial_means(tmp_path / "means.h5")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(means_config(tiny_workflow_config)))

    def snakemake(*args):
        cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
               "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    snakemake("-c2")
    snakemake("--report", str(tmp_path / "report.html"))

    ds = tmp_path / "results" / "means"
    results = pd.read_csv(ds / "results.csv")
    assert results["test_cc_norm2"].isna().all()          # no ceiling without repeats
    assert np.isfinite(results["test_cc_raw"]).all()
    table1 = (ds / "tables" / "table1.md").read_text()
    assert "Performance: test CC_raw" in table1 and "no noise ceiling" in table1
    assert "CC_raw" in (ds / "tables" / "recurrent_vs_ff.md").read_text()
    for name in ("fig3d", "fig6ab"):
        csv = pd.read_csv(ds / "figures" / "split0" / "frac100" / f"{name}.csv")
        assert set(csv["metric"]) == {"cc_raw"}, name
    summary = json.loads((ds / "summary.json").read_text())
    assert summary["metric"] == "cc_raw"
    assert summary["answer"] and "CC_raw" in summary["answer"][0]
    assert "too few for a CI" in summary["answer"][0]   # 1 or 2 pairs
    front = (tmp_path / "results" / "report_front.rst").read_text()
    assert front.index("The answer") < front.index("How to read this report")
    assert summary["answer"][0] in front
    html = (tmp_path / "report.html").read_text()
    assert "The answer" in html
