"""Recurrent cells in the RCPB slot (rcpb.models.cells, rcpb.cell_kinds): each cell's update
equations against a hand-written step, T = 1 behaviour, parameter counts against the closed
forms, minimal unrolling by autograd, readout modes, path statistics, packs and accelerate."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rcpb import cell_kinds
from rcpb.errors import RcpbError
from rcpb.models import build, count_conv_parameters, count_parameters
from rcpb.models.cells import ConvLSTMCell, ReciprocalGatedCell, VanillaCell
from rcpb.pack.kinds import job_key, pack_key
from rcpb.path_stats import path_length_distribution, path_stats

from test_models import MODES, config, hand_readout, randomize_bn, scale_up

NEW_CELLS = ("vanilla", "convlstm", "rgc")
EPS = 1e-3


def act_fn(name):
    return {"relu": torch.relu, "softplus": F.softplus, "identity": lambda v: v}[name]


def conv(w, x, b=None):
    """3x3 convolution, padding 1, written with the functional op."""
    return F.conv2d(x, w, b, padding=1)


def bn_eval(bn, u):
    """BatchNorm in evaluation mode: (u - running mean) / sqrt(running var + eps) * gamma + beta."""
    shape = (1, -1, 1, 1)
    return ((u - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + EPS)
            * bn.weight.view(shape) + bn.bias.view(shape))


def bn_train(bn, u):
    """BatchNorm in training mode: the batch's mean and biased variance per channel."""
    shape = (1, -1, 1, 1)
    mean = u.mean((0, 2, 3), keepdim=True)
    var = u.var((0, 2, 3), unbiased=False, keepdim=True)
    return (u - mean) / torch.sqrt(var + EPS) * bn.weight.view(shape) + bn.bias.view(shape)


