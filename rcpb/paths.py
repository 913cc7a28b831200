"""Paths through recurrent blocks: chains, readout weights, ablation sets, strengths.

A recurrent block unrolled over T iterations is (approximately) a sum of
feed-forward *chains* of its convolutions (SPEC 3.3, paper 4.2 and fig. 4).
This module enumerates those chains, gives the weight the readout mode puts on
each iteration (SPEC 6), parses the names of path ablations (SPEC 7) and turns
a trained model's weights into a path-length distribution (SPEC 6, paper 4.3).

Length always counts the recurrent block's Conv(3) layers only; CPB1's Conv(9)
is not counted. Conv names are ``ff{m}`` and ``lat{m}`` for recurrent layer
``m`` (m = 2 for the first recurrent layer, 3 for the second).

The chain, weight and ablation functions are pure and import no torch (the
Snakefile's grid expansion imports them). Functions that read a model import
torch inside their body.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from rcpb.errors import RcpbError

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

        In the recurrent model the chain's k-th conv runs at iteration
        ``end - length + k`` (k = 1..length): a feed-forward conv moves to the
        next layer within the same iteration, a lateral conv within the layer
        to the next iteration, and the chain's first conv reads CPB1's output.
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
    if recurrent_layers not in (1, 2):
        raise RcpbError(
            f"recurrent_layers = {recurrent_layers!r}: path analysis supports 1 or 2 recurrent "
            "layers; set recurrent_layers to 1 or 2."
        )
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise RcpbError(f"iterations = {iterations!r}: must be an integer >= 1.")


def enumerate_chains(recurrent_layers: int, iterations: int) -> list[Chain]:
    """All chains of a recurrent block with ``recurrent_layers`` layers unrolled ``iterations`` times.

    1 layer, end t: ("ff2",) + ("lat2",) * (d - 1) for d = 1..t (one chain per length).
    2 layers, end t: ("ff2",) + ("lat2",) * a + ("ff3",) + ("lat3",) * b with a + b <= t - 1,
    length d = 2 + a + b in 2..t+1, d - 1 chains of length d.
    Order: by end iteration, then length, then a (the number of lat2).
    Totals: T(T+1)/2 chains for 1 layer, T(T+1)(T+2)/6 for 2 layers.
    """
    _check_layers_iterations(recurrent_layers, iterations)
    chains: list[Chain] = []
    for t in range(1, iterations + 1):
        if recurrent_layers == 1:
            for d in range(1, t + 1):
                chains.append(Chain(t, ("ff2",) + ("lat2",) * (d - 1)))
        else:
            for d in range(2, t + 2):
                for a in range(0, d - 1):
                    b = d - 2 - a
                    chains.append(Chain(t, ("ff2",) + ("lat2",) * a + ("ff3",) + ("lat3",) * b))
    return chains


def existing_lengths(recurrent_layers: int, iterations: int) -> list[int]:
    """Path lengths that occur: 1..T for 1 layer, 2..T+1 for 2 layers."""
    _check_layers_iterations(recurrent_layers, iterations)
    lo = recurrent_layers
    return list(range(lo, iterations + recurrent_layers))


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


# --------------------------------------------------------------------------- ablation sets

_SET_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")
_ABLATION = re.compile(r"^(rm|only|le|ge)(.+)$")


def _parse_set(text: str, name: str) -> list[int]:
    """'1,3-5' -> [1, 3, 4, 5]."""
    out: set[int] = set()
    for item in text.split(","):
        m = _SET_ITEM.match(item.strip())
        if not m:
            raise RcpbError(_syntax_message(name))
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise RcpbError(f"ablation = {name!r}: range {item!r} runs backwards; write it as {hi}-{lo}.")
        out.update(range(lo, hi + 1))
    return sorted(out)


def _syntax_message(name: str) -> str:
    return (
        f"ablation = {name!r}: unknown syntax; use rm{{set}} (remove lengths), only{{set}} "
        "(keep exactly), le{k} (keep lengths <= k) or ge{k} (keep lengths >= k), where a set is "
        "comma-separated lengths and ranges, e.g. rm3, rm2-3, rm1,3, only2,4, le3, ge4."
    )


def parse_ablation(name: str | None, recurrent_layers: int, T: int) -> list[int]:
    """Allowed path lengths (sorted) of a multi-path model with ablation ``name``.

    ``name`` is ``rm{set}`` (remove), ``only{set}`` (keep exactly), ``le{k}`` (keep <= k) or
    ``ge{k}`` (keep >= k); a set is comma-separated lengths or ranges ``a-b``
    (``rm3``, ``rm2-3``, ``rm1,3``, ``only2,4``). ``None`` or ``""`` keeps every length.
    Raises RcpbError for unknown syntax, lengths that do not exist for
    (recurrent_layers, T) and sets that would remove every path.
    """
    lengths = existing_lengths(recurrent_layers, T)
    if name is None or name == "":
        return lengths
    if not isinstance(name, str):
        raise RcpbError(_syntax_message(str(name)))
    m = _ABLATION.match(name.strip())
    if not m:
        raise RcpbError(_syntax_message(name))
    kind, rest = m.groups()
    if kind in ("le", "ge"):
        if not rest.isdigit():
            raise RcpbError(_syntax_message(name))
        given = [int(rest)]
    else:
        given = _parse_set(rest, name)
    missing = [d for d in given if d not in lengths]
    if missing:
        raise RcpbError(
            f"ablation = {name!r}: length(s) {', '.join(map(str, missing))} do not exist for "
            f"{recurrent_layers} recurrent layer(s) and {T} iterations; existing lengths are "
            f"{lengths[0]}..{lengths[-1]}."
        )
    if kind == "rm":
        allowed = [d for d in lengths if d not in given]
    elif kind == "only":
        allowed = list(given)
    elif kind == "le":
        allowed = [d for d in lengths if d <= given[0]]
    else:
        allowed = [d for d in lengths if d >= given[0]]
    if not allowed:
        raise RcpbError(
            f"ablation = {name!r} removes every path (existing lengths {lengths[0]}..{lengths[-1]}); "
            "keep at least one length."
        )
    return allowed


def ablation_sets_adjacent(n_lengths_removed: int, recurrent_layers: int, T: int) -> list[str]:
    """Names of all ablations removing ``n_lengths_removed`` adjacent lengths, shortest first.

    1 layer, T = 7 (lengths 1..7): n = 1 -> rm1..rm7 (7 sets), n = 2 -> rm1-2..rm6-7 (6),
    n = 3 -> rm1-3..rm5-7 (5). Sets that would remove every length are left out.
    """
    lengths = existing_lengths(recurrent_layers, T)
    if not isinstance(n_lengths_removed, (int, np.integer)) or n_lengths_removed < 1:
        raise RcpbError(f"number of lengths removed = {n_lengths_removed!r}: must be an integer >= 1.")
    n = int(n_lengths_removed)
    if n >= len(lengths):
        return []
    out = []
    for i in range(len(lengths) - n + 1):
        lo, hi = lengths[i], lengths[i + n - 1]
        out.append(f"rm{lo}" if n == 1 else f"rm{lo}-{hi}")
    return out


def lege_sets(T: int, recurrent_layers: int = 1) -> list[str]:
    """Names ``le{k}`` then ``ge{k}`` for every existing length k (1 layer: le1..leT, ge1..geT).

    ``le{max}`` and ``ge{min}`` keep every length (the unablated model); they are included
    so each curve runs to its end point.
    """
    lengths = existing_lengths(recurrent_layers, T)
    return [f"le{k}" for k in lengths] + [f"ge{k}" for k in lengths]
