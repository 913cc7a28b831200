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
import torch.nn.functional as F

from rcpb.errors import RcpbError
from rcpb.models import bn_relu
from rcpb.models.conv3x3 import Conv3x3

BN_EPS = 1e-3
BN_MOMENTUM = 0.1

ACTIVATIONS = ("relu", "softplus", "identity")
FIRST_BLOCK_ORDERS = ("bn_act", "act_bn")


#: Below this many channels, BN's backward pass runs on one thread (see BatchNorm2d).
FEW_CHANNELS = 16


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BN of the SPEC: BatchNorm2d(channels, eps=1e-3, momentum=0.1)."""
    return BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and results) with two replacements of
    PyTorch's (2.13) CPU kernels in training mode:

    - large channels-last maps (see :func:`rcpb.models.bn_relu.applies`) go through
      :func:`rcpb.models.bn_relu.bn_relu` without ReLU (faster with few channels; measured:
      a softplus FF 3-block step at 8 channels, batch 256, 2 threads, 1.3 times faster);
    - otherwise, with fewer than :data:`FEW_CHANNELS` channels the backward pass runs on a
      single thread. PyTorch's CPU backward kernel for channels-last BN accumulates per-thread
      partial sums of C floats side by side; with C = 8 two threads write to the same cache
      line, and the kernel takes 2-3 times longer on 2 threads than on 1 (measured on
      [256, 8, 29, 29]). The forward pass and every other op keep all threads.
    """

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if bn_relu.applies(self, u):
            return bn_relu.bn_relu(self, u, relu=False)
        if not (self.training and self.num_features < FEW_CHANNELS and u.requires_grad
                and torch.get_num_threads() > 1 and self.momentum is not None):
            return super().forward(u)
        self.num_batches_tracked.add_(1)   # as nn.BatchNorm2d.forward does in training mode
        return _BatchNormOneThreadBackward.apply(u, self.weight, self.bias, self.running_mean,
                                                 self.running_var, self.momentum, self.eps)


class _BatchNormOneThreadBackward(torch.autograd.Function):
    """Training-mode batch norm: torch's own forward and backward kernels (the ones autograd
    uses for ``F.batch_norm``), the backward one run with one thread. [B, C, H, W] -> same."""

    @staticmethod
    def forward(ctx, u, weight, bias, running_mean, running_var, momentum, eps):
        out, mean, invstd = torch.native_batch_norm(u, weight, bias, running_mean, running_var,
                                                    True, momentum, eps)  # updates running stats
        ctx.save_for_backward(u, weight, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        u, weight, mean, invstd = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            grad_u, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
                grad_out, u, weight, None, None, mean, invstd, True, ctx.eps, mask)
        finally:
            torch.set_num_threads(threads)
        return grad_u, grad_weight, grad_bias, None, None, None, None


