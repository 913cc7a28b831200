"""Training-mode BatchNorm2d on CPU: the BN kernels on large maps, a one-thread backward on
few channels. Same parameters, buffers and results as ``nn.BatchNorm2d``.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.accel import bn_relu

#: Below this many channels, BN's backward pass runs on one thread (docs/performance.md).
FEW_CHANNELS = 16


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and results) with two replacements of
    PyTorch's (2.13) CPU kernels in training mode:

    - large channels-last maps (see :func:`rcpb.accel.bn_relu.applies`) go through
      :func:`rcpb.accel.bn_relu.bn_relu` without ReLU;
    - otherwise, with fewer than :data:`FEW_CHANNELS` channels the backward pass runs on a
      single thread (why: docs/performance.md). The forward pass and every other op keep all
      threads.
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


class BatchNorm2dReLU(BatchNorm2d):
    """``relu(bn(u))`` in one module, fused by :func:`rcpb.accel.bn_relu.bn_relu` where it
    applies. :func:`rcpb.accel.accelerate` gives a block's BNs this class and replaces the
    block's ReLU that follows them by :class:`ReLUFusedIntoBN`."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if bn_relu.applies(self, u):
            return bn_relu.bn_relu(self, u, relu=True)
        return torch.relu(super().forward(u))


class ReLUFusedIntoBN(nn.Identity):
    """Stands where a block's ReLU was: the BNs before it (BatchNorm2dReLU) apply it."""
