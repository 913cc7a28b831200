"""Multi-path model (SPEC 3.3, paper 4.2 and appendix E).

The explicit ensemble of feed-forward chains that a recurrent model approximates::

    y_t = sum over allowed chains c ending at t of
          Act(BN_c,k(conv_k( ... Act(BN_c,1(conv_1(x1))) ... )))

x1 is CPB1's output. A chain (see :func:`rcpb.chains.enumerate_chains`) is a sequence of the
recurrent model's conv names (``ff2``, ``lat2``, ``ff3``, ``lat3``); the convs are shared
between chains (``convs``), every BN occurrence in every chain is its own BatchNorm
(``chain_bns[i][k]`` follows conv k of ``chains[i]``). Iterations without an allowed chain are
dropped; the readout mode combines the kept y_t as in SPEC 3.2.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.errors import RcpbError
from rcpb.models.blocks import CPB, activation, batch_norm
from rcpb.models.feedforward import FIRST_KERNEL, cpb1_output
from rcpb.models.readout import FactorizedReadout, combine_iterations
from rcpb.chains import Chain, enumerate_chains, existing_lengths


class MultiPath(nn.Module):
    """Sum of feed-forward chains with shared convs and per-occurrence BN.

    ``allowed_lengths``: chain lengths kept (None = all). ``iterations_kept``: sorted iterations
    with at least one chain. forward: x [B, 1, H, W] -> preds [n_out, B, neurons], n_out =
    len(iterations_kept) for late-avg and 2-avg, else 1.
    """

    def __init__(self, config: dict, *, channels: int, recurrent_layers: int, iterations: int,
                 readout: str, act: str, first_block_order: str, input_size,
                 n_neurons: int, allowed_lengths: list[int] | None = None):
        super().__init__()
        self.config = config
        self.act = act
        self.iterations = iterations
        self.readout_mode = readout
        self.recurrent_layers = recurrent_layers
        chains = enumerate_chains(recurrent_layers, iterations)
        if allowed_lengths is not None:
            existing = existing_lengths(recurrent_layers, iterations)
            unknown = sorted(set(allowed_lengths) - set(existing))
            if unknown or not allowed_lengths:
                raise RcpbError(
                    f"config field 'allowed_lengths' = {allowed_lengths!r}: lengths must be a "
                    f"non-empty subset of {existing} for {recurrent_layers} recurrent layer(s) and "
                    f"{iterations} iterations"
                )
            chains = [c for c in chains if c.length in set(allowed_lengths)]
        self.chains: list[Chain] = chains
        self.iterations_kept: list[int] = sorted({c.end for c in chains})

        self.bn_in = batch_norm(1)
        self.cpb1 = CPB(1, channels, FIRST_KERNEL, padding=0, act=act, order=first_block_order)
        names = [f"{kind}{m}" for m in range(2, recurrent_layers + 2) for kind in ("ff", "lat")]
        self.convs = nn.ModuleDict(
            {name: nn.Conv2d(channels, channels, 3, padding=1, bias=False) for name in names}
        )
        self.chain_bns = nn.ModuleList(
            nn.ModuleList(batch_norm(channels) for _ in chain.convs) for chain in chains
        )
        self.chain_act = activation(act)
        self.readout = FactorizedReadout(channels, cpb1_output(input_size), n_neurons, act)

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.cpb1.conv

    def chain_output(self, index: int, ff2_x1: torch.Tensor) -> torch.Tensor:
        """Output of chain ``chains[index]``; ``ff2_x1 = convs["ff2"](x1)`` (every chain's first step)."""
        chain, bns = self.chains[index], self.chain_bns[index]
        act = self.chain_act
        h = act(bns[0](ff2_x1))                               # Act(BN_c,1(conv_1(x1)))
        for name, bn in zip(chain.convs[1:], bns[1:]):
            h = act(bn(self.convs[name](h)))                  # Act(BN_c,k(conv_k(h)))
        return h

    def iteration_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """y_t for t in ``iterations_kept``: x [B, 1, H, W] -> list of [B, C, H-8, W-8]."""
        x1 = self.cpb1(self.bn_in(x))        # CPB1(BN_in(x))
        ff2_x1 = self.convs["ff2"](x1)       # the first conv of every chain, computed once
        outputs = []
        for t in self.iterations_kept:
            chains_t = [i for i, c in enumerate(self.chains) if c.end == t]
            outputs.append(sum(self.chain_output(i, ff2_x1) for i in chains_t))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = self.iteration_outputs(x)
        if self.readout_mode == "no-avg":
            ys = ys[-1:]
        z = self.readout.linear(ys)          # z_t = FC(Pool(y_t)) for the kept t
        return combine_iterations(z, self.readout_mode, self.readout.act)
