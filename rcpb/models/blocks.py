"""Convolutional processing blocks (SPEC 3.1, 3.2; paper eqs. 1d and 2i).

Notation follows the SPEC: ``Conv(k)`` is a 2-D convolution with kernel ``k``,
``BN`` a BatchNorm2d (eps 1e-3, momentum 0.1), ``Act`` ReLU or softplus.

Every convolution here has no bias: each one is followed by a BatchNorm whose
shift makes a conv bias redundant (and the SPEC asks for bias-free RCPB convs).
Weights are initialised by :func:`rcpb.models.build` (N(0, 0.01)), not here.

Feature maps are float tensors ``[batch, channels, height, width]``.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.errors import RcpbError

BN_EPS = 1e-3
BN_MOMENTUM = 0.1

ACTIVATIONS = ("relu", "softplus", "identity")
FIRST_BLOCK_ORDERS = ("bn_act", "act_bn")


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BN of the SPEC: BatchNorm2d(channels, eps=1e-3, momentum=0.1)."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def activation(name: str) -> nn.Module:
    """The module for activation ``name`` ("relu", "softplus"; "identity" for tests)."""
    if name == "relu":
        return nn.ReLU()
    if name == "softplus":
        return nn.Softplus()
    if name == "identity":
        return nn.Identity()
    raise RcpbError(
        f"config field 'act': unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}"
    )


def inverse_activation(name: str, value: torch.Tensor) -> torch.Tensor:
    """``b`` with ``Act(b) == value`` (elementwise).

    softplus: ``b = log(exp(v) - 1)``, computed as ``v + log(1 - exp(-v))`` for stability; values
    below 1e-4 are clamped to 1e-4 (softplus never reaches 0). relu and identity: ``b = v``
    (for relu, negative values are clamped to 0).
    """
    if name == "softplus":
        v = value.clamp_min(1e-4)
        return v + torch.log(-torch.expm1(-v))
    if name == "relu":
        return value.clamp_min(0.0)
    if name == "identity":
        return value.clone()
    raise RcpbError(
        f"config field 'act': unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}"
    )


class CPB(nn.Module):
    """Convolutional processing block, paper eq. 1d: ``Act(BN(Conv(y)))``.

    ``order="act_bn"`` gives ``BN(Act(Conv(y)))`` (the CPB1 grid axis of SPEC 3.1).

    Shapes: ``[B, in_channels, H, W] -> [B, out_channels, H - kernel + 1 + 2 padding, ...]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, padding: int,
                 act: str, order: str = "bn_act"):
        super().__init__()
        if order not in FIRST_BLOCK_ORDERS:
            raise RcpbError(
                f"config field 'first_block_order': unknown order {order!r}; "
                f"use one of {', '.join(FIRST_BLOCK_ORDERS)}"
            )
        self.order = order
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False)
        self.bn = batch_norm(out_channels)
        self.act = activation(act)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.order == "bn_act":
            return self.act(self.bn(self.conv(y)))    # Act(BN(Conv(y)))
        return self.bn(self.act(self.conv(y)))        # BN(Act(Conv(y)))


class RCPB(nn.Module):
    """Recurrent convolutional processing block of layer m, paper eq. 2i / SPEC 3.2.

    ``ff`` (Wff) and ``lat`` (Wlat) are Conv(3), padding 1, shared over iterations;
    ``bns[t-1]`` is BN[m,t], one BatchNorm per iteration t = 1..T.
    """

    def __init__(self, channels: int, iterations: int, act: str):
        super().__init__()
        self.ff = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.lat = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bns = nn.ModuleList(batch_norm(channels) for _ in range(iterations))
        self.act = activation(act)

    def forward(self, y_below: torch.Tensor, y_prev: torch.Tensor | None, t: int,
                wff_y_below: torch.Tensor | None = None) -> torch.Tensor:
        """``y[m,t]`` from ``y_below = y[m-1,t]`` and ``y_prev = y[m,t-1]`` ([B, C, H, W];
        None at t = 1, where y[m,0] = 0); t is 1-based.

        ``wff_y_below``: ``Wff * y_below`` when the caller already has it (layer 2's input,
        CPB1's output, is the same at every iteration, so its Wff term is computed once).
        """
        wff = self.ff(y_below) if wff_y_below is None else wff_y_below
        drive = wff if y_prev is None else wff + self.lat(y_prev)
        return self.act(self.bns[t - 1](drive))   # y[m,t] = Act(BN[m,t](Wff*y[m-1,t] + Wlat*y[m,t-1]))
