"""Ground-truth simulator (SPEC 2.4, docs/ground_truth.md): trial responses of a seeded truth.

Turns an image set into a dataset file whose responses have a known truth (``true_rates``).
Four ground truths (``CIRCUITS``; what each should make the pipeline find: ``KNOWN_ANSWERS``):
two teacher networks of rcpb's own classes (:mod:`rcpb.data.teachers`) and two model V1
circuits, described here. Circuit lengths are in pixels of the image file (the bundled NS 2250
set: 74 px); with ``input_size`` the images are first cropped/downsampled
(:func:`resize_images`) and lengths are converted.

1. Image ``x = (I - mean(I)) / 255`` per image, shown on a mean-gray background (zero padding).
2. First stage (feed-forward). Each neuron n has a complex Gabor ``g_n`` (orientation theta_n of
   8, wavelength lambda_n of 6, 9, 13.5 px, envelope sigma 0.5 lambda, zero mean, unit norm) at
   its RF centre p_n: ``z_n = <x, g_n>``. Complex cell: ``d_n = |z_n|``; simple cell with phase
   phi_n (0, 90, 180, 270 deg): ``d_n = max(Re(exp(-i phi_n) z_n), 0)``; d_n is divided by its
   mean over stimuli (the *drive*, stored as the baseline predictor ``drive``).
3. Context on a retinotopic sheet: the images downsampled by local mean to a 2 px grid, one
   broadband complex Gabor per orientation (lambda 9 px, sigma 0.4 lambda), amplitude
   ``E_o(p)``, each orientation divided by its mean over images and positions.
   ``recurrent``: ``r^0 = E``; for t = 1..T (T = 4)::

       F_o = K_o * r^{t-1}_o            collinear facilitation: two flanks along orientation o
                                        (Gaussian sigma 8 px along, 1.5 px across, centre with
                                        sigma 3 px removed; truncated at 3 sigma; sum 1)
       S_o = G * sum_o' w(o, o') r^{t-1}_o'
                                        orientation-tuned surround: annulus G (Gaussian sigma
                                        12 px, centre with sigma 5 px removed; sum 1),
                                        w = (1 + kappa cos 2(theta_o - theta_o')) / 8, kappa = 1
       M^t_o = (1 + alpha F_o / (1 + F_o)) / (1 + beta S_o / (1 + S_o))
                                        bounded gain in [1 / (1 + beta), 1 + alpha],
                                        alpha = beta = 2
       r^t_o = E_o M^t_o

   ``feedforward``: one pass (T = 1) of the same gain from ``E``, with every kernel length
   times sqrt(4) = 2 (:func:`one_pass`: kernels that reach as far as the four iterations).
   Rate of neuron n: ``d_n M_{o_n}(p_n)`` (its own drive times the contextual gain of its
   orientation at its position). attrs ``recurrence_corr`` (mean over neurons of the
   correlation over stimuli between d_n and the rate: 0.994 for both on NS 2250, the context
   explains little of the rates: docs/ground_truth.md) and ``recurrence_corr_min``.
4. Neurons: RF centres on the sheet grid, uniform within 6 px of the image centre; orientation,
   wavelength, phase uniform; 40 % simple cells. They depend on the seed only, so both circuits
   share them. ``neuron_ids`` spell out each neuron's type, orientation and wavelength.
5. Trials (every ground truth): Poisson counts, mean ``lambda_n = g_n (rate_n + b_n
   mean(rate_n))`` (= ``true_rates``, spike counts per trial). Per neuron a target ceiling
   ``c_n`` ~ U(0.5, 0.95) (correlation of the ``n_trials`` average with lambda, which
   ``cc_max`` estimates) and, for the circuits, a mean count ``mu_n`` ~ log-U(1, 10):
   ``(1 + b)^2 = mu K var(rate) (1/c^2 - 1) / mean(rate)^2`` (b >= 0; if b would be negative
   b = 0 and the mean count is below mu_n), ``g = (1 + b) mean(rate) / (K var(rate) (1/c^2 -
   1))``. Teachers: b = 0, so that ``lambda = g rate`` is itself an rcpb model's output (the
   mean count follows from the ceiling).

6. Dynamics (optional, ``dynamics``: :data:`DYNAMICS_DEFAULTS`): time-binned responses
   ``[stimuli, trials, neurons, bins]``. The image is on for bins ``0..on_bins-1``, gray (a
   constant image at the mean grey level) after; iteration t = 1, 2, ... of a recurrent
   ground truth is bin ``latency + t - 1`` (``bins - latency`` iterations, the input gray from
   iteration ``on_bins + 1``, the state carried over); bins before ``latency`` have rate 0
   (the baseline only). ``recurrent``: rate ``d_n M^t_{o_n}(p_n)`` at iteration t. A gray
   image has no contrast, so its drive and sheet amplitudes are 0: ``r^t = E M^t = 0`` and the
   rate is 0 from the first gray iteration on (the gain is multiplicative, the circuit holds no
   activity without input). ``feedforward``: the static rate while the image is on, 0 after.
   Teachers: :func:`rcpb.data.teachers.teacher_dynamics`. Counts: Poisson per bin around
   ``lambda_{n,k} = g_n (rate_{n,k} + b_n mean(R_n) / bins)`` with g_n, b_n solved as in step 5
   on the rate summed over the bins ``R_n = sum_k rate_{n,k}``: the counts summed over the
   bins are Poisson around ``g_n (R_n + b_n mean(R_n))``, with the target ceiling and mean
   count. ``true_rates`` ``[stimuli, neurons, bins]``; attrs ``bin_ms``, ``stim_on_bin`` = 0,
   ``stim_off_bin`` = on_bins, ``sim_latency_bins``. The static truth's attrs
   (``recurrence_corr``, ``known_answer``) and ``baselines`` ([stimuli, neurons]) are those
   of the file without dynamics.

Seeded: same images, ground truth, sizes and seed give identical arrays. Circuit parameters are
in :class:`CircuitParams` and stored in the file attrs (``sim_*``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from rcpb.data.format import Dataset, write_dataset
from rcpb.errors import RcpbError

CIRCUITS = ("recurrent", "feedforward", "recurrent_teacher", "feedforward_teacher")

#: What each built-in ground truth should make the pipeline find (docs/ground_truth.md):
#: ``recurrence`` is "helps" (a positive control: recurrent models should beat the best
#: feed-forward model) or "none" (a negative control: no advantage for recurrence expected).
KNOWN_ANSWERS = {
    "recurrent": {"recurrence": "helps", "text": (
        "V1 circuit with bounded lateral recurrence: a positive control, recurrent models "
        "should beat the best feed-forward model")},
    "feedforward": {"recurrence": "none", "text": (
        "the same circuit's facilitation and normalisation applied once, kernels of matched "
        "reach: a negative control, recurrence should hold no advantage")},
    "recurrent_teacher": {"recurrence": "helps", "text": (
        "a recurrent rcpb network (1 recurrent layer, T = 4) with fixed weights: a positive "
        "control, the recurrent student class contains the teacher")},
    "feedforward_teacher": {"recurrence": "none", "text": (
        "a feed-forward rcpb network of matched depth and parameter count with fixed weights: "
        "a negative control, the feed-forward student class contains the teacher")},
}
DEFAULT_IMAGES = "data/ns2250_stimuli_74px.h5"
#: Time-binned simulation (module docstring, step 6): the source's presentation, 10 ms bins,
#: the image on for 10 bins then gray for 15; ``latency``: bins before the response starts.
DYNAMICS_DEFAULTS = {"bins": 25, "on_bins": 10, "latency": 2, "bin_ms": 10.0}
BATCH = 128          # stimuli per FFT batch (memory ~ BATCH x channels x padded size^2)
MIN_WAVELENGTH = 2.5  # px; shorter wavelengths (very small input_size) are clamped


@dataclass(frozen=True)
class CircuitParams:
    """Parameters of the model circuit (lengths in px of the image file; see module docstring)."""

    n_orientations: int = 8
    wavelengths: tuple = (6.0, 9.0, 13.5)
    envelope: float = 0.5          # Gabor envelope sigma / wavelength
    n_phases: int = 4              # simple-cell phases 0, 90, 180, 270 deg
    frac_simple: float = 0.4
    rf_radius: float = 6.0         # RF centres within this distance of the image centre
    sheet_stride: float = 2.0      # spacing of the recurrent sheet
    sheet_wavelength: float = 9.0  # one broadband complex Gabor per orientation feeds the sheet
    sheet_envelope: float = 0.4    # its envelope sigma / wavelength (about 2 octaves)
    iterations: int = 4
    alpha: float = 2.0             # collinear facilitation: gain up to 1 + alpha
    fac_length: float = 8.0        # facilitation Gaussian sigma along the orientation
    fac_width: float = 1.5         # facilitation Gaussian sigma across the orientation
    fac_hole: float = 3.0          # sigma of the removed centre of the facilitation field
    beta: float = 2.0              # surround suppression: gain down to 1 / (1 + beta)
    surround_sigma: float = 12.0   # surround pool Gaussian sigma
    surround_hole: float = 5.0     # sigma of the removed centre (the classical RF) of the pool
    kappa: float = 1.0             # orientation tuning of the pool (0 untuned, 1 iso only)
    cc_max_range: tuple = (0.5, 0.95)
    mean_count_range: tuple = (1.0, 10.0)


def one_pass(params: CircuitParams) -> CircuitParams:
    """The feed-forward control of ``params``: one pass of the same facilitation and
    normalisation, every kernel length times sqrt(T), so that its kernels reach as far as T
    iterations of the recurrent ones (the RMS radius of a T-fold convolution of a kernel is
    sqrt(T) times the kernel's own)."""
    k = float(np.sqrt(params.iterations))
    return replace(params, iterations=1, fac_length=k * params.fac_length,
                   fac_width=k * params.fac_width, fac_hole=k * params.fac_hole,
                   surround_sigma=k * params.surround_sigma,
                   surround_hole=k * params.surround_hole)


@dataclass
class Neurons:
    """Sampled neurons; every field ``[neurons]``. row/col: RF centre (px of the simulated
    image, on the sheet grid); orientation (index into the orientations, preferred bar
    orientation ``180 * o / n_orientations`` deg); wavelength (index); simple (bool);
    phase (rad, simple cells); target_cc (ceiling c_n); mean_count (mu_n)."""

    row: np.ndarray
    col: np.ndarray
    orientation: np.ndarray
    wavelength: np.ndarray
    simple: np.ndarray
    phase: np.ndarray
    target_cc: np.ndarray
    mean_count: np.ndarray

    def ids(self, params: CircuitParams) -> list[str]:
        out = []
        for i in range(len(self.row)):
            kind = (f"simple{int(round(np.degrees(self.phase[i])))}" if self.simple[i]
                    else "complex")
            deg = 180.0 * self.orientation[i] / params.n_orientations
            lam = params.wavelengths[self.wavelength[i]]
            out.append(f"n{i:03d}-{kind}-ori{deg:g}-lambda{lam:g}")
        return out


# ----------------------------------------------------------------------------- images


def resize_images(images: np.ndarray, input_size: int | None) -> tuple[np.ndarray, int]:
    """Central crop + local-mean downsampling to ``input_size``.

    images: ``[stimuli, H, H]``. The factor is ``H // input_size``; when ``input_size`` does not
    divide H, the central ``factor * input_size`` px are cropped first (74 -> 37: factor 2, no
    crop; 74 -> 36: crop 72, factor 2; 74 -> 50: crop 50, factor 1).
    Returns (images ``[stimuli, S, S]`` (float32 if averaged, else unchanged), factor).
    """
    size = images.shape[1]
    if input_size is None or input_size == size:
        return images, 1
    if input_size < 8 or input_size > size:
        raise RcpbError(f"input_size {input_size} is not possible for {size} px images; "
                        f"choose a size between 8 and {size}.")
    factor = size // input_size
    crop = factor * input_size
    start = (size - crop) // 2
    x = images[:, start:start + crop, start:start + crop]
    if factor == 1:
        return x, 1
    x = x.astype(np.float64).reshape(len(x), input_size, factor, input_size, factor)
    return x.mean(axis=(2, 4)).astype(np.float32), factor


def read_images(images_file: str | Path) -> tuple[np.ndarray, dict]:
    """``images`` ``[stimuli, H, H]`` and the file attrs of an HDF5 image set."""
    import h5py

    path = Path(images_file)
    if not path.exists():
        raise RcpbError(f"{path}: no such file; pass an HDF5 file with 'images' "
                        f"[stimuli, H, W] (default {DEFAULT_IMAGES}).")
    try:
        with h5py.File(path, "r") as f:
            if "images" not in f:
                raise RcpbError(f"{path}: no dataset 'images'; the simulator needs grayscale "
                                f"'images' [stimuli, H, W].")
            images = f["images"][()]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as e:
        raise RcpbError(f"{path}: not a readable HDF5 file ({e}).") from None
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[0] < 2:
        raise RcpbError(f"{path}: 'images' has shape {images.shape}; the simulator needs square "
                        f"grayscale images [stimuli >= 2, H, H] (crop them first).")
    if not np.all(np.isfinite(images)):
        raise RcpbError(f"{path}: 'images' contains NaN or inf values.")
    return images, attrs


# ----------------------------------------------------------------------------- geometry


def _wrapped_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) offsets ``[n, n]`` of an FFT grid, wrapped so that 0 is the origin."""
    d = np.arange(n)
    d = np.where(d > n // 2, d - n, d).astype(np.float64)
    return np.meshgrid(d, d, indexing="ij")


def _gabor(yy: np.ndarray, xx: np.ndarray, theta: float, lam: float, envelope: float):
    """Zero-mean complex Gabor with unit L2 norm on offsets (yy, xx) (px); ``theta`` is the
    preferred bar orientation (rad), the carrier runs perpendicular to it."""
    env = np.exp(-(xx ** 2 + yy ** 2) / (2 * (envelope * lam) ** 2))
    g = env * np.exp(1j * 2 * np.pi / lam * (-xx * np.sin(theta) + yy * np.cos(theta)))
    g = g - env * (g.sum() / env.sum())
    return g / np.sqrt((np.abs(g) ** 2).sum())


class _Geometry:
    """Filters and kernels of the circuit for images of ``size`` px, ``scale`` file px per px."""

    def __init__(self, params: CircuitParams, size: int, scale: float):
        import scipy.fft as sfft

        p = params
        self.params, self.size, self.scale = p, size, scale
        n_o = p.n_orientations
        self.theta = np.pi * np.arange(n_o) / n_o                            # bar orientations
        self.lam = np.maximum(np.asarray(p.wavelengths, dtype=np.float64) / scale,
                              MIN_WAVELENGTH)                               # image px

        # sheet: images downsampled by ``stride`` (local mean), one sample per stride px
        self.stride = max(1, int(round(p.sheet_stride / scale)))
        self.h = -(-size // self.stride)                                    # sheet side
        step = self.stride * scale                                          # file px per sample
        lam_sheet = max(p.sheet_wavelength / step, MIN_WAVELENGTH)
        radius = int(np.ceil(3 * p.sheet_envelope * lam_sheet))             # truncation
        self.pad = sfft.next_fast_len(self.h + radius + 1)
        yy, xx = _wrapped_grid(self.pad)
        g = np.stack([_gabor(yy, xx, th, lam_sheet, p.sheet_envelope) for th in self.theta])
        g[:, np.maximum(np.abs(yy), np.abs(xx)) > radius] = 0
        self.gabor_hat = sfft.fft2(g).astype(np.complex64)                  # [O, P, P]

        # recurrence kernels on the sheet (offsets in file px)
        # kernel truncated at 3 sigma along; padding h + reach keeps the FFT convolution linear
        reach = int(np.ceil(3 * p.fac_length / step))                       # sheet samples
        self.sheet_pad = sfft.next_fast_len(self.h + reach + 1)
        gy, gx = _wrapped_grid(self.sheet_pad)
        sy, sx = gy * step, gx * step
        kf = []
        for th in self.theta:
            along = sx * np.cos(th) + sy * np.sin(th)
            across = -sx * np.sin(th) + sy * np.cos(th)
            k = (np.exp(-along ** 2 / (2 * p.fac_length ** 2)
                        - across ** 2 / (2 * p.fac_width ** 2))
                 * (1 - np.exp(-along ** 2 / (2 * p.fac_hole ** 2))))
            k[np.maximum(np.abs(gy), np.abs(gx)) > reach] = 0
            kf.append(k / k.sum())
        self.fac_kernel = np.stack(kf)                                      # [O, Q, Q]
        self.fac_hat = sfft.rfft2(self.fac_kernel).astype(np.complex64)
        # surround annulus exp(-d^2/2s^2) (1 - exp(-d^2/2c^2)) = G_s - G_e (1/e^2 = 1/s^2 + 1/c^2):
        # a difference of two separable Gaussians, applied as T P T^T with [h, h] matrices
        sig_e = 1 / np.sqrt(1 / p.surround_sigma ** 2 + 1 / p.surround_hole ** 2)
        d = (np.arange(self.h)[:, None] - np.arange(self.h)[None, :]) * step
        wide = np.arange(-self.h * 4, self.h * 4 + 1) * step
        self.surr_mats = [np.exp(-d ** 2 / (2 * sg ** 2)).astype(np.float32)
                          for sg in (p.surround_sigma, sig_e)]
        total = (np.exp(-wide ** 2 / (2 * p.surround_sigma ** 2)).sum() ** 2
                 - np.exp(-wide ** 2 / (2 * sig_e ** 2)).sum() ** 2)
        self.surr_sign = np.float32(1 / total), np.float32(-1 / total)
        # orientation-tuned pool w(o, o') = (1 + kappa cos 2(theta_o - theta_o')) / O is rank 3:
        # pool_o = sum_k weight[k, o] (basis_k . r), basis = (1, cos 2 theta', sin 2 theta')
        self.pool_basis = np.stack([np.ones(n_o), np.cos(2 * self.theta),
                                    np.sin(2 * self.theta)]).astype(np.float32)   # [3, O]
        self.pool_weight = (np.stack([np.ones(n_o), p.kappa * np.cos(2 * self.theta),
                                      p.kappa * np.sin(2 * self.theta)]) / n_o
                            ).astype(np.float32)                                  # [3, O]

    def sheet_amplitudes(self, x: np.ndarray) -> np.ndarray:
        """Orientation amplitudes ``[batch, O, h, h]`` on the sheet for images ``x``
        ``[batch, S, S]`` (downsampled by local mean to the sheet, zero padded)."""
        import scipy.fft as sfft

        st, h = self.stride, self.h
        xp = np.zeros((len(x), self.pad, self.pad), dtype=np.float32)
        if st > 1:
            full = np.zeros((len(x), h * st, h * st), dtype=np.float32)
            full[:, :self.size, :self.size] = x
            x = full.reshape(len(x), h, st, h, st).mean(axis=(2, 4))
        xp[:, :h, :h] = x
        xh = sfft.fft2(xp, workers=-1)
        z = sfft.ifft2(xh[:, None] * self.gabor_hat[None], workers=-1)[:, :, :h, :h]
        return np.abs(z)

    def neuron_filters(self, neurons: "Neurons") -> np.ndarray:
        """Complex Gabor of each neuron placed at its RF centre, ``[neurons, S, S]``."""
        s = self.size
        rows, cols = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
        out = np.empty((len(neurons.row), s, s), dtype=np.complex64)
        for i in range(len(neurons.row)):
            out[i] = _gabor(rows - neurons.row[i], cols - neurons.col[i],
                            self.theta[neurons.orientation[i]],
                            self.lam[neurons.wavelength[i]], self.params.envelope)
        return out

    def _gain(self, fac: np.ndarray, sup: np.ndarray) -> np.ndarray:
        """Bounded contextual gain ``(1 + alpha F/(1+F)) / (1 + beta S/(1+S))``, in
        [1 / (1 + beta), 1 + alpha] whatever the context (F, S >= 0, semi-saturation at their
        mean level 1)."""
        p = self.params
        fac, sup = np.maximum(fac, 0), np.maximum(sup, 0)
        return (1 + p.alpha * fac / (1 + fac)) / (1 + p.beta * sup / (1 + sup))

    def recurrence(self, e: np.ndarray, orientation: np.ndarray, srow: np.ndarray,
                   scol: np.ndarray) -> np.ndarray:
        """Contextual gain ``M^T`` ``[batch, neurons]`` of neurons with orientation index
        ``orientation`` at sheet positions (srow, scol), for orientation amplitudes ``e``
        ``[batch, O, h, h]``. Iterations 1..T-1 run on the whole sheet (FFT convolution),
        the last one only at the neurons."""
        import scipy.fft as sfft

        h, q = self.h, self.sheet_pad
        r = e
        for _ in range(self.params.iterations - 1):
            rp = np.zeros(e.shape[:2] + (q, q), dtype=np.float32)
            rp[:, :, :h, :h] = r
            rh = sfft.rfft2(rp, workers=-1)                                   # [B, O, Q, Q']
            fac = sfft.irfft2(rh * self.fac_hat, s=(q, q), workers=-1)[:, :, :h, :h]
            b, o = rh.shape[:2]
            pooled = (self.pool_basis @ r.reshape(b, o, -1)).reshape(b, 3, h, h)
            pooled = sum(c * (t @ pooled @ t.T) for c, t in zip(self.surr_sign, self.surr_mats))
            sup = (self.pool_weight.T @ pooled.reshape(b, 3, -1)).reshape(r.shape)
            r = e * self._gain(fac, sup)
        # last iteration at the neurons: kernels centred on each neuron (wrapped offsets)
        dy = (srow[:, None] - np.arange(h)[None, :]) % q                     # [n, h]
        dx = (scol[:, None] - np.arange(h)[None, :]) % q
        kf = self.fac_kernel[orientation[:, None, None], dy[:, :, None], dx[:, None, :]]
        ks = sum(c * t[srow][:, :, None] * t[scol][:, None, :]             # [n, h, h]
                 for c, t in zip(self.surr_sign, self.surr_mats))
        b, o, n = r.shape[0], r.shape[1], len(orientation)
        rf = r.reshape(b, o, h * h)
        fac = np.einsum("bnk,nk->bn", rf[:, orientation], kf.reshape(n, h * h))
        pooled = (self.pool_basis @ rf) @ ks.reshape(n, h * h).T.astype(np.float32)  # [B,3,n]
        sup = np.einsum("kn,bkn->bn", self.pool_weight[:, orientation], pooled)
        return self._gain(fac, sup)


# ----------------------------------------------------------------------------- simulation


def sample_neurons(n_neurons: int, params: CircuitParams, geometry: _Geometry,
                   rng: np.random.Generator) -> Neurons:
    """Draw ``n_neurons`` neurons (see :class:`Neurons`) on the sheet grid near the centre."""
    g = geometry
    centre = (g.size - 1) / 2
    idx = np.arange(g.h) * g.stride
    rr, cc = np.meshgrid(idx, idx, indexing="ij")
    dist = np.hypot(rr - centre, cc - centre) * g.scale
    cand = np.flatnonzero(dist.ravel() <= max(params.rf_radius, dist.min()))
    pos = rng.choice(cand, size=n_neurons, replace=True)
    lo, hi = np.log(params.mean_count_range)
    return Neurons(
        row=rr.ravel()[pos], col=cc.ravel()[pos],
        orientation=rng.integers(0, params.n_orientations, n_neurons),
        wavelength=rng.integers(0, len(params.wavelengths), n_neurons),
        simple=rng.random(n_neurons) < params.frac_simple,
        phase=2 * np.pi * rng.integers(0, params.n_phases, n_neurons) / params.n_phases,
        target_cc=rng.uniform(*params.cc_max_range, n_neurons),
        mean_count=np.exp(rng.uniform(lo, hi, n_neurons)),
    )


def _contrast(images: np.ndarray) -> np.ndarray:
    """``x = (I - mean(I)) / 255`` per image, float32 (step 1)."""
    x = images.astype(np.float32)
    return (x - x.mean(axis=(1, 2), keepdims=True)) / 255.0


def _drive(x: np.ndarray, neurons: Neurons, g: _Geometry) -> np.ndarray:
    """First stage at the neurons (step 2): drives ``[stimuli, neurons]``, mean 1."""
    # first stage at the neurons: complex Gabor responses at their RF centres
    filt = g.neuron_filters(neurons).reshape(len(neurons.row), -1)
    xf = x.reshape(len(x), -1)
    z = xf @ filt.real.T + 1j * (xf @ filt.imag.T)                          # [stimuli, neurons]
    drive = np.where(neurons.simple, np.maximum((np.exp(-1j * neurons.phase) * z).real, 0),
                     np.abs(z))
    return drive / drive.mean(axis=0).clip(1e-12)                            # mean 1


def _sheet(x: np.ndarray, g: _Geometry) -> np.ndarray:
    """The sheet (step 3): orientation amplitudes ``[stimuli, O, h, h]``, each divided by its
    mean over images and positions."""
    e = np.empty((len(x), g.params.n_orientations, g.h, g.h), dtype=np.float32)
    for b in range(0, len(x), BATCH):
        e[b:b + BATCH] = g.sheet_amplitudes(x[b:b + BATCH])
    e /= e.mean(axis=(0, 2, 3), dtype=np.float64).clip(1e-12).astype(np.float32)[None, :, None, None]
    return e


def circuit_rates(images: np.ndarray, circuit: str, neurons: Neurons, geometry: _Geometry
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean rates of ``neurons`` for ``images`` ``[stimuli, S, S]``.

    Returns (rates ``[stimuli, neurons]`` of ``circuit``, first-pass feed-forward drives
    ``[stimuli, neurons]``), both in units of the channel's mean amplitude over the image set.
    """
    if circuit not in CIRCUITS:
        raise RcpbError(f"circuit '{circuit}' is not known; use one of {', '.join(CIRCUITS)}.")
    g = geometry
    n_img = len(images)
    x = _contrast(images)
    drive = _drive(x, neurons, g)
    if circuit == "feedforward":          # the same gain once, kernels of matched reach
        g = _Geometry(one_pass(g.params), g.size, g.scale)
    e = _sheet(x, g)
    gain = np.empty_like(drive)
    srow, scol = neurons.row // g.stride, neurons.col // g.stride
    for b in range(0, n_img, BATCH):
        gain[b:b + BATCH] = g.recurrence(e[b:b + BATCH], neurons.orientation, srow, scol)
    return drive * gain, drive


