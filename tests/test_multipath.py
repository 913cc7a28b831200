"""Multi-path models (SPEC 3.3): chain structure, ablations and the equivalence invariant."""

import pytest
import torch
from torch import nn

from rcpb.errors import RcpbError
from rcpb.models import build, count_conv_parameters

from test_models import config, randomize_bn, scale_up

MODES = ("no-avg", "early-avg", "late-avg", "2-avg")


def occurrence_iterations(convs, end):
    """Iteration of each conv occurrence of a chain ending at ``end`` (worked out by hand).

    1 layer, ff2 lat2^(d-1): ff2 at end-d+1, the lats at the following iterations.
    2 layers, ff2 lat2^a ff3 lat3^b: ff2 at s0 = end-b-a, lat2 at s0+1..s0+a, ff3 at end-b,
    lat3 at end-b+1..end.
    """
    a = convs.count("lat2")
    b = convs.count("lat3")
    if "ff3" not in convs:
        s0 = end - a
        return [s0 + k for k in range(a + 1)]
    s0 = end - b - a
    return [s0 + k for k in range(a + 1)] + [end - b + k for k in range(b + 1)]


def test_occurrence_iterations_example():
    assert occurrence_iterations(("ff2", "lat2", "lat2"), 5) == [3, 4, 5]
    assert occurrence_iterations(("ff2", "lat2", "ff3", "lat3"), 4) == [2, 3, 3, 4]


@pytest.mark.parametrize("T", [1, 3, 5])
def test_chain_counts_one_layer(T):
    model = build(config(arch="multipath", recurrent_layers=1, iterations=T))
    assert len(model.chains) == T * (T + 1) // 2
    # the chain of length d ending at t uses d BNs: sum_t sum_{d<=t} d
    n_bns = sum(d for t in range(1, T + 1) for d in range(1, t + 1))
    assert sum(len(b) for b in model.chain_bns) == n_bns
    assert [len(b) for b in model.chain_bns] == [c.length for c in model.chains]
    assert set(model.convs) == {"ff2", "lat2"}
    assert model.iterations_kept == list(range(1, T + 1))


@pytest.mark.parametrize("T", [1, 2, 4])
def test_chain_counts_two_layers(T):
    model = build(config(arch="multipath", recurrent_layers=2, iterations=T))
    # length d = 2 + a + b in 2..t+1, d - 1 chains of length d ending at t
    by_length = {}
    for c in model.chains:
        by_length[c.length] = by_length.get(c.length, 0) + 1
    expected = {d: sum(d - 1 for t in range(1, T + 1) if d <= t + 1) for d in range(2, T + 2)}
    assert by_length == expected
    assert len(model.chains) == T * (T + 1) * (T + 2) // 6
    assert set(model.convs) == {"ff2", "lat2", "ff3", "lat3"}


def test_multipath_shares_the_recurrent_conv_weights():
    for layers in (1, 2):
        rec = build(config(recurrent_layers=layers, iterations=4, channels=8))
        mp = build(config(arch="multipath", recurrent_layers=layers, iterations=4, channels=8))
        assert count_conv_parameters(mp) == count_conv_parameters(rec)


def tie_to_recurrent(mp, rec):
    """Copy every weight of ``rec`` into the multi-path model ``mp`` (BN copies by iteration)."""
    with torch.no_grad():
        mp.bn_in.load_state_dict(rec.bn_in.state_dict())
        mp.cpb1.load_state_dict(rec.cpb1.state_dict())
        mp.readout.load_state_dict(rec.readout.state_dict())
        for name, conv in mp.convs.items():
            kind, m = name[:-1], int(name[-1])
            conv.weight.copy_(getattr(rec.rcpbs[m - 2], kind).weight)
        for chain, bns in zip(mp.chains, mp.chain_bns):
            its = occurrence_iterations(chain.convs, chain.end)
            for name, t, bn in zip(chain.convs, its, bns):
                bn.load_state_dict(rec.rcpbs[int(name[-1]) - 2].bns[t - 1].state_dict())


