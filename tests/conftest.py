"""Shared fixtures: tiny dataset files built in a temporary directory."""

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
    """Skip without a C compiler; with one, fail if rcpb/models/kernels.c did not build."""
    from rcpb.models import kernels

    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: the kernels are not built here")
    assert kernels.available(), "a C compiler is present but kernels.c did not build"
