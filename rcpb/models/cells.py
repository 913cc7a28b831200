"""Recurrent cells for the recurrent slot of :class:`rcpb.models.recurrent.Recurrent` (SPEC 3.2).

A recurrent model is ``BN_in -> CPB1 -> L recurrent layers (T iterations) -> readout``; the
cell decides what one recurrent layer computes at iteration t from ``x_t`` (the output of the
layer below at iteration t, ``[B, C, H, W]``; CPB1's output for the first recurrent layer) and
its own state from iteration t - 1. Every cell maps C channels to C channels with 3x3 convs,
padding 1. Which cell a model uses is the config field ``cell`` (:mod:`rcpb.cell_kinds`):

- ``rcpb``: :class:`rcpb.models.blocks.RCPB` (the default; unchanged),
  ``h_t = Act(BN_t(Wff * x_t + Wlat * h_{t-1}))``;
- ``vanilla``: :class:`VanillaCell`, ``h_t = Act(BN(Wff * x_t + Wlat * h_{t-1}))``, one BN;
- ``convlstm``: :class:`ConvLSTMCell`, the convolutional LSTM (Shi et al. 2015, no peepholes);
- ``rgc``: :class:`ReciprocalGatedCell`, Nayebi et al. 2018 supplement section 6.2 eqs. 1-2.

Interface of the new cells (the RCPB keeps its own, see :class:`rcpb.models.blocks.RCPB`)::

    drive = cell.input_drive(x_t)              # the convs of x_t alone (constant over t for
                                               # layer 2, whose input CPB1's output is)
    h_t, state_t = cell(x_t, state_{t-1}, t, x_drive=drive)   # state None at t = 1

``h_t`` ``[B, C, H, W]`` is the layer's output (the next layer's input, and what the readout
reads for the last layer). ``state`` is ``h`` (vanilla) or the tuple ``(h, c)`` (convlstm, rgc).
A zero initial state is ``None``: terms of the zero state are left out (a conv of 0 without a
bias is 0), so a conv that only acts on the state is not called at t = 1.

Conventions common to all cells: ``Act`` is the config's activation (``relu`` / ``softplus``;
``identity`` for tests); gates are sigmoids; every weight is drawn N(0, 0.01) by
:func:`rcpb.models.build.initialise` (in ``named_parameters`` order) and every conv bias starts
at 0 (no forget-gate bias of 1: T is a few iterations here, the long-memory problem that bias
addresses does not arise, and 0 keeps every conv of the project initialised alike).
"""

from __future__ import annotations

import torch
from torch import nn

from rcpb.models.blocks import activation, batch_norm

KERNEL = 3


def conv3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    """Conv(3), padding 1, stride 1 (keeps H and W)."""
    return nn.Conv2d(in_channels, out_channels, KERNEL, padding=1, bias=bias)


