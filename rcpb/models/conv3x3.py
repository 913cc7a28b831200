"""The Conv(3) of the models (3x3, padding 1, stride 1, no bias), with a faster weight gradient
on CPU.

In a training step most of the time goes to the 3x3 convolutions, and of their three passes
(forward, input gradient, weight gradient) PyTorch's CPU weight gradient (oneDNN, channels-last)
is the slow one: about half the GFLOP/s of the other two (``benchmarks/conv_passes.py``).
:class:`Conv3x3` computes the same convolution; in training on CPU, with float32
channels-last maps and ``C_in`` a multiple of 8 (at least 16), its backward pass takes the
input gradient from PyTorch and the weight gradient from the C kernel of ``kernels.c``::

    dW[o, i, kh, kw] = sum over b, y, x of grad[b, o, y, x] * input[b, i, y + kh - 1, x + kw - 1]

(input = 0 outside the map). Measured on 2 threads, [256, 32, 29, 29] maps: about 1.9 times
faster than PyTorch's, and no less accurate. Elsewhere (GPU, eval, other dtypes, no C
compiler) it is ``nn.Conv2d``.

The kernel is a custom op (``torch.ops.rcpb.conv3x3_weight_grad``), so profilers and
``benchmarks/conv_passes.py`` see it.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from rcpb.models import kernels


@torch.library.custom_op("rcpb::conv3x3_weight_grad", mutates_args=())
def conv3x3_weight_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Weight gradient of ``conv2d(x, w, padding=1)``: x [B, C_in, H, W], grad [B, C_out, H, W]
    (float32, CPU, channels-last; C_in a multiple of 8) -> [C_out, C_in, 3, 3], channels-last.

    The sums of each thread's share of the image rows are added in a fixed order: the result
    depends on the thread count, not on thread timing.
    """
    batch, cin, height, width = x.shape
    cout = grad.shape[1]
    if cin % 8 or grad.shape != (batch, cout, height, width):
        raise ValueError(f"conv3x3_weight_grad: input {tuple(x.shape)} (channels must be a "
                         f"multiple of 8) and gradient {tuple(grad.shape)} do not fit")
    x = x.contiguous(memory_format=torch.channels_last)
    grad = grad.contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    partial = torch.empty(threads, 3, 3, cout, cin, dtype=torch.float32)
    used = kernels.library().rcpb_conv3x3_weight_grad(
        x.data_ptr(), grad.data_ptr(), batch, height, width, cin, cout, partial.data_ptr(),
        threads)
    total = partial[:used].sum(0)
    return total.permute(2, 3, 0, 1).contiguous(memory_format=torch.channels_last)


@conv3x3_weight_grad.register_fake
def _(x, grad):
    return x.new_empty(grad.shape[1], x.shape[1], 3, 3)


#: Fewer input channels keep PyTorch's weight gradient. Measured on [256, C, 29, 29] maps,
#: 2 threads: at 8 channels the kernel took 3.2 ms against PyTorch's 2.5 ms; at 16, 9.2
#: against 11.8 ms; at 32, 32.8 against 62.8 ms.
MIN_CHANNELS = 16


def kernel_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the weight gradient of ``conv2d(x, weight, padding=1)`` comes from the kernel:
    it is needed, and x is a float32 channels-last CPU map whose channel count is a multiple
    of 8 and at least :data:`MIN_CHANNELS`."""
    return (weight.requires_grad and torch.is_grad_enabled()
            and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and x.dim() == 4
            and x.shape[1] % 8 == 0 and x.shape[1] >= MIN_CHANNELS
            and x.is_contiguous(memory_format=torch.channels_last) and kernels.available())


class _Conv3x3(torch.autograd.Function):
    """conv2d(x, weight, padding=1); backward: PyTorch's input gradient, the kernel's weight
    gradient."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, None, 1, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1,
                (True, False, False))[0]
        if ctx.needs_input_grad[1]:
            grad_weight = conv3x3_weight_grad(x, grad)
        return grad_x, grad_weight


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)`` (same parameters and
    results) whose CPU weight gradient comes from the kernel (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernel_applies(x, self.weight):
            return _Conv3x3.apply(x, self.weight)
        return super().forward(x)
