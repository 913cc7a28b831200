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
