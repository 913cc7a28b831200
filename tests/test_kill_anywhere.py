"""Kill the workflow anywhere, rerun it: the same results, and no finished training is redone.

One small workflow (6 feed-forward and recurrent trainings in 2 packs of 3, trained one at a
time) is run once uninterrupted for reference. In another folder the same workflow is started
and its whole process tree is killed with SIGKILL at each of these points in turn, every time
rerun as the README says (``snakemake --unlock``, then the same command with
``--rerun-incomplete``), the rerun itself being the run that is killed at the next point:

1. while the dataset is simulated (its job's log exists, Snakemake has not finished the job);
2. in the middle of a pack (a member has its metrics.json, the pack has no marker yet);
3. while results.csv is aggregated (the aggregation's log exists, the job is not finished);
4. while ``snakemake --report`` writes the report (after "Creating report...", before
   "Report created.").

The points are found by watching the files and Snakemake's output, never by sleeping. Right
after each kill every finished training (its metrics.json: inode and mtime) is recorded; after
the last rerun none of them may have changed (a changed one was trained again). The final
results.csv must equal the reference in every column but the wall time, and every model's
log.csv (its whole training curve) must be the same file.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from test_pack_workflow import command, kill_everything, prepare, run

DATASET = Path("results") / "tiny"
RESULTS = DATASET / "results.csv"
#: columns that measure time, not results: left out of every comparison
TIMING_COLUMNS = ("wall_time_s",)
#: how long to wait for a kill point before calling it missed (seconds)
WAIT_S = 300


def learning(tiny, max_steps: int) -> dict:
    """The tiny workflow on data its models learn within a few steps: responses of a
    feed-forward teacher network (seeded, like the recurrent circuit of the tiny workflow, on
    which 30 steps do not beat the first evaluation), trained with lr 0.01 for ``max_steps``
    steps without early stopping, so that best.pt and the metrics come from a trained model
    (best step > 0) rather than from the initial weights."""
    cfg = copy.deepcopy(tiny)
    cfg["datasets"]["tiny"]["simulate"].update(circuit="feedforward_teacher", input_size=None)
    cfg["training"].update(phases=1, max_steps=max_steps, eval_every=5, patience=100, lr=0.01)
    return cfg


def kill_config(tiny):
    """The learning tiny workflow with 2 packs of 3 trainings (feed-forward and recurrent
    2-avg, seeds 0-2), trained one at a time (pack_slots 1) for 40 steps each, so that a pack
    spends a second or more between its first and its last finished member."""
    cfg = learning(tiny, max_steps=40)
    cfg["pack_slots"] = 1
    cfg["grids"]["g"] = {
        "common": dict(cfg["grids"]["g"]["common"], model_seed=[0, 1, 2]),
        "ff": {"blocks": [3]},
        "recurrent": {"recurrent_layers": [1], "iterations": [2], "readout": ["2-avg"]},
    }
    return cfg


# ----------------------------------------------------------------------------- comparisons


def assert_same_results(got: Path, expected: Path, atol: float = 0.0) -> float:
    """results.csv ``got`` equals ``expected``: the same rows (by config_id) and columns, text
    columns equal, numeric columns within ``atol`` (NaN where the other is NaN); the timing
    columns are left out. Returns the largest numeric difference found."""
    a = pd.read_csv(got).set_index("config_id").sort_index()
    b = pd.read_csv(expected).set_index("config_id").sort_index()
    assert list(a.index) == list(b.index), f"{got}: other rows than {expected}"
    assert list(a.columns) == list(b.columns), f"{got}: other columns than {expected}"
    assert set(TIMING_COLUMNS) <= set(a.columns)
    a, b = a.drop(columns=list(TIMING_COLUMNS)), b.drop(columns=list(TIMING_COLUMNS))
    numeric = [c for c in a.columns if pd.api.types.is_numeric_dtype(b[c])]
    text = [c for c in a.columns if c not in numeric]
    pd.testing.assert_frame_equal(a[text], b[text], check_dtype=False)
    x, y = a[numeric].to_numpy(float), b[numeric].to_numpy(float)
    assert np.array_equal(np.isnan(x), np.isnan(y)), f"{got}: NaN in other places"
    diff = float(np.nanmax(np.abs(x - y), initial=0.0))
    worst = numeric[int(np.nanargmax(np.nanmax(np.abs(x - y), axis=0)))] if diff else None
    assert diff <= atol, f"{got}: column {worst} differs by {diff:.3g} (> {atol})"
    return diff


def model_folders(workdir: Path) -> list[Path]:
    """Every model folder of the dataset (relative to ``workdir``), sorted."""
    return sorted(p.parent.relative_to(workdir)
                  for p in (workdir / DATASET).glob("*/*/config.json"))


def finished_trainings(workdir: Path) -> dict[Path, tuple[int, int]]:
    """metrics.json of every finished training -> (inode, mtime in ns). Rewriting the file
    (atomically: a new file renamed over it) changes both."""
    out = {}
    for path in (workdir / DATASET).glob("*/*/metrics.json"):
        st = path.stat()
        out[path.relative_to(workdir)] = (st.st_ino, st.st_mtime_ns)
    return out


# ----------------------------------------------------------------------------- killing


def wait_until(proc, condition, what: str) -> None:
    """Poll ``condition()`` every 10 ms until true; fail if ``proc`` ends first (the point was
    missed) or after WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"{what}: not reached in {WAIT_S} s"
        time.sleep(0.01)


