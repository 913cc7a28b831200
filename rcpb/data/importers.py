"""Importers: NumPy ``.npz`` and MATLAB ``.mat`` (v5 and v7.3) -> dataset file (SPEC 2.1).

The user names the arrays inside the source file and says how their axes are
ordered, with one letter per axis:

- images: ``n`` (stimuli; ``s`` is accepted too), ``h`` (rows), ``w`` (columns),
  e.g. ``nhw`` (NumPy style) or ``hwn`` (common in MATLAB);
- responses: ``s`` (stimuli), ``t`` (trials), ``n`` (neurons) in any order, e.g.
  ``stn`` or ``nts``. Letters may be left out for an axis of length 1 that the
  file does not have: ``sn`` is single-trial data and gets a trial axis. Time-binned
  responses add ``b`` (time bins), e.g. ``stnb`` (the canonical order) or ``nbts``; they need
  ``bin_ms`` and ``stim_bins`` (the first bin with the image on and the first bin after it
  is off), stored as the file attrs ``bin_ms``, ``stim_on_bin``, ``stim_off_bin``.

Axis letters always describe the array as its own program shows it: ``arr.shape``
in NumPy, ``size(x)`` in MATLAB. MATLAB v7.3 files are HDF5 files in which every
array is stored column-major, so h5py sees the dimensions reversed (a MATLAB
``[h, w, n]`` array reads as ``[n, w, h]``); the importer reverses them back
before applying the axis letters. An HDF5 source is treated as MATLAB v7.3 when
its name ends in ``.mat`` or its 512-byte user block starts with ``MATLAB``;
other HDF5 files are read as they are (row-major).

The result is validated (``rcpb.data.validate``) before anything is written, and
written atomically.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rcpb.data.format import Dataset, write_dataset
from rcpb.data.validate import validate
from rcpb.errors import RcpbError

IMAGE_AXES = "nhw"
RESPONSE_AXES = "stn"
BINNED_RESPONSE_AXES = "stnb"   # time-binned responses: b, the time bins, last


class _Source:
    """Named arrays of a source file, each in its program's own axis order."""

    def __init__(self, path: Path, kind: str, arrays: dict):
        self.path, self.kind, self._arrays = path, kind, arrays

    def names(self) -> list[str]:
        return sorted(self._arrays)

    def get(self, name: str, role: str) -> np.ndarray:
        if name not in self._arrays:
            shown = ", ".join(self.names()[:20]) or "(none)"
            raise RcpbError(
                f"{self.path}: no array named '{name}' (given for {role}). Arrays in this "
                f"{self.kind} file: {shown}.")
        value = self._arrays[name]
        return value() if callable(value) else value


def _is_matlab_hdf5(path: Path) -> bool:
    if path.suffix.lower() == ".mat":
        return True
    with open(path, "rb") as f:
        return f.read(6) == b"MATLAB"


def _open_hdf5(path: Path, matlab: bool) -> _Source:
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("#refs#"):
                arrays[name] = obj
        f.visititems(visit)
        names = list(arrays)

    def loader(name):
        def load():
            with h5py.File(path, "r") as f:
                obj = f[name]
                if obj.dtype.kind in "OV":
                    raise RcpbError(
                        f"{path}: '{name}' is a MATLAB cell array or struct; store it as a "
                        f"numeric array (e.g. double or uint8) and save again.")
                value = np.asarray(obj[()])
                is_char = obj.attrs.get("MATLAB_class", b"") in (b"char", "char")
            if not matlab:
                return value
            value = value.T  # column-major -> MATLAB's size() order
            if is_char:  # MATLAB char matrix (uint16 codes), one string per row
                rows = np.atleast_2d(value)
                value = np.array(["".join(map(chr, r)).rstrip() for r in rows])
            return value
        return load

    kind = "MATLAB v7.3" if matlab else "HDF5"
    return _Source(path, kind, {name: loader(name) for name in names})


