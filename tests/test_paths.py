"""Path enumeration, readout weights, ablation sets and path strengths (SPEC 3.3, 6, 7).

Expected numbers are worked by hand in the comments, not recomputed with rcpb's path code.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from rcpb.cli import main as cli_main
from rcpb.errors import RcpbError
from rcpb.models import build
from rcpb.ablation_sets import ablation_sets_adjacent, lege_sets, parse_ablation
from rcpb.chains import Chain, enumerate_chains, readout_weights
from rcpb.path_stats import component_strengths, path_length_distribution, path_stats

MODES = ("no-avg", "early-avg", "late-avg", "2-avg")
BN_EPS = 1e-3


def make_config(arch, **over):
    config = dict(arch=arch, channels=2, act="relu", first_block_order="bn_act",
                  input_size=12, n_neurons=3, model_seed=0, blocks=None,
                  recurrent_layers=None, iterations=None, readout=None, allowed_lengths=None)
    config.update(over)
    return config


# --------------------------------------------------------------------------- chains


def test_import_is_torch_free():
    code = "import sys, rcpb.chains, rcpb.ablation_sets, rcpb.path_stats; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("T", range(1, 8))
def test_one_layer_chains(T):
    chains = enumerate_chains(1, T)
    assert len(chains) == T * (T + 1) // 2
    assert len(set(chains)) == len(chains)
    for t in range(1, T + 1):
        ending = [c for c in chains if c.end == t]
        assert sorted(c.length for c in ending) == list(range(1, t + 1))
        for c in ending:
            assert c.convs == ("ff2",) + ("lat2",) * (c.length - 1)


@pytest.mark.parametrize("T", range(1, 8))
def test_two_layer_chain_counts(T):
    chains = enumerate_chains(2, T)
    assert len(chains) == T * (T + 1) * (T + 2) // 6
    assert len(set(chains)) == len(chains)
    for c in chains:
        a = c.convs.count("lat2")
        b = c.convs.count("lat3")
        assert c.convs == ("ff2",) + ("lat2",) * a + ("ff3",) + ("lat3",) * b
        assert a + b <= c.end - 1
        assert c.length == 2 + a + b == len(c.convs)


def test_two_layers_seven_iterations_end_at_seven():
    ending = [c for c in enumerate_chains(2, 7) if c.end == 7]
    by_length = {}
    for c in ending:
        by_length[c.length] = by_length.get(c.length, 0) + 1
    assert by_length == {d: d - 1 for d in range(2, 9)}


def test_chain_order_is_end_length_then_lat2_count():
    chains = enumerate_chains(2, 3)
    keys = [(c.end, c.length, c.convs.count("lat2")) for c in chains]
    assert keys == sorted(keys)
    assert [c.name for c in chains if c.end == 2] == [
        "t2:ff2-ff3", "t2:ff2-ff3-lat3", "t2:ff2-lat2-ff3"]
    assert enumerate_chains(2, 3) == chains  # deterministic


def test_chain_iterations():
    # 1 layer, ends at 3, length 2: ff2 at iteration 2, lat2 at 3
    assert Chain(3, ("ff2", "lat2")).iterations() == (2, 3)
    # ff2 lat2 ff3 lat3 ending at 4 (a = b = 1): ff2 at 4-1-1 = 2, lat2 at 3, ff3 at 3, lat3 at 4
    assert Chain(4, ("ff2", "lat2", "ff3", "lat3")).iterations() == (2, 3, 3, 4)
    assert Chain(2, ("ff2", "ff3")).iterations() == (2, 2)


def test_chain_fields():
    c = Chain(5, ["ff2", "lat2"])
    assert c.end == 5 and c.convs == ("ff2", "lat2") and c.length == 2
    with pytest.raises(Exception):
        c.end = 3  # frozen


# --------------------------------------------------------------------------- readout weights


def test_readout_weights_by_hand():
    np.testing.assert_allclose(readout_weights("no-avg", 4), [0, 0, 0, 1])
    np.testing.assert_allclose(readout_weights("early-avg", 4), [0.25] * 4)
    np.testing.assert_allclose(readout_weights("late-avg", 2), [0.5, 0.5])
    np.testing.assert_allclose(readout_weights("2-avg", 3),
                               [(1 + 1 / 2 + 1 / 3) / 3, (1 / 2 + 1 / 3) / 3, (1 / 3) / 3])
    np.testing.assert_allclose(readout_weights("2-avg", 1), [1.0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("T", range(1, 11))
def test_readout_weights_sum_to_one(mode, T):
    w = readout_weights(mode, T)
    assert w.shape == (T,)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w >= 0)


def test_readout_weights_errors():
    with pytest.raises(RcpbError, match="unknown readout mode"):
        readout_weights("mean", 3)
    with pytest.raises(RcpbError, match=">= 1"):
        readout_weights("2-avg", 0)


# --------------------------------------------------------------------------- ablation sets


@pytest.mark.parametrize("name, expected", [
    ("rm3", [1, 2, 4, 5, 6, 7]),
    ("rm2-3", [1, 4, 5, 6, 7]),
    ("rm1,3", [2, 4, 5, 6, 7]),
    ("rm1,5-7", [2, 3, 4]),
    ("le3", [1, 2, 3]),
    ("ge4", [4, 5, 6, 7]),
    ("only2,4", [2, 4]),
    ("only7", [7]),
    (None, [1, 2, 3, 4, 5, 6, 7]),
])
def test_parse_ablation_one_layer(name, expected):
    assert parse_ablation(name, 1, 7) == expected


def test_parse_ablation_two_layers():
    assert parse_ablation("rm2", 2, 7) == [3, 4, 5, 6, 7, 8]
    assert parse_ablation("le3", 2, 3) == [2, 3]
    with pytest.raises(RcpbError, match="existing lengths are 2..8"):
        parse_ablation("rm1", 2, 7)


@pytest.mark.parametrize("name, message", [
    ("rm8", "existing lengths are 1..7"),
    ("only0,2", "existing lengths are 1..7"),
    ("ge9", "existing lengths are 1..7"),
    ("rm1-7", "removes every path"),
    ("only", "unknown syntax"),
    ("drop3", "unknown syntax"),
    ("rm3-", "unknown syntax"),
    ("le2,3", "unknown syntax"),
    ("rm3-2", "backwards"),
])
def test_parse_ablation_errors(name, message):
    with pytest.raises(RcpbError, match=message):
        parse_ablation(name, 1, 7)


def test_adjacent_sets_paper_counts():
    one, two, three = (ablation_sets_adjacent(n, 1, 7) for n in (1, 2, 3))
    assert one == [f"rm{d}" for d in range(1, 8)]
    assert two == ["rm1-2", "rm2-3", "rm3-4", "rm4-5", "rm5-6", "rm6-7"]
    assert three == ["rm1-3", "rm2-4", "rm3-5", "rm4-6", "rm5-7"]
    for name in one + two + three:  # every name parses and removes what it says
        assert len(parse_ablation(name, 1, 7)) == 7 - (1 if name in one else 2 if name in two else 3)
    assert ablation_sets_adjacent(2, 2, 7)[0] == "rm2-3"
    assert ablation_sets_adjacent(3, 1, 3) == []  # would remove every length


def test_lege_sets():
    assert lege_sets(3) == ["le1", "le2", "le3", "ge1", "ge2", "ge3"]
    assert lege_sets(2, recurrent_layers=2) == ["le2", "le3", "ge2", "ge3"]
    assert [parse_ablation(n, 1, 3) for n in lege_sets(3)] == [
        [1], [1, 2], [1, 2, 3], [1, 2, 3], [2, 3], [3]]


# --------------------------------------------------------------------------- strengths by hand


def set_bn(bn, gamma, shift=0.7):
    """BN with strength mean(|gamma| / 2): running_var + eps = 4. Shift and mean do not count."""
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma, dtype=torch.float32))
        bn.running_var.fill_(4.0 - BN_EPS)
        bn.bias.fill_(shift)
        bn.running_mean.fill_(-1.3)


def set_conv(conv, per_out_channel):
    """Zero kernel with given {out_channel: [(index, value), ...]} entries."""
    with torch.no_grad():
        conv.weight.zero_()
        for o, entries in per_out_channel.items():
            for idx, v in entries:
                conv.weight[(o,) + idx] = v


# strength 2: out channel norms 3 and |-1|
FF_2 = {0: [((0, 0, 0), 3.0)], 1: [((1, 1, 1), -1.0)]}
# strength 0.5: out channel norms sqrt(0.3^2 + 0.4^2) = 0.5 and 0.5
LAT_05 = {0: [((0, 0, 0), 0.3), ((1, 2, 2), -0.4)], 1: [((0, 1, 2), 0.5)]}
# strength 1: norms 1 and 1
CONV_1 = {0: [((0, 1, 1), 1.0)], 1: [((1, 1, 1), -0.6), ((0, 0, 0), 0.8)]}
# strength 3: norms 3 and 3
CONV_3 = {0: [((0, 1, 1), 3.0)], 1: [((1, 0, 1), -3.0)]}
# BN gammas -> strengths (|gamma| / 2 averaged over the 2 channels)
BN_1 = [2.0, -2.0]
BN_2 = [2.0, 6.0]
BN_05 = [0.5, -1.5]


def one_layer_T3(mode):
    """F = 2, L = 0.5, BN[2,t] strengths b1 = 1, b2 = 2, b3 = 0.5.

    Chain (end t, length d) strength = F b_{t-d+1} prod_{s=t-d+2..t} L b_s:
    (1,1) 2; (2,1) 4; (2,2) 2*1*0.5*2 = 2; (3,1) 1; (3,2) 2*2*0.5*0.5 = 1; (3,3) 2*1*1*0.25 = 0.5.
    """
    model = build(make_config("recurrent", recurrent_layers=1, iterations=3, readout=mode))
    block = model.rcpbs[0]
    set_conv(block.ff, FF_2)
    set_conv(block.lat, LAT_05)
    for bn, gamma in zip(block.bns, (BN_1, BN_2, BN_05)):
        set_bn(bn, gamma)
    return model


# raw strengths per length, by hand from the chain strengths above
ONE_LAYER_T3 = {
    # w = [0, 0, 1]: d1 = 1, d2 = 1, d3 = 0.5; total 2.5
    "no-avg": ({1: 1.0, 2: 1.0, 3: 0.5}, [0.4, 0.4, 0.2], 1.8),
    # w = 1/3: d1 = 7/3, d2 = 1, d3 = 1/6; total 3.5; p = 2/3, 2/7, 1/21; avg 29/21
    "early-avg": ({1: 7 / 3, 2: 1.0, 3: 1 / 6}, [2 / 3, 2 / 7, 1 / 21], 29 / 21),
    "late-avg": ({1: 7 / 3, 2: 1.0, 3: 1 / 6}, [2 / 3, 2 / 7, 1 / 21], 29 / 21),
    # w = [11/18, 5/18, 2/18]: d1 = 44/18, d2 = 12/18, d3 = 1/18; p = 44/57, 12/57, 1/57
    "2-avg": ({1: 44 / 18, 2: 12 / 18, 3: 1 / 18}, [44 / 57, 12 / 57, 1 / 57], 71 / 57),
}


def test_component_strengths_by_hand():
    s = component_strengths(one_layer_T3("no-avg"))
    assert s["ff2"] == pytest.approx(2.0)
    assert s["lat2"] == pytest.approx(0.5)
    assert [s[f"bn2.t{t}"] for t in (1, 2, 3)] == pytest.approx([1.0, 2.0, 0.5])
    assert not any("cpb1" in k or "readout" in k for k in s)


@pytest.mark.parametrize("mode", MODES)
def test_one_layer_distribution_by_hand(mode):
    raw, p, avg = ONE_LAYER_T3[mode]
    dist = path_length_distribution(one_layer_T3(mode))
    assert list(dist.lengths) == [1, 2, 3]
    np.testing.assert_allclose(dist.raw, [raw[1], raw[2], raw[3]], rtol=1e-6)
    np.testing.assert_allclose(dist.p, p, rtol=1e-6)
    assert dist.avg_length == pytest.approx(avg, rel=1e-6)
    assert dist.entropy == pytest.approx(-sum(q * math.log(q) for q in p), rel=1e-6)


def two_layer_T2(mode):
    """F2 = 2, L2 = 0.5, F3 = 1, L3 = 3; BN[2,t] = (1, 2), BN[3,t] = (0.5, 1).

    Chains: t1 ff2-ff3: F2 b2[1] F3 b3[1] = 1;  t2 ff2-ff3: F2 b2[2] F3 b3[2] = 4;
    t2 ff2-ff3-lat3 (iterations 1, 1, 2): 2*1 * 1*0.5 * 3*1 = 3;
    t2 ff2-lat2-ff3 (iterations 1, 2, 2): 2*1 * 0.5*2 * 1*1 = 2.
    """
    model = build(make_config("recurrent", recurrent_layers=2, iterations=2, readout=mode))
    b2, b3 = model.rcpbs
    set_conv(b2.ff, FF_2)
    set_conv(b2.lat, LAT_05)
    set_conv(b3.ff, CONV_1)
    set_conv(b3.lat, CONV_3)
    for bn, gamma in zip(b2.bns, (BN_1, BN_2)):
        set_bn(bn, gamma)
    for bn, gamma in zip(b3.bns, (BN_05, BN_1)):
        set_bn(bn, gamma)
    return model


TWO_LAYER_T2 = {
    "no-avg": ({2: 4.0, 3: 5.0}, [4 / 9, 5 / 9], 23 / 9),            # w = [0, 1]
    "early-avg": ({2: 2.5, 3: 2.5}, [0.5, 0.5], 2.5),                # w = [1/2, 1/2]
    "late-avg": ({2: 2.5, 3: 2.5}, [0.5, 0.5], 2.5),
    "2-avg": ({2: 7 / 4, 3: 5 / 4}, [7 / 12, 5 / 12], 29 / 12),      # w = [3/4, 1/4]
}


@pytest.mark.parametrize("mode", MODES)
def test_two_layer_distribution_by_hand(mode):
    raw, p, avg = TWO_LAYER_T2[mode]
    stats = path_stats(two_layer_T2(mode))
    assert stats["path_strength_raw"] == pytest.approx({"2": raw[2], "3": raw[3]}, rel=1e-6)
    assert stats["path_p"] == pytest.approx({"2": p[0], "3": p[1]}, rel=1e-6)
    assert stats["avg_path_length"] == pytest.approx(avg, rel=1e-6)
    assert stats["path_entropy"] == pytest.approx(-sum(q * math.log(q) for q in p), rel=1e-6)
    json.dumps(stats)


@pytest.mark.parametrize("blocks, length", [(3, 2), (5, 4)])
def test_feedforward_is_one_path(blocks, length):
    model = build(make_config("ff", blocks=blocks))
    for block in model.blocks:
        set_conv(block.conv, FF_2)
        set_bn(block.bn, BN_05)
    stats = path_stats(model)
    assert stats["path_p"] == {str(length): 1.0}
    assert stats["avg_path_length"] == length
    assert stats["path_entropy"] == 0.0
    # every block after CPB1: conv 2 x BN 0.5 = 1 (CPB1 and the readout are excluded)
    assert stats["path_strength_raw"][str(length)] == pytest.approx(1.0)


def test_iterations_one_is_a_single_path():
    config = make_config("recurrent", recurrent_layers=1, iterations=1, readout="2-avg")
    stats = path_stats(build(config))
    assert stats["path_p"] == {"1": 1.0} and stats["avg_path_length"] == 1.0
    assert stats["path_entropy"] == 0.0


# --------------------------------------------------------------------------- twins


def randomise(model, seed):
    """Random conv weights and BN gamma / running_var (positive), reproducibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * 0.3)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g))
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.2)


