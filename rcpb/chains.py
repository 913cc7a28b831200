"""Chains of a recurrent block's convolutions and the weight the readout puts on each iteration.

A recurrent block unrolled over T iterations is (approximately) a sum of feed-forward *chains*
of its convolutions (SPEC 3.3, paper 4.2 and fig. 4). This module enumerates those chains and
gives the weight each readout mode puts on each iteration (SPEC 6). Length always counts the
recurrent block's Conv(3) layers only; CPB1's Conv(9) is not counted. Conv names are ``ff{m}``
and ``lat{m}`` for recurrent layer ``m`` (m = 2 for the first recurrent layer, 3 for the second).

numpy only, no torch: the Snakefile's grid expansion imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rcpb.errors import RcpbError

#: the readout modes of SPEC 3.2, in the paper's order (the one definition of the package)
READOUT_MODES = ("no-avg", "early-avg", "late-avg", "2-avg")


# --------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Chain:
    """One feed-forward chain of a recurrent block's convolutions.

    end:    the iteration t (1-based) whose block output the chain feeds.
    convs:  conv names in order from input to output, e.g. ("ff2", "lat2", "ff3").
    length: number of convs (``len(convs)``); CPB1 is not counted.
    """

    end: int
    convs: tuple[str, ...]
    length: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "convs", tuple(self.convs))
        object.__setattr__(self, "length", len(self.convs))

    @property
    def name(self) -> str:
        """Readable unique id, e.g. ``"t3:ff2-lat2-lat2"``."""
        return f"t{self.end}:" + "-".join(self.convs)

    def iterations(self) -> tuple[int, ...]:
        """Iteration (1-based) at which each conv of the chain is applied, parallel to ``convs``.

        In the recurrent model the last conv runs at ``end``; going back along the
        chain, a lateral conv read its layer's previous iteration (one step earlier)
        and a feed-forward conv after the first read the layer below in the same
        iteration; the first conv (ff2) reads CPB1's output.
        For 1 layer (ff2, lat2^(d-1)) ending at t: ff2 at t-d+1, the lats after.
        For 2 layers (ff2, lat2^a, ff3, lat3^b) ending at t: ff2 at t-b-a,
        lat2 at the next a iterations, ff3 at t-b, lat3 at t-b+1..t.
        Every BN after a conv belongs to that conv's iteration.
        """
        its = [self.end]
        for later in reversed(self.convs[1:]):
            # a lateral conv reads its own layer's previous iteration; a feed-forward
            # conv reads the layer below in the same iteration
            its.append(its[-1] - 1 if later.startswith("lat") else its[-1])
        return tuple(reversed(its))


def _check_layers_iterations(recurrent_layers: int, iterations: int) -> None:
    if (not isinstance(recurrent_layers, (int, np.integer)) or isinstance(recurrent_layers, bool)
            or recurrent_layers < 1):
        raise RcpbError(f"recurrent_layers = {recurrent_layers!r}: must be an integer >= 1.")
    if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 1:
        raise RcpbError(f"iterations = {iterations!r}: must be an integer >= 1.")


def _compositions(total: int, parts: int):
    """All tuples of ``parts`` non-negative ints summing to ``total``, lexicographic order."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first,) + rest


def enumerate_chains(recurrent_layers: int, iterations: int) -> list[Chain]:
    """All chains of a recurrent block with ``recurrent_layers`` layers unrolled ``iterations`` times.

    1 layer, end t: ("ff2",) + ("lat2",) * (d - 1) for d = 1..t (one chain per length).
    2 layers, end t: ("ff2",) + ("lat2",) * a + ("ff3",) + ("lat3",) * b with a + b <= t - 1,
    length d = 2 + a + b in 2..t+1, d - 1 chains of length d.
    (L layers in general: ff2 lat2^a2 .. ff{L+1} lat{L+1}^a{L+1}, sum of a's <= t - 1.)
    Order: by end iteration, then length, then a (the numbers of lats, lexicographically).
    Totals: T(T+1)/2 chains for 1 layer, T(T+1)(T+2)/6 for 2 layers.
    """
    _check_layers_iterations(recurrent_layers, iterations)
    L = int(recurrent_layers)
    chains: list[Chain] = []
    for t in range(1, int(iterations) + 1):
        for d in range(L, t + L):
            for lats in _compositions(d - L, L):
                convs: tuple[str, ...] = ()
                for m, n_lat in enumerate(lats, start=2):
                    convs += (f"ff{m}",) + (f"lat{m}",) * n_lat
                chains.append(Chain(t, convs))
    return chains


def existing_lengths(recurrent_layers: int, iterations: int) -> list[int]:
    """Path lengths that occur: 1..T for 1 layer, 2..T+1 for 2 layers (L..T+L-1 for L layers)."""
    _check_layers_iterations(recurrent_layers, iterations)
    return list(range(int(recurrent_layers), int(iterations) + int(recurrent_layers)))


# --------------------------------------------------------------------------- readout weights


def readout_weights(mode: str, T: int) -> np.ndarray:
    """Weight the readout mode puts on the block output of each iteration (SPEC 6).

    Returns float64 [T], entry t-1 for iteration t:
    no-avg [0, .., 0, 1]; early-avg and late-avg 1/T each;
    2-avg w(t) = (1/T) * sum_{k=t..T} 1/k (iteration t enters the cumulative
    averages hbar_k, k >= t, with weight 1/k, and those are averaged over T).
    Every mode's weights sum to 1.
    """
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise RcpbError(f"iterations = {T!r}: must be an integer >= 1.")
    if mode == "no-avg":
        w = np.zeros(T)
        w[-1] = 1.0
    elif mode in ("early-avg", "late-avg"):
        w = np.full(T, 1.0 / T)
    elif mode == "2-avg":
        inv = 1.0 / np.arange(1, T + 1)
        w = np.cumsum(inv[::-1])[::-1] / T
    else:
        raise RcpbError(
            f"readout = {mode!r}: unknown readout mode; use one of {', '.join(READOUT_MODES)}."
        )
    return w
