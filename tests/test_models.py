"""Feed-forward and recurrent models (SPEC 3.1-3.2) against hand-worked expectations."""

import math

import pytest
import torch
from torch import nn

from rcpb.errors import RcpbError
from rcpb.models import build, count_conv_parameters, count_parameters
from rcpb.models.readout import pooled_size

MODES = ("no-avg", "early-avg", "late-avg", "2-avg")


def config(**kw):
    base = dict(arch="recurrent", channels=4, act="relu", first_block_order="bn_act",
                input_size=15, n_neurons=3, model_seed=0, blocks=None, recurrent_layers=1,
                iterations=3, readout="2-avg", allowed_lengths=None)
    base.update(kw)
    return base


def randomize_bn(model, gen, zero_shift=False):
    """Give every BatchNorm random (positive) scales and running statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                if zero_shift:
                    m.bias.zero_()
                    m.running_mean.zero_()
                else:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))


def scale_up(model, factor=30.0):
    """Conv and readout weights of N(0, 0.01) give tiny signals; enlarge them for the tests."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(factor)
        model.readout.ws.mul_(factor)
        model.readout.wf.mul_(factor)


# ---------------------------------------------------------------- size matching


@pytest.mark.parametrize("channels", [8, 16, 32])
def test_size_matched_pairs_have_equal_conv_weights(channels):
    c = channels
    # CPB1: 9x9 kernel, 1 -> c; every Conv(3) c -> c; no conv biases
    ff3_expected = 81 * c + 2 * 9 * c * c
    ff5_expected = 81 * c + 4 * 9 * c * c
    common = dict(channels=c, input_size=37, n_neurons=34)
    ff3 = build(config(arch="ff", blocks=3, **common))
    rec1 = build(config(recurrent_layers=1, iterations=7, **common))
    ff5 = build(config(arch="ff", blocks=5, **common))
    rec2 = build(config(recurrent_layers=2, iterations=7, **common))
    assert count_conv_parameters(ff3) == count_conv_parameters(rec1) == ff3_expected
    assert count_conv_parameters(ff5) == count_conv_parameters(rec2) == ff5_expected
    # all parameters: + BN_in (2) + BN gamma/beta (2c per BN) + readout (10x10 + c + 1 per neuron)
    readout = 34 * (100 + c + 1)
    assert count_parameters(ff3) == ff3_expected + 2 + 3 * 2 * c + readout
    assert count_parameters(rec1) == ff3_expected + 2 + (1 + 7) * 2 * c + readout
    assert count_parameters(rec2) == ff5_expected + 2 + (1 + 14) * 2 * c + readout


def test_module_names_and_shapes():
    ff = build(config(arch="ff", blocks=5, channels=6, input_size=37, n_neurons=5))
    assert len(ff.blocks) == 4
    assert ff.first_conv is ff.cpb1.conv and ff.first_conv.kernel_size == (9, 9)
    assert ff.first_conv.padding == (0, 0)
    assert ff.readout.ws.shape == (5, 10, 10) and ff.readout.wf.shape == (5, 6)
    assert ff.readout.bias.shape == (5,)
    rec = build(config(recurrent_layers=2, iterations=4))
    assert len(rec.rcpbs) == 2
    for block in rec.rcpbs:
        assert len(block.bns) == 4
        for conv in (block.ff, block.lat):
            assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.bias is None
    for bn in rec.modules():
        if isinstance(bn, nn.BatchNorm2d):
            assert bn.eps == 1e-3 and bn.momentum == 0.1


@pytest.mark.parametrize("mode,n_out", [("no-avg", 1), ("early-avg", 1), ("late-avg", 4), ("2-avg", 4)])
def test_output_shape(mode, n_out):
    model = build(config(iterations=4, readout=mode))
    assert model(torch.randn(2, 1, 15, 15)).shape == (n_out, 2, 3)
    ff = build(config(arch="ff", blocks=3))
    assert ff(torch.randn(2, 1, 15, 15)).shape == (1, 2, 3)


