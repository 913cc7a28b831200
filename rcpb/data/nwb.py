"""NWB importer: a Neurodata Without Borders session -> dataset file (SPEC 2.1).

Needs ``pynwb`` (the optional extra: ``pip install -e '.[nwb]'``), imported only here.
What is read (names are the objects' names in the file; docs/data.md has the details):

- presentations: when each image was shown, either an ``IndexSeries`` in ``stimulus/``
  (data: image index per presentation, timestamps or rate: onsets) or a table in
  ``intervals/`` (``start_time``: onsets; an image column holding a template index or an
  image name). Negative or NaN indices and empty names are blanks and are skipped.
- templates: the images, an ``Images`` container (its ``order_of_images`` gives the indices;
  image names always work) or an ``ImageSeries`` [images, H, W] in ``stimulus_template/``.
  RGB(A) images become grayscale (luma 0.299 R + 0.587 G + 0.114 B).
- responses: the mean of a ``RoiResponseSeries`` (e.g. in ``DfOverF`` or ``Fluorescence``,
  data [time, rois]) over the window [onset + start, onset + stop) in seconds, or the number
  of spikes of each unit of the ``units`` table in that window.

Stimuli are the distinct images shown, in template order; the k-th presentation of an image
(in time order) is its trial k, and stimuli shown fewer times are padded with NaN trials.
When a choice is ambiguous (several series, tables or templates) nothing is guessed: the
error lists the candidates and the option that picks one. The result is validated
(``rcpb.data.validate``) and written atomically, like the other importers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rcpb.data.format import Dataset, write_dataset
from rcpb.data.validate import validate
from rcpb.errors import RcpbError

DEFAULT_WINDOW = (0.0, 0.5)   # seconds after each onset
IMAGE_COLUMNS = ("image_index", "image_id", "image_name", "frame")   # tried when not named
RESPONSE_KINDS = ("roi", "units")
TEMPLATE_AXES = ("hw", "wh")
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class Presentations:
    """Image presentations: ``onsets`` float [p] seconds, ``ids`` [p] template indices
    (numbers) or image names (str); ``label`` names the object; ``template`` is the
    template linked to an IndexSeries (or None)."""

    onsets: np.ndarray
    ids: np.ndarray
    label: str
    template: object = None
    column: str | None = None


def require_pynwb():
    """Import and return pynwb, or raise RcpbError saying how to install it."""
    try:
        import pynwb
    except ImportError:
        raise RcpbError("reading .nwb files needs pynwb: install the extra with "
                        "pip install -e '.[nwb]' (or pip install pynwb).") from None
    return pynwb


def _label(obj) -> str:
    """Path-like name of an NWB object below the file root, e.g. 'ophys/DfOverF/dff'."""
    parts = []
    while obj is not None and getattr(obj, "parent", None) is not None:
        parts.append(obj.name)
        obj = obj.parent
    return "/".join(reversed(parts))


def _pick(candidates: dict, wanted: str | None, what: str, option: str, path: Path):
    """One value of ``candidates`` (label -> object): the one named ``wanted`` (its full
    label, a trailing part of it, or its name), else the only one; else RcpbError."""
    listing = ", ".join(sorted(candidates)) or "(none)"
    if wanted is None:
        if len(candidates) == 1:
            return next(iter(candidates.items()))
        if not candidates:
            raise RcpbError(f"{path}: no {what} found.")
        raise RcpbError(f"{path}: several {what}: {listing}. Choose one with {option} LABEL.")
    wanted = wanted.strip("/")
    hits = {k: v for k, v in candidates.items()
            if k == wanted or k.endswith("/" + wanted)}
    if len(hits) == 1:
        return next(iter(hits.items()))
    if not hits:
        raise RcpbError(f"{path}: {option} '{wanted}' matches none of the {what}: {listing}.")
    raise RcpbError(f"{path}: {option} '{wanted}' matches several {what}: "
                    f"{', '.join(sorted(hits))}; give more of the label.")


def _times(series) -> np.ndarray:
    """Sample times (s) of a TimeSeries: its timestamps, else starting_time + i / rate."""
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    n = series.data.shape[0]
    return (series.starting_time or 0.0) + np.arange(n, dtype=np.float64) / float(series.rate)


def _as_ids(values, label: str, path: Path) -> np.ndarray:
    """Image ids as float64 numbers (NaN allowed) or as str names."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise RcpbError(f"{path}: image ids of '{label}' have shape {arr.shape}; expected one "
                        f"index or name per presentation.")
    if arr.dtype.kind in "iufb":
        return arr.astype(np.float64)
    if arr.dtype.kind in "SUO":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr], dtype=str)
    raise RcpbError(f"{path}: image ids of '{label}' have dtype {arr.dtype}; use template "
                    f"indices or image names.")