def check_dynamics(dynamics: dict | None) -> dict | None:
    """``dynamics`` with :data:`DYNAMICS_DEFAULTS` filled in, checked (None: no time axis).
    Needs 0 <= latency < bins (at least one response bin), 1 <= on_bins <= bins, bin_ms > 0."""
    if dynamics is None:
        return None
    if not isinstance(dynamics, dict):
        raise RcpbError(f"dynamics = {dynamics!r}; give a mapping, e.g. {DYNAMICS_DEFAULTS}.")
    unknown = sorted(set(dynamics) - set(DYNAMICS_DEFAULTS))
    if unknown:
        raise RcpbError(f"dynamics: unknown key(s) {', '.join(unknown)}; the keys are "
                        f"{', '.join(DYNAMICS_DEFAULTS)}.")
    d = {**DYNAMICS_DEFAULTS, **{k: v for k, v in dynamics.items() if v is not None}}
    for key in ("bins", "on_bins", "latency"):
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise RcpbError(f"dynamics.{key} = {v!r}; give a whole number of bins.")
        d[key] = int(v)
    bins, on, latency = d["bins"], d["on_bins"], d["latency"]
    if bins < 1 or not 0 <= latency < bins:
        raise RcpbError(f"dynamics: bins = {bins}, latency = {latency}; need bins >= 1 and "
                        f"0 <= latency < bins (at least one bin after the latency).")
    if not 1 <= on <= bins:
        raise RcpbError(f"dynamics.on_bins = {on}; the image is on for 1..bins ({bins}) bins.")
    bin_ms = d["bin_ms"]
    if (isinstance(bin_ms, bool) or not isinstance(bin_ms, (int, float, np.number))
            or not float(bin_ms) > 0):
        raise RcpbError(f"dynamics.bin_ms = {bin_ms!r}; give the bin width in ms, > 0.")
    d["bin_ms"] = float(bin_ms)
    return d