def tie_multipath_to_recurrent(multi, rec):
    """Copy the recurrent convs into the multi-path model and each chain's BN copies from
    BN[m, iteration of that occurrence] (iterations worked out here, independently)."""
    blocks = {m: rec.rcpbs[m - 2] for m in range(2, len(rec.rcpbs) + 2)}
    with torch.no_grad():
        for name, conv in multi.convs.items():
            kind, m = re.fullmatch(r"(ff|lat)(\d+)", name).groups()
            m = int(m)
            conv.weight.copy_(getattr(blocks[m], kind).weight)
        for chain, bns in zip(multi.chains, multi.chain_bns):
            # walk backwards from the end: a lateral conv came one iteration later
            its = [chain.end]
            for k in range(len(chain.convs) - 1, 0, -1):
                its.insert(0, its[0] - (1 if chain.convs[k].startswith("lat") else 0))
            for conv, it, bn in zip(chain.convs, its, bns):
                bn.load_state_dict(blocks[int(conv[-1])].bns[it - 1].state_dict())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers, T", [(1, 4), (2, 3)])
def test_recurrent_and_multipath_twins_agree(mode, layers, T):
    rec = build(make_config("recurrent", recurrent_layers=layers, iterations=T, readout=mode))
    randomise(rec, seed=layers * 10 + T)
    multi = build(make_config("multipath", recurrent_layers=layers, iterations=T, readout=mode))
    tie_multipath_to_recurrent(multi, rec)
    a, b = path_stats(rec), path_stats(multi)
    assert a["path_p"].keys() == b["path_p"].keys()
    assert b["path_strength_raw"] == pytest.approx(a["path_strength_raw"], rel=1e-9)
    assert b["avg_path_length"] == pytest.approx(a["avg_path_length"], rel=1e-9)
    assert b["path_entropy"] == pytest.approx(a["path_entropy"], rel=1e-9)


