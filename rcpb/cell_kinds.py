"""The recurrent cells a recurrent model can use in its recurrent slot: names and closed-form
facts the workflow needs without building a model (torch-free: the grid imports this module).

Config field ``cell`` (arch "recurrent" only; absent = ``rcpb``). With ``x_t`` the layer
below's output at iteration t, zero initial state, ``Act`` the config's activation, o the
elementwise product (modules and details: :mod:`rcpb.models.cells`):

- ``rcpb`` (the default; SPEC 3.2): ``h_t = Act(BN_t(Wff * x_t + Wlat * h_{t-1}))`` with one
  BN per iteration t. Convs: Wff, Wlat, no bias.
- ``vanilla`` (ConvRNN): ``h_t = Act(BN(Wff * x_t + Wlat * h_{t-1}))``, one BN shared over
  iterations. Convs: Wff, Wlat, no bias.
- ``convlstm``: ``i, f, o = sigmoid(W_x* * x_t + W_h* * h_{t-1} + b_*)``,
  ``g = tanh(W_xg * x_t + W_hg * h_{t-1} + b_g)``, ``c_t = f o c_{t-1} + i o g``,
  ``h_t = o o Act(c_t)``. Convs: W_x (C -> 4C, with bias), W_h (C -> 4C, no bias); no BN.
- ``rgc``: the Reciprocal Gated Cell (Nayebi et al. 2018, section 6.2, eqs. 1-2) on the cell
  input ``u_t = BN_t(Wff * x_t)``:
  ``h_t = Act((1 - sigmoid(W_ch * c_{t-1})) o u_t + (1 - sigmoid(W_hh * h_{t-1})) o h_{t-1})``,
  ``c_t = Act((1 - sigmoid(W_hc * h_{t-1})) o u_t + (1 - sigmoid(W_cc * c_{t-1})) o c_{t-1})``.
  Convs: Wff, W_ch, W_hh, W_hc, W_cc, no bias; one BN per iteration.

Parameters of one recurrent layer of C channels (:func:`layer_conv_params`,
:func:`layer_bn_params`), all convs 3x3:

=========  =================  ===========
cell       conv parameters    BN params
=========  =================  ===========
rcpb       18 C^2             2 C T
vanilla    18 C^2             2 C
convlstm   72 C^2 + 4 C       0
rgc        45 C^2             2 C T
=========  =================  ===========

A recurrent model of L layers has ``81 C + L * layer_conv_params`` conv parameters (CPB1:
9x9, 1 -> C, no bias) plus 2 (BN_in) + 2 C (CPB1's BN) + ``L * layer_bn_params`` BN
parameters and the readout.

Minimally unrolled models (:func:`minimal_iterations`): the paper's (Nayebi et al. 2018,
section 3) "exactly the same number of parameters as its fully unrolled comparison" holds for
cells without per-iteration parameters (vanilla, convlstm). The rcpb and rgc cells have one
BN per iteration, so the minimally unrolled model (T_min iterations) has ``2 C (T - T_min)``
fewer BN parameters per layer than the T-iteration model; its conv parameters are the same.
"""

from __future__ import annotations

CELLS = ("rcpb", "vanilla", "convlstm", "rgc")
DEFAULT_CELL = "rcpb"
KERNEL = 3

#: Why a cell has no path statistics (cells that have them are absent).
NO_PATH_STATISTICS = {
    "convlstm": "the ConvLSTM's gates multiply signals by signal-dependent sigmoids (and its "
                "memory candidate is a tanh), so its output is no sum of chains of convs: the "
                "multi-path reformulation and path strengths (SPEC 3.3, 6) are not defined",
    "rgc": "the Reciprocal Gated Cell's gates multiply signals by signal-dependent sigmoids, "
           "so its output is no sum of chains of convs: the multi-path reformulation and path "
           "strengths (SPEC 3.3, 6) are not defined",
}


def check_cell(cell: str) -> str:
    """``cell`` if known, else ValueError naming the known cells."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; use one of {', '.join(CELLS)}")
    return cell


def layer_conv_params(cell: str, channels: int) -> int:
    """Parameters of the convolutions (weights and any biases) of one recurrent layer of
    ``channels`` channels (BatchNorm parameters excluded)."""
    c = int(channels)
    check_cell(cell)
    k2 = KERNEL * KERNEL
    if cell in ("rcpb", "vanilla"):
        return 2 * k2 * c * c                                   # Wff, Wlat, no bias
    if cell == "convlstm":
        return 2 * k2 * 4 * c * c + 4 * c                       # W_x, W_h (C -> 4C), bias of W_x
    return 5 * k2 * c * c                                       # rgc: Wff, W_ch, W_hh, W_hc, W_cc


def layer_bn_params(cell: str, channels: int, iterations: int) -> int:
    """BatchNorm parameters (gamma and beta) of one recurrent layer of ``channels`` channels
    run for ``iterations`` iterations."""
    c, t = int(channels), int(iterations)
    check_cell(cell)
    if cell in ("rcpb", "rgc"):
        return 2 * c * t                                        # one BN per iteration
    if cell == "vanilla":
        return 2 * c                                            # one BN shared over iterations
    return 0                                                    # convlstm: no BN


def minimal_iterations(cell: str, recurrent_layers: int) -> int:
    """The smallest T at which every parameter of the model is used at least once (the
    minimally unrolled control, Nayebi et al. 2018 section 3), "used" meaning that it reaches
    the output (gets a gradient); the same for 1 and 2 recurrent layers (every layer is driven
    from t = 1, its input being the layer below's output at the same iteration).

    - rcpb, vanilla, convlstm: 2. The convs of the state (Wlat; W_h and the forget gate, which
      multiplies c_{t-1}) act first at t = 2.
    - rgc: 3. The memory c_t reaches the output only through h_{t+1}, so the convs of the
      memory update (W_hc, W_cc) take part from T = 3.
    """
    check_cell(cell)
    return 3 if cell == "rgc" else 2


def has_path_statistics(cell: str) -> bool:
    """Whether path statistics (SPEC 6) are defined: for cells whose recurrent model, with an
    identity activation and BN in evaluation mode, is a sum over chains of convs and BNs
    (rcpb; vanilla, whose chains pass its shared BN). Multi-path models are built for rcpb only
    (a vanilla model's multi-path twin, with a separate BN per occurrence, would be the rcpb
    one). Why the others have none: :data:`NO_PATH_STATISTICS`."""
    return check_cell(cell) in ("rcpb", "vanilla")
