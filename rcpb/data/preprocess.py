"""Preprocessing of images and targets (SPEC 2.2); pure numpy functions.

Images keep their raw grey values (0-255 for uint8 files): the models start with
a BatchNorm on the input, so no normalisation happens here.
"""

from __future__ import annotations

import warnings

import numpy as np

from rcpb.errors import RcpbError


def center_crop(images: np.ndarray, size: int | None) -> np.ndarray:
    """Central ``size`` x ``size`` crop: [n, H, W] -> [n, size, size].

    ``size`` None returns the images unchanged. When H - size is odd the extra
    row goes to the bottom (offset floor((H - size) / 2)), likewise for columns.
    """
    if size is None:
        return images
    n, h, w = images.shape
    size = int(size)
    if size < 1 or size > h or size > w:
        raise RcpbError(
            f"preprocess.crop = {size} does not fit images of {h}x{w} px; use a crop between "
            f"1 and {min(h, w)}, or null for no crop.")
    top, left = (h - size) // 2, (w - size) // 2
    return images[:, top:top + size, left:left + size]


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
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def preprocess_images(images: np.ndarray, crop: int | None, factor: int | None) -> np.ndarray:
    """Crop then downsample: [n, H, W] -> float32 [n, 1, S, S] (model input).

    Raises RcpbError if the result is not square.
    """
    x = center_crop(images, crop)
    x = downsample(x, factor or 1)
    if x.shape[1] != x.shape[2]:
        raise RcpbError(
            f"images are {x.shape[1]}x{x.shape[2]} px after preprocessing, but the models need "
            f"square inputs; set preprocess.crop to a square size.")
    return x[:, None, :, :]


def trial_average(responses: np.ndarray) -> np.ndarray:
    """NaN-aware mean over trials: [stimuli, trials, neurons] -> float32 [stimuli, neurons].

    Entries with no valid trial stay NaN (validated files have none).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(np.asarray(responses, dtype=np.float64), axis=1).astype(np.float32)


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
