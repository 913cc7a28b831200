"""Two Snakemake runs in one working directory at the same time.

Snakemake locks files, not the directory: a run records its input and output files under
.snakemake/locks, and a second run is refused (LockException) only when it would write a file
the first one reads or writes. So:

- the same config started again while it runs is refused, with Snakemake's lock message, and
  the first run finishes normally;
- a config with another dataset (other files: data/NAME.h5, results/NAME/...) runs alongside
  it, and both results.csv equal those of each config run alone in a folder of its own.

Two 2-training workflows (feed-forward and recurrent 2-avg) on the tiny simulated data, with
other dataset names and simulation seeds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from test_kill_anywhere import assert_same_results, learning

ROOT = Path(__file__).resolve().parents[1]


def config(tiny, name: str, seed: int) -> dict:
    """The tiny workflow (tests/test_kill_anywhere.py: learning) with one dataset ``name``
    simulated with ``seed`` and 2 trainings."""
    cfg = learning(tiny, max_steps=20)
    dataset = cfg["datasets"].pop("tiny")
    dataset["simulate"]["seed"] = seed
    cfg["datasets"] = {name: dataset}
    cfg["grids"]["g"] = {
        "common": cfg["grids"]["g"]["common"],
        "ff": {"blocks": [3]},
        "recurrent": {"recurrent_layers": [1], "iterations": [2], "readout": ["2-avg"]},
    }
    return cfg


def prepare(workdir: Path, configs: dict[str, dict]) -> None:
    """images.h5 (160 images) and one NAME.yaml per config in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(workdir / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    for name, cfg in configs.items():
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(cfg))


def command(workdir: Path, name: str, *args: str) -> list[str]:
    """snakemake results/NAME/results.csv with config NAME.yaml in ``workdir``."""
    return [sys.executable, "-m", "snakemake", f"results/{name}/results.csv", *args,
            "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
            "--configfile", str(workdir / f"{name}.yaml")]


def start(workdir: Path, name: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(command(workdir, name, "-c1"), stdout=out,
                                stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path) -> str:
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    return log.read_text()


def holds_locks(workdir: Path) -> int:
    """Number of lock files under .snakemake/locks (2 per running Snakemake: input, output)."""
    return len(list((workdir / ".snakemake" / "locks").glob("*.lock")))


def started_a_job(workdir: Path, name: str) -> bool:
    """A job of dataset ``name`` has started (its log under results/logs exists)."""
    return any((workdir / "results" / "logs").glob(f"*/{name}.log"))


def wait_until(condition, procs, what: str, timeout: float = 300) -> None:
    """Poll ``condition()`` every 10 ms; fail if a process of ``procs`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"a run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_same_files_are_refused_other_datasets_run_alongside(tmp_path, tiny_workflow_config):
    configs = {"tinyA": config(tiny_workflow_config, "tinyA", 0),
               "tinyB": config(tiny_workflow_config, "tinyB", 1)}
    shared = tmp_path / "shared"
    prepare(shared, configs)
    logs = {name: tmp_path / f"{name}.log" for name in configs}

    a = start(shared, "tinyA", logs["tinyA"])
    wait_until(lambda: holds_locks(shared) >= 2 and started_a_job(shared, "tinyA"), [a],
               "run A holds its lock and started a job")
    b = start(shared, "tinyB", logs["tinyB"])

    # the same config again, while A runs: refused by the lock, nothing of A touched
    again = subprocess.run(command(shared, "tinyA", "-c1"), capture_output=True, text=True,
                           timeout=300)
    message = again.stdout + again.stderr
    assert again.returncode != 0, message[-3000:]
    assert "LockException" in message and "Directory cannot be locked" in message, message[-3000:]

    # B (another dataset) is not refused: it runs jobs while A is still running
    wait_until(lambda: started_a_job(shared, "tinyB"), [a, b], "run B started a job while A runs")
    assert a.poll() is None, "run A ended before run B started a job: they did not overlap"
    finish(a, logs["tinyA"])
    finish(b, logs["tinyB"])

    # each config alone in a folder of its own (both at once: separate folders)
    alone = {name: tmp_path / f"alone_{name}" for name in configs}
    procs = {}
    for name, folder in alone.items():
        prepare(folder, {name: configs[name]})
        procs[name] = start(folder, name, tmp_path / f"alone_{name}.log")
    for name, proc in procs.items():
        finish(proc, tmp_path / f"alone_{name}.log")

    for name, folder in alone.items():
        with h5py.File(shared / "data" / f"{name}.h5") as got, \
                h5py.File(folder / "data" / f"{name}.h5") as want:
            np.testing.assert_array_equal(got["responses"][:], want["responses"][:])
        diff = assert_same_results(shared / "results" / name / "results.csv",
                                   folder / "results" / name / "results.csv")
        print(f"\n{name}: run alongside the other vs alone: largest difference {diff}")
        # Snakemake's records of both runs are whole: nothing left to do for either
        dry = subprocess.run(command(shared, name, "-n"), capture_output=True, text=True,
                             timeout=300)
        assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    # the datasets differ (other seeds): the comparison above is not of identical files
    with h5py.File(shared / "data" / "tinyA.h5") as x, h5py.File(shared / "data" / "tinyB.h5") as y:
        assert not np.array_equal(x["responses"][:], y["responses"][:])