def dynamics_args(dynamics: dict | None) -> str:
    """``--time-bins N --on-bins N --latency N --bin-ms MS`` for ``rcpb data simulate`` from a
    config's ``simulate.dynamics`` (keys left out: :data:`DYNAMICS_DEFAULTS`); "" for None
    (no time axis). Used by rules/data.smk."""
    if dynamics is None:
        return ""
    d = {**DYNAMICS_DEFAULTS, **{k: v for k, v in dynamics.items() if v is not None}}
    return (f"--time-bins {d['bins']} --on-bins {d['on_bins']} --latency {d['latency']} "
            f"--bin-ms {d['bin_ms']:g}")


def _binned(per_iteration: np.ndarray, dynamics: dict) -> np.ndarray:
    """Rates ``[stimuli, neurons, bins]`` from the rates of iterations 1..bins-latency
    ``[stimuli, neurons, bins - latency]``: 0 in the ``latency`` bins before them."""
    s, n, _ = per_iteration.shape
    out = np.zeros((s, n, dynamics["bins"]), dtype=np.float64)
    out[:, :, dynamics["latency"]:] = per_iteration
    return out


def circuit_dynamics(images: np.ndarray, circuit: str, neurons: Neurons, geometry: _Geometry,
                     n_iter: int, on_iters: int, static: np.ndarray) -> np.ndarray:
    """Rates of ``neurons`` at iterations 1..``n_iter`` ``[stimuli, neurons, n_iter]``, the
    image on for iterations 1..``on_iters``, gray after (module docstring, step 6).
    ``static``: the circuit's static rates (:func:`circuit_rates`), the feed-forward
    circuit's rate while the image is on. Recurrent: ``d_n M^t`` with ``r^0 = E``,
    ``M^t = gain(r^{t-1})``, ``r^t = E M^t`` on the whole sheet (FFT convolution at every
    iteration; the neurons' gains read off the sheet)."""
    import scipy.fft as sfft

    on = min(on_iters, n_iter)
    out = np.zeros(static.shape + (n_iter,), dtype=np.float64)
    if circuit == "feedforward":
        out[:, :, :on] = static[:, :, None]
        return out          # gray: no contrast, drive 0, rate 0
    g = geometry
    x = _contrast(images)
    drive = _drive(x, neurons, g)
    e = _sheet(x, g)
    n_img = len(images)
    srow, scol = neurons.row // g.stride, neurons.col // g.stride
    h, q = g.h, g.sheet_pad
    for b0 in range(0, n_img, BATCH):
        eb = e[b0:b0 + BATCH]
        r = eb
        for t in range(1, on + 1):
            rp = np.zeros(eb.shape[:2] + (q, q), dtype=np.float32)
            rp[:, :, :h, :h] = r
            rh = sfft.rfft2(rp, workers=-1)
            fac = sfft.irfft2(rh * g.fac_hat, s=(q, q), workers=-1)[:, :, :h, :h]
            nb, o = rh.shape[:2]
            pooled = (g.pool_basis @ r.reshape(nb, o, -1)).reshape(nb, 3, h, h)
            pooled = sum(c * (m @ pooled @ m.T) for c, m in zip(g.surr_sign, g.surr_mats))
            sup = (g.pool_weight.T @ pooled.reshape(nb, 3, -1)).reshape(r.shape)
            gain = g._gain(fac, sup)                                   # M^t on the sheet
            out[b0:b0 + BATCH, :, t - 1] = (drive[b0:b0 + BATCH]
                                            * gain[:, neurons.orientation, srow, scol])
            r = eb * gain                                              # r^t = E M^t
    return out      # iterations > on_iters: gray input, E = 0 and d = 0, rate 0