def bn_act(bn: nn.BatchNorm2d, act: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """``act(bn(u))``; with ReLU in training, fused by :func:`rcpb.models.bn_relu.bn_relu`."""
    if type(act) is nn.ReLU and bn_relu.applies(bn, u):
        return bn_relu.bn_relu(bn, u)
    return act(bn(u))


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
        self.conv = (Conv3x3(in_channels, out_channels) if (kernel, padding) == (3, 1)
                     else nn.Conv2d(in_channels, out_channels, kernel, padding=padding,
                                    bias=False))
        self.bn = batch_norm(out_channels)
        self.act = activation(act)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.after_conv(self.conv(y))

    def after_conv(self, u: torch.Tensor) -> torch.Tensor:
        """The block's BN and Act applied to its conv output ``u`` (in the block's order)."""
        if self.order == "bn_act":
            return bn_act(self.bn, self.act, u)
        return self.bn(self.act(u))

    def from_raw_input(self, bn_in: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        """``self(bn_in(x))`` for the first block (CPB1) of a model, computed faster.

        x: [B, 1, S, S] -> [B, out_channels, S - k + 1, ...]; see :func:`input_conv`.
        """
        return self.after_conv(input_conv(bn_in, self.conv, x))


class RCPB(nn.Module):
    """Recurrent convolutional processing block of layer m, paper eq. 2i / SPEC 3.2::

        y[m,t] = Act(BN[m,t](Wff[m] * y[m-1,t] + Wlat[m] * y[m,t-1])),   y[m,0] = 0

    ``ff`` (Wff) and ``lat`` (Wlat) are Conv(3), padding 1, shared over iterations;
    ``bns[t-1]`` is BN[m,t], one BatchNorm per iteration t = 1..T.

    The caller passes the bottom-up term ``Wff[m] * y[m-1,t]`` already computed
    (``block.ff(y_below)``), so that a layer whose input is the same at every iteration
    (layer 2, fed by the non-recurrent CPB1) computes it once. ``previous`` is
    ``y[m,t-1]``, or None at t = 1 where y[m,0] = 0 and the lateral term vanishes.
    """

    def __init__(self, channels: int, iterations: int, act: str):
        super().__init__()
        self.ff = Conv3x3(channels, channels)
        self.lat = Conv3x3(channels, channels)
        self.bns = nn.ModuleList(batch_norm(channels) for _ in range(iterations))
        self.act = activation(act)

    def forward(self, bottom_up: torch.Tensor, previous: torch.Tensor | None,
                t: int) -> torch.Tensor:
        """``bottom_up = Wff*y[m-1,t]`` [B, C, H, W], ``previous = y[m,t-1]`` or None; t 1-based."""
        drive = bottom_up if previous is None else bottom_up + self.lat(previous)
        return bn_act(self.bns[t - 1], self.act, drive)


def input_conv(bn_in: nn.BatchNorm2d, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(bn_in(x))`` with the input BN's affine map folded into the conv.

    ``bn_in`` is the model's BN_in, a BatchNorm2d(1): ``bn_in(x) = g * xhat + b`` with ``xhat``
    the normalised input (batch statistics in training mode, running statistics in eval mode)
    and scalars g, b. ``conv`` (CPB1's conv, no bias, no padding, 1 input channel) is linear and
    every output pixel sees a full kernel window, so::

        conv(g * xhat + b)[o] = conv_with(g * W)(xhat)[o] + b * sum(W[o])

    i.e. a conv of ``xhat`` with weight ``g * W`` and bias ``b * sum_{kh,kw} W[o]``: the same
    function (outputs, gradients and running statistics agree up to float rounding).

    Why: ``xhat`` holds no parameter, so autograd skips the conv's input gradient (a full
    transposed 9x9 conv, the slowest op of a training step) and computes only the weight
    gradient; g and b get their gradients through the folded weight and bias. When ``x``
    itself requires grad, the input gradient is still computed and flows back through
    ``xhat``. ``bn_in``'s running statistics and ``num_batches_tracked`` are updated exactly as
    ``bn_in(x)`` updates them.

    x: [B, 1, S, S] -> [B, C_out, S - k + 1, S - k + 1].
    """
    if conv.padding != (0, 0) or conv.bias is not None or conv.in_channels != 1:
        raise ValueError("input_conv needs a bias-free, unpadded conv with one input channel")
    if bn_in.momentum is None:
        raise ValueError("input_conv needs a BatchNorm with a momentum (as batch_norm() makes)")
    if bn_in.training and bn_in.track_running_stats and bn_in.num_batches_tracked is not None:
        bn_in.num_batches_tracked.add_(1)  # as nn.BatchNorm2d.forward does
    use_batch_stats = bn_in.training or bn_in.running_mean is None
    xhat = F.batch_norm(x, bn_in.running_mean, bn_in.running_var, None, None,
                        use_batch_stats, bn_in.momentum, bn_in.eps)   # updates running stats
    weight = conv.weight * bn_in.weight                                # g * W, [C_out, 1, k, k]
    bias = conv.weight.sum((1, 2, 3)) * bn_in.bias                     # b * sum(W[o]), [C_out]
    return F.conv2d(xhat, weight, bias, conv.stride, 0, conv.dilation, conv.groups)
