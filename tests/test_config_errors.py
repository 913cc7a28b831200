"""A bad config or dataset file stops the workflow before any job runs, naming the problem.

Each case runs `snakemake -n` (or a real run) in a subprocess on a temporary config and checks
the exit status, the message and that nothing was produced.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from rcpb.data.format import Dataset, write_dataset

ROOT = Path(__file__).resolve().parents[1]


def config(dataset_file="d.h5", **recurrent):
    rec = {"recurrent_layers": [1], "iterations": [2], "readout": ["no-avg"]}
    rec.update(recurrent)
    return {
        "datasets": {"d": {"file": dataset_file, "grid": "g"}},
        "grids": {"g": {
            "common": {"train_fraction": [1.0], "channels": [4], "act": ["relu"],
                       "first_block_order": ["bn_act"], "loss": ["poisson"],
                       "model_seed": [0]},
            "ff": {"blocks": [3]},
            "recurrent": rec,
        }},
    }


def good_dataset(n=40, size=16):
    rng = np.random.default_rng(0)
    return Dataset(images=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
                   responses=rng.poisson(2.0, (n, 4, 3)).astype(np.float32))


def snakemake(workdir, cfg, *args):
    (workdir / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
           "-d", str(workdir), "-c1", "--configfile", str(workdir / "c.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def assert_stopped(result, *words, workdir):
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    for word in words:
        assert word in out, out
    assert not (workdir / "results").exists()


def test_unknown_readout_mode(tmp_path):
    write_dataset(tmp_path / "d.h5", good_dataset())
    result = snakemake(tmp_path, config(readout=["mean-avg"]), "-n")
    assert_stopped(result, "grids.g.recurrent.readout", "mean-avg", workdir=tmp_path)


def test_negative_channels(tmp_path):
    write_dataset(tmp_path / "d.h5", good_dataset())
    cfg = config()
    cfg["grids"]["g"]["common"]["channels"] = [-8]
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "grids.g.common.channels", "-8", workdir=tmp_path)


def test_unknown_key(tmp_path):
    write_dataset(tmp_path / "d.h5", good_dataset())
    cfg = config()
    cfg["trainig"] = {"max_steps": 10}
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "'trainig' was unexpected", workdir=tmp_path)


def test_dataset_file_that_does_not_validate(tmp_path):
    ds = good_dataset()
    ds.responses[3, :, 1] = np.nan  # a stimulus without any valid trial for neuron 1
    write_dataset(tmp_path / "d.h5", ds)
    result = snakemake(tmp_path, config(), "-n")
    assert_stopped(result, "datasets.d", "d.h5", "responses", "no valid", workdir=tmp_path)


def test_negative_responses_with_poisson_loss(tmp_path):
    ds = good_dataset()
    ds.responses[0, 0, 0] = -1.0
    write_dataset(tmp_path / "d.h5", ds)
    result = snakemake(tmp_path, config(), "-n")
    assert_stopped(result, "negative", "poisson", workdir=tmp_path)


def test_float_noise_passes_only_within_the_stated_tolerance(tmp_path):
    ds = good_dataset()
    ds.responses[0, 0, 0] = -2e-8          # float noise of a deconvolved trace
    write_dataset(tmp_path / "d.h5", ds)
    cfg = config()
    cfg["datasets"]["d"]["preprocess"] = {"clip_negative": 1e-6}
    result = snakemake(tmp_path, cfg, "-n")
    assert result.returncode == 0, result.stdout + result.stderr
    ds.responses[1, 0, 0] = -0.25          # beyond it: stopped, naming the tolerance
    write_dataset(tmp_path / "d.h5", ds)
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "datasets.d", "beyond the stated tolerance clip_negative = 1e-06",
                   workdir=tmp_path)
    cfg["datasets"]["d"]["preprocess"] = {"clip_negative": -1}
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "clip_negative", "-1", workdir=tmp_path)


def test_a_small_training_set_is_warned_about_not_refused(tmp_path):
    write_dataset(tmp_path / "d.h5", good_dataset(n=40))      # 26 training stimuli
    result = snakemake(tmp_path, config(), "-n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("warning: datasets.d" in result.stderr
            and "the training split has 26 stimuli (generated split), fewer than 200"
            in result.stderr)


def test_images_too_small_for_the_model(tmp_path):
    write_dataset(tmp_path / "d.h5", good_dataset(size=16))
    cfg = config()
    cfg["datasets"]["d"]["preprocess"] = {"downsample": 4}  # 16 px -> 4 px input
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "datasets.d: preprocess", "4 x 4 px", "9 x 9", workdir=tmp_path)


def test_missing_dataset_file(tmp_path):
    # a dry run shows the jobs, with the file as a job of its own ...
    dry = snakemake(tmp_path, config("data/missing.h5"), "-n")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dataset_file_missing" in dry.stdout + dry.stderr
    # ... a real run stops before any job, naming the file
    run = snakemake(tmp_path, config("data/missing.h5"))
    assert_stopped(run, "data/missing.h5", "not found", workdir=tmp_path)


def test_two_split_seeds_with_a_stored_split(tmp_path):
    ds = good_dataset()
    ds.split = np.array([2] * 8 + [1] * 6 + [0] * 26, np.int8)
    write_dataset(tmp_path / "d.h5", ds)
    cfg = config()
    cfg["grids"]["g"]["common"]["split_seed"] = [0, 1]
    result = snakemake(tmp_path, cfg, "-n")
    assert_stopped(result, "datasets.d", "d.h5", "split_seed [0, 1]", "split: generated",
                   workdir=tmp_path)
    # the fix named in the message: one split drawn per split_seed
    cfg["datasets"]["d"]["preprocess"] = {"split": "generated"}
    fixed = snakemake(tmp_path, cfg, "-n")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