def ablated_copy(full, allowed):
    """Multi-path model keeping ``allowed`` lengths, with the full model's convs and the BN
    copies of the chains it keeps (matched by chain identity)."""
    config = dict(full.config, allowed_lengths=allowed)
    ablated = build(config)
    with torch.no_grad():
        for name, conv in ablated.convs.items():
            conv.weight.copy_(full.convs[name].weight)
    source = {c: bns for c, bns in zip(full.chains, full.chain_bns)}
    for chain, bns in zip(ablated.chains, ablated.chain_bns):
        bns.load_state_dict(source[chain].state_dict())
    return ablated


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers, T, removed", [(1, 3, 2), (1, 4, 4), (2, 3, 3)])
def test_ablation_changes_only_the_removed_length(mode, layers, T, removed):
    full = build(make_config("multipath", recurrent_layers=layers, iterations=T, readout=mode))
    randomise(full, seed=7)
    allowed = parse_ablation(f"rm{removed}", layers, T)
    ablated = ablated_copy(full, allowed)
    raw_full = path_stats(full)["path_strength_raw"]
    raw_ablated = path_stats(ablated)["path_strength_raw"]
    expected = {d: v for d, v in raw_full.items() if d != str(removed)}
    assert raw_ablated == pytest.approx(expected, rel=1e-9)


