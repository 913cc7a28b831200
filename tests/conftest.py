"""Shared fixtures: tiny dataset files built in a temporary directory, the tiny workflow config."""

import copy
import os
import shutil

import numpy as np
import pytest

from rcpb.data.format import Dataset, write_dataset


def tiny_dataset(n=20, h=8, w=8, trials=3, neurons=4, seed=0, **fields) -> Dataset:
    """A valid Dataset: uint8 images [n, h, w], Poisson-like counts [n, trials, neurons]."""
    rng = np.random.default_rng(seed)
    ds = Dataset(images=rng.integers(0, 256, size=(n, h, w), dtype=np.uint8),
                 responses=rng.poisson(3.0, size=(n, trials, neurons)).astype(np.float32),
                 attrs={"name": "tiny"})
    for key, value in fields.items():
        setattr(ds, key, value)
    return ds


@pytest.fixture
def make_dataset():
    """make_dataset(**kwargs) -> Dataset, see tiny_dataset."""
    return tiny_dataset


@pytest.fixture
def write_tiny(tmp_path):
    """write_tiny(name="d.h5", **Dataset fields/overrides) -> path of a written tiny file."""
    def write(name="d.h5", **kwargs):
        path = tmp_path / name
        write_dataset(path, tiny_dataset(**kwargs))
        return path
    return write


@pytest.fixture
def require_kernels():
    """Skip without a C compiler; with one, fail if rcpb/accel/kernels.c did not build."""
    from rcpb.accel import kernels

    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: the kernels are not built here")
    assert kernels.available(), "a C compiler is present but kernels.c did not build"


# The tiny workflow of the end-to-end tests: 1 feed-forward, 2 recurrent, 2 multi-path and 2
# rm-ablation trainings (plus 4 le/ge aliases) on 160 simulated stimuli, 10 steps each.
_TINY_WORKFLOW = {
    "threads": 1,
    "training": {"batch_size": 32, "phases": 1, "eval_every": 5, "patience": 2,
                 "max_steps": 10},
    "datasets": {"tiny": {
        "simulate": {"circuit": "recurrent", "images": "images.h5", "neurons": 6, "trials": 4,
                     "seed": 0, "input_size": 37},
        "preprocess": {"crop": 36, "downsample": 2},
        "grid": "g",
    }},
    "grids": {"g": {
        "common": {"train_fraction": [1.0], "channels": [4], "act": ["relu"],
                   "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0]},
        "ff": {"blocks": [3]},
        "recurrent": {"recurrent_layers": [1], "iterations": [2],
                      "readout": ["no-avg", "2-avg"]},
        "multipath": {},
        "ablation_rm": {"readout": ["2-avg"], "remove_adjacent": [1]},
        "ablation_lege": {"readout": ["2-avg"]},
    }},
}


@pytest.fixture(scope="module")
def tiny_workflow_config():
    """A fresh copy of the tiny workflow config (tests/test_workflow*.py)."""
    return copy.deepcopy(_TINY_WORKFLOW)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module: tiny models run fastest (and steadiest on a busy
    machine) on one thread, as training jobs do; the thread count is restored afterwards."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
