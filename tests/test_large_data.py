"""Large datasets: the training data path holds what training needs, not the file's trials
(docs/performance.md "Large datasets"; benchmarks/large_dataset.py measures it at full size).

A recording of many single-trial stimuli and a few repeated ones stores its trials NaN-padded:
``responses`` [stimuli, trials, neurons] is mostly NaN. Training needs the trial means, and the
noise ceiling the trials of the repeated stimuli only; these tests hold the preparation to that,
and every number to what the whole array gives.
"""

import dataclasses
import json
import tracemalloc

import numpy as np
import pytest

from rcpb import metrics
from rcpb.data import validate
from rcpb.data.format import Dataset, write_dataset
from rcpb.data.prepare import prepare
from rcpb.data.preprocess import neuron_scale_factors, trial_average
from rcpb.errors import RcpbError
from rcpb.pack.run import with_fraction
from rcpb.train import score

TRIALS = 32


def sparse_repeats(n=1200, trials=TRIALS, neurons=40, repeated=60, seed=0) -> Dataset:
    """10 x 10 px images; one trial per stimulus, ``trials`` for ``repeated`` of them (NaN-padded
    trial axis; a few repeated stimuli with fewer trials, one repeated for two neurons only), a
    stored split with the repeated stimuli in the test set and a few in validation."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, 1.0, size=(n, 1, neurons))
    responses = np.full((n, trials, neurons), np.nan, dtype=np.float32)
    responses[:, :1] = rng.poisson(rates)
    many = rng.choice(n, repeated, replace=False)
    responses[many] = rng.poisson(rates[many], size=(repeated, trials, neurons))
    responses[many[:5], trials // 2:] = np.nan
    responses[many[5], 1:, 2:] = np.nan
    split = np.zeros(n, dtype=np.int8)
    split[many[:-5]] = 2
    split[rng.choice(np.setdiff1d(np.arange(n), many), n // 10, replace=False)] = 1
    split[many[-5:]] = 1
    return Dataset(images=rng.integers(0, 256, size=(n, 10, 10), dtype=np.uint8),
                   responses=responses, split=split, attrs={"name": "sparse"})


@pytest.fixture
def sparse_file(tmp_path):
    ds = sparse_repeats()
    path = tmp_path / "sparse.h5"
    write_dataset(path, ds)
    return str(path), ds


def test_preparation_never_holds_the_files_trials(sparse_file, monkeypatch):
    """prepare reads the trials a block at a time: its peak of allocations stays under half of
    the whole responses array (which the former path read, then copied twice in float64)."""
    path, ds = sparse_file
    whole = ds.responses.nbytes
    monkeypatch.setattr(validate, "READ_BYTES", whole // 40)     # blocks of 30 stimuli
    tracemalloc.start()
    try:
        data = prepare(path, {}, 0, 1.0, loss="poisson")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole / 2, f"peak {peak:,} bytes, the trials are {whole:,}"
    # what it keeps: the trials of the repeated stimuli only
    repeated = np.flatnonzero((~np.isnan(ds.responses)).sum(axis=1).max(axis=1) >= 2)
    np.testing.assert_array_equal(data.trial_stimuli, repeated)
    np.testing.assert_array_equal(data.responses, ds.responses[repeated])
    assert data.x_train.dtype == data.y_train.dtype == np.float32


def test_trial_means_read_in_blocks_equal_the_whole_arrays(sparse_file, monkeypatch):
    path, _ = sparse_file
    monkeypatch.setattr(validate, "READ_BYTES", 40 * TRIALS * 4 * 7)  # blocks of 7 stimuli
    whole = validate.load_dataset(path, clip_negative=0.5)
    ds, means, stimuli = validate.load_trial_means(path, clip_negative=0.5)
    np.testing.assert_array_equal(means, trial_average(whole.responses))
    np.testing.assert_array_equal(stimuli, metrics.repeated_stimuli(whole.responses))
    np.testing.assert_array_equal(ds.responses, whole.responses[stimuli])
    np.testing.assert_array_equal(ds.images, whole.images)
    np.testing.assert_array_equal(ds.split, whole.split)
    assert ds.attrs == whole.attrs and ds.true_rates is None


@pytest.mark.parametrize("field,value,match", [
    ("responses", (40, 3, 0, np.nan), "no valid"),        # a stimulus of the 6th block
    ("responses", (41, 0, 1, -1.0), "negative"),
    ("responses", (42, 0, 2, np.inf), "inf"),
    ("split", (43, 7), "split"),
])
def test_a_problem_in_one_block_is_reported_as_for_the_whole_file(tmp_path, monkeypatch, field,
                                                                   value, match):
    ds = sparse_repeats(n=200, repeated=10)
    *where, bad = value
    if field == "responses" and np.isnan(bad):
        ds.responses[tuple(where[:1])] = np.nan              # every trial of that stimulus
    else:
        getattr(ds, field)[tuple(where)] = bad
    path = tmp_path / "bad.h5"
    write_dataset(path, ds)
    monkeypatch.setattr(validate, "READ_BYTES", 40 * TRIALS * 4 * 7)
    with pytest.raises(RcpbError, match=match) as whole:
        validate.load_dataset(path, loss="poisson")
    with pytest.raises(RcpbError) as blocks:
        validate.load_trial_means(path, loss="poisson")
    assert str(blocks.value) == str(whole.value)


@pytest.mark.parametrize("pre", [{}, {"neuron_scale": 0.5, "ceiling_stimuli": "all"},
                                 {"split": "generated"}])
@pytest.mark.parametrize("k", [None, 2])
def test_scores_from_the_kept_trials_equal_those_from_every_trial(sparse_file, pre, k,
                                                                  monkeypatch):
    """score appends the one trial of each unrepeated stimulus (its target), a block of neurons
    at a time: every metric, the per-neuron ceilings included, is what the whole trial array
    gives."""
    import rcpb.train

    monkeypatch.setattr(rcpb.train, "NEURON_BLOCK", 7)
    path, ds = sparse_file
    data = prepare(path, pre, 0, 1.0)
    assert data.trial_stimuli is not None
    responses = ds.responses
    if pre.get("neuron_scale"):     # the trials scaled as prepare scales them
        train = trial_average(ds.responses)[ds.split == 0]
        responses = (responses * neuron_scale_factors(train, 0.5)).astype(np.float32)
    np.testing.assert_array_equal(responses[data.trial_stimuli], data.responses)
    every = dataclasses.replace(data, responses=responses, trial_stimuli=None)
    rng = np.random.default_rng(1)
    for split in ("train", "val", "test"):
        y = getattr(data, f"y_{split}")
        pred = y + rng.normal(size=y.shape)
        config = {"cc_max_trials": k}
        assert (json.dumps(score(pred, data, split, config), sort_keys=True)
                == json.dumps(score(pred, every, split, config), sort_keys=True))


def test_a_smaller_fraction_shares_the_larger_ones_arrays(sparse_file):
    """A pack prepares a split once, at its members' largest fraction (rcpb.pack.run): the
    smaller fractions are equal to their own preparation and share every array but the
    training rows."""
    path, _ = sparse_file
    full = prepare(path, {"split": "generated"}, 3, 0.5)
    for fraction in (0.5, 0.25):
        own = prepare(path, {"split": "generated"}, 3, fraction)
        cut = with_fraction(full, fraction, 3)
        for f in dataclasses.fields(own):
            a, b = getattr(own, f.name), getattr(cut, f.name)
            assert (np.array_equal(a, b, equal_nan=True) if isinstance(a, np.ndarray)
                    else a == b), f.name
        for name in ("x_val", "y_val", "x_test", "y_test", "responses"):
            assert getattr(cut, name) is getattr(full, name)


def test_the_mean_training_response_is_torchs_nanmean():
    """The readout bias starts from the mean training response (rcpb.pack.trainer), counted in
    blocks of rows instead of torch.nanmean's int64 copy of the training targets."""
    import torch

    from rcpb.pack.trainer import nanmean_rows

    g = torch.Generator().manual_seed(0)
    for shape, missing in (((3001, 77), 0.3), ((2048, 10), 0.0), ((5, 3), 1.0)):
        y = torch.rand(shape, generator=g) * 5
        y[torch.rand(shape, generator=g) < missing] = float("nan")
        for t in (y, y.double()):
            assert torch.equal(torch.nanmean(t, 0).nan_to_num(-1.0),
                               nanmean_rows(t, block=100).nan_to_num(-1.0))


def test_the_benchmark_runs_on_a_small_dataset(tmp_path):
    """benchmarks/large_dataset.py at a small size: it writes its dataset, runs the training job,
    the aggregation and the baselines under /usr/bin/time and prints their peaks (no number is
    checked but that the models learned something)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "large_dataset.py"
    if not os.path.exists("/usr/bin/time"):
        pytest.skip("/usr/bin/time is not installed (apt-get install time)")
    proc = subprocess.run(
        [sys.executable, str(script), "--stimuli", "400", "--neurons", "30", "--side", "16",
         "--test", "40", "--val", "60", "--steps", "30", "--batch", "32", "--threads", "1",
         "--out", str(tmp_path), "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert [s["step"] for s in out["steps"]] == ["train", "aggregate", "baselines"]
    assert all(s["peak_rss_mb"] > 0 for s in out["steps"])
    assert "peak RSS" in proc.stdout
    for metrics in (tmp_path / "results" / "large" / "ff").glob("*/metrics.json"):
        assert json.loads(metrics.read_text())["test"]["cc_raw"] > 0