def finished_job(output: str, rule: str) -> bool:
    return re.search(rf"Finished jobid: \d+ \(Rule: {rule}\)", output) is not None


def kill_when(workdir: Path, log: Path, condition, what: str, *args: str) -> str:
    """Start ``snakemake -c1 results.csv *args`` in ``workdir`` (own process group, output to
    ``log``), SIGKILL it and every process below it once ``condition()`` holds. Returns
    Snakemake's output up to the kill."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command(workdir, "-c1", *args), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(proc, condition, what)
        finally:
            kill_everything(proc)
    return log.read_text()


def unlock(workdir: Path) -> None:
    """What the README says to do after a killed run: remove the lock it left."""
    run(workdir, "--unlock")


def kill_report(report_cmd: list[str]) -> bool:
    """Start ``snakemake --report`` (``report_cmd``) and SIGKILL it as soon as it prints
    "Creating report..."; True if the kill landed before "Report created." (it writes the file
    in a fraction of a second, so a busy machine may miss it)."""
    proc = subprocess.Popen(report_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Creating report" in line:
                break
    finally:
        kill_everything(proc)
    seen += proc.stdout.readlines()
    proc.stdout.close()
    assert any("Creating report" in line for line in seen), "".join(seen)[-2000:]
    return not any("Report created" in line for line in seen)


@pytest.mark.slow
def test_killed_anywhere_the_rerun_gives_the_uninterrupted_results(tmp_path,
                                                                   tiny_workflow_config):
    cfg = kill_config(tiny_workflow_config)
    reference, workdir = tmp_path / "reference", tmp_path / "killed"
    prepare(reference, cfg)
    prepare(workdir, cfg)
    # the uninterrupted run, alongside the killed ones (its numbers do not depend on load)
    with open(tmp_path / "reference.log", "w") as ref_log:
        ref_proc = subprocess.Popen(command(reference, "-c1"), stdout=ref_log,
                                    stderr=subprocess.STDOUT)
    logs = tmp_path / "logs"
    logs.mkdir()
    kills = {}          # kill point -> finished trainings right after the kill

    # 1. during the simulation of the dataset
    simulate_log = workdir / "results/logs/simulate_dataset/tiny.log"
    out = kill_when(workdir, logs / "1.log", simulate_log.exists, "the simulation started")
    assert "simulate_dataset" in out and not finished_job(out, "simulate_dataset"), out[-2000:]
    kills["simulation"] = finished_trainings(workdir)
    assert not kills["simulation"]
    # the killed run's lock is left behind: the same command is refused until --unlock
    refused = subprocess.run(command(workdir, "-c1", "--rerun-incomplete"), capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode != 0 and "LockException" in refused.stdout + refused.stderr, (
        refused.stdout[-2000:] + refused.stderr[-2000:])
    unlock(workdir)

    # 2. in the middle of a pack: a member finished, its pack's marker not written
    out = kill_when(workdir, logs / "2.log", lambda: bool(finished_trainings(workdir)),
                    "a training finished", "--rerun-incomplete")
    kills["mid-pack"] = finished_trainings(workdir)
    assert finished_job(out, "simulate_dataset"), out[-2000:]
    packs_done = list((workdir / DATASET / "packs").glob("*.done"))
    assert packs_done == [], f"a pack finished before the kill: {packs_done}"
    assert 1 <= len(kills["mid-pack"]) < 3, kills["mid-pack"]
    unlock(workdir)

    # 3. during the aggregation (results.csv)
    aggregate_log = workdir / "results/logs/aggregate/tiny.log"
    out = kill_when(workdir, logs / "3.log", aggregate_log.exists, "the aggregation started",
                    "--rerun-incomplete")
    assert not finished_job(out, "aggregate") and not (workdir / RESULTS).exists(), out[-2000:]
    kills["aggregation"] = finished_trainings(workdir)
    assert len(kills["aggregation"]) == 6
    unlock(workdir)

    # the last rerun, uninterrupted
    run(workdir, "-c1", "--rerun-incomplete")

    # 4. during the report (a separate command): its own item is a table
    table = str(DATASET / "tables" / "table1.csv")
    run(workdir, table, "-c1")  # targets before options
    report = workdir / "results" / "report.html"
    report_cmd = command(workdir, table, "--report", str(report.relative_to(workdir)))
    tries = 1
    while not kill_report(report_cmd):       # written before the kill landed: try again
        tries += 1
        assert tries <= 3, "the report was written each of 3 times before the kill landed"
    left = (f"{report.stat().st_size} bytes" if report.exists() else "none")
    kills["report"] = finished_trainings(workdir)
    again = subprocess.run(report_cmd, capture_output=True, text=True, timeout=300)
    report_unlocked = again.returncode != 0 and "LockException" in again.stdout + again.stderr
    if report_unlocked:
        unlock(workdir)
        again = subprocess.run(report_cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    html = report.read_text()
    assert html.rstrip().endswith("</html>") and "table1.csv" in html

    # no training finished before a kill was trained again
    now = finished_trainings(workdir)
    counts = {point: (len(before), sum(now.get(p) != v for p, v in before.items()))
              for point, before in kills.items()}
    summary = "; ".join(f"{point}: {n} finished before the kill, {r} retrained after"
                        for point, (n, r) in counts.items())
    print(f"\nkill points: {summary}; report killed at try {tries}, report.html left by "
          f"the kill: {left}, rerun of the report needed --unlock: {report_unlocked}")
    assert all(r == 0 for _, r in counts.values()), summary
    assert (counts["simulation"][0], counts["aggregation"][0]) == (0, 6), summary
    # the pack killed in the middle trained only its members without metrics.json
    for marker in (workdir / DATASET / "packs").glob("*.done"):
        for folder, state in json.loads(marker.read_text())["members"].items():
            kept = Path(folder) in {p.parent for p in kills["mid-pack"]}
            assert state == ("done-before" if kept else "trained"), (marker, folder, state)

    # the same numbers as the uninterrupted run
    assert ref_proc.wait(timeout=900) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    with h5py.File(workdir / "data" / "tiny.h5") as got, \
            h5py.File(reference / "data" / "tiny.h5") as want:
        np.testing.assert_array_equal(got["responses"][:], want["responses"][:])
    diff = assert_same_results(workdir / RESULTS, reference / RESULTS, atol=1e-9)
    print(f"largest difference to the uninterrupted results.csv: {diff}")
    best_steps = pd.read_csv(workdir / RESULTS)["best_step"]
    assert (best_steps > 0).all(), "a model kept its initial weights: compare trained models"
    assert model_folders(workdir) == model_folders(reference)
    for folder in model_folders(reference):
        assert (workdir / folder / "log.csv").read_text() == (
            reference / folder / "log.csv").read_text(), folder
    # nothing half-written is left: no temporary file of an atomic write
    stray = list(workdir.rglob("*.tmp.*"))
    assert stray == [], stray
    assert "Nothing to be done" in run(workdir, "-n")
