"""Paths through recurrent blocks: chains, readout weights, ablation sets, strengths.

A recurrent block unrolled over T iterations is (approximately) a sum of
feed-forward *chains* of its convolutions (SPEC 3.3, paper 4.2 and fig. 4).
This module enumerates those chains, gives the weight the readout mode puts on
each iteration (SPEC 6), parses the names of path ablations (SPEC 7) and turns
a trained model's weights into a path-length distribution (SPEC 6, paper 4.3).

Length always counts the recurrent block's Conv(3) layers only; CPB1's Conv(9)
is not counted. Conv names are ``ff{m}`` and ``lat{m}`` for recurrent layer
``m`` (m = 2 for the first recurrent layer, 3 for the second).

Readout weights of a multi-path model: its forward drops iterations without an
allowed chain and applies the readout mode to the T' kept iterations in order
(SPEC 3.3), so w(t) is ``readout_weights(mode, T')`` over the kept iterations.
For 2-avg this changes the weights of the remaining iterations (e.g. 1 layer,
T = 3, ``rm1`` keeps iterations 2, 3 with w = [3/4, 1/4]); for no-avg it never
matters because the last iteration always has every length.

The module imports no torch (the Snakefile's grid expansion imports it); the
functions that read a model only call methods of its modules and tensors.
"""

from __future__ import annotations

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


# --------------------------------------------------------------------------- strengths of a model


@dataclass(frozen=True)
class PathDistribution:
    """Path-length distribution of a model (SPEC 6, paper fig. 5).

    lengths:    int [L], the path lengths that occur, ascending (after ablation).
    p:          float [L], normalised path strength of each length (sums to 1).
    avg_length: sum_d d * p_d, in convs (the effective depth).
    entropy:    -sum_d p_d ln p_d, in nats (0 for a single length).
    raw:        float [L], unnormalised strength of each length: sum over the paths of that
                length of w(t) x product of the path's component strengths.
    """

    lengths: np.ndarray
    p: np.ndarray
    avg_length: float
    entropy: float
    raw: np.ndarray


def conv_strength(weight) -> float:
    """Strength of a conv: mean over output channels of the L2 norm of that channel's kernel.

    weight: tensor or array [out_channels, in_channels, k, k] (dimensionless gain).
    """
    w = np.asarray(weight.detach().cpu().numpy() if hasattr(weight, "detach") else weight,
                   dtype=np.float64)
    return float(np.linalg.norm(w.reshape(w.shape[0], -1), axis=1).mean())


def bn_strength(bn) -> float:
    """Strength of a BatchNorm2d: mean over channels of |gamma / sqrt(running_var + eps)|.

    Uses the running (evaluation-time) variance; gamma = 1 for a BN without affine weights.
    """
    if bn.running_var is None:
        raise RcpbError("path strengths need BatchNorm layers that track running statistics.")
    var = bn.running_var.detach().cpu().double().numpy()
    gamma = (bn.weight.detach().cpu().double().numpy() if bn.weight is not None
             else np.ones_like(var))
    return float(np.abs(gamma / np.sqrt(var + bn.eps)).mean())


def _arch(model) -> str:
    config = getattr(model, "config", None) or {}
    arch = config.get("arch")
    if arch in ("ff", "recurrent", "multipath"):
        return arch
    if hasattr(model, "rcpbs"):
        return "recurrent"
    if hasattr(model, "chains") and hasattr(model, "chain_bns"):
        return "multipath"
    if hasattr(model, "blocks"):
        return "ff"
    raise RcpbError(
        f"cannot analyse paths of a {type(model).__name__}: expected a model built by "
        "rcpb.models.build with config arch 'ff', 'recurrent' or 'multipath'."
    )


def _ff_blocks(model) -> list[tuple[int, object]]:
    """(block number, CPB) for the FF model's Conv(3) blocks after CPB1 (CPB1 = block 1)."""
    blocks = list(model.blocks)
    first = getattr(model, "first_conv", None)
    if first is not None and blocks and blocks[0].conv is first:
        return [(i + 1, b) for i, b in enumerate(blocks)][1:]
    return [(i + 2, b) for i, b in enumerate(blocks)]


def _multipath_chains(model) -> list[tuple[Chain, object]]:
    """(chain, its ModuleList of BN copies) for the chains present in a multi-path model."""
    chains = list(model.chains)
    if len(chains) != len(model.chain_bns):
        raise RcpbError(
            f"multi-path model has {len(chains)} chains but {len(model.chain_bns)} BN lists; "
            "chain_bns must be parallel to chains."
        )
    allowed = (getattr(model, "config", None) or {}).get("allowed_lengths")
    out = []
    for chain, bns in zip(chains, model.chain_bns):
        if allowed is not None and chain.length not in allowed:
            continue
        out.append((chain, bns))
    return out


