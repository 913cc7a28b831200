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

FIRST_KERNEL = 9


class FeedForward(nn.Module):
    """Feed-forward CNN of ``blocks`` CPBs.

    forward: x [B, 1, S, S] -> preds [1, B, neurons].
    """

    def __init__(self, config: dict, *, channels: int, blocks: int, act: str,
                 first_block_order: str, input_size: int, n_neurons: int):
        super().__init__()
        self.config = config
        self.act = act
        self.bn_in = batch_norm(1)
        self.cpb1 = CPB(1, channels, FIRST_KERNEL, padding=0, act=act, order=first_block_order)
        self.blocks = nn.ModuleList(
            CPB(channels, channels, 3, padding=1, act=act) for _ in range(blocks - 1)
        )
        self.readout = FactorizedReadout(channels, input_size - FIRST_KERNEL + 1, n_neurons, act)

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.cpb1.conv

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """y^(M) of eq. 1b-1c: [B, 1, S, S] -> [B, C, S-8, S-8]."""
        y = self.cpb1(self.bn_in(x))          # eq. 1c: CPB1(BN_in(x))
        for block in self.blocks:             # eq. 1b, m = 2..M
            y = block(y)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.readout.linear([self.features(x)])                # FC(Pool(y^(M)))
        return combine_iterations(z, "no-avg", self.readout.act)   # eq. 1a: Act(...)
