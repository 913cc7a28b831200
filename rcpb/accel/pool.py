"""AvgPool(3, stride 3, ceil_mode=True) of the readout with faster passes on CPU.

:class:`AvgPool3` replaces the readout's ``nn.AvgPool2d`` (same function): float32 CPU maps
use the pooling kernels of ``kernels.c`` (forward and backward one pass each); otherwise the
backward pass is one gather instead of PyTorch's generic avg_pool2d backward. Maps
``[B, C, H, W] -> [B, C, pooled_size(H), pooled_size(W)]`` (the C kernels: square maps only).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from rcpb.accel import kernels
from rcpb.models.readout import POOL_KERNEL, pooled_size


class _AvgPool3(torch.autograd.Function):
    """AvgPool(3, stride 3, ceil_mode=True), with a gather for the backward pass.

    Windows do not overlap, so ``dL/dh[x, y] = dL/dP[x // 3, y // 3] / (size of that window)``
    (windows clipped at the border average only the pixels they cover). This replaces
    PyTorch's generic avg_pool2d backward, which zero-fills and converts memory formats and
    was the slowest op of a training step; the result is identical.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        ctx.hw = tuple(h.shape[-2:])
        return F.avg_pool2d(h, POOL_KERNEL, stride=POOL_KERNEL, ceil_mode=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        height, width = ctx.hw
        counts, windows = [], []
        for size in (height, width):       # per axis: each window's pixel count, pixel -> window
            n = pooled_size(size)
            counts.append(torch.tensor([min(POOL_KERNEL, size - POOL_KERNEL * i) for i in range(n)],
                                       dtype=grad.dtype, device=grad.device))
            windows.append(torch.arange(size, device=grad.device) // POOL_KERNEL)
        n_cols = len(counts[1])
        pixel_window = (windows[0][:, None] * n_cols + windows[1][None, :]).flatten()  # [H*W]
        grad = grad / (counts[0][:, None] * counts[1][None, :])
        batch, channels = grad.shape[:2]
        # One gather over the flattened pixels in [B, H*W, C] order (each pixel copies its
        # window's C values): faster than a gather per axis, and the result is channels_last
        # like the feature maps.
        grad = grad.permute(0, 2, 3, 1).reshape(batch, -1, channels)
        grad = grad.index_select(1, pixel_window).view(batch, height, width, channels)
        return grad.permute(0, 3, 1, 2)


def _pool_kernel(kernel, src: torch.Tensor, size: int, out_side: int) -> torch.Tensor:
    """Run a pooling kernel of kernels.c (map side ``size``): src [B, C, s, s] -> a new
    channels-last [B, C, out_side, out_side]."""
    batch, channels = src.shape[:2]
    src = src.contiguous(memory_format=torch.channels_last)
    out = torch.empty(batch, channels, out_side, out_side, dtype=src.dtype,
                      memory_format=torch.channels_last)
    kernel(src.data_ptr(), batch, size, channels, POOL_KERNEL, out.data_ptr(),
           torch.get_num_threads())
    return out


class _AvgPool3Kernels(torch.autograd.Function):
    """The same pooling and its backward as one pass each (C kernels; float32 CPU maps)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        size = ctx.size = h.shape[-1]
        return _pool_kernel(kernels.library().rcpb_avg_pool_forward, h, size, pooled_size(size))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _pool_kernel(kernels.library().rcpb_avg_pool_backward, grad, ctx.size, ctx.size)


def avg_pool(h: torch.Tensor, use_kernels: bool = True) -> torch.Tensor:
    """AvgPool(3, stride 3, ceil_mode=True): [B, C, H, W] -> [B, C, pooled_size(H), pooled_size(W)].

    float32 CPU square maps use the C kernels when they can be built (``use_kernels=False``:
    never).
    """
    if (use_kernels and h.dtype == torch.float32 and h.device.type == "cpu"
            and h.shape[-1] == h.shape[-2] and kernels.available()):
        return _AvgPool3Kernels.apply(h)
    return _AvgPool3.apply(h)


class AvgPool3(nn.AvgPool2d):
    """``nn.AvgPool2d(3, stride=3, ceil_mode=True)`` computed by :func:`avg_pool`."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return avg_pool(h)