def _columnwise_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a ** 2).sum(axis=0) * (b ** 2).sum(axis=0))


def poisson_trials(rates: np.ndarray, target_cc: np.ndarray, mean_count: np.ndarray,
                   n_trials: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Trial counts around ``rates`` ``[stimuli, neurons]`` (see module docstring, step 5),
    with per-neuron target ceilings ``target_cc`` and mean counts ``mean_count`` ``[neurons]``.
    ``mean_count`` None: no baseline (b = 0), ``lambda = g rate`` exactly, the mean count
    follows from the ceiling (the teachers: their truth stays an rcpb model's output).

    Returns (responses ``[stimuli, trials, neurons]`` float32, true_rates ``lambda``
    ``[stimuli, neurons]``: expected count per trial).

    Time-binned ``rates`` ``[stimuli, neurons, bins]`` (step 6): g and b are solved on the
    rates summed over the bins, the baseline ``b mean`` spread evenly over the bins; returns
    responses ``[stimuli, trials, neurons, bins]``, true_rates ``[stimuli, neurons, bins]``.
    """
    binned = rates.ndim == 3
    total = rates.sum(axis=2) if binned else rates
    m = total.mean(axis=0)
    v = total.var(axis=0)
    if np.any(v <= 1e-12 * np.maximum(m, 1e-12) ** 2):
        raise RcpbError(f"the images drive neuron(s) {np.flatnonzero(v <= 1e-12 * m ** 2)[:5]} "
                        f"identically for every stimulus (blank or constant images?); "
                        f"simulate with an image set that has spatial structure.")
    c = target_cc
    if mean_count is None:
        b = np.zeros_like(m)
    else:
        one_plus_b = np.sqrt(np.maximum(mean_count * n_trials * v * (1 / c ** 2 - 1), 0)) / m
        b = np.maximum(one_plus_b - 1, 0)
    # g from c: g^2 v (1/c^2 - 1) = g (1 + b) m / K
    g = (1 + b) * m / (n_trials * v * (1 / c ** 2 - 1))
    if binned:
        lam = g[:, None] * (rates + (b * m / rates.shape[2])[:, None])
        counts = rng.poisson(lam[:, None], size=(lam.shape[0], n_trials) + lam.shape[1:])
        return counts.astype(np.float32), lam
    lam = g * (rates + b * m)
    counts = rng.poisson(lam[:, None, :], size=(lam.shape[0], n_trials, lam.shape[1]))
    return counts.astype(np.float32), lam


def _circuit_truth(images, circuit, n_neurons, params, scale, rng, dynamics=None):
    """(rates, neuron ids, target_cc, mean_count, baselines, extra attrs) of a circuit; with
    ``dynamics`` (checked) the rates are time-binned ``[stimuli, neurons, bins]``."""
    geometry = _Geometry(params, images.shape[1], scale)
    neurons = sample_neurons(n_neurons, params, geometry, rng)
    rates, drive = circuit_rates(images, circuit, neurons, geometry)
    rec_corr = _columnwise_corr(drive, rates)
    if dynamics is not None:
        rates = _binned(circuit_dynamics(images, circuit, neurons, geometry,
                                         dynamics["bins"] - dynamics["latency"],
                                         dynamics["on_bins"], rates), dynamics)
    attrs = {"recurrence_corr": float(rec_corr.mean()),
             "recurrence_corr_min": float(rec_corr.min())}
    for key, value in asdict(params).items():
        attrs[f"sim_{key}"] = (",".join(f"{v:g}" for v in value) if isinstance(value, tuple)
                               else value)
    return (rates, neurons.ids(params), neurons.target_cc, neurons.mean_count,
            {"drive": drive.astype(np.float32)}, attrs)


def _teacher_truth(images, circuit, n_neurons, params, seed, teacher_input, rng, dynamics=None):
    """(rates, neuron ids, target_cc, mean_count, baselines, extra attrs) of a teacher; with
    ``dynamics`` (checked) the rates are time-binned ``[stimuli, neurons, bins]``."""
    from rcpb.data.preprocess import preprocess_images
    from rcpb.data.teachers import make_teacher, teacher_dynamics

    crop, factor = teacher_input
    x = preprocess_images(images, crop, factor)
    model, rates = make_teacher(circuit, x, n_neurons, seed)
    if dynamics is not None:
        rates = _binned(teacher_dynamics(model, x, dynamics["bins"] - dynamics["latency"],
                                         dynamics["on_bins"]), dynamics)
    target_cc = rng.uniform(*params.cc_max_range, n_neurons)
    attrs = {"teacher_crop": -1 if crop is None else int(crop), "teacher_downsample": int(factor)}
    # no baseline: lambda = g * (the teacher's output), itself the output of an rcpb model (a
    # positive factor passes through the readout's ReLU), so the students can represent it
    return rates, [f"n{i:03d}-teacher" for i in range(n_neurons)], target_cc, None, {}, \
        {**attrs, "_teacher": model}


def simulate(images: np.ndarray, circuit: str = "recurrent", n_neurons: int = 34,
             n_trials: int = 8, seed: int = 0, params: CircuitParams | None = None,
             scale: float = 1.0, teacher_input: tuple = (None, 1),
             dynamics: dict | None = None) -> Dataset:
    """Simulate a dataset for ``images`` ``[stimuli, S, S]`` (already at the simulated size).

    ``scale``: image-file pixels per pixel of ``images`` (2 for 37 px images made from 74 px
    ones); the lengths in ``params`` are in image-file pixels. ``teacher_input``: (crop,
    downsample) that turn the images into the teachers' (and the students') model input.
    Returns a :class:`Dataset` with responses ``[stimuli, n_trials, n_neurons]`` (spike counts),
    ``true_rates`` ``[stimuli, n_neurons]`` (expected counts), ``baselines`` (circuits: the
    feed-forward first stage ``drive``) and the parameters in ``attrs`` (``name``, ``source``,
    ``units``, ``circuit``, ...; no ``license``); a teacher's network is ``ds.teacher``.
    ``dynamics`` (keys of :data:`DYNAMICS_DEFAULTS`, the missing ones filled in; None: no time
    axis): time-binned responses ``[stimuli, n_trials, n_neurons, bins]`` and true_rates
    ``[stimuli, n_neurons, bins]`` (module docstring, step 6).
    """
    params = params or CircuitParams()
    dynamics = check_dynamics(dynamics)
    if circuit not in CIRCUITS:
        raise RcpbError(f"circuit '{circuit}' is not known; use one of {', '.join(CIRCUITS)}.")
    if n_neurons < 1 or n_trials < 2:
        raise RcpbError(f"simulate: need n_neurons >= 1 and n_trials >= 2 (got {n_neurons}, "
                        f"{n_trials}); the noise ceiling needs repeated trials.")
    rng_neurons, rng_trials = (np.random.default_rng(s)
                               for s in np.random.SeedSequence(seed).spawn(2))
    if circuit.endswith("_teacher"):
        truth = _teacher_truth(images, circuit, n_neurons, params, seed, teacher_input,
                               rng_neurons, dynamics)
    else:
        truth = _circuit_truth(images, circuit, n_neurons, params, scale, rng_neurons, dynamics)
    rates, ids, target_cc, mean_count, baselines, extra = truth
    teacher = extra.pop("_teacher", None)
    responses, lam = poisson_trials(rates, target_cc, mean_count, n_trials, rng_trials)
    attrs = {
        "name": f"sim_{circuit}",
        "source": (f"rcpb.data.simulate, ground truth '{circuit}', seed {seed}, {n_neurons} "
                   f"neurons, {n_trials} Poisson trials, {images.shape[1]} px images "
                   f"({scale:g} px of the image file per px); parameters in attrs"),
        "units": "spike counts",
        "circuit": circuit,
        "known_answer": KNOWN_ANSWERS[circuit]["text"],
        "seed": int(seed),
        "sim_scale": float(scale),
        "sim_cc_max_range": ",".join(f"{v:g}" for v in params.cc_max_range),
        "sim_mean_count_range": ",".join(f"{v:g}" for v in params.mean_count_range),
        **extra,
    }
    if dynamics is not None:
        d = dynamics
        attrs["source"] += (f"; time-binned: {d['bins']} bins of {d['bin_ms']:g} ms, image on "
                            f"for {d['on_bins']} bins then gray, latency {d['latency']} bins")
        attrs.update(bin_ms=d["bin_ms"], stim_on_bin=0, stim_off_bin=d["on_bins"],
                     sim_latency_bins=d["latency"])
    ds = Dataset(images=images, responses=responses, true_rates=lam.astype(np.float32),
                 neuron_ids=ids, attrs=attrs, baselines=baselines)
    ds.teacher = teacher
    return ds


def simulate_file(images_file, out, circuit: str = "recurrent", n_neurons: int = 34,
                  n_trials: int = 8, seed: int = 0, input_size: int | None = None,
                  teacher_input: tuple = (None, 1), dynamics: dict | None = None) -> Dataset:
    """Read ``images`` from ``images_file``, simulate ``circuit`` and write the dataset ``out``.

    ``input_size``: if given, the images are cropped/downsampled (:func:`resize_images`) before
    simulating and stored at that size. ``teacher_input``: (crop, downsample) of the model
    input (teachers only; the dataset's ``preprocess``). ``dynamics``: see :func:`simulate`.
    The image file's ``license`` attr is
    copied; a teacher's network is stored in the file (:mod:`rcpb.data.teachers`).
    Returns the written :class:`Dataset`.
    """
    images, src_attrs = read_images(images_file)
    images, factor = resize_images(images, input_size)
    ds = simulate(images, circuit=circuit, n_neurons=n_neurons, n_trials=n_trials, seed=seed,
                  scale=float(factor), teacher_input=teacher_input, dynamics=dynamics)
    ds.attrs["license"] = str(src_attrs.get("license", "unknown: see the stimuli's source"))
    ds.attrs["stimuli"] = f"{Path(images_file).name}" + (
        f" ({src_attrs['source']})" if "source" in src_attrs else "")
    ds.attrs["input_size"] = int(images.shape[1])
    from rcpb.data.teachers import save_teacher

    write_dataset(out, ds, extra=None if ds.teacher is None else
                  (lambda path: save_teacher(path, ds.teacher)))
    return ds
