"""``build(config) -> nn.Module``: the model a training configuration describes (SPEC 3).

Config keys read: ``arch`` ("ff" | "recurrent" | "multipath"), ``channels``, ``act``,
``first_block_order``, ``input_size``, ``n_neurons``, ``model_seed``; ff: ``blocks``;
recurrent and multipath: ``recurrent_layers``, ``iterations``, ``readout``;
recurrent: ``cell`` (absent or None = "rcpb"; one of :data:`rcpb.cell_kinds.CELLS`);
multipath: ``allowed_lengths`` (None = all lengths). Multi-path models are defined for the
rcpb cell only, and ff models have no cell: there a ``cell`` other than "rcpb" is an error.

Initialisation (SPEC 3): every conv weight and the readout's ``ws`` and ``wf`` ~ N(0, 0.01),
drawn from a ``torch.Generator`` seeded with ``model_seed`` in parameter-name order (gate
convs of the cells included); conv biases (the ConvLSTM's gate biases) 0; BN
gamma = 1, beta = 0; readout bias 0 until ``readout.init_bias``. Building does not change
torch's global random state. The model is the stock-PyTorch reference; CPU speed-ups are
applied by the trainer (:func:`rcpb.accel.accelerate`), not here.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.cell_kinds import CELLS, DEFAULT_CELL
from rcpb.errors import RcpbError
from rcpb.sizes import is_size
from rcpb.models.blocks import ACTIVATIONS, FIRST_BLOCK_ORDERS
from rcpb.models.feedforward import FIRST_KERNEL, FeedForward
from rcpb.models.multipath import MultiPath
from rcpb.models.readout import READOUT_MODES
from rcpb.models.recurrent import Recurrent

INIT_STD = 0.01
MIN_INPUT_SIZE = FIRST_KERNEL + 2  # CPB1's output must be at least 3 px for AvgPool(3)


def _field(config: dict, key: str, check, expected: str):
    if key not in config or config[key] is None:
        raise RcpbError(f"config field {key!r} is missing; set it to {expected}")
    value = config[key]
    if not check(value):
        raise RcpbError(f"config field {key!r} = {value!r} is invalid; set it to {expected}")
    return value


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def build(config: dict) -> nn.Module:
    """The model of ``config`` (see module docstring), freshly initialised from ``model_seed``."""
    arch = _field(config, "arch", lambda v: v in ("ff", "recurrent", "multipath"),
                  '"ff", "recurrent" or "multipath"')
    common = dict(
        channels=_field(config, "channels", _positive_int, "a positive integer"),
        act=_field(config, "act", lambda v: v in ACTIVATIONS, '"relu" or "softplus"'),
        first_block_order=_field(config, "first_block_order", lambda v: v in FIRST_BLOCK_ORDERS,
                                 '"bn_act" or "act_bn"'),
        input_size=_field(config, "input_size", lambda v: is_size(v, MIN_INPUT_SIZE),
                          f"the input size in pixels: s for a square or [h, w], each >= "
                          f"{MIN_INPUT_SIZE}"),
        n_neurons=_field(config, "n_neurons", _positive_int, "the number of neurons (>= 1)"),
    )
    cell = _cell(config, arch)
    seed = _field(config, "model_seed", lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "an integer")
    # Module constructors draw PyTorch's default init from the global generator; fork it so
    # building leaves the caller's random state untouched (our own init follows below).
    with torch.random.fork_rng(devices=[]):
        if arch == "ff":
            model = FeedForward(
                config,
                blocks=_field(config, "blocks", lambda v: _positive_int(v), "3 or 5 (>= 1)"),
                **common,
            )
        else:
            recurrent = dict(
                recurrent_layers=_field(config, "recurrent_layers",
                                        lambda v: v in (1, 2) if arch == "multipath"
                                        else _positive_int(v), "1 or 2"),
                iterations=_field(config, "iterations", _positive_int, "an integer T >= 1"),
                readout=_field(config, "readout", lambda v: v in READOUT_MODES,
                               ", ".join(f'"{m}"' for m in READOUT_MODES)),
            )
            if arch == "recurrent":
                model = Recurrent(config, cell=cell, **recurrent, **common)
            else:
                model = MultiPath(config, allowed_lengths=config.get("allowed_lengths"),
                                  **recurrent, **common)
    initialise(model, seed)
    return model


def _cell(config: dict, arch: str) -> str:
    """The config's ``cell`` (absent or None: "rcpb"), checked against the architecture."""
    cell = config.get("cell")
    if cell is None:
        return DEFAULT_CELL
    if cell not in CELLS:
        raise RcpbError(f"config field 'cell' = {cell!r} is invalid; set it to one of "
                        f"{', '.join(repr(c) for c in CELLS)} (or leave it out for 'rcpb')")
    if cell != DEFAULT_CELL and arch != "recurrent":
        why = ("multi-path models are defined for the rcpb cell only (SPEC 3.3)"
               if arch == "multipath" else "feed-forward models have no recurrent cell")
        raise RcpbError(f"config field 'cell' = {cell!r} is invalid with arch {arch!r}: {why}; "
                        "leave 'cell' out (or set it to 'rcpb')")
    return cell


@torch.no_grad()
def initialise(model: nn.Module, seed: int) -> None:
    """Conv weights, ``readout.ws`` and ``readout.wf`` ~ N(0, 0.01) from a generator seeded with
    ``seed`` (drawn in ``named_parameters`` order); readout bias 0; BN left at gamma 1, beta 0."""
    generator = torch.Generator().manual_seed(seed)
    readout = model.readout
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.normal_(0.0, INIT_STD, generator=generator)
            if module.bias is not None:
                module.bias.zero_()
    readout.ws.normal_(0.0, INIT_STD, generator=generator)
    readout.wf.normal_(0.0, INIT_STD, generator=generator)
    readout.bias.zero_()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BN running statistics not included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_conv_parameters(model: nn.Module) -> int:
    """Number of parameters in the model's Conv2d layers (each shared conv counted once)."""
    seen = set()
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total