def _open_source(src: str | Path) -> _Source:
    import h5py

    path = Path(src)
    if not path.exists():
        raise RcpbError(f"{path}: source file not found; check the path.")
    if zipfile.is_zipfile(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise RcpbError(f"{path}: could not read the .npz file ({exc}); save it with "
                            f"numpy.savez without object arrays.") from None
        return _Source(path, ".npz", arrays)
    if h5py.is_hdf5(path):
        return _open_hdf5(path, _is_matlab_hdf5(path))
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, chars_as_strings=True)
    except Exception as exc:  # scipy raises several types for non-MAT input
        raise RcpbError(
            f"{path}: not a readable .npz, MATLAB .mat (v5 or v7.3) or HDF5 file ({exc}). "
            f"Save the data with numpy.savez or MATLAB save(..., '-v7') / '-v7.3'.") from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__")}
    return _Source(path, "MATLAB v5", arrays)


def arrange_axes(arr: np.ndarray, axes: str, canonical: str, field: str,
                 aliases: dict | None = None) -> np.ndarray:
    """Reorder ``arr`` from the axis letters ``axes`` to ``canonical`` order.

    Letters of ``canonical`` missing from ``axes`` become new axes of length 1
    (the first letter of ``canonical``, the stimulus axis, may not be missing).
    ``aliases`` maps extra letters to canonical ones (e.g. {"s": "n"}).
    """
    axes = "".join((aliases or {}).get(c, c) for c in axes.lower())
    if (len(set(axes)) != len(axes) or not set(axes) <= set(canonical)
            or canonical[0] not in axes or len(axes) < 2):
        raise RcpbError(
            f"{field} axes '{axes}' are not valid: give each axis of the array one distinct "
            f"letter from '{canonical}' (the stimulus axis '{canonical[0]}' is required), "
            f"e.g. '{canonical}'.")
    if arr.ndim != len(axes):
        raise RcpbError(
            f"{field} has shape {arr.shape} ({arr.ndim} axes) but axes '{axes}' name "
            f"{len(axes)}; give one letter per axis.")
    for c in canonical:
        if c not in axes:
            arr = arr[..., None]
            axes += c
    return np.transpose(arr, [axes.index(c) for c in canonical])