def find_presentations(nwbfile, path: Path, wanted: str | None = None,
                       image_column: str | None = None) -> Presentations:
    """The presentations: an IndexSeries of ``stimulus/`` or an ``intervals/`` table."""
    from pynwb.image import IndexSeries
    from pynwb.epoch import TimeIntervals

    series = {f"stimulus/{k}": v for k, v in nwbfile.stimulus.items()
              if isinstance(v, IndexSeries)}
    tables = {f"intervals/{k}": v for k, v in nwbfile.intervals.items()
              if isinstance(v, TimeIntervals)}
    names = (image_column,) if image_column else IMAGE_COLUMNS
    if wanted is None:  # only objects that can be presentations
        tables = {k: v for k, v in tables.items() if set(names) & set(v.colnames)}
    what = ("presentation series or tables (IndexSeries in stimulus/, tables in intervals/ "
            f"with a column {' or '.join(names)})")
    label, obj = _pick({**series, **tables}, wanted, what, "--presentations", path)
    if isinstance(obj, IndexSeries):
        if image_column:
            raise RcpbError(f"{path}: --image-column applies to interval tables, but "
                            f"'{label}' is an IndexSeries (its data are the image indices); "
                            f"leave --image-column out.")
        template = obj.indexed_images if obj.indexed_images is not None \
            else obj.indexed_timeseries
        return Presentations(_times(obj), _as_ids(obj.data[:], label, path), label, template)
    present = [c for c in names if c in obj.colnames]
    if len(present) != 1:
        found = ("none of " if not present else "several of ") + ", ".join(names)
        raise RcpbError(f"{path}: table '{label}' has {found} as its image column (its "
                        f"columns: {', '.join(obj.colnames)}); name the column holding the "
                        f"template index or image name with --image-column COLUMN.")
    column = present[0]
    onsets = np.asarray(obj["start_time"].data[:], dtype=np.float64)
    return Presentations(onsets, _as_ids(obj[column].data[:], f"{label}:{column}", path),
                         label, None, column)


def _gray(img: np.ndarray, label: str, path: Path) -> np.ndarray:
    """One image [H, W] (RGB(A) [H, W, 3|4] -> luma)."""
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        return img[..., :3].astype(np.float64) @ LUMA
    if img.ndim != 2:
        raise RcpbError(f"{path}: template image '{label}' has shape {img.shape}; expected "
                        f"[H, W] grayscale or [H, W, 3] RGB.")
    return img


def _template_arrays(obj, label: str, path: Path):
    """(list of images, list of names or None, whether indices are defined) of a template."""
    from pynwb.base import Images

    if isinstance(obj, Images):
        if obj.order_of_images is not None:
            ordered = list(obj.order_of_images.data)
        else:
            ordered = list(obj.images.values())
        arrays = [np.asarray(im.data[:]) for im in ordered]
        indexed = obj.order_of_images is not None or len(ordered) == 1
        return arrays, [im.name for im in ordered], indexed
    data = getattr(obj, "data", None)
    if data is None or getattr(data, "shape", (0,))[0] == 0:
        raise RcpbError(f"{path}: template '{label}' holds no pixel data (external_file?); "
                        f"rcpb needs the images inside the NWB file.")
    data = np.asarray(data[:])
    if data.ndim not in (3, 4):
        raise RcpbError(f"{path}: template '{label}' has shape {data.shape}; expected "
                        f"[images, H, W] (or [images, H, W, 3] RGB).")
    names = getattr(obj, "control_description", None)
    names = [str(n) for n in names] if names is not None and len(names) == len(data) else None
    return list(data), names, True


