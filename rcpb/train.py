"""Three-phase optimisation (SPEC 4; Klindt et al. 2017 schedule) and evaluation.

Objective per minibatch (``preds`` = model output ``[n_out, batch, neurons]``):

    mean_i loss(preds[i], y) + readout_l1 * L1(readout) + smoothness * S(first_conv)

- ``loss``: ``mse`` = mean((yhat - y)^2); ``poisson`` = mean(yhat - y * log(yhat + 1e-5)),
  means over stimuli and neurons. For n_out > 1 (late-avg, 2-avg readouts) the loss is the
  mean of the per-iteration losses.
- ``L1(readout) = mean_n[(sum_c |wf[n, c]|) * (sum_xy |ws[n, x, y]|)]``.
- ``S(w) = sum_{out, in} ||L * w[out, in]||^2 / ||w[out, in]||^2``, ``L`` the 3x3 Laplacian
  below, zero padding 1, on the first (9x9) convolution only.

Schedule: Adam on minibatches of ``batch_size`` stimuli (a fresh seeded permutation of the
training set every epoch, incomplete last batch dropped; a training set smaller than one batch
is used as one batch of all stimuli). ``phases`` phases with learning rates ``lr``,
``lr / lr_decay``, ``lr / lr_decay^2``, ... Every ``eval_every`` steps (and once before the
first step, and at the end of a phase whose step count is not a multiple of ``eval_every``) the
validation loss is computed without regularisation, in eval mode, on the prediction averaged
over iterations (``preds.mean(0)``, the prediction that is evaluated). A phase stops after
``patience`` evaluations in a row without a strictly lower validation loss than the best so far,
or after ``max_steps`` steps. At the end of each phase the best model state and the Adam state
saved with it are restored; the next phase continues from them with the lower learning rate
(one Adam state carried through; the paper's "three optimizers" differ only in their learning
rate). The best value carries across phases: a later phase replaces the best only if strictly
better, so the returned state is the best validation checkpoint of the whole run.

Determinism: the data order comes from ``train.data_seed`` (its own ``torch.Generator``), the
initialisation from ``model_seed`` (used when the model is built). Same config, same machine,
same thread count -> same numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rcpb.errors import RcpbError

#: Paper values (Klindt et al. 2017 code, SPEC 4); a config's ``train`` dict overrides them.
TRAIN_DEFAULTS = {
    "batch_size": 256,
    "lr": 1e-3,
    "lr_decay": 3.0,
    "phases": 3,
    "eval_every": 50,
    "patience": 10,
    "max_steps": 40000,
    "readout_l1": 0.01,
    "smoothness": 5e-6,
    "data_seed": 0,
}

LOSSES = ("mse", "poisson")

#: The Laplacian of the smoothness regulariser (Klindt et al. 2017, section 5.2).
LAPLACIAN = ((0.25, 0.5, 0.25), (0.5, -3.0, 0.5), (0.25, 0.5, 0.25))

#: Stimuli per forward pass when predicting a whole split (bounded memory, fixed for determinism).
EVAL_CHUNK = 512

POISSON_EPS = 1e-5

LOG_COLUMNS = ["step", "phase", "train_loss", "val_loss", "lr"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    best_state: model state dict (CPU tensors) of the best validation checkpoint (None if the
        training failed).
    best_val_loss: its validation loss (unregularised, averaged prediction).
    best_step: global step (counted over all phases) at which it was reached; 0 = initial model.
    steps_per_phase: optimisation steps run in each phase.
    log: one dict per evaluation with keys LOG_COLUMNS; ``train_loss`` is the mean unregularised
        training loss over the steps since the previous evaluation (NaN for the step-0 row).
    wall_time_s: seconds spent in :func:`train`.
    failed: None, or why the training stopped early (a NaN or infinite loss: diverged).
    """

    best_state: dict | None
    best_val_loss: float
    best_step: int
    steps_per_phase: list[int]
    log: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    failed: str | None = None


# ----------------------------------------------------------------------------- losses


