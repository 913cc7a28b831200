"""Teacher networks: ground truths that are rcpb models (docs/ground_truth.md).

A teacher is a model of rcpb's own classes (:func:`rcpb.models.build`) with fixed weights:

- ``recurrent_teacher``: 1 recurrent layer, T = 4 iterations, ``no-avg`` readout (the
  prediction is the state after the last iteration);
- ``feedforward_teacher``: 3 feed-forward blocks, the size-matched partner of the recurrent
  teacher (same depth of weights, same parameter count).

Both: 8 channels, ReLU, BN before the activation in CPB1, the model input the students see
(the dataset's crop and downsampling). Weights:

1. convolutions drawn as any rcpb model's (N(0, 0.01), ``model_seed`` = ``TEACHER_SEED_BASE +
   seed``, so that no student seed starts at the teacher's weights);
2. every BatchNorm's running statistics are those of the whole image set (one pass in training
   mode with a cumulative average), then the teacher is used in eval mode;
3. readout: neuron n pools a Gaussian spatial mask (sigma ``MASK_SIGMA`` pooled pixels) centred
   within ``RF_RADIUS`` pooled pixels of the centre; its feature weights are N(0, 1/C), scaled
   so that its pre-activation has unit variance over the stimuli, and its bias puts the mean
   pre-activation at ``OFFSET`` (ReLU output: about 16 % zeros).

The teacher's state dict and configuration are stored in the dataset file (group ``teacher``,
attr ``teacher_config``); :func:`load_teacher` rebuilds it with ``rcpb.models.build``.

Dynamics (time-binned responses, :func:`teacher_dynamics`): the recurrent teacher's
recurrent block is run step by step, one iteration per time bin, the image as input for the
first ``on_iters`` iterations and a gray image (the image set's mean grey level) after; the
output of iteration t is the readout of its state. BN[t] is the teacher's BatchNorm of
iteration t for t <= T (= 4) and BN[T] for t > T. The feed-forward teacher's output is its
static output while the image is on and its output for the gray image after.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rcpb.sizes import size_value

TEACHERS = {
    "recurrent_teacher": {"arch": "recurrent", "recurrent_layers": 1, "iterations": 4,
                          "readout": "no-avg"},
    "feedforward_teacher": {"arch": "ff", "blocks": 3},
}
TEACHER_SEED_BASE = 1_000_000
CHANNELS = 8
MASK_SIGMA = 0.75      # pooled pixels
RF_RADIUS = 1.0        # pooled pixels from the centre of the pooled map
OFFSET = 1.0           # mean pre-activation in units of its s.d. over stimuli
BATCH = 250


def teacher_config(circuit: str, input_size, n_neurons: int, seed: int) -> dict:
    """The rcpb model configuration of teacher ``circuit`` (see module docstring)."""
    return {**TEACHERS[circuit], "channels": CHANNELS, "act": "relu",
            "first_block_order": "bn_act", "input_size": input_size,
            "n_neurons": int(n_neurons), "model_seed": TEACHER_SEED_BASE + int(seed)}


def _pre_activation(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The readout's input to its activation, ``[stimuli, neurons]`` (the last state of a
    recurrent teacher, the features of a feed-forward one)."""
    hs = (model.iteration_outputs(x)[-1:] if hasattr(model, "iteration_outputs")
          else [model.features(x)])
    return model.readout.linear(hs)[-1]


def _batches(x: torch.Tensor):
    return (x[i:i + BATCH] for i in range(0, len(x), BATCH))


@torch.no_grad()
def make_teacher(circuit: str, x: np.ndarray, n_neurons: int, seed: int
                 ) -> tuple[torch.nn.Module, np.ndarray]:
    """Build teacher ``circuit`` for model inputs ``x`` ``[stimuli, 1, H, W]`` (float32).

    Returns (the teacher in eval mode, its rates ``[stimuli, neurons]`` float64, >= 0).
    """
    from rcpb.models import build

    config = teacher_config(circuit, size_value(*x.shape[-2:]), n_neurons, seed)
    model = build(config)
    xt = torch.as_tensor(x, dtype=torch.float32)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:                       # cumulative average over the whole image set
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for xb in _batches(xt):
        model(xb)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum           # as build() made it
    model.eval()

    g = torch.Generator().manual_seed(TEACHER_SEED_BASE + int(seed))
    ro = model.readout
    height, width = ro.ws.shape[-2:]
    angle = 2 * np.pi * torch.rand(n_neurons, generator=g, dtype=torch.float64)
    radius = RF_RADIUS * torch.sqrt(torch.rand(n_neurons, generator=g, dtype=torch.float64))
    cy = (height - 1) / 2 + radius * torch.sin(angle)
    cx = (width - 1) / 2 + radius * torch.cos(angle)
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    mask = torch.exp(-((rows[None, :, None] - cy[:, None, None]) ** 2
                       + (cols[None, None, :] - cx[:, None, None]) ** 2) / (2 * MASK_SIGMA ** 2))
    ro.ws.copy_(mask / mask.sum(dim=(1, 2), keepdim=True))
    ro.wf.copy_(torch.randn(ro.wf.shape, generator=g, dtype=torch.float64) / np.sqrt(CHANNELS))
    ro.bias.zero_()
    z = torch.cat([_pre_activation(model, xb) for xb in _batches(xt)]).double()
    sd = z.std(dim=0).clamp_min(1e-12)
    ro.wf.div_(sd[:, None].float())
    ro.bias.copy_((OFFSET - z.mean(dim=0) / sd).float())
    rates = torch.cat([model(xb)[-1] for xb in _batches(xt)]).double().numpy()
    model.teacher_config = config
    return model, rates


