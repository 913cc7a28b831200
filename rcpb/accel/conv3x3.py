"""The Conv(3) of the models (3x3, padding 1, stride 1, no bias), computed by C kernels on CPU.

Most of a training step goes to the 3x3 convolutions (``benchmarks/conv_passes.py`` times each
pass). :class:`Conv3x3` is an ``nn.Conv2d`` that, on CPU with float32 channels-last maps
whose channel counts are multiples of 8 and at least :data:`MIN_CHANNELS`, computes its three
passes with the C kernels of ``kernels.c``:

- the forward pass, the input gradient (the convolution of the output gradient with the
  flipped, transposed weights) and the weight gradient, all by Winograd's minimal filtering
  F(2x2, 3x3) (Lavin & Gray 2016): 2.25 times fewer multiply-adds than the direct convolution.

Results agree with PyTorch's to float32 rounding (the tests compare both with float64); what
it buys: docs/performance.md. Elsewhere (GPU, other
dtypes, fewer channels, no C compiler) it is PyTorch's convolution.

The kernels are custom ops (``torch.ops.rcpb.conv3x3_forward``, ``conv3x3_input_grad``,
``conv3x3_weight_grad``), so profilers and ``benchmarks/conv_passes.py`` see them.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.accel import kernels


#: Winograd's F(2x2, 3x3) weight transform (Lavin & Gray 2016): u = G w G^T, 4x4 per (o, i).
_WINOGRAD_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]],
                           dtype=torch.float64)


def _winograd(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """conv2d(x, weight, padding=1) by the Winograd kernel: x [B, C_in, H, W], weight
    [C_out, C_in, 3, 3] (float32 CPU, channel counts multiples of 8) -> [B, C_out, H, W],
    channels-last."""
    batch, cin, height, width = x.shape
    cout = weight.shape[0]
    if cin % 8 or cout % 8 or weight.shape != (cout, cin, 3, 3):
        raise ValueError(f"3x3 Winograd conv: input {tuple(x.shape)} and weight "
                         f"{tuple(weight.shape)} do not fit (channels must be multiples of 8)")
    u = torch.einsum("ap,oipq,bq->abio", _WINOGRAD_G, weight.detach().double(), _WINOGRAD_G)
    u = u.reshape(16, cin, cout).to(torch.float32).contiguous()          # [16, C_in, C_out]
    x = x.contiguous(memory_format=torch.channels_last)
    out = torch.empty(batch, cout, height, width, dtype=torch.float32,
                      memory_format=torch.channels_last)
    if kernels.library().rcpb_conv3x3_winograd(x.data_ptr(), u.data_ptr(), batch, height,
                                                 width, cin, cout, out.data_ptr(),
                                                 torch.get_num_threads()):
        raise MemoryError("3x3 Winograd conv: no memory for the work buffers")
    return out


@torch.library.custom_op("rcpb::conv3x3_forward", mutates_args=())
def conv3x3_forward(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv2d(x, weight, padding=1)`` by the Winograd kernel (see :func:`_winograd`)."""
    return _winograd(x, weight)


@conv3x3_forward.register_fake
def _(x, weight):
    return x.new_empty(x.shape[0], weight.shape[0], *x.shape[2:])


@torch.library.custom_op("rcpb::conv3x3_input_grad", mutates_args=())
def conv3x3_input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient of ``conv2d(x, weight, padding=1)``: the convolution of the output gradient
    [B, C_out, H, W] with the flipped, transposed weights -> [B, C_in, H, W]."""
    return _winograd(grad, weight.flip(2, 3).transpose(0, 1))


@conv3x3_input_grad.register_fake
def _(grad, weight):
    return grad.new_empty(grad.shape[0], weight.shape[1], *grad.shape[2:])


@torch.library.custom_op("rcpb::conv3x3_weight_grad", mutates_args=())
def conv3x3_weight_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Weight gradient of ``conv2d(x, w, padding=1)``: x [B, C_in, H, W], grad [B, C_out, H, W]
    (float32, CPU, channels-last; channel counts multiples of 8) -> [C_out, C_in, 3, 3],
    channels-last.

    The kernel sums the gradient of the transformed weights u = G w G^T over the tiles (each
    thread its share of the tile rows; the shares are added in a fixed order, so the result
    depends on the thread count, not on thread timing); dw = G^T du G follows in float64.
    """
    batch, cin, height, width = x.shape
    cout = grad.shape[1]
    if cin % 8 or cout % 8 or grad.shape != (batch, cout, height, width):
        raise ValueError(f"conv3x3_weight_grad: input {tuple(x.shape)} and gradient "
                         f"{tuple(grad.shape)} do not fit (channels must be multiples of 8)")
    x = x.contiguous(memory_format=torch.channels_last)
    grad = grad.contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    partial = torch.empty(threads, 16, cin, cout, dtype=torch.float32)
    used = kernels.library().rcpb_conv3x3_winograd_weight_grad(
        x.data_ptr(), grad.data_ptr(), batch, height, width, cin, cout, partial.data_ptr(),
        threads)
    if used < 0:
        raise MemoryError("conv3x3_weight_grad: no memory for the work buffers")
    du = partial[:used].sum(0).double().view(4, 4, cin, cout)
    dw = torch.einsum("ap,abio,bq->oipq", _WINOGRAD_G, du, _WINOGRAD_G)
    return dw.to(torch.float32).contiguous(memory_format=torch.channels_last)


@conv3x3_weight_grad.register_fake
def _(x, grad):
    return x.new_empty(grad.shape[1], x.shape[1], 3, 3)


#: Fewer channels keep PyTorch's convolution. Measured on [256, C, 29, 29] maps, 2 threads,
#: kernel against PyTorch: at 8 channels weight gradient 6.1 against 3.1 ms and forward pass
#: 4.6 against 3.9 ms; at 16, weight gradient 9.9 against 13.9 ms and forward pass 9.7
#: against 9.4 ms.
MIN_CHANNELS = 16


def kernels_apply(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``conv2d(x, weight, padding=1)`` runs on the C kernels: x a float32
    channels-last CPU map, weight float32, both channel counts multiples of 8 and C_in at least
    :data:`MIN_CHANNELS`, and the kernels built."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() == 4 and x.shape[1] % 8 == 0 and x.shape[1] >= MIN_CHANNELS
            and weight.shape[0] % 8 == 0
            and x.is_contiguous(memory_format=torch.channels_last) and kernels.available())


class _Conv3x3(torch.autograd.Function):
    """conv2d(x, weight, padding=1) with the C kernels (forward pass, input and weight
    gradients)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return conv3x3_forward(x, weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = conv3x3_input_grad(grad, weight)
        if ctx.needs_input_grad[1]:
            grad_weight = conv3x3_weight_grad(x, grad)
        return grad_x, grad_weight


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)`` (same parameters,
    same function) computed by the C kernels where they apply (see the module docstring).
    :func:`rcpb.accel.accelerate` turns the models' 3x3 convs into this class."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not kernels_apply(x, self.weight):
            return super().forward(x)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _Conv3x3.apply(x, self.weight)
        return conv3x3_forward(x, self.weight)