def _split_vector(arr: np.ndarray, src: Path, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim > 1 and sum(d != 1 for d in arr.shape) <= 1:
        arr = arr.reshape(-1)  # MATLAB row or column vector
    if arr.ndim != 1:
        raise RcpbError(f"{src}: split array '{name}' has shape {arr.shape}; it must be a "
                        f"vector with one code (0 train, 1 validation, 2 test) per stimulus.")
    if arr.dtype.kind not in "uifb":
        raise RcpbError(f"{src}: split array '{name}' has dtype {arr.dtype}; use integers "
                        f"0 train, 1 validation, 2 test.")
    return arr


def _strings(arr: np.ndarray, src: Path, name: str) -> list[str]:
    arr = np.asarray(arr)
    if arr.dtype.kind in "US":
        values = arr.reshape(-1)
    elif arr.dtype.kind in "iuf":
        values = [f"{v:g}" if arr.dtype.kind == "f" else str(v) for v in arr.reshape(-1)]
    elif arr.dtype.kind == "O":  # MATLAB cell array of char vectors
        values = [str(np.asarray(v).reshape(-1)[0]) if np.asarray(v).size else "" for v in
                  arr.reshape(-1)]
    else:
        raise RcpbError(f"{src}: neuron id array '{name}' has dtype {arr.dtype}; use strings "
                        f"or numbers.")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _time_attrs(path, responses_axes: str, binned: bool, bin_ms, stim_bins) -> dict:
    """The file attrs of the time axis (empty without a ``b`` axis); RcpbError naming the
    options when they are missing with a ``b`` axis or given without one."""
    if not binned:
        given = [flag for flag, value in (("--bin-ms", bin_ms), ("--stim-bins", stim_bins))
                 if value is not None]
        if given:
            raise RcpbError(
                f"{path}: {' and '.join(given)} describe time bins, but the responses axes "
                f"'{responses_axes}' have no time axis 'b'; add 'b' for the time-bin axis "
                f"(e.g. --responses-axes stnb) or leave {' and '.join(given)} out.")
        return {}
    missing = [flag for flag, value in (("--bin-ms MS", bin_ms), ("--stim-bins ON OFF",
                                                                 stim_bins)) if value is None]
    if missing:
        raise RcpbError(
            f"{path}: the responses axes '{responses_axes}' have a time axis 'b'; give "
            f"{' and '.join(missing)} (bin width in ms; the first bin with the image on and the "
            f"first bin after it is off, 0-based), e.g. --bin-ms 10 --stim-bins 0 10.")
    if len(stim_bins) != 2:
        raise RcpbError(f"{path}: --stim-bins takes two bins, ON OFF (got {stim_bins!r}).")
    return {"bin_ms": bin_ms, "stim_on_bin": stim_bins[0], "stim_off_bin": stim_bins[1]}


def import_dataset(src: str | Path, out: str | Path, images: str, responses: str,
                   images_axes: str = IMAGE_AXES, responses_axes: str | None = None,
                   split: str | None = None, neuron_ids: str | None = None,
                   name: str | None = None, loss: str | None = None,
                   bin_ms: float | None = None, stim_bins: tuple | None = None) -> Dataset:
    """Convert arrays of ``src`` (.npz or .mat) into the dataset file ``out``.

    images/responses/split/neuron_ids: array names in ``src`` (v7.3: HDF5 paths).
    images_axes: letters of ``nhw``; responses_axes: letters of ``stn``, or of ``stnb`` for
    time-binned responses (default ``stn`` for 3-D, ``sn`` for 2-D, ``stnb`` for 4-D arrays).
    ``bin_ms`` (bin width, ms) and ``stim_bins`` (first bin with the image on, first bin after
    it is off; 0-based) are required with a ``b`` axis and refused without one. Images stay
    uint8 if stored so, else float32; responses become float32 ([stimuli, trials, neurons(,
    time_bins)]). Validated (with ``loss``) before writing; nothing is written on error.
    Returns the written Dataset.
    """
    source = _open_source(src)
    path = source.path
    img = np.asarray(source.get(images, "images"))
    resp = np.asarray(source.get(responses, "responses"))
    if responses_axes is None:
        responses_axes = ("sn" if resp.ndim == 2 else BINNED_RESPONSE_AXES if resp.ndim == 4
                          else RESPONSE_AXES)
    binned = "b" in responses_axes.lower()
    time_attrs = _time_attrs(path, responses_axes, binned, bin_ms, stim_bins)
    img = arrange_axes(img, images_axes, IMAGE_AXES, f"{path}: images array '{images}'",
                       aliases={"s": "n"})
    resp = arrange_axes(resp, responses_axes, BINNED_RESPONSE_AXES if binned else RESPONSE_AXES,
                        f"{path}: responses array '{responses}'")
    if img.dtype.kind == "b":
        img = img.astype(np.uint8)
    if img.dtype.kind in "uif" and img.dtype != np.uint8:
        img = img.astype(np.float32)
    if resp.dtype.kind in "uifb":
        resp = resp.astype(np.float32)
    split_arr = None if split is None else _split_vector(source.get(split, "split"), path, split)
    ids = None if neuron_ids is None else _strings(source.get(neuron_ids, "neuron ids"), path,
                                                   neuron_ids)
    attrs = {"name": name or Path(out).stem, "source": f"imported from {path.name} "
             f"({source.kind}; images '{images}' axes {images_axes}, responses "
             f"'{responses}' axes {responses_axes})", **time_attrs}
    ds = Dataset(images=np.ascontiguousarray(img), responses=np.ascontiguousarray(resp),
                 split=split_arr, neuron_ids=ids, attrs=attrs)
    ds = validate(ds, source=f"{path} (converted)", loss=loss)
    write_dataset(out, ds)
    return ds