def load_templates(nwbfile, path: Path, wanted: str | None, linked, axes: str = "hw"):
    """Template images [n, H, W] (uint8 if all stored so, else float32), their names (or
    None), whether indices address them, and the template's label."""
    if wanted is None and linked is not None:
        label = next((f"stimulus_template/{k}" for k, v in nwbfile.stimulus_template.items()
                      if v is linked), _label(linked))
        obj = linked
    else:
        candidates = {f"stimulus_template/{k}": v for k, v in nwbfile.stimulus_template.items()}
        label, obj = _pick(candidates, wanted, "stimulus templates (stimulus_template/)",
                           "--template", path)
    arrays, names, indexed = _template_arrays(obj, label, path)
    images = [_gray(a, f"{label}[{i}]", path) for i, a in enumerate(arrays)]
    if axes == "wh":
        images = [im.T for im in images]
    shapes = sorted({im.shape for im in images})
    if len(shapes) != 1:
        raise RcpbError(f"{path}: template '{label}' has images of different sizes "
                        f"{shapes[:4]}; all stimuli need one size [H, W].")
    stack = np.stack(images)
    stack = stack if stack.dtype == np.uint8 else stack.astype(np.float32)
    return stack, names, indexed, label


def template_indices(pres: Presentations, names, indexed: bool, n_templates: int,
                     template_label: str, path: Path) -> np.ndarray:
    """Template index of each presentation, int64 [p]; -1 for blanks."""
    ids = pres.ids
    where = f"'{pres.label}'" + (f" column '{pres.column}'" if pres.column else "")
    if ids.dtype.kind == "U":
        if names is None:
            raise RcpbError(f"{path}: {where} holds image names but template "
                            f"'{template_label}' has no image names; use an index column.")
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted({v for v in ids if v and v not in lookup})
        if unknown:
            raise RcpbError(f"{path}: {where} names images not in template "
                            f"'{template_label}': {', '.join(unknown[:5])} (its images: "
                            f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}).")
        return np.array([lookup.get(v, -1) if v else -1 for v in ids], dtype=np.int64)
    blank = np.isnan(ids) | (ids < 0)
    valid = ids[~blank]
    if np.any(valid != np.round(valid)):
        raise RcpbError(f"{path}: {where} holds non-integer image indices; give template "
                        f"indices (0-based) or image names.")
    if np.any(valid >= n_templates):
        raise RcpbError(f"{path}: {where} has image index {int(valid.max())} but template "
                        f"'{template_label}' has {n_templates} images (indices 0-based).")
    if not indexed:
        raise RcpbError(f"{path}: template '{template_label}' is an Images container without "
                        f"order_of_images, so its indices are undefined; add order_of_images "
                        f"or use image names.")
    return np.where(blank, -1, np.nan_to_num(ids, nan=-1)).astype(np.int64)


def _roi_candidates(nwbfile) -> dict:
    from pynwb.ophys import RoiResponseSeries

    return {_label(o): o for o in nwbfile.objects.values() if isinstance(o, RoiResponseSeries)}


def _has_units(nwbfile) -> bool:
    return nwbfile.units is not None and len(nwbfile.units.id) > 0