def test_dropped_iteration_reweights_over_kept_iterations():
    """rm1 with 1 layer, T = 3 drops iteration 1 (its only chain has length 1); the 2-avg readout
    then runs over the kept iterations 2, 3 as over T' = 2: w = [3/4, 1/4] (model forward)."""
    model = build(make_config("multipath", recurrent_layers=1, iterations=3, readout="2-avg",
                              allowed_lengths=[2, 3]))
    assert [c.name for c in model.chains] == ["t2:ff2-lat2", "t3:ff2-lat2", "t3:ff2-lat2-lat2"]
    set_conv(model.convs["ff2"], FF_2)      # 2
    set_conv(model.convs["lat2"], LAT_05)   # 0.5
    gammas = {0: (BN_1, BN_2), 1: (BN_2, BN_05), 2: (BN_1, BN_1, BN_2)}
    for i, bns in enumerate(model.chain_bns):
        for bn, gamma in zip(bns, gammas[i]):
            set_bn(bn, gamma)
    # t2 d2: 2*1 * 0.5*2 = 2;  t3 d2: 2*2 * 0.5*0.5 = 1;  t3 d3: 2*1 * 0.5*1 * 0.5*2 = 1
    raw = path_stats(model)["path_strength_raw"]
    assert raw == pytest.approx({"2": 3 / 4 * 2 + 1 / 4 * 1, "3": 1 / 4 * 1})