@torch.no_grad()
def teacher_dynamics(model: torch.nn.Module, x: np.ndarray, n_iter: int, on_iters: int
                     ) -> np.ndarray:
    """Outputs of teacher ``model`` over ``n_iter`` iterations for inputs ``x`` ``[stimuli, 1,
    H, W]``: the image for iterations 1..``on_iters``, then a gray image of the mean grey
    level of ``x`` (module docstring). Returns float64 ``[stimuli, neurons, n_iter]`` (>= 0).

    Recurrent teacher: its modules (``bn_in``, ``cpb1``, ``rcpbs``, ``readout``) step by step,
    ``y[m,t] = Act(BN[m,min(t,T)](Wff y[m-1,t] + Wlat y[m,t-1]))``, the state carried over
    when the input turns gray; iteration t's output is ``Act(FC(Pool(y[M',t])))`` (at t = T
    with the image on: the static output). Feed-forward teacher: its output for the image
    while it is on, for the gray image after.
    """
    from rcpb.models.readout import combine_iterations
    from rcpb.models.recurrent import Recurrent

    model.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    gray = torch.full((1,) + tuple(xt.shape[1:]), float(np.mean(x, dtype=np.float64)),
                      dtype=torch.float32)
    out = []
    if isinstance(model, Recurrent):
        if model.cell != "rcpb":
            raise ValueError("teacher_dynamics: only RCPB teachers step their recurrence")
        ro = model.readout
        y1_gray = model.cpb1(model.bn_in(gray))
        for xb in _batches(xt):
            y1_image = model.cpb1(model.bn_in(xb))
            state = [None] * len(model.rcpbs)          # y[m,0] = 0
            steps = []
            for t in range(1, n_iter + 1):
                y_below = y1_image if t <= on_iters else y1_gray.expand_as(y1_image)
                for i, block in enumerate(model.rcpbs):
                    state[i] = block(y_below, state[i], min(t, model.iterations))
                    y_below = state[i]
                steps.append(combine_iterations(ro.linear([y_below]), "no-avg", ro.act)[-1])
            out.append(torch.stack(steps, dim=-1))
        return torch.cat(out).double().numpy()
    on = torch.cat([model(xb)[-1] for xb in _batches(xt)]).double()      # [stimuli, neurons]
    off = model(gray)[-1].double()                                        # [1, neurons]
    t = torch.arange(n_iter)
    return torch.where(t[None, None, :] < on_iters, on[:, :, None],
                       off[:, :, None].expand_as(on[:, :, None])).numpy()


def save_teacher(path: str | Path, model: torch.nn.Module) -> None:
    """Add ``model``'s state dict (group ``teacher``) and configuration (attr
    ``teacher_config``, JSON) to the dataset file ``path``."""
    import h5py

    with h5py.File(path, "a") as f:
        group = f.require_group("teacher")
        for name, value in model.state_dict().items():
            group.create_dataset(name, data=value.cpu().numpy())
        f.attrs["teacher_config"] = json.dumps(model.teacher_config, sort_keys=True)


def load_teacher(path: str | Path) -> torch.nn.Module:
    """The teacher stored in dataset file ``path``, rebuilt with :func:`rcpb.models.build`
    (eval mode)."""
    import h5py

    from rcpb.errors import RcpbError
    from rcpb.models import build

    with h5py.File(path, "r") as f:
        if "teacher" not in f or "teacher_config" not in f.attrs:
            raise RcpbError(f"{path}: no teacher network in this dataset file (only the "
                            f"teacher ground truths store one).")
        config = json.loads(f.attrs["teacher_config"])
        state = {k: torch.as_tensor(v[()]) for k, v in f["teacher"].items()}
    model = build(config)
    model.load_state_dict(state)
    model.teacher_config = config
    return model.eval()