# ---------------------------------------------------------------- T = 1 is feed-forward


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("order", ["bn_act", "act_bn"])
def test_one_iteration_equals_feedforward(layers, order):
    gen = torch.Generator().manual_seed(1)
    rec = build(config(recurrent_layers=layers, iterations=1, first_block_order=order,
                       readout="late-avg", act="softplus"))
    ff = build(config(arch="ff", blocks=1 + layers, first_block_order=order, act="softplus",
                      model_seed=5))
    scale_up(rec)
    randomize_bn(rec, gen)
    with torch.no_grad():
        ff.bn_in.load_state_dict(rec.bn_in.state_dict())
        ff.cpb1.load_state_dict(rec.cpb1.state_dict())
        for block, rcpb in zip(ff.blocks, rec.rcpbs):
            block.conv.weight.copy_(rcpb.ff.weight)
            block.bn.load_state_dict(rcpb.bns[0].state_dict())
        ff.readout.load_state_dict(rec.readout.state_dict())
    x = torch.randn(3, 1, 15, 15, generator=gen)
    rec.eval(), ff.eval()
    expected = ff(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(rec(x), expected)
    rec.train(), ff.train()
    torch.testing.assert_close(rec(x), ff(x))


# ---------------------------------------------------------------- readout


def hand_pool(h):
    """AvgPool(3, stride 3, ceil_mode): mean over each window [3i, min(3i+3, H)) x [3j, ...)."""
    H, W = h.shape[-2:]
    rows, cols = math.ceil((H - 3) / 3) + 1, math.ceil((W - 3) / 3) + 1
    out = torch.empty(*h.shape[:2], rows, cols, dtype=h.dtype)
    for i in range(rows):
        for j in range(cols):
            out[:, :, i, j] = h[:, :, 3 * i:min(3 * i + 3, H), 3 * j:min(3 * j + 3, W)].mean((-1, -2))
    return out


def hand_readout(model, h):
    """R(h) = Act(sum_{c,x,y} ws[n,x,y] wf[n,c] P[c,x,y] + b_n) -> [B, N]."""
    r = model.readout
    p = hand_pool(h)
    z = torch.einsum("bcxy,nxy,nc->bn", p, r.ws, r.wf) + r.bias
    return {"relu": torch.relu, "softplus": nn.functional.softplus}[model.act](z)


def test_pooled_size_and_partial_windows():
    assert pooled_size(29) == 10 and pooled_size(7) == 3 and pooled_size(3) == 1
    model = build(config(channels=1, n_neurons=1))
    h = torch.arange(16.0).reshape(1, 1, 4, 4)
    # value 4*row + col; windows rows/cols {0,1,2} and {3} (partial, divided by its own size)
    expected = torch.tensor([[[[5.0, 7.0], [13.0, 15.0]]]])
    torch.testing.assert_close(model.readout.pool(h), expected)


@pytest.mark.parametrize("act", ["relu", "softplus"])
@pytest.mark.parametrize("layers", [1, 2])
def test_readout_modes_match_equations(act, layers):
    T = 4
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 1, 15, 15, generator=gen)
    preds = {}
    for mode in MODES:
        model = build(config(recurrent_layers=layers, iterations=T, readout=mode, act=act))
        scale_up(model)
        randomize_bn(model, torch.Generator().manual_seed(3))
        with torch.no_grad():
            model.readout.bias.copy_(torch.tensor([0.2, -0.1, 0.05]))
        model.eval()
        with torch.no_grad():
            hs = model.iteration_outputs(x)
            preds[mode] = model(x)
    assert len(hs) == T
    R = lambda h: hand_readout(model, h)  # noqa: E731 (same weights for every mode: same seed)
    hbar = [sum(hs[:t]) / t for t in range(1, T + 1)]
    torch.testing.assert_close(preds["no-avg"][0], R(hs[-1]))                       # eq. 2a
    torch.testing.assert_close(preds["early-avg"][0], R(sum(hs) / T))               # eq. 2b
    torch.testing.assert_close(preds["late-avg"], torch.stack([R(h) for h in hs]))  # eq. 2c
    torch.testing.assert_close(preds["2-avg"], torch.stack([R(h) for h in hbar]))   # eq. 2d, 2e
    # the iterations really differ, so the modes are distinguishable
    assert (hs[0] - hs[-1]).abs().max() > 1e-3
    assert (preds["no-avg"][0] - preds["early-avg"][0]).abs().max() > 1e-5