class VanillaCell(nn.Module):
    """Vanilla ConvRNN cell: the RCPB with one BatchNorm shared over iterations.

    ``h_t = Act(BN(Wff * x_t + Wlat * h_{t-1}))``, ``h_0 = 0``.

    - ``ff`` (Wff), ``lat`` (Wlat): Conv(3), no bias (the BN's shift makes a bias redundant).
    - ``bn``: one BatchNorm for all iterations. In training mode it normalises each iteration
      with that iteration's batch statistics (it is called once per iteration), exactly as the
      RCPB does; what differs from the RCPB is (1) one gamma/beta for all iterations
      (2C parameters per layer instead of 2CT: the parameter count does not depend on T) and
      (2) one running mean/variance, updated T times per training step, so that in evaluation
      every iteration is normalised with the same statistics (an average over iterations that
      weighs the last ones most). That evaluation-time normalisation is the difference that
      matters; with it the cell is exactly a recurrent network with time-invariant weights.
    - ``bns``: read-only view, ``bns[t-1]`` is the BN applied at iteration t (here always
      ``bn``); the same attribute as the RCPB's, so the path analysis and code that ties
      weights read both cells alike.

    T = 1: ``h_1 = Act(BN(Wff * x_1))``, the CPB ``Act(BN(Conv(x)))`` of the feed-forward model.
    Linear in the same sense as the RCPB (identity Act, BN in evaluation mode a per-channel
    affine map): its output is the sum over the same chains of convs, each BN occurrence the
    shared BN, so path statistics are defined (:mod:`rcpb.path_stats`).
    """

    def __init__(self, channels: int, iterations: int, act: str):
        super().__init__()
        self.iterations = iterations
        self.ff = conv3(channels, channels)
        self.lat = conv3(channels, channels)
        self.bn = batch_norm(channels)
        self.act = activation(act)

    @property
    def bns(self) -> tuple[nn.BatchNorm2d, ...]:
        """The BN applied at iterations 1..T: the shared ``bn``, T times."""
        return (self.bn,) * self.iterations

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """``Wff * x``: [B, C, H, W] -> [B, C, H, W]."""
        return self.ff(x)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None, t: int,
                x_drive: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_t, h_t)`` from ``x = x_t`` and ``state = h_{t-1}`` (None at t = 1), all
        [B, C, H, W]; ``x_drive``: ``Wff * x`` if the caller has it."""
        wff = self.ff(x) if x_drive is None else x_drive
        drive = wff if state is None else wff + self.lat(state)   # Wff*x_t + Wlat*h_{t-1}
        h = self.act(self.bn(drive))                              # h_t = Act(BN(Wff*x_t + Wlat*h_{t-1}))
        return h, h


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM (Shi et al. 2015, without peepholes), output nonlinearity ``Act``::

        i_t = sigmoid(W_xi * x_t + W_hi * h_{t-1} + b_i)      input gate
        f_t = sigmoid(W_xf * x_t + W_hf * h_{t-1} + b_f)      forget gate
        o_t = sigmoid(W_xo * x_t + W_ho * h_{t-1} + b_o)      output gate
        g_t = tanh(W_xg * x_t + W_hg * h_{t-1} + b_g)         memory candidate
        c_t = f_t o c_{t-1} + i_t o g_t                        memory (o: elementwise product)
        h_t = o_t o Act(c_t)                                   output

    with ``h_0 = c_0 = 0``. The four x-convs are one Conv(3) ``wx`` C -> 4C with a bias (the
    gates' biases b_i, b_f, b_o, b_g, one per gate channel, in that order of output channels);
    the four h-convs are one Conv(3) ``wh`` C -> 4C without a bias (a second bias would be
    redundant). Conv parameters: 2 * 9 * 4C * C + 4C = 72 C^2 + 4 C. All biases start at 0.

    BN: none. The LSTM's equations (Shi et al.; the LSTMs of Nayebi et al. 2018) have none;
    the gates are bounded by the sigmoids and the memory candidate by tanh, and a BN inside
    the gates would make it a different cell (recurrent batch normalisation). So the cell has
    no per-iteration parameters and its parameter count does not depend on T.

    T = 1 (zero state): ``h_1 = o_1 o Act(i_1 o g_1)`` with the gates computed from x_1 alone;
    ``wh`` and the forget gate take no part (no gradient). Every parameter is used from T = 2.
    """

    def __init__(self, channels: int, iterations: int, act: str):
        super().__init__()
        self.iterations = iterations
        self.wx = conv3(channels, 4 * channels, bias=True)
        self.wh = conv3(channels, 4 * channels)
        self.act = activation(act)

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """``W_x * x + b``: [B, C, H, W] -> [B, 4C, H, W] (gates i, f, o, g along channels)."""
        return self.wx(x)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, t: int,
                x_drive: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(h_t, (h_t, c_t))`` from ``x = x_t`` [B, C, H, W] and ``state = (h_{t-1},
        c_{t-1})`` (None at t = 1); ``x_drive``: ``W_x * x + b`` [B, 4C, H, W] if the caller
        has it."""
        z = self.wx(x) if x_drive is None else x_drive
        if state is not None:
            h_prev, c_prev = state
            z = z + self.wh(h_prev)                       # W_x*x_t + W_h*h_{t-1} + b, 4C channels
        zi, zf, zo, zg = z.chunk(4, dim=1)
        i = torch.sigmoid(zi)                             # i_t = sigmoid(W_xi*x_t + W_hi*h_{t-1} + b_i)
        o = torch.sigmoid(zo)                             # o_t = sigmoid(W_xo*x_t + W_ho*h_{t-1} + b_o)
        g = torch.tanh(zg)                                # g_t = tanh(W_xg*x_t + W_hg*h_{t-1} + b_g)
        if state is None:
            c = i * g                                     # c_1 = i_1 o g_1  (c_0 = 0)
        else:
            f = torch.sigmoid(zf)                         # f_t = sigmoid(W_xf*x_t + W_hf*h_{t-1} + b_f)
            c = f * c_prev + i * g                        # c_t = f_t o c_{t-1} + i_t o g_t
        h = o * self.act(c)                               # h_t = o_t o Act(c_t)
        return h, (h, c)


class ReciprocalGatedCell(nn.Module):
    """Reciprocal Gated Cell, Nayebi et al. 2018, supplement section 6.2, eqs. (1)-(2)::

        u_t = BN_t(Wff * x_t)                                          the cell input
        a_t = (1 - sigmoid(W_ch * c_{t-1})) o u_t + (1 - sigmoid(W_hh * h_{t-1})) o h_{t-1}
        h_t = Act(a_t)                                                 eq. (1)
        b_t = (1 - sigmoid(W_hc * h_{t-1})) o u_t + (1 - sigmoid(W_cc * c_{t-1})) o c_{t-1}
        c_t = Act(b_t)                                                 eq. (2)

    with ``h_0 = c_0 = 0`` and o the elementwise product; ``f`` of the source is ``Act``.

    - The cell input. In the source, x_t^l of eqs. (1)-(2) is the input to the cell of layer
      l, which in their ConvRNN layer is the output of the layer's feed-forward convolution
      (seed 001 section 2: inputs "are processed by standard 2-D convolutions ... the output is
      next passed to the recurrent cell as input"). Here that convolution is ``ff`` (Wff,
      Conv(3), no bias) followed by ``bns[t-1]`` (BN_t, one per iteration): the Conv -> BN of
      every block of this project (paper eqs. 1d, 2i) with the RCPB's per-iteration BN policy.
      Without Wff a layer would have no learnable map of its bottom-up input.
    - Time index. The source writes ``a_{t+1}`` from ``x_t`` and the state at t (each layer
      one step behind the one below); here the layer below's output at the same iteration is
      the input (SPEC 3.2), so ``a_t`` combines ``u_t`` with the state at t - 1.
    - The gate convs ``w_ch, w_hh, w_hc, w_cc``: Conv(3), C -> C, no bias, as written in the
      source. Conv parameters: 5 * 9 C^2 = 45 C^2; BN: 2C per iteration.

    T = 1 (zero state): every gate is sigmoid(0) = 1/2, so ``h_1 = c_1 = Act(BN_1(Wff * x_1) / 2)``,
    the CPB of the feed-forward model with BN's gamma and beta halved; the gate convs take no
    part. ``c_t`` first reaches the output through ``h_{t+1}``, so W_hc and W_cc take part
    from T = 3 (the minimal unrolling, :func:`rcpb.cell_kinds.minimal_iterations`).
    """

    def __init__(self, channels: int, iterations: int, act: str):
        super().__init__()
        self.iterations = iterations
        self.ff = conv3(channels, channels)
        self.bns = nn.ModuleList(batch_norm(channels) for _ in range(iterations))
        self.w_ch = conv3(channels, channels)
        self.w_hh = conv3(channels, channels)
        self.w_hc = conv3(channels, channels)
        self.w_cc = conv3(channels, channels)
        self.act = activation(act)

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """``Wff * x``: [B, C, H, W] -> [B, C, H, W] (before the per-iteration BN)."""
        return self.ff(x)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, t: int,
                x_drive: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(h_t, (h_t, c_t))`` from ``x = x_t`` [B, C, H, W] and ``state = (h_{t-1},
        c_{t-1})`` (None at t = 1); ``x_drive``: ``Wff * x`` if the caller has it; t 1-based."""
        u = self.bns[t - 1](self.ff(x) if x_drive is None else x_drive)   # u_t = BN_t(Wff*x_t)
        if state is None:                                 # h_0 = c_0 = 0: every gate is 1/2
            a = 0.5 * u                                   # a_1 = (1 - sigmoid(0)) o u_1
            b = 0.5 * u                                   # b_1 = (1 - sigmoid(0)) o u_1
        else:
            h_prev, c_prev = state
            # eq. (1): a_t = (1 - sigmoid(W_ch*c_{t-1})) o u_t + (1 - sigmoid(W_hh*h_{t-1})) o h_{t-1}
            a = (1 - torch.sigmoid(self.w_ch(c_prev))) * u + (1 - torch.sigmoid(self.w_hh(h_prev))) * h_prev
            # eq. (2): b_t = (1 - sigmoid(W_hc*h_{t-1})) o u_t + (1 - sigmoid(W_cc*c_{t-1})) o c_{t-1}
            b = (1 - torch.sigmoid(self.w_hc(h_prev))) * u + (1 - torch.sigmoid(self.w_cc(c_prev))) * c_prev
        h = self.act(a)                                   # h_t = Act(a_t)
        c = self.act(b)                                   # c_t = Act(b_t)
        return h, (h, c)


#: cell name -> module class (``rcpb`` is :class:`rcpb.models.blocks.RCPB`).
CELL_MODULES = {"vanilla": VanillaCell, "convlstm": ConvLSTMCell, "rgc": ReciprocalGatedCell}