@pytest.mark.parametrize("layers,T", [(layers, T) for layers in (1, 2) for T in range(1, 6)])
@pytest.mark.parametrize("mode", MODES)
def test_multipath_equals_recurrent_when_linear(layers, T, mode):
    """Identity activation, zero BN shifts, BN copies tied: the sum over chains is exact."""
    cfg = dict(recurrent_layers=layers, iterations=T, readout=mode, act="identity")
    rec = build(config(**cfg)).double()
    mp = build(config(arch="multipath", model_seed=9, **cfg)).double()
    scale_up(rec)
    randomize_bn(rec, torch.Generator().manual_seed(6), zero_shift=True)
    with torch.no_grad():  # CPB1 and the readout may have shifts: they are outside the chains
        rec.cpb1.bn.bias.fill_(0.3)
        rec.readout.bias.fill_(0.1)
    tie_to_recurrent(mp, rec)
    rec.eval(), mp.eval()
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        expected = rec(x)
        got = mp(x)
        for y_mp, y_rec in zip(mp.iteration_outputs(x), rec.iteration_outputs(x)):
            torch.testing.assert_close(y_mp, y_rec, rtol=1e-10, atol=1e-12)
    assert got.shape == expected.shape
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_multipath_is_not_the_recurrent_model_with_relu():
    """With a nonlinearity the two differ (the reformulation is approximate)."""
    cfg = dict(recurrent_layers=1, iterations=3, readout="late-avg", act="relu")
    rec, mp = build(config(**cfg)), build(config(arch="multipath", **cfg))
    scale_up(rec)
    randomize_bn(rec, torch.Generator().manual_seed(6))
    tie_to_recurrent(mp, rec)
    rec.eval(), mp.eval()
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert (rec(x) - mp(x)).abs().max() > 1e-4


def test_allowed_lengths_drop_iterations():
    mp = build(config(arch="multipath", recurrent_layers=1, iterations=4, allowed_lengths=[3, 4],
                      readout="late-avg"))
    assert [c.length for c in mp.chains] == [3, 3, 4]
    assert [c.end for c in mp.chains] == [3, 4, 4]
    assert mp.iterations_kept == [3, 4]
    assert len(mp.chain_bns) == 3 and [len(b) for b in mp.chain_bns] == [3, 3, 4]
    x = torch.randn(2, 1, 15, 15)
    assert mp(x).shape == (2, 2, 3)

    mp2 = build(config(arch="multipath", recurrent_layers=2, iterations=3, allowed_lengths=[4]))
    assert mp2.iterations_kept == [3]
    assert {c.convs for c in mp2.chains} == {
        ("ff2", "lat2", "lat2", "ff3"), ("ff2", "lat2", "ff3", "lat3"), ("ff2", "ff3", "lat3", "lat3")}
    assert mp2(x).shape == (1, 2, 3)

    # removing the longest length drops nothing (t = T still has shorter chains)
    mp3 = build(config(arch="multipath", recurrent_layers=1, iterations=4, allowed_lengths=[1, 2]))
    assert mp3.iterations_kept == [1, 2, 3, 4]


@pytest.mark.parametrize("mode", MODES)
def test_readout_modes_use_kept_iterations(mode):
    mp = build(config(arch="multipath", recurrent_layers=1, iterations=4, allowed_lengths=[2, 4],
                      readout=mode, act="softplus"))
    scale_up(mp)
    randomize_bn(mp, torch.Generator().manual_seed(8))
    mp.eval()
    x = torch.randn(2, 1, 15, 15, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ys = mp.iteration_outputs(x)
        preds = mp(x)
    assert mp.iterations_kept == [2, 3, 4] and len(ys) == 3
    R = mp.readout
    expected = {
        "no-avg": R(ys[-1])[None],
        "early-avg": R(sum(ys) / 3)[None],
        "late-avg": torch.stack([R(y) for y in ys]),
        "2-avg": torch.stack([R(sum(ys[:k]) / k) for k in (1, 2, 3)]),
    }[mode]
    torch.testing.assert_close(preds, expected)


@pytest.mark.parametrize("lengths", [[5], [], [0, 1]])
def test_bad_allowed_lengths(lengths):
    with pytest.raises(RcpbError, match="allowed_lengths"):
        build(config(arch="multipath", recurrent_layers=1, iterations=4, allowed_lengths=lengths))


def test_multipath_trains():
    mp = build(config(arch="multipath", recurrent_layers=2, iterations=2))
    preds = mp(torch.randn(4, 1, 15, 15))
    preds.mean().backward()
    assert all(p.grad is not None for p in mp.convs.parameters())
    assert isinstance(mp.chain_bns[0][0], nn.BatchNorm2d)
