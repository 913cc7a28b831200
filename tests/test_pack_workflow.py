"""Kill and rerun a pack through Snakemake: only its unfinished members are trained again.

A pack of 4 feed-forward trainings (4 seeds) trained 2 at a time, so a finished slot takes the
next member. The workflow is killed (SIGKILL, Snakemake and the training process together)
once a member has finished but the pack's marker is not written, then rerun. The members that
had finished are not trained again (their files are untouched and the rerun's marker calls them
done before), every member finishes, and results.csv has the same metrics as an uninterrupted
run of the same config in another folder.
"""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from rcpb import grid
from rcpb.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
TARGET = "results/tiny/results.csv"
# metrics compared with the uninterrupted run (all but the wall time)
COMPARED = ["test_cc_norm2", "test_cc_raw", "test_cc_raw2", "test_loss", "val_cc_norm2",
            "val_cc_raw", "val_loss", "n_params", "n_train", "best_step", "avg_path_length",
            "path_entropy"]


def pack_config(tiny):
    """The tiny workflow with one pack of 4 feed-forward models (seeds 0-3), 2 slots, and a
    budget long enough (2 phases of up to 40 steps) to be killed in the middle."""
    cfg = copy.deepcopy(tiny)
    cfg.update(pack_size=4, pack_slots=2)
    cfg["training"].update(phases=2, max_steps=40, eval_every=5, patience=3)
    cfg["grids"]["g"] = {"common": dict(cfg["grids"]["g"]["common"], model_seed=[0, 1, 2, 3]),
                         "ff": {"blocks": [3]}}
    return cfg


def the_pack(cfg):
    """(pack id, member folders relative to the working directory) of the only pack."""
    cfg = copy.deepcopy(cfg)
    validate_config(cfg)
    (pack, members), = grid.packs(grid.expand(cfg)["tiny"], cfg["pack_size"]).items()
    return pack, [Path("results/tiny") / c["family"] / c["config_id"] for c in members]


def prepare(workdir, cfg):
    workdir.mkdir(parents=True, exist_ok=True)
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(workdir / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def command(workdir, *args):
    return [sys.executable, "-m", "snakemake", TARGET, *args, "-s", str(ROOT / "Snakefile"),
            "-d", str(workdir), "--configfile", str(workdir / "config.yaml")]


def run(workdir, *args):
    out = subprocess.run(command(workdir, *args), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def descendants(pid):
    """Ids of every process below ``pid`` (from /proc), children first."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_everything(proc):
    """SIGKILL Snakemake's process group and every process below it (a job may have its own)."""
    below = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)


@pytest.mark.slow
def test_killed_pack_reruns_only_its_unfinished_members(tmp_path, tiny_workflow_config):
    cfg = pack_config(tiny_workflow_config)
    pack, members = the_pack(cfg)
    assert len(members) == 4

    # the uninterrupted run
    reference = tmp_path / "reference"
    prepare(reference, cfg)
    run(reference, "-c1")
    expected = pd.read_csv(reference / TARGET).set_index("config_id").sort_index()

    # the killed run: kill as soon as a member has finished while its pack has not
    workdir = tmp_path / "killed"
    prepare(workdir, cfg)
    marker = workdir / "results" / "tiny" / "packs" / f"{pack}.done"
    proc = subprocess.Popen(command(workdir, "-c1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not any((workdir / m / "metrics.json").exists() for m in members):
            assert proc.poll() is None, "the workflow ended before any member finished"
            assert time.monotonic() < deadline, "no member finished in time"
            time.sleep(0.02)
    finally:
        kill_everything(proc)
    assert not marker.exists(), "the pack finished before it could be killed"
    finished = {m: (workdir / m / "metrics.json").read_bytes() for m in members
                if (workdir / m / "metrics.json").exists()}
    assert 1 <= len(finished) < len(members)
    mtimes = {m: (workdir / m / "metrics.json").stat().st_mtime_ns for m in finished}

    # the rerun: Snakemake's lock of the killed run is left behind
    run(workdir, "--unlock")
    run(workdir, "-c1")
    status = {Path(d).name: s for d, s in json.loads(marker.read_text())["members"].items()}
    assert status == {m.name: "done-before" if m in finished else "trained" for m in members}
    for m, content in finished.items():
        assert (workdir / m / "metrics.json").read_bytes() == content
        assert (workdir / m / "metrics.json").stat().st_mtime_ns == mtimes[m]
    # the rerun's log counts them as done before and never names them (no training lines)
    log = (workdir / "results" / "tiny" / "packs" / f"{pack}.log").read_text()
    assert f"{len(finished)} done-before, {len(members) - len(finished)} trained" in log, log
    for m in members:
        assert (m.name in log) == (m not in finished), (m.name, log)

    results = pd.read_csv(workdir / TARGET).set_index("config_id").sort_index()
    assert list(results.index) == sorted(m.name for m in members) == list(expected.index)
    np.testing.assert_allclose(results[COMPARED].to_numpy(float),
                               expected[COMPARED].to_numpy(float), rtol=1e-6, atol=1e-9)
    assert "Nothing to be done" in run(workdir, "-n")