def prediction_loss(pred: torch.Tensor, y: torch.Tensor, loss: str,
                    has_nan: bool | None = None) -> torch.Tensor:
    """Mean prediction loss over all entries; NaN targets are ignored.

    pred: ``[..., batch, neurons]`` (a leading iteration axis is averaged over too, which
    equals the mean of per-iteration losses); y: ``[batch, neurons]``, broadcast against pred.
    loss: ``"mse"`` or ``"poisson"``. has_nan: whether y may hold NaN (None: check, which costs
    a device sync per call; False: y has none; True: mask NaN without checking). Returns a
    scalar tensor.
    """
    if loss not in LOSSES:
        raise RcpbError(f"config field 'loss': unknown loss {loss!r}; use one of {LOSSES}")
    if has_nan is False:
        return _elementwise(pred, y, loss).mean()
    mask = ~torch.isnan(y)
    if has_nan is None and bool(mask.all()):
        return _elementwise(pred, y, loss).mean()
    y0 = torch.where(mask, y, torch.zeros_like(y))
    per = torch.where(mask, _elementwise(pred, y0, loss), torch.zeros((), device=pred.device))
    count = mask.expand_as(per).sum()
    return per.sum() / count.clamp(min=1)


def _elementwise(pred: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return (pred - y) ** 2
    return pred - y * torch.log(pred + POISSON_EPS)


# ----------------------------------------------------------------------------- regularisers


def readout_l1(ws: torch.Tensor, wf: torch.Tensor) -> torch.Tensor:
    """``mean_n[(sum_c |wf[n, c]|) * (sum_xy |ws[n, x, y]|)]`` (unweighted).

    ws: ``[neurons, h, w]`` spatial weights; wf: ``[neurons, channels]`` feature weights.
    """
    spatial = ws.abs().flatten(1).sum(1)
    feature = wf.abs().sum(1)
    return (spatial * feature).mean()


def smoothness(weight: torch.Tensor) -> torch.Tensor:
    """``sum_{out, in} ||L * w[out, in]||^2 / ||w[out, in]||^2`` (unweighted).

    weight: conv kernel ``[out, in, k, k]``; ``L`` = :data:`LAPLACIAN`, zero padding 1, so
    ``L * w`` has the kernel's size.
    """
    out_c, in_c, kh, kw = weight.shape
    lap = torch.tensor(LAPLACIAN, dtype=weight.dtype, device=weight.device).view(1, 1, 3, 3)
    w = weight.reshape(out_c * in_c, 1, kh, kw)
    lw = F.conv2d(w, lap, padding=1)
    return (lw.pow(2).flatten(1).sum(1) / w.pow(2).flatten(1).sum(1)).sum()


def regularisation(model: torch.nn.Module, tc: dict) -> torch.Tensor:
    """Weighted readout L1 plus first-conv smoothness; ``tc`` = the resolved ``train`` dict."""
    ro = model.readout
    return tc["readout_l1"] * readout_l1(ro.ws, ro.wf) + tc["smoothness"] * smoothness(
        model.first_conv.weight
    )


def bin_outputs(preds: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Time-binned predictions: ``preds`` ``[n_out, batch, neurons]`` -> ``[n_bins, batch,
    neurons]``, bin k (of the fitted window) predicted by iteration k + 1 through the one
    readout, bins past the last output by the last output; a model with one output (feed-forward,
    or a readout that averages) predicts the same for every bin."""
    return preds[torch.arange(n_bins, device=preds.device).clamp(max=preds.shape[0] - 1)]


def objective(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, tc: dict, loss: str,
              has_nan: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(data loss, data loss + regularisation)`` of one minibatch: x ``[batch, 1, H, W]``,
    y ``[batch, neurons]`` (the data loss averaged over the model's iterations) or, time-binned,
    ``[batch, bins, neurons]`` (the loss averaged over stimuli, bins and neurons of
    :func:`bin_outputs`: one readout for every bin)."""
    preds = model(x)
    if y.dim() == 3:
        preds, y = bin_outputs(preds, y.shape[1]), y.movedim(1, 0)
    data_loss = prediction_loss(preds, y, loss, has_nan=has_nan)
    return data_loss, data_loss + regularisation(model, tc)


# ----------------------------------------------------------------------------- prediction


def evaluation_prediction(preds: torch.Tensor, n_bins: int | None = None) -> torch.Tensor:
    """The prediction that is evaluated, from model outputs ``[n_out, batch, neurons]``:
    ``preds.mean(0)`` ``[batch, neurons]``, or for ``n_bins`` time bins :func:`bin_outputs`
    as ``[batch, n_bins, neurons]``."""
    if n_bins is None:
        return preds.mean(0)
    return bin_outputs(preds, n_bins).movedim(0, 1)


def target_bins(y: torch.Tensor) -> int | None:
    """Time bins of targets ``y``: ``[n, bins, neurons]`` -> bins; ``[n, neurons]`` -> None."""
    return y.shape[1] if y.dim() == 3 else None


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, chunk: int = EVAL_CHUNK,
            n_bins: int | None = None) -> torch.Tensor:
    """:func:`evaluation_prediction` in eval mode: x ``[n, 1, H, W]`` -> ``[n, neurons]``
    (``[n, n_bins, neurons]`` for time-binned targets). Leaves the model in eval mode."""
    model.eval()
    parts = [evaluation_prediction(model(x[i : i + chunk]), n_bins)
             for i in range(0, x.shape[0], chunk)]
    return torch.cat(parts, 0)


def train_config(config: dict) -> dict:
    """The ``train`` dict of ``config`` with :data:`TRAIN_DEFAULTS` filled in."""
    return {**TRAIN_DEFAULTS, **(config.get("train") or {})}


def _tensor(a, device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)


def slot_data(data, device, tensors: dict | None = None):
    """The training and validation tensors of ``data`` (a :class:`rcpb.data.prepare.Prepared`)
    on ``device``, as :class:`rcpb.pack.engines.SlotData`. ``tensors``: a dict shared by the
    calls for data sets that share arrays (rcpb.pack.run.with_fraction): an array is moved to
    the device once."""
    from rcpb.pack.engines import SlotData

    tensors = {} if tensors is None else tensors

    def tensor(a):
        if id(a) not in tensors:          # the array is kept with it: its id stays its own
            tensors[id(a)] = (a, _tensor(a, device))
        return tensors[id(a)][1]

    x_train, y_train = tensor(data.x_train), tensor(data.y_train)
    x_val, y_val = tensor(data.x_val), tensor(data.y_val)
    if x_train.shape[0] == 0 or x_val.shape[0] == 0:
        raise RcpbError("training and validation sets must not be empty; "
                        "check the dataset's split and train_fraction")
    return SlotData(x_train, y_train, x_val, y_val, train_nan=_has_nan(y_train),
                    val_nan=_has_nan(y_val))


def _has_nan(y: torch.Tensor, block: int = 1024) -> bool:
    """Whether ``y`` holds NaN; checked ``block`` rows at a time (no mask of its size)."""
    return any(bool(torch.isnan(part).any()) for part in y.split(block))


# ----------------------------------------------------------------------------- training


def train(
    model: torch.nn.Module,
    data,
    config: dict,
    progress: Callable[[str], None] | None = None,
    on_phase_end: Callable[[list[dict]], None] | None = None,
) -> TrainResult:
    """Train ``model`` alone on ``data`` (a :class:`rcpb.data.prepare.Prepared`) per ``config``.

    Uses ``config["loss"]``, ``config["train"]`` (defaults :data:`TRAIN_DEFAULTS`) and the
    execution setting ``config["device"]`` (default cpu); the thread count and deterministic
    algorithms are process settings made by the caller (``rcpb train`` does). Training and
    validation tensors are moved to the device once. Before training, the readout bias is
    initialised from the mean training response. On return the model holds the best state (in
    eval mode). ``progress`` receives one line per phase; ``on_phase_end`` receives the log
    rows so far after each phase.

    The schedule is :class:`rcpb.pack.schedule.Schedule`, run by the pack trainer with one slot
    (:func:`rcpb.pack.trainer.train_pack`, engine "loop"): training alone is a pack of one.
    """
    from rcpb.pack.engines import Job
    from rcpb.pack.trainer import train_pack

    start = time.perf_counter()
    tc = train_config(config)
    device = torch.device(config.get("device") or "cpu")
    job = Job(model, slot_data(data, device), tc, config["loss"])
    done = {}

    def phase_end(job, schedule):
        if on_phase_end is not None:
            on_phase_end(schedule.log)
        if progress is not None:
            progress(f"{schedule.phase_summary()}, {time.perf_counter() - start:.1f} s")

    def finished(job, schedule, trained, wall_s):
        done["schedule"] = schedule

    train_pack([job], finished, slots=1, engine="loop", device=device, on_phase_end=phase_end)
    schedule = done["schedule"]
    model.eval()
    return TrainResult(
        best_state=None if schedule.failed else
        {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        best_val_loss=schedule.best_val,
        best_step=schedule.best_step,
        steps_per_phase=schedule.steps_per_phase,
        log=schedule.log,
        wall_time_s=time.perf_counter() - start,
        failed=schedule.failed,
    )


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: torch.nn.Module, data, config: dict) -> dict:
    """Metrics of ``model`` on the validation and test sets.

    Returns ``{"val": summary, "test": summary}`` where summary is
    :func:`rcpb.metrics.summarize` of the averaged prediction (eval mode, no grad) against the
    trial-averaged targets, with the noise ceiling of that target (:func:`rcpb.metrics.cc_max`),
    plus:

    - ``loss``: unregularised prediction loss of the averaged prediction against the training
      targets (``data.y_val`` / ``data.y_test``);
    - ``ceiling_stimuli``: the stimuli the ceiling comes from, ``data.ceiling_stimuli``:
      ``"evaluated"`` (default) = the split's own stimuli, the ones cc_raw is computed on;
      ``"all"`` = every stimulus of the file (the paper's). With ``"evaluated"``, a neuron with
      fewer than 2 repeated stimuli in the split takes the ceiling of all stimuli instead;
      ``ceiling_fallback_neurons`` lists those neurons (empty otherwise);
    - ``cc_max_per_neuron``: the ceiling used for each neuron (NaN where undefined).

    ``config["cc_max_trials"]`` = k (default None): the ceiling of the mean of the first k valid
    trials, and cc_raw against that mean too (:func:`rcpb.metrics.trial_target`); None = every
    valid trial of each stimulus (the prepared targets).
    """
    from rcpb.atomic_files import jsonable

    device = next(model.parameters()).device
    out = {}
    for split in ("val", "test"):
        x = _tensor(getattr(data, f"x_{split}"), device)
        y = _tensor(getattr(data, f"y_{split}"), device)
        pred = predict(model, x, n_bins=target_bins(y))
        summary = score(pred.cpu().numpy().astype(np.float64), data, split, config)
        summary["loss"] = float(prediction_loss(pred, y, config["loss"]))
        out[split] = jsonable(summary)
    return out


def split_trials(data, index: np.ndarray, y: np.ndarray,
                 neurons: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """``(responses, rows)``: trials ``[stimuli, trials, neurons]`` of prepared ``data`` (of its
    ``neurons``) in which ``responses[rows]`` are those of the stimuli ``index`` (whose targets
    are ``y``, all neurons).

    ``data.responses`` itself when it holds every stimulus (``data.trial_stimuli`` None);
    otherwise it holds the repeated stimuli only (rcpb.data.prepare), and each other stimulus of
    ``index`` is appended as its one valid trial, which is its target: the same numbers as the
    file's trials give every metric (rcpb.metrics takes a stimulus' valid trials in order).
    """
    stimuli = getattr(data, "trial_stimuli", None)
    held_trials = data.responses[:, :, neurons]
    if stimuli is None:
        return held_trials, index
    index = np.asarray(index)
    rows = np.searchsorted(stimuli, index)
    held = rows < stimuli.size
    held[held] = stimuli[rows[held]] == index[held]
    if held.all():
        return held_trials, rows
    single = np.asarray(y)[~held][:, neurons]
    trials = np.full((stimuli.size + len(single),) + held_trials.shape[1:], np.nan,
                     dtype=np.float32)
    trials[:stimuli.size] = held_trials
    trials[stimuli.size:, 0] = single
    rows[~held] = stimuli.size + np.arange(len(single))
    return trials, rows


#: Neurons scored at a time (every metric is per neuron): bounds the copies of a split's trials.
NEURON_BLOCK = 1000


def score(pred: np.ndarray, data, split: str, config: dict) -> dict:
    """:func:`rcpb.metrics.summarize` of predictions ``pred`` ``[stimuli of the split,
    neurons]`` for ``split`` ("train", "val" or "test") of prepared ``data``, against the
    split's trial-averaged targets with the noise ceiling of that target (see
    :func:`evaluate`; also used for the baseline predictors, rcpb.baselines). Time-binned
    data (``data.bins``): ``pred`` ``[stimuli, bins, neurons]``, :func:`score_bins`."""
    if getattr(data, "bins", None) is not None:
        return score_bins(pred, data, split, config)
    return _score(pred, data, split, config)


def score_bins(pred: np.ndarray, data, split: str, config: dict) -> dict:
    """Time-binned :func:`score`: each bin k scored on its own (targets ``y[:, k]``, the noise
    ceiling of that bin's trials); the summary's values and per-neuron lists are their means
    over bins, plus ``bins``: the file's bin of each, and per bin ``cc_raw``, ``cc_norm2``,
    ``pred_profile`` and ``true_profile`` (population means over the split's stimuli and
    neurons), and ``profile_cc``: per stimulus and neuron, the Pearson correlation over bins
    of the prediction with the trial-averaged target (0 where either is constant in time: a
    prediction that does not change says nothing of the time course), averaged over stimuli and
    neurons (``profile_cc_per_neuron``: averaged over stimuli)."""
    import dataclasses

    y = np.asarray(getattr(data, f"y_{split}"), dtype=np.float64)      # [n, K, neurons]
    pred = np.asarray(pred, dtype=np.float64)
    n = data.n_neurons
    per_bin = [_score(pred[:, k], dataclasses.replace(
        data, **{f"y_{split}": y[:, k], "responses": data.responses[:, :, k * n:(k + 1) * n]}),
        split, config) for k in range(y.shape[1])]
    summary = dict(per_bin[0])
    for key in ("cc_norm2", "cc_raw", "cc_raw2", "frac_negative_cc_raw"):
        summary[key] = float(np.mean([b[key] for b in per_bin]))
    for key in ("cc_norm2_per_neuron", "cc_raw_per_neuron", "cc_max_per_neuron"):
        with np.errstate(all="ignore"):
            summary[key] = [float(v) for v in np.nanmean([b[key] for b in per_bin], axis=0)]
    summary["n_excluded"] = int(np.isnan(summary["cc_norm2_per_neuron"]).sum())
    summary["bins"] = {
        "bin": [int(b) for b in data.bins],
        "cc_raw": [b["cc_raw"] for b in per_bin],
        "cc_norm2": [b["cc_norm2"] for b in per_bin],
        "pred_profile": [float(v) for v in pred.mean(axis=(0, 2))],
        "true_profile": [float(v) for v in np.nanmean(y, axis=(0, 2))],
    }
    per_neuron = profile_cc(pred, y)                                   # [stimuli, neurons]
    summary["profile_cc"] = float(np.nanmean(per_neuron))
    summary["profile_cc_per_neuron"] = [float(v) for v in np.nanmean(per_neuron, axis=0)]
    return summary


def profile_cc(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation over bins (axis 1) of ``pred`` and ``target`` ``[stimuli, bins,
    neurons]`` -> ``[stimuli, neurons]``; 0 where the prediction or the target is constant in
    time, NaN where the target misses a bin."""
    p = pred - pred.mean(axis=1, keepdims=True)
    t = target - target.mean(axis=1, keepdims=True)
    varies = (np.ptp(pred, axis=1) > 0) & (np.ptp(target, axis=1) > 0)
    norm = np.sqrt((p ** 2).sum(axis=1) * (t ** 2).sum(axis=1))
    cc = np.divide((p * t).sum(axis=1), norm, out=np.zeros(norm.shape), where=varies)
    cc[np.isnan(target).any(axis=1)] = np.nan
    return cc


def _score(pred: np.ndarray, data, split: str, config: dict) -> dict:
    """:func:`score` of data without a time axis."""
    from rcpb import metrics

    k = config.get("cc_max_trials")
    choice = getattr(data, "ceiling_stimuli", None) or "evaluated"
    # the ceiling over all stimuli [neurons]; with "evaluated" only needed for fallbacks
    every = metrics.cc_max(data.responses, k=k) if choice == "all" else None
    index, y = getattr(data, f"{split}_index"), getattr(data, f"y_{split}")
    target = np.array(y, dtype=np.float64)
    ceiling, fallback = np.empty(target.shape[1]), []
    for first in range(0, target.shape[1], NEURON_BLOCK):
        cols = slice(first, first + NEURON_BLOCK)
        responses, rows = split_trials(data, index, y, cols)
        if k is not None:
            target[:, cols] = metrics.trial_target(responses[rows], k)
        ceiling[cols], block_fallback = metrics.split_ceiling(
            responses, rows, choice, k, None if every is None else every[cols])
        fallback += [first + int(i) for i in block_fallback]
    summary = metrics.summarize(np.asarray(pred, dtype=np.float64), target, ceiling)
    summary["ceiling_stimuli"] = choice
    summary["ceiling_fallback_neurons"] = fallback
    summary["cc_max_per_neuron"] = [float(v) for v in ceiling]
    return summary

