"""End to end with every recurrent cell and every control family on the built-in positive
control (the recurrent teacher): the grid trains them, aggregation gives each its row (aliases
included), and the controls table and figure reach the report; the study's tables keep RCPB."""

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rcpb.cell_kinds import CELLS

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = ("ff_wider", "ff_deeper", "ff_depth", "min_unrolled")


@pytest.mark.slow
def test_every_cell_and_control_runs_to_the_report(tmp_path, tiny_workflow_config):
    cfg = copy.deepcopy(tiny_workflow_config)
    ds = cfg["datasets"]["tiny"]
    ds["simulate"] = {"circuit": "recurrent_teacher", "images": "images.h5", "neurons": 6,
                      "trials": 4, "seed": 0}
    ds["preprocess"] = {"crop": 36, "downsample": 2}
    cfg["grids"]["g"] = {
        "common": cfg["grids"]["g"]["common"] | {"channels": [8]},
        "ff": {"blocks": [3]},
        "recurrent": {"recurrent_layers": [1], "iterations": [4], "readout": ["no-avg"],
                      "cell": list(CELLS)},
        **{family: {} for family in CONTROLS},
    }
    import h5py

    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(tmp_path / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))

    def snakemake(*args):
        cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
               "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    snakemake("-c2")
    snakemake("--report", str(tmp_path / "report.html"))

    out = tmp_path / "results" / "tiny"
    results = pd.read_csv(out / "results.csv")
    rec = results[results["family"] == "recurrent"]
    assert sorted(rec["cell"]) == sorted(CELLS)
    assert set(results["family"]) >= {"ff", "recurrent", *CONTROLS}
    # every control points at a recurrent model of the table
    for family in CONTROLS:
        assert set(results.loc[results["family"] == family, "partner_id"]) <= set(rec["config_id"])
    table = pd.read_csv(out / "tables" / "controls.csv")
    assert set(table["cell"]) == set(CELLS)
    assert {"size-matched FF", "wider FF", "deeper FF", "unrolled-depth FF",
            "minimally unrolled"} <= set(table["control"])
    # the wider FF of the ConvLSTM cell has more channels than 8, and its conv count is within
    # one channel's worth of the ConvLSTM's
    wide = table[(table["cell"] == "convlstm") & (table["control"] == "wider FF")].iloc[0]
    assert wide["control_channels"] > 8
    figure = out / "figures" / "split0" / "frac100" / "cells_controls.png"
    assert figure.stat().st_size > 0
    # the study's Table 1 compares the RCPB cell only
    t1 = (out / "tables" / "table1.md").read_text()
    assert "convlstm" not in t1
    html = (tmp_path / "report.html").read_text()
    assert "Recurrent cells vs their controls" in html
