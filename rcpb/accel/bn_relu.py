"""``bn(u)`` and ``relu(bn(u))`` in training mode on CPU, in a few memory passes (SPEC 3.1-3.2).

Every block of the models ends in ``Act(BN(conv output))``. The code here computes ``bn(u)``,
fused with the ReLU when the block has one (softplus blocks apply their activation afterwards);
why it is faster than PyTorch's BN with few channels: docs/performance.md.

Here the same arithmetic runs on a ``[rows, width]`` view of the channels-last tensor whose
rows hold several pixels' channels side by side (width up to 64 floats), with per-channel
parameters repeated along the row:

- with the C kernels of ``kernels.c`` (built on first use, :mod:`rcpb.accel.kernels`):
  forward = one pass for the batch statistics (double sums) and one for
  ``u * scale + shift`` (clamped at 0 for ReLU); backward = one pass for the two gradient sums
  and one for the input gradient (both recompute the ReLU's mask from u rather than read the
  output);
- without a C compiler: the same formulas as whole-tensor PyTorch ops (a few more passes).

Same function as ``bn(u)`` (or ``F.relu(bn(u))``) with ``bn`` an ``nn.BatchNorm2d`` in training
mode: batch statistics (variance biased for the normalisation, unbiased for the running
estimate), running statistics and ``num_batches_tracked`` updated in place, and the gradients
of u, weight and bias. ``tests/test_models_fast_paths.py`` checks both paths against the
PyTorch modules in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rcpb.accel import kernels

#: Target row width of the 2-D view, in floats (a few cache lines).
ROW_FLOATS = 64

#: Without the C kernels, the PyTorch formulation is used below this many channels only (at
#: 16 and more, PyTorch's own BN kernels are faster).
TORCH_FORMULATION_MAX_CHANNELS = 15

#: Smaller maps (in values) stay with PyTorch's modules: they fit in cache, where PyTorch's
#: separate BN and ReLU are as fast and the fixed cost of the calls here would dominate
#: (measured: [64, 8, 16, 16] maps, 1 thread, 7 % slower with the kernels; [64, 8, 29, 29]
#: and larger, 15-35 % faster).
MIN_VALUES = 2 ** 18


def applies(bn: nn.BatchNorm2d, u: torch.Tensor) -> bool:
    """Whether :func:`bn_relu` computes ``bn(u)`` faster than PyTorch's BN.

    Needs training mode, a channels-last 4-D CPU input of at least :data:`MIN_VALUES` values
    (on GPUs PyTorch's own kernels are the fast ones) and a BN with affine parameters, running
    statistics and a momentum; then the C kernels for float32 inputs, else few channels.
    """
    if not (bn.training and bn.affine and bn.track_running_stats and bn.momentum is not None
            and bn.running_mean is not None and u.dim() == 4 and u.device.type == "cpu"
            and u.is_contiguous(memory_format=torch.channels_last)
            and u.numel() >= MIN_VALUES):
        return False
    return ((u.dtype == torch.float32 and kernels.available())
            or u.shape[1] <= TORCH_FORMULATION_MAX_CHANNELS)


def bn_relu(bn: nn.BatchNorm2d, u: torch.Tensor, use_kernels: bool = True,
            relu: bool = True) -> torch.Tensor:
    """``relu(bn(u))`` (``relu=False``: ``bn(u)``) for ``bn`` in training mode.

    u: [B, C, H, W] channels-last -> same. float32 inputs use the C kernels when they can be
    built (``use_kernels=False``: never).
    """
    bn.num_batches_tracked.add_(1)   # as nn.BatchNorm2d.forward does in training mode
    function = _BNReLU
    if use_kernels and u.dtype == torch.float32 and kernels.available():
        function = _BNReLUKernels
    return function.apply(u, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                          bn.momentum, bn.eps, relu)


def _pixels_per_row(n_pixels: int, channels: int) -> int:
    """The largest r <= ROW_FLOATS / channels dividing n_pixels (rows of r pixels)."""
    r = max(1, ROW_FLOATS // channels)
    while n_pixels % r:
        r -= 1
    return r


def _rows(t: torch.Tensor, r: int) -> torch.Tensor:
    """Channels-last [B, C, H, W] as [B*H*W / r, r*C] (a view: row = r pixels' channels)."""
    return t.permute(0, 2, 3, 1).reshape(-1, r * t.shape[1])


def _maps(t2: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`_rows`: a [rows, width] array as a channels-last map of ``shape``."""
    batch, channels, height, width = shape
    return t2.view(batch, height, width, channels).permute(0, 3, 1, 2)


def _fold(s: torch.Tensor, r: int) -> torch.Tensor:
    """Column sums of a [rows, r*C] view, [r*C] -> per-channel sums [C]."""
    return s.view(r, -1).sum(0)


class _BNReLU(torch.autograd.Function):
    """relu(bn(u)) or bn(u) as whole-tensor PyTorch ops on the [rows, width] view (any float
    dtype)."""

    @staticmethod
    def forward(ctx, u, weight, bias, running_mean, running_var, momentum, eps, relu):
        batch, channels, height, width = u.shape
        n = batch * height * width                          # values per channel
        r = _pixels_per_row(n, channels)
        u2 = _rows(u, r)
        mean = _fold(u2.sum(0), r) / n                      # [C]
        centred = u2 - mean.repeat(r)                       # u - mean
        var = _fold((centred * centred).sum(0), r) / n      # biased batch variance [C]
        invstd = torch.rsqrt(var + eps)
        # weight * xhat + bias with xhat = centred * invstd, then ReLU
        y2 = torch.addcmul(bias.repeat(r), centred, (weight * invstd).repeat(r))
        if relu:
            y2.relu_()
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var * (n / (n - 1)), alpha=momentum)
        ctx.save_for_backward(centred, y2, weight, invstd)
        ctx.r, ctx.relu = r, relu
        return _maps(y2, u.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        centred, y2, weight, invstd = ctx.saved_tensors
        r = ctx.r
        n = centred.shape[0] * r
        grad = _rows(grad_y.contiguous(memory_format=torch.channels_last), r)
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, y2, 0)   # d loss / d bn(u)
        grad_bias = _fold(grad.sum(0), r)
        grad_weight = _fold((grad * centred).sum(0), r) * invstd   # sum(grad * xhat)
        grad_u = None
        if ctx.needs_input_grad[0]:
            # d/du of weight * xhat + bias, xhat = (u - mean) * invstd with batch statistics:
            # k * (grad - grad_bias / n - xhat * grad_weight / n),  k = weight * invstd
            k = weight * invstd
            grad_u = torch.addcmul((-k * grad_bias / n).repeat(r), centred,
                                   (-k * invstd * grad_weight / n).repeat(r))
            grad_u.addcmul_(grad, k.repeat(r))
            grad_u = _maps(grad_u, grad_y.shape)
        return grad_u, grad_weight, grad_bias, None, None, None, None, None


def _row_params(params: list[torch.Tensor], r: int) -> list[torch.Tensor]:
    """Per-channel parameters [C] as float32 rows [r*C] for the kernels. The caller keeps the
    returned tensors alive while a kernel reads them."""
    return [p.to(torch.float32).repeat(r).contiguous() for p in params]


def _column_sums(kernel, arrays: list[torch.Tensor], rows: int, width: int, r: int,
                 params: list[torch.Tensor] = (), *scalars) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a reduction kernel over ``arrays`` ([rows, width] float32, contiguous) with per-column
    ``params`` ([width] float32) and then ``scalars``; return its two per-channel double sums
    [C] (per-chunk rows added in order: deterministic)."""
    threads = torch.get_num_threads()
    chunks = kernels.library().rcpb_bn_relu_chunks(threads, rows)
    acc = torch.empty(2, chunks, width, dtype=torch.float64)
    kernel(*(a.data_ptr() for a in arrays), rows, width, *(p.data_ptr() for p in params),
           *scalars, acc[0].data_ptr(), acc[1].data_ptr(), threads)
    sums = acc.sum(1)                                     # [2, width]
    return _fold(sums[0], r), _fold(sums[1], r)


class _BNReLUKernels(torch.autograd.Function):
    """The formulas of _BNReLU with the C kernels of kernels.c (float32, CPU)."""

    @staticmethod
    def forward(ctx, u, weight, bias, running_mean, running_var, momentum, eps, relu):
        lib = kernels.library()
        batch, channels, height, width = u.shape
        n = batch * height * width                          # values per channel
        r = _pixels_per_row(n, channels)
        u2 = _rows(u, r)
        rows, row_width = u2.shape
        total, total_sq = _column_sums(lib.rcpb_bn_relu_stats, [u2], rows, row_width, r)
        mean = total / n                                      # double [C]
        var = (total_sq / n - mean * mean).clamp_min(0.0)     # biased batch variance
        invstd = torch.rsqrt(var + eps)
        scale = weight.detach().double() * invstd             # max(u * scale + shift, lower)
        shift = bias.detach().double() - mean * scale
        lower = 0.0 if relu else -math.inf
        y2 = torch.empty_like(u2)
        scale_row, shift_row = _row_params([scale, shift], r)
        lib.rcpb_bn_relu_forward(u2.data_ptr(), rows, row_width, scale_row.data_ptr(),
                                 shift_row.data_ptr(), lower, y2.data_ptr(),
                                 torch.get_num_threads())
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_((var * (n / (n - 1))).to(running_var.dtype),
                                                alpha=momentum)
        # the backward pass recomputes the ReLU's mask from u, scale and shift
        ctx.save_for_backward(u2, scale_row, shift_row, weight, mean, invstd)
        ctx.r, ctx.lower = r, lower
        return _maps(y2, u.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        lib = kernels.library()
        u2, scale_row, shift_row, weight, mean, invstd = ctx.saved_tensors
        r = ctx.r
        rows, row_width = u2.shape
        n = rows * r
        grad2 = _rows(grad_y.contiguous(memory_format=torch.channels_last), r)
        # m = grad where the ReLU passed: sums of m and of m * u, per channel
        grad_bias, sum_gu = _column_sums(lib.rcpb_bn_relu_backward_sums, [grad2, u2],
                                         rows, row_width, r, [scale_row, shift_row],
                                         ctx.lower)
        grad_weight = (sum_gu - mean * grad_bias) * invstd   # sum of m * xhat
        grad_u = None
        if ctx.needs_input_grad[0]:
            # k * (m - grad_bias / n - xhat * grad_weight / n) with xhat = (u - mean) * invstd,
            # k = weight * invstd, written as m * k + u * b + c
            k = weight.detach().double() * invstd
            b = -k * invstd * grad_weight / n
            c = -k * grad_bias / n - b * mean
            out = torch.empty_like(u2)
            k_row, b_row, c_row = _row_params([k, b, c], r)
            lib.rcpb_bn_relu_backward_input(
                grad2.data_ptr(), u2.data_ptr(), rows, row_width, scale_row.data_ptr(),
                shift_row.data_ptr(), ctx.lower, k_row.data_ptr(), b_row.data_ptr(),
                c_row.data_ptr(), out.data_ptr(), torch.get_num_threads())
            grad_u = _maps(out, grad_y.shape)
        return (grad_u, grad_weight.to(weight.dtype), grad_bias.to(weight.dtype),
                None, None, None, None, None)