def roi_responses(series, label: str, starts: np.ndarray, stops: np.ndarray, path: Path):
    """Mean of ``series`` (data [time, rois]) over [starts, stops) s: float64 [p, rois],
    and the ROI ids (strings)."""
    t = _times(series)
    n_samples = series.data.shape[0]
    if t.shape[0] != n_samples or n_samples == 0:
        raise RcpbError(f"{path}: RoiResponseSeries '{label}' has {n_samples} samples but "
                        f"{t.shape[0]} timestamps.")
    step = float(np.median(np.diff(t))) if n_samples > 1 else 1.0 / float(series.rate or 1.0)
    end = t[-1] + step
    outside = np.flatnonzero((starts < t[0]) | (stops > end))
    if outside.size:
        k = outside[0]
        more = f" (and {outside.size - 1} more windows)" if outside.size > 1 else ""
        raise RcpbError(
            f"{path}: the response window [{starts[k]:g}, {stops[k]:g}) s{more} lies outside "
            f"the recording of '{label}' ({t[0]:g} to {end:g} s); shorten --window or check "
            f"the time base.")
    i0 = np.searchsorted(t, starts, side="left")
    i1 = np.searchsorted(t, stops, side="left")
    empty = np.flatnonzero(i1 <= i0)
    if empty.size:
        raise RcpbError(f"{path}: the window [{starts[empty[0]]:g}, {stops[empty[0]]:g}) s "
                        f"holds no sample of '{label}' (sampling interval {step:g} s); widen "
                        f"--window.")
    lo, hi = int(i0.min()), int(i1.max())
    block = np.asarray(series.data[lo:hi], dtype=np.float64)
    block = block[:, None] if block.ndim == 1 else block
    conversion, offset = float(series.conversion), float(getattr(series, "offset", 0.0) or 0.0)
    values = np.stack([block[a - lo:b - lo].mean(axis=0) for a, b in zip(i0, i1)])
    values = values * conversion + offset
    rois = series.rois
    ids = np.asarray(rois.table.id[:])[np.asarray(rois.data[:], dtype=np.int64)]
    if len(ids) != values.shape[1]:
        ids = np.arange(values.shape[1])
    return values, [str(i) for i in ids]


def spike_counts(units, starts: np.ndarray, stops: np.ndarray, path: Path):
    """Spikes of each unit in [starts, stops) s: float64 [p, units], and the unit ids."""
    if "spike_times" not in units.colnames:
        raise RcpbError(f"{path}: the units table has no 'spike_times' column; use "
                        f"--responses-from roi or add spike times.")
    index = units["spike_times"]
    ends = np.asarray(index.data[:], dtype=np.int64)
    flat = np.asarray(index.target.data[:], dtype=np.float64)
    counts = np.empty((starts.shape[0], ends.shape[0]), dtype=np.float64)
    for u, (a, b) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends)):
        times = np.sort(flat[a:b])
        counts[:, u] = (np.searchsorted(times, stops, side="left")
                        - np.searchsorted(times, starts, side="left"))
    return counts, [str(i) for i in units.id[:]]


def _responses(nwbfile, path: Path, kind: str | None, roi_series: str | None,
               starts: np.ndarray, stops: np.ndarray):
    """(values [p, neurons], neuron ids, description, units) of the chosen response kind."""
    rois = _roi_candidates(nwbfile)
    if kind is None:
        kinds = [k for k, ok in (("roi", rois), ("units", _has_units(nwbfile))) if ok]
        if roi_series is not None:
            kinds = ["roi"]
        if len(kinds) != 1:
            found = ("no RoiResponseSeries and no units table" if not kinds else
                     f"RoiResponseSeries ({', '.join(sorted(rois))}) and a units table")
            raise RcpbError(f"{path}: the file has {found}; choose the responses with "
                            f"--responses-from roi or --responses-from units.")
        kind = kinds[0]
    if kind == "units":
        if roi_series is not None:
            raise RcpbError("--roi-series applies to --responses-from roi; leave it out for "
                            "units.")
        if not _has_units(nwbfile):
            raise RcpbError(f"{path}: no units table (or an empty one); use --responses-from "
                            f"roi.")
        values, ids = spike_counts(nwbfile.units, starts, stops, path)
        return values, ids, "spike counts of 'units'", "spike count"
    label, series = _pick(rois, roi_series, "RoiResponseSeries", "--roi-series", path)
    values, ids = roi_responses(series, label, starts, stops, path)
    return values, ids, f"mean of '{label}'", f"mean of '{label}' ({series.unit})"


