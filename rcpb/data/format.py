"""The dataset file format (SPEC 2.1): one HDF5 file per dataset.

Datasets inside the file:

- ``images``: uint8 or float32 ``[n_stimuli, H, W]``, grayscale.
- ``responses``: float32 ``[n_stimuli, n_trials, n_neurons]``, one value per trial
  (spike count or rate in a fixed window), NaN where a trial is missing.
- optional ``split``: int8 ``[n_stimuli]``, 0 train / 1 validation / 2 test.
- optional ``neuron_ids``: strings ``[n_neurons]``.
- optional ``true_rates``: float32 ``[n_stimuli, n_neurons]`` (simulated data only),
  the noise-free mean rate behind the trials.

File attributes: ``name``, ``source``, ``license``, ``units`` (all optional strings) and
any other scalar attributes (e.g. simulator parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Dataset:
    """A dataset held in memory; see the module docstring for shapes."""

    images: np.ndarray
    responses: np.ndarray
    split: np.ndarray | None = None
    neuron_ids: list[str] | None = None
    true_rates: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def n_stimuli(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.responses.shape[2])


def write_dataset(path: str | Path, ds: Dataset) -> None:
    """Write ``ds`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    import h5py

    with h5py.File(tmp, "w") as f:
        f.create_dataset("images", data=ds.images, compression="gzip", compression_opts=4)
        f.create_dataset("responses", data=np.asarray(ds.responses, dtype=np.float32))
        if ds.split is not None:
            f.create_dataset("split", data=np.asarray(ds.split, dtype=np.int8))
        if ds.neuron_ids is not None:
            f.create_dataset("neuron_ids", data=np.array(ds.neuron_ids, dtype=object),
                             dtype=h5py.string_dtype())
        if ds.true_rates is not None:
            f.create_dataset("true_rates", data=np.asarray(ds.true_rates, dtype=np.float32))
        for key, value in ds.attrs.items():
            f.attrs[key] = value
    tmp.replace(path)


def read_raw(path: str | Path) -> Dataset:
    """Read a dataset file without validating it (see ``rcpb.data.validate``)."""
    import h5py

    with h5py.File(path, "r") as f:
        def get(name):
            return f[name][()] if name in f else None

        ids = get("neuron_ids")
        if ids is not None:
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        return Dataset(
            images=get("images"),
            responses=get("responses"),
            split=get("split"),
            neuron_ids=ids,
            true_rates=get("true_rates"),
            attrs=dict(f.attrs),
        )
