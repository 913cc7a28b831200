"""CPU speed-ups of the reference models, applied in one place: :func:`accelerate`.

Nothing in :mod:`rcpb.models` knows about this package. :func:`accelerate` (called by
:func:`rcpb.train.train` on CPU) changes a built model in place so that it computes the same
function faster; parameters, buffers and state_dict keys stay those of the reference:

- channels-last (NHWC) weights, so that every conv and feature map is NHWC (oneDNN);
- ``bn_in`` + CPB1's conv: BN_in's affine map folded into the 9x9 conv
  (:mod:`rcpb.accel.input_bn`, maths: no input gradient for that conv);
- every other ``nn.BatchNorm2d``: :class:`rcpb.accel.batch_norm.BatchNorm2d` (BN kernels of
  ``kernels.c`` on large maps, a one-thread backward with fewer than 16 channels); where a
  block applies ReLU right after its BNs, BN and ReLU fused (``BatchNorm2dReLU``);
- every 3x3 conv: :class:`rcpb.accel.conv3x3.Conv3x3` (Winograd F(2x2,3x3) kernels for the
  forward pass, the input gradient and the weight gradient, from 16 channels);
- the readout's AvgPool: :class:`rcpb.accel.pool.AvgPool3` (pooling kernels, or a gather
  backward);
- glibc malloc keeps freed memory (:mod:`rcpb.accel.memory`).

The C kernels are built on first use with OpenMP for the CPU they run on
(:mod:`rcpb.accel.native`); where they cannot be (no compiler, no OpenMP, ``RCPB_NATIVE=0``)
the kernel paths use PyTorch's ops. What each path buys: docs/performance.md.
``tests/test_accel.py`` holds the accelerated models equal to the reference.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.accel import kernels, memory
from rcpb.accel.batch_norm import BatchNorm2d, BatchNorm2dReLU, ReLUFusedIntoBN
from rcpb.accel.conv3x3 import Conv3x3
from rcpb.accel.input_bn import fold
from rcpb.accel.pool import AvgPool3
from rcpb.models.blocks import CPB, RCPB

__all__ = ["accelerate", "kernels_available"]


def kernels_available() -> bool:
    """Whether the C kernels are built (with OpenMP, for this CPU) and loaded."""
    return kernels.available()


def accelerate(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Make ``model`` (built by :func:`rcpb.models.build`) faster on ``device``, in place;
    returns it. On devices other than the CPU the model is left as it is."""
    if torch.device(device).type != "cpu":
        return model
    memory.keep_freed_memory()
    model.to(memory_format=torch.channels_last)
    if hasattr(model, "bn_in") and hasattr(model, "cpb1"):
        fold(model.bn_in, model.cpb1.conv)
    for owner in list(model.modules()):   # ReLU(BN(u)) fused: blocks whose ReLU follows BN
        if isinstance(owner, CPB) and owner.order == "bn_act":
            _fuse_relu(owner, "act", [owner.bn])
        elif isinstance(owner, RCPB):
            _fuse_relu(owner, "act", list(owner.bns))
        elif hasattr(owner, "chain_act") and hasattr(owner, "chain_bns"):   # MultiPath
            _fuse_relu(owner, "chain_act", [bn for bns in owner.chain_bns for bn in bns])
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = BatchNorm2d
        elif (type(module) is nn.Conv2d and module.kernel_size == (3, 3)
              and module.padding == (1, 1) and module.stride == (1, 1)
              and module.dilation == (1, 1) and module.groups == 1 and module.bias is None):
            module.__class__ = Conv3x3
        elif (type(module) is nn.AvgPool2d and module.kernel_size == 3 and module.stride == 3
              and module.padding == 0 and module.ceil_mode):
            module.__class__ = AvgPool3
    return model


def _fuse_relu(owner: nn.Module, act_name: str, bns: list[nn.BatchNorm2d]) -> None:
    """If ``owner.<act_name>`` is a ReLU applied only right after ``bns``: fuse it into them."""
    if type(getattr(owner, act_name)) is nn.ReLU and all(type(bn) is nn.BatchNorm2d
                                                         for bn in bns):
        for bn in bns:
            bn.__class__ = BatchNorm2dReLU
        setattr(owner, act_name, ReLUFusedIntoBN())