def test_recurrence_by_hand():
    """y[2,t] = Act(BN[2,t](Wff*y1 + Wlat*y[2,t-1])) for one layer and T = 3, written out."""
    model = build(config(iterations=3, act="softplus"))
    scale_up(model)
    randomize_bn(model, torch.Generator().manual_seed(4))
    model.eval()
    x = torch.randn(2, 1, 15, 15, generator=torch.Generator().manual_seed(5))
    block = model.rcpbs[0]
    sp = nn.functional.softplus
    with torch.no_grad():
        y1 = model.cpb1(model.bn_in(x))
        y21 = sp(block.bns[0](block.ff(y1)))
        y22 = sp(block.bns[1](block.ff(y1) + block.lat(y21)))
        y23 = sp(block.bns[2](block.ff(y1) + block.lat(y22)))
        hs = model.iteration_outputs(x)
    for got, want in zip(hs, (y21, y22, y23)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("act", ["relu", "softplus"])
def test_init_bias(act):
    model = build(config(act=act, n_neurons=4))
    mean = torch.tensor([0.0, 1e-6, 0.3, 25.0])
    model.readout.init_bias(mean)
    got = model.readout.act(model.readout.bias.detach())
    torch.testing.assert_close(got[2:], mean[2:])
    # softplus never reaches 0: tiny means are clamped to 1e-4
    floor = 1e-4 if act == "softplus" else 0.0
    torch.testing.assert_close(got[:2], mean[:2].clamp_min(floor), atol=1e-6, rtol=0)
    if act == "softplus":
        assert model.readout.bias[2].item() == pytest.approx(math.log(math.exp(0.3) - 1))
    with pytest.raises(RcpbError, match="neurons"):
        model.readout.init_bias(torch.ones(5))


# ---------------------------------------------------------------- build


def test_build_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build(config(recurrent_layers=2, model_seed=7))
    b = build(config(recurrent_layers=2, model_seed=7))
    c = build(config(recurrent_layers=2, model_seed=8))
    assert torch.equal(torch.random.get_rng_state(), before)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(),
                                  c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.rcpbs[1].lat.weight, c.rcpbs[1].lat.weight)
    w = a.rcpbs[0].lat.weight
    assert abs(w.std().item() - 0.01) < 0.003 and abs(w.mean().item()) < 0.003


def test_config_is_kept():
    cfg = config(arch="ff", blocks=3)
    assert build(cfg).config is cfg


@pytest.mark.parametrize("change,field", [
    (dict(arch="transformer"), "arch"),
    (dict(act="tanh"), "act"),
    (dict(readout="mid-avg"), "readout"),
    (dict(iterations=0), "iterations"),
    (dict(input_size=10), "input_size"),
    (dict(first_block_order="bn"), "first_block_order"),
    (dict(arch="ff", blocks=None), "blocks"),
])
def test_bad_config_raises(change, field):
    with pytest.raises(RcpbError, match=field):
        build(config(**change))


def test_accelerated_pool_gradient_matches_autograd_of_avg_pool():
    from rcpb.accel import accelerate

    h = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    model = accelerate(build(config()), "cpu")
    torch.autograd.gradcheck(model.readout.pool, (h,))
    h_last = h.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    model.readout.pool(h_last).backward(g)
    h_ref = h.detach().clone().requires_grad_()
    nn.functional.avg_pool2d(h_ref, 3, 3, ceil_mode=True).backward(g)
    torch.testing.assert_close(h_last.grad, h_ref.grad)



# ---------------------------------------------------------------- rectangular frames


@pytest.mark.parametrize("arch,extra", [("ff", dict(blocks=3)),
                                        ("recurrent", dict(readout="no-avg")),
                                        ("multipath", dict(readout="no-avg"))])
def test_rectangular_input_reads_out_over_rows_and_columns(arch, extra):
    """A 15 x 22 px input: CPB1 maps of 7 x 14 px (15 - 8, 22 - 8), a pooled readout grid of
    3 x 5 (ceil((7 - 3) / 3) + 1, ceil((14 - 3) / 3) + 1), and R(h) as the hand-written
    readout over that grid."""
    torch.manual_seed(0)
    model = build(config(arch=arch, input_size=[15, 22], **extra))
    scale_up(model)
    assert tuple(model.readout.ws.shape) == (3, 3, 5)
    x = torch.randn(2, 1, 15, 22)
    model.eval()
    with torch.no_grad():
        preds = model(x)
        h = model.features(x) if arch == "ff" else model.iteration_outputs(x)[-1]
    assert preds.shape == (1, 2, 3) and h.shape[-2:] == (7, 14)
    torch.testing.assert_close(preds[-1], hand_readout(model, h))


def test_square_sizes_are_one_number_and_bad_sizes_are_refused():
    a = build(config(input_size=15))
    b = build(config(input_size=[15, 15]))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    for bad in ([15], [15, 10], [15, 22, 3], "15x22", [15.0, 22]):
        with pytest.raises(RcpbError, match="input_size"):
            build(config(input_size=bad))