# --------------------------------------------------------------------------- command


def test_paths_command_writes_paths_json(tmp_path):
    model = two_layer_T2("2-avg")
    (tmp_path / "config.json").write_text(json.dumps(model.config))
    torch.save(model.state_dict(), tmp_path / "best.pt")
    assert cli_main(["paths", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "paths.json").read_text())
    assert written["path_p"] == pytest.approx({"2": 7 / 12, "3": 5 / 12}, rel=1e-6)
    assert written["avg_path_length"] == pytest.approx(29 / 12, rel=1e-6)
    assert not list(tmp_path.glob("*.tmp*"))


def test_paths_command_errors(tmp_path, capsys):
    assert cli_main(["paths", str(tmp_path / "missing")]) == 2
    assert cli_main(["paths", str(tmp_path)]) == 2
    assert "config.json: not found" in capsys.readouterr().err
    model = build(make_config("recurrent", recurrent_layers=1, iterations=2, readout="no-avg"))
    (tmp_path / "config.json").write_text(json.dumps(model.config))
    assert cli_main(["paths", str(tmp_path)]) == 2
    assert "best.pt: not found" in capsys.readouterr().err
    other = build(make_config("recurrent", recurrent_layers=1, iterations=3, readout="no-avg"))
    torch.save(other.state_dict(), tmp_path / "best.pt")
    assert cli_main(["paths", str(tmp_path)]) == 2
    assert "does not match" in capsys.readouterr().err
