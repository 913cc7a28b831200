"""The dataset file format (SPEC 2.1): one HDF5 file per dataset.

Datasets inside the file:

- ``images``: uint8 or float32 ``[n_stimuli, H, W]``, grayscale.
- ``responses``: float32 ``[n_stimuli, n_trials, n_neurons]``, one value per trial
  (spike count or rate in a fixed window), NaN where a trial is missing; or, time-binned,
  ``[n_stimuli, n_trials, n_neurons, n_bins]`` (one value per trial and time bin), with the
  file attrs ``bin_ms`` (float > 0, the bin width), ``stim_on_bin`` (int, the first bin with
  the image on, 0-based) and ``stim_off_bin`` (int, the first bin after the image is off;
  ``n_bins`` when it stays on to the end): ``0 <= stim_on_bin < stim_off_bin <= n_bins``.
- optional ``split``: int8 ``[n_stimuli]``, 0 train / 1 validation / 2 test.
- optional ``neuron_ids``: strings ``[n_neurons]``.
- optional ``true_rates``: float32 ``[n_stimuli, n_neurons]`` (simulated data only),
  the noise-free mean rate behind the trials (``[n_stimuli, n_neurons, n_bins]`` with a time
  axis).
- optional group ``baselines``: float32 ``[n_stimuli, n_neurons]`` arrays, predictions of
  reference predictors (simulated data: e.g. ``drive``, a circuit's feed-forward first stage).
- optional group ``teacher`` and attr ``teacher_config``: the network behind a teacher ground
  truth (``rcpb.data.teachers.load_teacher``).

File attributes: ``name``, ``source``, ``license``, ``units`` (all optional strings) and
any other scalar attributes (e.g. simulator parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rcpb.atomic_files import atomic_path


@dataclass
class Dataset:
    """A dataset held in memory; see the module docstring for shapes."""

    images: np.ndarray
    responses: np.ndarray
    split: np.ndarray | None = None
    neuron_ids: list[str] | None = None
    true_rates: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    teacher: object = None   # a teacher's network while simulating (stored by its writer)

    @property
    def n_stimuli(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.responses.shape[2])

    @property
    def n_bins(self) -> int | None:
        """Time bins of time-binned responses (4-D), None without a time axis (3-D)."""
        if self.responses is None or np.ndim(self.responses) < 4:
            return None
        return int(np.shape(self.responses)[3])


#: File attrs of time-binned responses (a 4-D ``responses``): see the module docstring.
TIME_ATTRS = ("bin_ms", "stim_on_bin", "stim_off_bin")


def write_dataset(path: str | Path, ds: Dataset, extra=None) -> None:
    """Write ``ds`` to ``path`` atomically (temporary file, then rename); ``extra(tmp_path)``,
    if given, adds more to the file before the rename."""
    with atomic_path(path) as tmp:
        _write(tmp, ds)
        if extra is not None:
            extra(tmp)


def _write(tmp, ds: Dataset) -> None:
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
        for name, value in (ds.baselines or {}).items():
            f.create_dataset(f"baselines/{name}", data=np.asarray(value, dtype=np.float32))
        for key, value in ds.attrs.items():
            f.attrs[key] = value


def check_hdf5_file(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is an existing HDF5 file, else raise RcpbError."""
    import h5py

    from rcpb.errors import RcpbError

    path = Path(path)
    if not path.exists():
        raise RcpbError(
            f"{path}: dataset file not found. Check the path (relative paths are taken from "
            f"the current directory), or create the file with 'rcpb data import' or "
            f"'rcpb data simulate'.")
    if path.is_dir():
        raise RcpbError(f"{path}: is a directory, not a dataset file. Give the path of the .h5 file.")
    if not h5py.is_hdf5(path):
        raise RcpbError(
            f"{path}: not an HDF5 file. rcpb reads HDF5 dataset files (SPEC 2.1); convert "
            f".npz or MATLAB .mat data with 'rcpb data import {path} --out DATASET.h5 "
            f"--images NAME --responses NAME'.")
    return path


def is_time_binned(path: str | Path) -> bool:
    """Whether the dataset file at ``path`` stores time-binned (4-D) ``responses``."""
    import h5py

    with h5py.File(path, "r") as f:
        stored = f.get("responses")
        return isinstance(stored, h5py.Dataset) and stored.ndim == 4


def read_raw(path: str | Path, skip=()) -> Dataset:
    """Read a dataset file without validating it (see ``rcpb.data.validate``).

    Raises RcpbError only when the file is missing, is not HDF5, or holds a group
    where an array is expected; ``images``/``responses`` are None when absent.
    ``skip``: names of datasets (or the ``baselines`` group) not to read, e.g. ``true_rates``
    for training, which does not use it; they are left None (empty for ``baselines``).
    """
    import h5py

    from rcpb.errors import RcpbError

    path = check_hdf5_file(path)
    with h5py.File(path, "r") as f:
        def get(name):
            if name not in f or name in skip:
                return None
            if not isinstance(f[name], h5py.Dataset):
                raise RcpbError(
                    f"{path}: '{name}' is an HDF5 group, not an array. Store '{name}' as a "
                    f"dataset at the top level of the file (SPEC 2.1).")
            return f[name][()]

        ids = get("neuron_ids")
        if ids is not None:
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in np.ravel(ids)]
        attrs = {}
        for key, value in f.attrs.items():
            attrs[key] = value.decode() if isinstance(value, bytes) else value
        baselines = ({name: f["baselines"][name][()] for name in f["baselines"]}
                     if isinstance(f.get("baselines"), h5py.Group) and "baselines" not in skip
                     else {})
        return Dataset(
            baselines=baselines,
            images=get("images"),
            responses=get("responses"),
            split=get("split"),
            neuron_ids=ids,
            true_rates=get("true_rates"),
            attrs=attrs,
        )
