"""Models of SPEC section 3 (PyTorch).

- :mod:`~rcpb.models.blocks`: CPB and RCPB (paper eqs. 1d, 2i).
- :mod:`~rcpb.models.cells`: the other recurrent cells (vanilla, ConvLSTM, Reciprocal Gated
  Cell) for the recurrent model's RCPB slot (config field ``cell``).
- :mod:`~rcpb.models.readout`: AvgPool + factorized FC + Act, and the readout modes.
- :mod:`~rcpb.models.feedforward`, :mod:`~rcpb.models.recurrent`,
  :mod:`~rcpb.models.multipath`: the three architectures.
- :func:`build` makes one from a training configuration.

Every model maps ``x [batch, 1, H, W]`` to ``preds [n_out, batch, neurons]``.
"""

from rcpb.models.blocks import CPB, RCPB
from rcpb.models.cells import ConvLSTMCell, ReciprocalGatedCell, VanillaCell
from rcpb.models.build import build, count_conv_parameters, count_parameters
from rcpb.models.feedforward import FeedForward
from rcpb.models.multipath import MultiPath
from rcpb.models.readout import FactorizedReadout, combine_iterations
from rcpb.models.recurrent import Recurrent

__all__ = [
    "CPB", "RCPB", "ConvLSTMCell", "FactorizedReadout", "FeedForward", "MultiPath", "Recurrent",
    "ReciprocalGatedCell", "VanillaCell",
    "build", "combine_iterations", "count_conv_parameters", "count_parameters",
]
