"""Preprocessing of images and targets (SPEC 2.2); pure numpy functions.

Images keep their raw grey values (0-255 for uint8 files): the models start with
a BatchNorm on the input, so no normalisation happens here.
"""

from __future__ import annotations

import warnings

import numpy as np

from rcpb.errors import RcpbError
from rcpb.sizes import hw

#: Stimuli per block where a float64 intermediate is needed (bounded temporaries).
BLOCK = 1024


def center_crop(images: np.ndarray, size) -> np.ndarray:
    """Central crop: [n, H, W] -> [n, h, w], ``size`` = ``s`` (an s x s square) or ``[h, w]``.

    ``size`` None returns the images unchanged. When H - h is odd the extra row goes to the
    bottom (offset floor((H - h) / 2)), likewise for columns.
    """
    if size is None:
        return images
    n, height, width = images.shape
    h, w = hw(size)
    if min(h, w) < 1 or h > height or w > width:
        raise RcpbError(
            f"preprocess.crop = {size} does not fit images of {height}x{width} px; use a crop "
            f"[h, w] with 1 <= h <= {height} and 1 <= w <= {width} (one number for a square), "
            f"or null for no crop.")
    top, left = (height - h) // 2, (width - w) // 2
    return images[:, top:top + h, left:left + w]


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Local-mean downsampling: [n, H, W] -> float32 [n, H/factor, W/factor].

    Each output pixel is the mean of a non-overlapping ``factor`` x ``factor``
    block. H and W must be divisible by ``factor``.
    """
    factor = int(factor)
    n, h, w = images.shape
    if factor < 1:
        raise RcpbError(f"preprocess.downsample = {factor}; use an integer factor >= 1.")
    if h % factor or w % factor:
        raise RcpbError(
            f"preprocess.downsample = {factor} does not divide the (cropped) image size "
            f"{h}x{w}; choose a crop that is a multiple of {factor} or another factor.")
    blocks = np.asarray(images).reshape(n, h // factor, factor, w // factor, factor)
    out = np.empty((n, h // factor, w // factor), dtype=np.float32)
    for i in range(0, n, BLOCK):     # the float64 means a block at a time
        out[i:i + BLOCK] = blocks[i:i + BLOCK].mean(axis=(2, 4), dtype=np.float64)
    return out


def preprocess_images(images: np.ndarray, crop, factor: int | None) -> np.ndarray:
    """Crop then downsample: [n, H, W] -> float32 [n, 1, h, w] (model input); any aspect ratio."""
    x = center_crop(images, crop)
    x = downsample(x, factor or 1)
    return x[:, None, :, :]


def trial_average(responses: np.ndarray, index=None) -> np.ndarray:
    """NaN-aware mean over trials: [stimuli, trials, neurons] -> float32 [stimuli, neurons];
    ``index``: only these stimuli (int [n] -> [n, neurons], rows in its order).

    Entries with no valid trial stay NaN (validated files have none). Computed in float64,
    :data:`BLOCK` stimuli at a time (the float64 copy is a block's, not the whole array's).
    """
    responses = np.asarray(responses)
    rows = np.arange(responses.shape[0]) if index is None else np.asarray(index)
    out = np.empty((rows.size, responses.shape[2]), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for i in range(0, rows.size, BLOCK):
            block = responses[rows[i:i + BLOCK]].astype(np.float64)
            out[i:i + BLOCK] = np.nanmean(block, axis=1)
    return out


def neuron_scale_factors(train_targets: np.ndarray, scale: float) -> np.ndarray:
    """Per-neuron factors ``scale / mean``: train_targets [stimuli, neurons] -> float64 [neurons].

    ``mean`` is each neuron's mean trial-averaged response over the training
    stimuli. Multiply targets (and raw trials) by the factors so each neuron's
    training mean becomes ``scale`` (the authors used 0.5 for NS 2250).
    """
    mean = np.nanmean(np.asarray(train_targets, dtype=np.float64), axis=0)
    bad = np.flatnonzero(~np.isfinite(mean) | (mean <= 0))
    if bad.size:
        raise RcpbError(
            f"preprocess.neuron_scale: neuron(s) {', '.join(str(i) for i in bad[:5])} have a "
            f"mean response <= 0 over the training stimuli, so they cannot be scaled by their "
            f"mean; set neuron_scale to null or remove those neurons.")
    return float(scale) / mean
