"""Feed-forward baseline (SPEC 3.1, paper eq. 1)::

    BN_in(x) -> CPB1 -> CPB2 .. CPBM -> AvgPool -> FactorizedFC -> Act

CPB1: Conv(9), no padding (order of BN and Act from ``first_block_order``);
CPB2..M: Conv(3), padding 1, Conv -> BN -> Act.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.models.blocks import CPB, batch_norm
from rcpb.models.readout import FactorizedReadout, combine_iterations
from rcpb.sizes import hw

FIRST_KERNEL = 9


def cpb1_output(input_size) -> tuple[int, int]:
    """(h, w) px of CPB1's feature maps (Conv(9), no padding) for an input of ``input_size``
    (``s`` or ``[h, w]``, rcpb.sizes); every later block keeps this size."""
    h, w = hw(input_size)
    return h - FIRST_KERNEL + 1, w - FIRST_KERNEL + 1


class FeedForward(nn.Module):
    """Feed-forward CNN of ``blocks`` CPBs.

    forward: x [B, 1, H, W] -> preds [1, B, neurons].
    """

    def __init__(self, config: dict, *, channels: int, blocks: int, act: str,
                 first_block_order: str, input_size, n_neurons: int):
        super().__init__()
        self.config = config
        self.act = act
        self.bn_in = batch_norm(1)
        self.cpb1 = CPB(1, channels, FIRST_KERNEL, padding=0, act=act, order=first_block_order)
        self.blocks = nn.ModuleList(
            CPB(channels, channels, 3, padding=1, act=act) for _ in range(blocks - 1)
        )
        self.readout = FactorizedReadout(channels, cpb1_output(input_size), n_neurons, act)

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.cpb1.conv

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """y^(M) of eq. 1b-1c: [B, 1, H, W] -> [B, C, H-8, W-8]."""
        y = self.cpb1(self.bn_in(x))          # eq. 1c: CPB1(BN_in(x))
        for block in self.blocks:             # eq. 1b, m = 2..M
            y = block(y)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.readout.linear([self.features(x)])                # FC(Pool(y^(M)))
        return combine_iterations(z, "no-avg", self.readout.act)   # eq. 1a: Act(...)
