"""Recurrent model (SPEC 3.2, paper eq. 2)::

    BN_in(x) -> CPB1 -> RCPB2 .. RCPBM' (T iterations) -> readout mode

CPB1 is not recurrent: its output y1 is the same at every iteration. For t = 1..T and
m = 2..M', ``y[m,t] = Act(BN[m,t](Wff[m] * y[m-1,t] + Wlat[m] * y[m,t-1]))`` with
``y[m,0] = 0``. The readout mode combines h_t = y[M',t], t = 1..T (see
:func:`rcpb.models.readout.combine_iterations`).

The recurrent layers' module is the config's ``cell`` (:mod:`rcpb.cell_kinds`; default
``rcpb``, the RCPB above); other cells (:mod:`rcpb.models.cells`) fill the same slot: layer m's
input at iteration t is layer m-1's output at iteration t, its state starts at 0, and the
readout reads the last layer's output. Everything else of the model is the same for every cell.
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.cell_kinds import DEFAULT_CELL, check_cell
from rcpb.models.blocks import CPB, RCPB, batch_norm
from rcpb.models.cells import CELL_MODULES
from rcpb.models.feedforward import FIRST_KERNEL, cpb1_output
from rcpb.models.readout import FactorizedReadout, combine_iterations


class Recurrent(nn.Module):
    """CPB1 followed by ``recurrent_layers`` recurrent layers run for ``iterations`` (T)
    iterations.

    ``rcpbs[i]`` is the module of layer m = i + 2: an RCPB (convs ``ff{m}``, ``lat{m}``) for
    ``cell="rcpb"``, else the cell's module (the attribute keeps its name for every cell, so
    the state-dict keys of rcpb models never change; ``cells`` is the same list).
    forward: x [B, 1, H, W] -> preds [n_out, B, neurons], n_out = T for late-avg and 2-avg,
    else 1.
    """

    def __init__(self, config: dict, *, channels: int, recurrent_layers: int, iterations: int,
                 readout: str, act: str, first_block_order: str, input_size,
                 n_neurons: int, cell: str = DEFAULT_CELL):
        super().__init__()
        self.config = config
        self.cell = check_cell(cell)
        self.act = act
        self.iterations = iterations
        self.readout_mode = readout
        self.bn_in = batch_norm(1)
        self.cpb1 = CPB(1, channels, FIRST_KERNEL, padding=0, act=act, order=first_block_order)
        module = RCPB if cell == "rcpb" else CELL_MODULES[cell]
        self.rcpbs = nn.ModuleList(
            module(channels, iterations, act) for _ in range(recurrent_layers)
        )
        self.readout = FactorizedReadout(channels, cpb1_output(input_size), n_neurons, act)

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.cpb1.conv

    @property
    def cells(self) -> nn.ModuleList:
        """The recurrent layers' modules (``rcpbs``)."""
        return self.rcpbs

    @property
    def recurrent_layers(self) -> int:
        return len(self.rcpbs)

    def iteration_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """h_t = y[M',t] for t = 1..T: x [B, 1, H, W] -> T tensors [B, C, H-8, W-8]."""
        y1 = self.cpb1(self.bn_in(x))                # CPB1(BN_in(x)), the same for all t
        if self.cell == "rcpb":
            return self._rcpb_outputs(y1)
        drive2 = self.rcpbs[0].input_drive(y1)       # layer 2's convs of y1: computed once
        state = [None] * len(self.rcpbs)             # zero state at t = 0
        outputs = []
        for t in range(1, self.iterations + 1):
            y_below = y1
            for i, cell in enumerate(self.rcpbs):    # layer m = i + 2
                y_below, state[i] = cell(y_below, state[i], t, drive2 if i == 0 else None)
            outputs.append(y_below)                  # h_t of the last layer
        return outputs

    def _rcpb_outputs(self, y1: torch.Tensor) -> list[torch.Tensor]:
        """h_t, t = 1..T, of the RCPB layers from CPB1's output y1 [B, C, H, W]."""
        wff2_y1 = self.rcpbs[0].ff(y1)               # so is Wff[2] * y1: computed once
        y = [None] * len(self.rcpbs)                 # y[m,0] = 0 (None: no lateral term)
        outputs = []
        for t in range(1, self.iterations + 1):
            y_below = y1
            for i, block in enumerate(self.rcpbs):   # layer m = i + 2
                y[i] = block(y_below, y[i], t, wff2_y1 if i == 0 else None)   # y[m,t]
                y_below = y[i]
            outputs.append(y[-1])
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = self.iteration_outputs(x)
        if self.readout_mode == "no-avg":
            hs = hs[-1:]                               # only h_T is read out
        z = self.readout.linear(hs)                    # z_t = FC(Pool(h_t)), [T, B, N]
        return combine_iterations(z, self.readout_mode, self.readout.act)
