"""Path statistics of a trained model: strengths, path-length distribution (SPEC 6, paper 4.3).

Path strength = readout weight w(t) x the product of its components' strengths (convs and BNs
of the chain; activations count 1). Readout weights of a multi-path model: its forward drops
iterations without an allowed chain and applies the readout mode to the T' kept iterations in
order (SPEC 3.3), so w(t) is ``readout_weights(mode, T')`` over the kept iterations. For 2-avg
this changes the weights of the remaining iterations (e.g. 1 layer, T = 3, ``rm1`` keeps
iterations 2, 3 with w = [3/4, 1/4]); for no-avg it never matters because the last iteration
always has every length.

Recurrent models: path statistics are defined for the cells of
:func:`rcpb.cell_kinds.has_path_statistics` (rcpb; vanilla, where every BN occurrence of a chain
is the layer's one shared BN). For the gated cells (convlstm, rgc) the output is no sum of
chains, so there are none: :func:`path_stats` gives NaN / empty statistics and the ``reason``,
:func:`path_length_distribution` raises :class:`RcpbError` with it.

No torch import: the functions that read a model only call methods of its modules and tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcpb.cell_kinds import DEFAULT_CELL, NO_PATH_STATISTICS, has_path_statistics
from rcpb.chains import Chain, enumerate_chains, readout_weights
from rcpb.errors import RcpbError


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


def _cell(model) -> str:
    """The recurrent cell of a recurrent model (absent: rcpb)."""
    cell = getattr(model, "cell", None)
    if not isinstance(cell, str):
        cell = (getattr(model, "config", None) or {}).get("cell")
    return cell or DEFAULT_CELL


def no_path_statistics_reason(model) -> str | None:
    """Why ``model`` has no path statistics (a recurrent model with a gated cell), else None."""
    if _arch(model) != "recurrent":
        return None
    cell = _cell(model)
    if has_path_statistics(cell):
        return None
    return f"cell {cell!r}: {NO_PATH_STATISTICS[cell]}"


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
    out; CPB1 and the readout are excluded. A vanilla cell's shared BN is listed under every
    iteration ("bn{m}.t{t}", the BN of layer m at iteration t).

    Recurrent models with a cell without path statistics (:func:`no_path_statistics_reason`):
    the strength of each conv of the recurrent layers, "{name}{m}" ("wx2", "w_ch3", ...; the
    gate convs' weights only), for inspection; no path uses them.
    """
    arch = _arch(model)
    out: dict[str, float] = {}
    if no_path_statistics_reason(model) is not None:
        for i, cell in enumerate(model.rcpbs):
            for name, conv in cell.named_children():
                if hasattr(conv, "weight") and getattr(conv, "kernel_size", None) is not None:
                    out[f"{name}{i + 2}"] = conv_strength(conv.weight)
        return out
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
    and BN running statistics only. A recurrent model with a gated cell has no paths:
    RcpbError with the reason.
    """
    reason = no_path_statistics_reason(model)
    if reason is not None:
        raise RcpbError(f"no path-length distribution: {reason}")
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

    A recurrent model with a cell without path statistics (convlstm, rgc): NaN average length
    and entropy, empty ``path_p`` and ``path_strength_raw``, and ``"reason"`` saying why.
    """
    reason = no_path_statistics_reason(model)
    if reason is not None:
        return {"avg_path_length": float("nan"), "path_entropy": float("nan"), "path_p": {},
                "path_strength_raw": {}, "reason": reason}
    dist = path_length_distribution(model)
    return {
        "avg_path_length": dist.avg_length,
        "path_entropy": dist.entropy,
        "path_p": {str(int(d)): float(p) for d, p in zip(dist.lengths, dist.p)},
        "path_strength_raw": {str(int(d)): float(r) for d, r in zip(dist.lengths, dist.raw)},
    }