def component_strengths(model) -> dict[str, float]:
    """Strength of every component that lies on a path, keyed by a readable name.

    Convs: "ff2", "lat2" (and "ff3", "lat3" with two recurrent layers) for recurrent and
    multi-path models; "conv{j}" for block j >= 2 of an FF model.
    BNs: recurrent "bn{m}.t{t}" (BN[m,t]); multi-path "{chain.name}/bn{k}" (the copy after
    the chain's k-th conv, k 1-based); FF "bn{j}". Activations have strength 1 and are left
    out; CPB1 and the readout are excluded.
    """
    arch = _arch(model)
    out: dict[str, float] = {}
    if arch == "ff":
        for j, block in _ff_blocks(model):
            out[f"conv{j}"] = conv_strength(block.conv.weight)
            out[f"bn{j}"] = bn_strength(block.bn)
    elif arch == "recurrent":
        for i, block in enumerate(model.rcpbs):
            m = i + 2
            out[f"ff{m}"] = conv_strength(block.ff.weight)
            if getattr(block, "lat", None) is not None:
                out[f"lat{m}"] = conv_strength(block.lat.weight)
            for t, bn in enumerate(block.bns, start=1):
                out[f"bn{m}.t{t}"] = bn_strength(bn)
    else:
        for name, conv in model.convs.items():
            out[name] = conv_strength(conv.weight)
        for chain, bns in _multipath_chains(model):
            if len(bns) != chain.length:
                raise RcpbError(
                    f"multi-path chain {chain.name} has {len(bns)} BN copies, expected "
                    f"{chain.length} (one per conv)."
                )
            for k, bn in enumerate(bns, start=1):
                out[f"{chain.name}/bn{k}"] = bn_strength(bn)
    return out


def _layer_of(conv: str) -> int:
    """Layer index m of a conv name: "ff2" -> 2, "lat3" -> 3."""
    return int(conv.removeprefix("ff").removeprefix("lat"))


def chain_components(arch: str, chain: Chain) -> list[str]:
    """Names (keys of :func:`component_strengths`) of the convs and BNs along ``chain``, in order.

    Recurrent: each conv is followed by BN[m, s] of its layer m and its iteration s
    (:meth:`Chain.iterations`). Multi-path: each conv is followed by the chain's own copy.
    """
    names = []
    for k, (conv, s) in enumerate(zip(chain.convs, chain.iterations()), start=1):
        names.append(conv)
        if arch == "recurrent":
            names.append(f"bn{_layer_of(conv)}.t{s}")
        else:
            names.append(f"{chain.name}/bn{k}")
    return names


def _weighted_paths(model) -> list[tuple[int, float, float]]:
    """(length, readout weight w(t), product of component strengths) for every path."""
    arch = _arch(model)
    strengths = component_strengths(model)
    if arch == "ff":
        prod = float(np.prod([strengths[k] for k in strengths]))
        return [(len(_ff_blocks(model)), 1.0, prod)]
    mode = model.config["readout"]
    if arch == "recurrent":
        layers, T = len(model.rcpbs), len(model.rcpbs[0].bns)
        chains = enumerate_chains(layers, T)
        weight = dict(zip(range(1, T + 1), readout_weights(mode, T)))
    else:
        chains = [c for c, _ in _multipath_chains(model)]
        # iterations without an allowed chain are dropped by the model's forward; the
        # readout mode then runs over the kept iterations in order (T' of them)
        kept = sorted({c.end for c in chains})
        weight = dict(zip(kept, readout_weights(mode, len(kept))))
    out = []
    for chain in chains:
        prod = float(np.prod([strengths[k] for k in chain_components(arch, chain)]))
        out.append((chain.length, float(weight[chain.end]), prod))
    return out


def path_length_distribution(model) -> PathDistribution:
    """Path-length distribution of a trained FF, recurrent or multi-path model (SPEC 6).

    Path strength = w(t) x product of its components' strengths (:func:`component_strengths`),
    w from :func:`readout_weights` (for a multi-path model, over its kept iterations).
    Strengths are summed per length and normalised to sum 1. An FF model is one path whose
    length is its number of Conv(3) blocks after CPB1. No data needed; the model's weights
    and BN running statistics only.
    """
    paths = _weighted_paths(model)
    lengths = np.array(sorted({d for d, _, _ in paths}), dtype=int)
    raw = np.zeros(len(lengths))
    index = {int(d): i for i, d in enumerate(lengths)}
    for d, w, s in paths:
        raw[index[d]] += w * s
    total = raw.sum()
    if not np.isfinite(total) or total <= 0:
        p = np.full(len(lengths), np.nan)
        return PathDistribution(lengths, p, float("nan"), float("nan"), raw)
    p = raw / total
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    return PathDistribution(lengths, p, float((lengths * p).sum()), entropy, raw)


def path_stats(model) -> dict:
    """JSON-ready path statistics of a model (what ``paths.json`` holds).

    {"avg_path_length": float (convs), "path_entropy": float (nats),
     "path_p": {"d": p_d}, "path_strength_raw": {"d": unnormalised strength of length d}}
    """
    dist = path_length_distribution(model)
    return {
        "avg_path_length": dist.avg_length,
        "path_entropy": dist.entropy,
        "path_p": {str(int(d)): float(p) for d, p in zip(dist.lengths, dist.p)},
        "path_strength_raw": {str(int(d)): float(r) for d, r in zip(dist.lengths, dist.raw)},
    }