def arrange_trials(template_idx: np.ndarray, onsets: np.ndarray, values: np.ndarray):
    """Group presentations by image: (stimulus template indices [S], responses float32
    [S, max trials, neurons] with NaN padding). Trials are in time order."""
    shown = template_idx >= 0
    stimuli = np.unique(template_idx[shown])
    order = np.argsort(onsets, kind="stable")
    order = order[shown[order]]
    slot = np.searchsorted(stimuli, template_idx[order])
    trial = np.zeros(order.shape[0], dtype=np.int64)
    seen = np.zeros(stimuli.shape[0], dtype=np.int64)
    for k, s in enumerate(slot):
        trial[k], seen[s] = seen[s], seen[s] + 1
    responses = np.full((stimuli.shape[0], int(seen.max()), values.shape[1]), np.nan,
                        dtype=np.float32)
    responses[slot, trial] = values[order]
    return stimuli, responses


def import_nwb(src: str | Path, out: str | Path, presentations: str | None = None,
               template: str | None = None, image_column: str | None = None,
               template_axes: str = "hw", responses_from: str | None = None,
               roi_series: str | None = None, window=DEFAULT_WINDOW,
               name: str | None = None, loss: str | None = None) -> Dataset:
    """Convert an NWB session ``src`` into the dataset file ``out``.

    presentations/template/roi_series: labels (or names) of the objects to use when the
    file has several; image_column: the presentation table's image column;
    template_axes: "hw" (images stored [rows, columns], default) or "wh" (transposed);
    responses_from: "roi", "units" or None (the only kind present); window: (start, stop)
    seconds after each onset. Validated (with ``loss``) before writing; nothing is written
    on error. Returns the written Dataset.
    """
    path = Path(src)
    start, stop = (float(v) for v in window)
    if not stop > start:
        raise RcpbError(f"--window {start:g} {stop:g}: the window needs START < STOP "
                        f"(seconds after each onset), e.g. --window 0 0.5.")
    if template_axes not in TEMPLATE_AXES:
        raise RcpbError(f"--template-axes '{template_axes}': use hw or wh.")
    if responses_from is not None and responses_from not in RESPONSE_KINDS:
        raise RcpbError(f"--responses-from '{responses_from}': use roi or units.")
    if not path.exists():
        raise RcpbError(f"{path}: source file not found; check the path.")
    pynwb = require_pynwb()
    unreadable = f"{path}: not a readable NWB file"
    try:
        io = pynwb.NWBHDF5IO(str(path), "r")
    except Exception as exc:  # h5py / hdmf raise several types for unreadable input
        raise RcpbError(f"{unreadable} ({type(exc).__name__}: {exc}).") from None
    with io:
        try:
            nwbfile = io.read()
        except Exception as exc:
            raise RcpbError(f"{unreadable} ({type(exc).__name__}: {exc}).") from None
        pres = find_presentations(nwbfile, path, presentations, image_column)
        images, names, indexed, tlabel = load_templates(nwbfile, path, template,
                                                        pres.template, template_axes)
        idx = template_indices(pres, names, indexed, images.shape[0], tlabel, path)
        shown = idx >= 0
        if not shown.any():
            raise RcpbError(f"{path}: '{pres.label}' has no presentation of a template "
                            f"image (all blank).")
        onsets = pres.onsets[shown]
        values, ids, what, units = _responses(nwbfile, path, responses_from, roi_series,
                                              onsets + start, onsets + stop)
    stimuli, responses = arrange_trials(idx[shown], onsets, values)
    stimulus_ids = [names[i] for i in stimuli] if names is not None else stimuli.tolist()
    window_text = f"[{start:g}, {stop:g}) s after onset"
    column = f" column '{pres.column}'" if pres.column else ""
    attrs = {"name": name or Path(out).stem,
             "source": f"imported from {path.name} (NWB; presentations '{pres.label}'{column}, "
                       f"{int((~shown).sum())} blank skipped; images '{tlabel}'; responses: "
                       f"{what} in {window_text})",
             "units": f"{units} in {window_text}",
             "stimulus_ids": json.dumps([str(s) for s in stimulus_ids])}
    ds = Dataset(images=np.ascontiguousarray(images[stimuli]), responses=responses,
                 neuron_ids=ids, attrs=attrs)
    ds = validate(ds, source=f"{path} (converted)", loss=loss)
    write_dataset(out, ds)
    return ds
