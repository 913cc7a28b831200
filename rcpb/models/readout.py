"""Readout phase (SPEC 3.1-3.2; paper eqs. 1a, 2a-2e).

``R(h) = Act(FactorizedFC(AvgPool(h)))`` with AvgPool(3, stride 3, ceil_mode=True) and the
factorized fully-connected layer of Klindt et al. (2017)::

    z_n = sum_{c,x,y} ws[n,x,y] * wf[n,c] * P[c,x,y] + b_n

Readout modes combine the last recurrent layer's outputs h_1..h_T of one model. Pooling and the
factorized FC are linear, so the FC of an average of feature maps is the average of the FCs:
``FC(Pool(mean_t h_t)) == mean_t FC(Pool(h_t))``. The modes are therefore computed on the
pre-activations ``z_t = FC(Pool(h_t))`` ([batch, neurons], cheap) instead of on the feature
maps ([batch, channels, H, W]); the results are the SPEC's equations exactly (up to float
rounding).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rcpb.chains import READOUT_MODES
from rcpb.errors import RcpbError
from rcpb.models.blocks import activation, inverse_activation


POOL_KERNEL = 3  # AvgPool(3, stride 3, ceil_mode=True)


def pooled_size(size: int) -> int:
    """Output length of AvgPool(3, stride 3, ceil_mode=True) along an axis of ``size`` px."""
    return math.ceil((size - POOL_KERNEL) / POOL_KERNEL) + 1


class FactorizedReadout(nn.Module):
    """``R(h) = Act(FactorizedFC(AvgPool(h)))``.

    Parameters: ``ws`` [neurons, h, w] (spatial mask), ``wf`` [neurons, channels] (feature
    weights), ``bias`` [neurons]. ``h, w`` = :func:`pooled_size` of the feature maps' height and
    width ``feature_hw`` (px).
    """

    def __init__(self, channels: int, feature_hw: tuple[int, int], n_neurons: int, act: str):
        super().__init__()
        height, width = (pooled_size(s) for s in feature_hw)
        self.ws = nn.Parameter(torch.zeros(n_neurons, height, width))
        self.wf = nn.Parameter(torch.zeros(n_neurons, channels))
        self.bias = nn.Parameter(torch.zeros(n_neurons))
        self.pool = nn.AvgPool2d(POOL_KERNEL, stride=POOL_KERNEL, ceil_mode=True)
        self.act_name = act
        self.act = activation(act)

    def linear(self, hs: list[torch.Tensor]) -> torch.Tensor:
        """Pre-activations ``z_t = FactorizedFC(AvgPool(h_t))`` of several feature maps.

        hs: list of T' tensors [B, C, H, W] -> [T', B, neurons]. The factorized weight
        ``W[n,c,x,y] = ws[n,x,y] * wf[n,c]`` is formed once and applied to all maps in one matmul.
        """
        pooled = torch.stack([self.pool(h) for h in hs])          # AvgPool: [T', B, C, h, w]
        weight = self.wf[:, :, None] * self.ws.flatten(1)[:, None, :]  # [N, C, h*w]
        z = pooled.flatten(2) @ weight.flatten(1).T                # [T', B, N]
        return z + self.bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``R(h)``: [B, C, H, W] -> [B, neurons]."""
        return self.act(self.linear([h])[0])

    @torch.no_grad()
    def init_bias(self, mean_response: torch.Tensor) -> None:
        """Set ``b_n`` so that ``Act(b_n)`` equals ``mean_response[n]`` (mean training response).

        mean_response: [neurons]. softplus: inverse softplus (values clamped to >= 1e-4);
        relu: the mean itself.
        """
        mean_response = torch.as_tensor(mean_response, dtype=self.bias.dtype)
        if mean_response.shape != self.bias.shape:
            raise RcpbError(
                f"init_bias: mean_response has shape {tuple(mean_response.shape)}, the readout has "
                f"{self.bias.numel()} neurons; pass one mean training response per neuron"
            )
        self.bias.copy_(inverse_activation(self.act_name, mean_response))


def combine_iterations(z: torch.Tensor, mode: str, act: nn.Module) -> torch.Tensor:
    """Predictions of a readout mode from the pre-activations of the kept iterations.

    z: [T', B, neurons], ``z[t-1] = FC(Pool(h_t))``. Returns [n_out, B, neurons]:

    - ``no-avg``    (eq. 2a): ``Act(z_T')``                          n_out = 1
    - ``early-avg`` (eq. 2b): ``Act(mean_t z_t)``                    n_out = 1
    - ``late-avg``  (eq. 2c): ``Act(z_t)``, t = 1..T'                n_out = T'
    - ``2-avg``     (eq. 2d, 2e): ``Act(zbar_t)``, ``zbar_t = mean_{s<=t} z_s``   n_out = T'

    For late-avg and 2-avg the evaluation prediction is the mean over the n_out outputs
    (``(1/T) sum_t Act(...)``), the training loss the mean of their losses.
    """
    if mode == "no-avg":
        return act(z[-1:])
    if mode == "early-avg":
        return act(z.mean(0, keepdim=True))
    if mode == "late-avg":
        return act(z)
    if mode == "2-avg":
        counts = torch.arange(1, z.shape[0] + 1, dtype=z.dtype, device=z.device)
        return act(z.cumsum(0) / counts[:, None, None])
    raise RcpbError(
        f"config field 'readout': unknown readout mode {mode!r}; use one of {', '.join(READOUT_MODES)}"
    )
