"""``conv(BN_in(x))`` of CPB1 with BN_in's affine map folded into the conv.

``BN_in`` is a BatchNorm2d(1): ``BN_in(x) = g * xhat + b`` with ``xhat`` the normalised input
(batch statistics in training mode, running statistics in eval mode) and scalars g, b. CPB1's
conv (no bias, no padding, 1 input channel) is linear and every output pixel sees a full
kernel window, so::

    conv(g * xhat + b)[o] = conv_with(g * W)(xhat)[o] + b * sum(W[o])

The same function; ``xhat`` holds no parameter, so autograd computes no input gradient for
the 9x9 conv (it still does when ``x`` itself requires grad). :func:`fold` turns the model's
``bn_in`` into :class:`InputNorm` (``x -> xhat``, running statistics updated as by
``nn.BatchNorm2d``) and CPB1's conv into :class:`FoldedInputConv` (``xhat -> conv(g*xhat+b)``):
the pair computes ``cpb1.conv(bn_in(x))``; parameters and state_dict keys are unchanged.
x: [B, 1, H, W] -> [B, C_out, H - k + 1, W - k + 1].
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class InputNorm(nn.BatchNorm2d):
    """BN_in without its affine map: ``x -> xhat`` (g and b are applied by FoldedInputConv)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)  # as nn.BatchNorm2d.forward does
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean, self.running_var, None, None,
                            use_batch_stats, self.momentum, self.eps)   # updates running stats


class FoldedInputConv(nn.Conv2d):
    """CPB1's conv applied to ``xhat`` with the folded weight ``g * W`` and bias ``b * sum(W[o])``
    (``g``, ``b`` of the InputNorm it was paired with by :func:`fold`)."""

    def forward(self, xhat: torch.Tensor) -> torch.Tensor:
        bn_in = self.__dict__["input_bn"]
        weight = self.weight * bn_in.weight                                # g * W, [C_out, 1, k, k]
        bias = self.weight.sum((1, 2, 3)) * bn_in.bias                     # b * sum(W[o]), [C_out]
        return F.conv2d(xhat, weight, bias, self.stride, 0, self.dilation, self.groups)


def fold(bn_in: nn.BatchNorm2d, conv: nn.Conv2d) -> bool:
    """Make ``conv(bn_in(x))`` the folded computation (in place); False where it does not apply
    (a padded or biased conv, several input channels, BN without momentum or affine map)."""
    if (type(bn_in) is not nn.BatchNorm2d or type(conv) is not nn.Conv2d
            or conv.padding != (0, 0) or conv.bias is not None or conv.in_channels != 1
            or bn_in.momentum is None or not bn_in.affine):
        return False
    bn_in.__class__ = InputNorm
    conv.__class__ = FoldedInputConv
    conv.__dict__["input_bn"] = bn_in   # a plain reference: not a submodule, not in state_dict
    return True