def randomize(module, seed):
    """Conv weights and biases of order 1; BN scales, shifts and running statistics random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(0.3 * torch.randn(m.weight.shape, generator=g, dtype=m.weight.dtype))
                if m.bias is not None:
                    m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype))
    randomize_bn(module, g)


# ------------------------------------------------------------------ hand-written steps


def vanilla_by_hand(cell, x, h, t, bn):
    """h_t = Act(BN(Wff*x_t + Wlat*h_{t-1})); h None = 0."""
    u = conv(cell.ff.weight, x) + (0 if h is None else conv(cell.lat.weight, h))
    out = act_fn(ACT)(bn(cell.bn, u))
    return out, out


def convlstm_by_hand(cell, x, state, t, bn):
    """The ConvLSTM with the gate weights cut out of the fused convs by hand."""
    C = x.shape[1]
    wx, bx, wh = cell.wx.weight, cell.wx.bias, cell.wh.weight
    h, c = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))

    def pre(k):   # gate k in (i, f, o, g) = output channels k*C .. (k+1)*C
        s = slice(k * C, (k + 1) * C)
        return conv(wx[s], x, bx[s]) + conv(wh[s], h)

    i, f, o = torch.sigmoid(pre(0)), torch.sigmoid(pre(1)), torch.sigmoid(pre(2))
    g = torch.tanh(pre(3))
    c_new = f * c + i * g
    h_new = o * act_fn(ACT)(c_new)
    return h_new, (h_new, c_new)


def rgc_by_hand(cell, x, state, t, bn):
    """Nayebi et al. 2018 eqs. (1)-(2) on u_t = BN_t(Wff*x_t), zero state written out."""
    h, c = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))
    u = bn(cell.bns[t - 1], conv(cell.ff.weight, x))
    sig = torch.sigmoid
    a = (1 - sig(conv(cell.w_ch.weight, c))) * u + (1 - sig(conv(cell.w_hh.weight, h))) * h
    b = (1 - sig(conv(cell.w_hc.weight, h))) * u + (1 - sig(conv(cell.w_cc.weight, c))) * c
    return act_fn(ACT)(a), (act_fn(ACT)(a), act_fn(ACT)(b))


ACT = "softplus"
HAND = {"vanilla": (VanillaCell, vanilla_by_hand), "convlstm": (ConvLSTMCell, convlstm_by_hand),
        "rgc": (ReciprocalGatedCell, rgc_by_hand)}


@pytest.mark.parametrize("cell_name", NEW_CELLS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_cell_step_equals_its_equations_by_hand(cell_name, mode):
    """B = 2, C = 3, 5x5 maps: t = 1 from the zero state, then t = 2 and 3 from a random state."""
    module, by_hand = HAND[cell_name]
    cell = module(3, 3, ACT).double()
    randomize(cell, seed=1)
    cell.train(mode == "train")
    bn = bn_eval if mode == "eval" else bn_train
    g = torch.Generator().manual_seed(2)
    xs = [torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    with torch.no_grad():
        h, state = cell(xs[0], None, 1)
        h_hand, state_hand = by_hand(cell, xs[0], None, 1, bn)
        torch.testing.assert_close(h, h_hand)
        # a random state (not the cell's own): every term of the equations is exercised
        rand = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64)
        state = rand if cell_name == "vanilla" else (rand, 0.5 + rand.flip(-1))
        for t in (2, 3):
            h, new = cell(xs[t - 1], state, t)
            h_hand, new_hand = by_hand(cell, xs[t - 1], state, t, bn)
            torch.testing.assert_close(h, h_hand)
            for a, b in zip(new if isinstance(new, tuple) else (new,),
                            new_hand if isinstance(new_hand, tuple) else (new_hand,)):
                torch.testing.assert_close(a, b)
            state = new
        # a precomputed input drive gives the same step
        h2, _ = cell(xs[2], state, 3, x_drive=cell.input_drive(xs[2]))
        torch.testing.assert_close(h2, cell(xs[2], state, 3)[0])
    assert h.abs().max() > 1e-2


@pytest.mark.parametrize("cell_name", NEW_CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_model_unrolls_the_cell_by_hand(cell_name, layers):
    """The recurrent model, T = 3: CPB1's output feeds layer 2 at every iteration, layer m
    feeds layer m + 1 at the same iteration, the state starts at 0, h_t = last layer's output."""
    model = build(config(cell=cell_name, recurrent_layers=layers, iterations=3, act=ACT)).double()
    randomize(model, seed=3)
    model.eval()
    x = torch.randn(2, 1, 15, 15, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    by_hand = HAND[cell_name][1]
    with torch.no_grad():
        y1 = model.cpb1(model.bn_in(x))
        states = [None] * layers
        expected = []
        for t in (1, 2, 3):
            below = y1
            for m, cell in enumerate(model.cells):
                below, states[m] = by_hand(cell, below, states[m], t, bn_eval)
            expected.append(below)
        got = model.iteration_outputs(x)
    assert len(got) == 3
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert (got[0] - got[-1]).abs().max() > 1e-3


# ------------------------------------------------------------------ T = 1


def _ff_twin(rec, layers, order="bn_act"):
    ff = build(config(arch="ff", blocks=1 + layers, first_block_order=order, act=rec.act,
                      model_seed=5)).to(next(rec.parameters()).dtype)
    with torch.no_grad():
        ff.bn_in.load_state_dict(rec.bn_in.state_dict())
        ff.cpb1.load_state_dict(rec.cpb1.state_dict())
        ff.readout.load_state_dict(rec.readout.state_dict())
    return ff


@pytest.mark.parametrize("cell_name", ["vanilla", "rgc"])
@pytest.mark.parametrize("layers", [1, 2])
def test_one_iteration_is_the_feedforward_model(cell_name, layers):
    """T = 1. vanilla: h_1 = Act(BN(Wff*x)), the FF model's CPB with the same conv and BN.
    rgc: every gate is sigmoid(0) = 1/2, h_1 = Act(BN_1(Wff*x) / 2): the FF model whose BN has
    gamma and beta halved. Both in evaluation and in training mode."""
    rec = build(config(cell=cell_name, recurrent_layers=layers, iterations=1, act="softplus",
                       readout="late-avg"))
    scale_up(rec)
    randomize_bn(rec, torch.Generator().manual_seed(6))
    ff = _ff_twin(rec, layers)
    with torch.no_grad():
        for block, cell in zip(ff.blocks, rec.cells):
            block.conv.weight.copy_(cell.ff.weight)
            bn = cell.bn if cell_name == "vanilla" else cell.bns[0]
            block.bn.load_state_dict(bn.state_dict())
            if cell_name == "rgc":
                block.bn.weight.mul_(0.5)
                block.bn.bias.mul_(0.5)
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(7))
    rec.eval(), ff.eval()
    expected = ff(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(rec(x), expected)
    rec.train(), ff.train()
    torch.testing.assert_close(rec(x), ff(x))


def test_convlstm_one_iteration():
    """T = 1 (zero state): h_1 = o_1 * Act(i_1 * g_1) from x alone; W_h and the forget gate
    take no part (no gradient reaches them)."""
    rec = build(config(cell="convlstm", recurrent_layers=1, iterations=1, act="softplus",
                       readout="no-avg")).double()
    randomize(rec, seed=8)
    rec.eval()
    x = torch.randn(2, 1, 15, 15, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    cell = rec.cells[0]
    C = 4
    y1 = rec.cpb1(rec.bn_in(x))
    z = conv(cell.wx.weight, y1, cell.wx.bias)
    i, o = torch.sigmoid(z[:, :C]), torch.sigmoid(z[:, 2 * C:3 * C])
    g = torch.tanh(z[:, 3 * C:])
    torch.testing.assert_close(rec.iteration_outputs(x)[0], o * F.softplus(i * g))
    rec(x).sum().backward()
    assert cell.wh.weight.grad is None
    assert cell.wx.bias.grad[C:2 * C].abs().max() == 0            # forget-gate bias
    assert cell.wx.weight.grad[C:2 * C].abs().max() == 0          # forget-gate x-conv
    assert cell.wx.weight.grad[:C].abs().max() > 0


# ------------------------------------------------------------------ parameter counts


@pytest.mark.parametrize("cell_name", cell_kinds.CELLS)
@pytest.mark.parametrize("channels", [4, 8, 16])
@pytest.mark.parametrize("layers", [1, 2])
def test_parameter_counts_match_the_closed_forms(cell_name, channels, layers):
    c, T = channels, 3
    model = build(config(cell=cell_name, channels=c, recurrent_layers=layers, iterations=T,
                         input_size=15, n_neurons=3))
    per_layer = {"rcpb": 18 * c * c, "vanilla": 18 * c * c, "convlstm": 72 * c * c + 4 * c,
                 "rgc": 45 * c * c}[cell_name]
    bn_per_layer = {"rcpb": 2 * c * T, "vanilla": 2 * c, "convlstm": 0, "rgc": 2 * c * T}[cell_name]
    assert cell_kinds.layer_conv_params(cell_name, c) == per_layer
    assert cell_kinds.layer_bn_params(cell_name, c, T) == bn_per_layer
    conv_params = 81 * c + layers * per_layer
    assert count_conv_parameters(model) == conv_params
    readout = 3 * (3 * 3 + c + 1)      # 15 px: CPB1 7x7, pooled 3x3
    assert count_parameters(model) == conv_params + 2 + 2 * c + layers * bn_per_layer + readout


# ------------------------------------------------------------------ minimal unrolling


def _params_without_gradient(cell_name, layers, T):
    """Names of the parameters that get no (or an all-zero) gradient from the model's output."""
    model = build(config(cell=cell_name, recurrent_layers=layers, iterations=T, act="softplus",
                         readout="no-avg")).double()
    randomize(model, seed=10)
    model.eval()    # BN by its running statistics: BN_in's shift is not removed by CPB1's BN
    x = torch.randn(2, 1, 15, 15, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    g = torch.randn(1, 2, 3, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    (model(x) * g).sum().backward()
    return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]


@pytest.mark.parametrize("cell_name", cell_kinds.CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_minimal_iterations_use_every_parameter(cell_name, layers):
    t_min = cell_kinds.minimal_iterations(cell_name, layers)
    assert _params_without_gradient(cell_name, layers, t_min) == []
    unused = _params_without_gradient(cell_name, layers, t_min - 1)
    assert unused
    expected = {"rcpb": ".lat.", "vanilla": ".lat.", "convlstm": ".wh.", "rgc": ".w_hc."}[cell_name]
    assert any(expected in n for n in unused), unused


def test_minimal_iterations_values():
    assert {c: cell_kinds.minimal_iterations(c, layers) for c in cell_kinds.CELLS
            for layers in (1, 2)} == {"rcpb": 2, "vanilla": 2, "convlstm": 2, "rgc": 3}


# ------------------------------------------------------------------ readout modes


@pytest.mark.parametrize("cell_name", NEW_CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_every_readout_mode_works_for_every_cell(cell_name, layers):
    T = 3
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(13))
    preds = {}
    for mode in MODES:
        model = build(config(cell=cell_name, recurrent_layers=layers, iterations=T, readout=mode,
                             act="relu"))
        randomize(model, seed=14)
        model.eval()
        with torch.no_grad():
            hs = model.iteration_outputs(x)
            preds[mode] = model(x)
    R = lambda h: hand_readout(model, h)  # noqa: E731 (same weights for every mode)
    hbar = [sum(hs[:t]) / t for t in range(1, T + 1)]
    torch.testing.assert_close(preds["no-avg"][0], R(hs[-1]))
    torch.testing.assert_close(preds["early-avg"][0], R(sum(hs) / T))
    torch.testing.assert_close(preds["late-avg"], torch.stack([R(h) for h in hs]))
    torch.testing.assert_close(preds["2-avg"], torch.stack([R(h) for h in hbar]))
    assert preds["late-avg"].shape == (T, 3, 3) and preds["no-avg"].shape == (1, 3, 3)


# ------------------------------------------------------------------ build


def test_absent_none_and_rcpb_cell_build_the_same_model():
    a = build(config(recurrent_layers=2))
    for cell in (None, "rcpb"):
        b = build(config(recurrent_layers=2, cell=cell))
        assert b.cell == "rcpb"
        assert a.state_dict().keys() == b.state_dict().keys()
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k


@pytest.mark.parametrize("change", [dict(cell="lstm"), dict(cell="RCPB"),
                                    dict(arch="multipath", cell="convlstm"),
                                    dict(arch="multipath", cell="vanilla"),
                                    dict(arch="ff", blocks=3, cell="rgc")])
def test_bad_cell_raises_naming_the_field(change):
    with pytest.raises(RcpbError, match="'cell'"):
        build(config(**change))


def test_multipath_and_ff_accept_the_default_cell():
    build(config(arch="multipath", cell="rcpb"))
    build(config(arch="ff", blocks=3, cell=None))


def test_cell_builds_are_deterministic_and_draw_every_weight():
    for cell_name in NEW_CELLS:
        a = build(config(cell=cell_name, recurrent_layers=2, model_seed=3))
        b = build(config(cell=cell_name, recurrent_layers=2, model_seed=3))
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k
        for m in a.modules():
            if isinstance(m, nn.Conv2d):
                assert abs(m.weight.std().item() - 0.01) < 0.004
                if m.bias is not None:
                    assert torch.equal(m.bias, torch.zeros_like(m.bias))


# ------------------------------------------------------------------ path statistics


def test_cells_with_and_without_path_statistics():
    assert [c for c in cell_kinds.CELLS if cell_kinds.has_path_statistics(c)] == ["rcpb", "vanilla"]
    for cell_name in ("convlstm", "rgc"):
        model = build(config(cell=cell_name, recurrent_layers=2))
        stats = path_stats(model)
        assert math.isnan(stats["avg_path_length"]) and math.isnan(stats["path_entropy"])
        assert stats["path_p"] == {} and stats["path_strength_raw"] == {}
        assert cell_name in stats["reason"] and "gate" in stats["reason"]
        with pytest.raises(RcpbError, match="gate"):
            path_length_distribution(model)
    assert "reason" not in path_stats(build(config(recurrent_layers=2)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers", [1, 2])
def test_vanilla_paths_are_the_rcpb_paths_with_one_bn(mode, layers):
    """A vanilla model's path statistics are those of the rcpb model whose per-iteration BNs
    are all copies of the vanilla model's shared BN."""
    van = build(config(cell="vanilla", recurrent_layers=layers, iterations=3, readout=mode))
    randomize(van, seed=15)
    rcpb = build(config(recurrent_layers=layers, iterations=3, readout=mode))
    with torch.no_grad():
        for v, r in zip(van.cells, rcpb.cells):
            r.ff.weight.copy_(v.ff.weight)
            r.lat.weight.copy_(v.lat.weight)
            for bn in r.bns:
                bn.load_state_dict(v.bn.state_dict())
    a, b = path_stats(van), path_stats(rcpb)
    assert a["path_p"] == pytest.approx(b["path_p"], rel=1e-12)
    assert a["avg_path_length"] == pytest.approx(b["avg_path_length"], rel=1e-12)
    assert math.isfinite(a["avg_path_length"])


@pytest.mark.parametrize("layers", [1, 2])
def test_vanilla_is_a_sum_of_chains_when_linear(layers):
    """Identity activation, zero BN shifts, every BN copy of the (rcpb) multi-path model tied
    to the vanilla model's shared BN: the multi-path output equals the vanilla output."""
    from test_multipath import tie_to_recurrent

    cfg = dict(recurrent_layers=layers, iterations=3, readout="2-avg", act="identity")
    van = build(config(cell="vanilla", **cfg)).double()
    mp = build(config(arch="multipath", model_seed=9, **cfg)).double()
    scale_up(van)
    randomize_bn(van, torch.Generator().manual_seed(16), zero_shift=True)
    tie_to_recurrent(mp, van)
    van.eval(), mp.eval()
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(17), dtype=torch.float64)
    with torch.no_grad():
        expected = van(x)
        torch.testing.assert_close(mp(x), expected, rtol=1e-10, atol=1e-12)
    assert expected.abs().max() > 1e-3


# ------------------------------------------------------------------ packs and accelerate


def test_pack_keys_separate_cells_and_keep_rcpb_keys():
    base = dict(arch="recurrent", channels=8, recurrent_layers=1, iterations=4, readout="2-avg",
                act="relu", first_block_order="bn_act", loss="mse", train=dict(batch_size=16))
    for device in ("cpu", "cuda"):
        assert job_key(base, device) == job_key(dict(base, cell="rcpb"), device) \
            == job_key(dict(base, cell=None), device)
    assert pack_key(base) == pack_key(dict(base, cell="rcpb")) == pack_key(dict(base, cell=None))
    keys = {pack_key(dict(base, cell=c)) for c in cell_kinds.CELLS}
    assert len(keys) == 4
    assert pack_key(dict(base, cell="convlstm")).startswith("rec-convlstm-L1-T4-c8-")
    assert len({job_key(dict(base, cell=c)) for c in cell_kinds.CELLS}) == 4


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("cell_name", ["convlstm", "rgc"])
def test_stacked_pack_of_a_new_cell_equals_each_slot_alone(cell_name):
    from test_pack import _alone, _assert_same, _config, _data, _run

    arch = dict(arch="recurrent", recurrent_layers=1, iterations=3, readout="2-avg",
                cell=cell_name)
    configs = [_config(arch, 0, 0.01, max_steps=30), _config(arch, 1, 0.003, max_steps=30)]
    datas = [_data(64, seed=0), _data(48, seed=1)]
    alone = _alone(configs, datas)
    packed = _run(configs, datas, "stacked", slots=2)
    for i in range(len(configs)):
        _assert_same(alone[i], packed[i], tol=1e-7)


@pytest.mark.parametrize("cell_name", NEW_CELLS)
@pytest.mark.parametrize("channels,dtype,rtol", [(8, torch.float64, 1e-9),
                                                 (16, torch.float32, 1e-4)])
def test_accelerated_cells_equal_the_reference(cell_name, channels, dtype, rtol, monkeypatch):
    from rcpb.accel import bn_relu
    from test_accel import _compare

    monkeypatch.setattr(bn_relu, "MIN_VALUES", 1)   # let the small maps take the fast paths
    cfg = dict(arch="recurrent", recurrent_layers=2, iterations=3, readout="2-avg", cell=cell_name)
    _compare(cfg, channels, dtype, rtol)
