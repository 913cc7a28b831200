"""The pieces of rcpb.accel (fold of BN_in, BN kernels, pooling) against the plain PyTorch
modules they replace. Whole accelerated models: tests/test_accel.py."""

import copy

import pytest
import torch
from torch import nn

from rcpb.accel import accelerate
from rcpb.accel.input_bn import fold
from rcpb.models.blocks import CPB, batch_norm


def input_conv(bn_in, conv, x):
    """``conv(bn_in(x))`` with the two modules folded (rcpb.accel.input_bn)."""
    fold(bn_in, conv)
    return conv(bn_in(x))


def _input_modules(channels=5, seed=0):
    """BN_in with random affine parameters and running statistics, and a 9x9 conv 1 -> C."""
    gen = torch.Generator().manual_seed(seed)
    bn = batch_norm(1).double()
    conv = nn.Conv2d(1, channels, 9, bias=False).double()
    with torch.no_grad():
        bn.weight.copy_(0.5 + torch.rand(1, generator=gen, dtype=torch.float64))
        bn.bias.copy_(torch.randn(1, generator=gen, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(1, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(0.5 + torch.rand(1, generator=gen, dtype=torch.float64))
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64))
    return bn, conv.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("x_requires_grad", [False, True])
def test_input_conv_equals_conv_of_bn_in(training, x_requires_grad):
    bn, conv = _input_modules()
    bn_ref, conv_ref = copy.deepcopy(bn), copy.deepcopy(conv)
    for m in (bn, conv, bn_ref, conv_ref):
        m.train(training)
    gen = torch.Generator().manual_seed(1)
    x = 2.0 + 3.0 * torch.randn(6, 1, 13, 13, generator=gen, dtype=torch.float64)
    g_out = torch.randn(6, 5, 5, 5, generator=gen, dtype=torch.float64)
    x_fast = x.clone().requires_grad_(x_requires_grad)
    x_ref = x.clone().requires_grad_(x_requires_grad)

    for _ in range(2):  # twice: the second call sees the running statistics of the first
        fast = input_conv(bn, conv, x_fast)
        ref = conv_ref(bn_ref(x_ref))
        assert fast.shape == ref.shape
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-10)
        (fast * g_out).sum().backward()
        (ref * g_out).sum().backward()

    for (name, p), p_ref in zip(
            [("bn.weight", bn.weight), ("bn.bias", bn.bias), ("conv.weight", conv.weight)],
            [bn_ref.weight, bn_ref.bias, conv_ref.weight]):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-10, msg=name)
    if x_requires_grad:
        torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=1e-10, atol=1e-10)
    for key, value in bn_ref.state_dict().items():
        torch.testing.assert_close(bn.state_dict()[key], value, rtol=0, atol=1e-12, msg=key)
    assert int(bn.num_batches_tracked) == (2 if training else 0)


def test_input_conv_skips_the_input_gradient():
    """The point of the fold: with x not requiring grad, no input gradient is computed."""
    bn, conv = _input_modules()
    x = torch.randn(4, 1, 12, 12, dtype=torch.float64)
    out = input_conv(bn, conv, x)
    # the conv's input is xhat, which needs no gradient
    conv_node = out.grad_fn
    while conv_node is not None and "Convolution" not in type(conv_node).__name__:
        conv_node = conv_node.next_functions[0][0]
    assert conv_node is not None
    assert conv_node.next_functions[0][0] is None  # no gradient path to the conv's input


@pytest.mark.parametrize("order", ["bn_act", "act_bn"])
def test_folded_cpb1_equals_cpb_of_bn_in(order):
    torch.manual_seed(0)
    bn = batch_norm(1).double()
    cpb = CPB(1, 3, 9, padding=0, act="softplus", order=order).double()
    bn_ref, cpb_ref = copy.deepcopy(bn), copy.deepcopy(cpb)
    x = torch.randn(4, 1, 11, 11, dtype=torch.float64)
    assert fold(bn, cpb.conv)
    torch.testing.assert_close(cpb(bn(x)), cpb_ref(bn_ref(x)), rtol=0, atol=1e-10)
    assert list(cpb.state_dict()) == list(cpb_ref.state_dict())


def test_keep_freed_memory_is_idempotent_and_on_after_accelerate():
    import sys

    from rcpb.accel import memory
    from rcpb.models import build

    accelerate(build(dict(arch="ff", blocks=3, channels=2, act="relu",
                          first_block_order="bn_act", input_size=11, n_neurons=2,
                          model_seed=0)), "cpu")
    if sys.platform.startswith("linux"):
        # glibc on the machines we run on; other C libraries report False and change nothing
        assert memory.keep_freed_memory() is memory._done
    assert memory.keep_freed_memory() == memory.keep_freed_memory()


@pytest.mark.parametrize("channels", [3, 8, 16])
def test_batch_norm_equals_torch_batch_norm_and_restores_threads(channels):
    from rcpb.accel.batch_norm import BatchNorm2d

    threads = torch.get_num_threads()
    torch.set_num_threads(2)   # the one-thread backward is used only when several threads run
    try:
        gen = torch.Generator().manual_seed(3)
        ours = BatchNorm2d(channels, eps=1e-3, momentum=0.1).double()
        assert isinstance(ours, BatchNorm2d) and isinstance(ours, nn.BatchNorm2d)
        ref = nn.BatchNorm2d(channels, eps=ours.eps, momentum=ours.momentum).double()
        with torch.no_grad():
            for m in (ours, ref):
                m.weight.copy_(torch.linspace(0.5, 1.5, channels))
                m.bias.copy_(torch.linspace(-0.2, 0.3, channels))
        u = torch.randn(5, channels, 6, 6, generator=gen, dtype=torch.float64)
        u = u.contiguous(memory_format=torch.channels_last)
        g_out = torch.randn(u.shape, generator=gen, dtype=torch.float64)
        u_ours, u_ref = u.clone().requires_grad_(), u.clone().requires_grad_()
        for _ in range(2):
            out, out_ref = ours(u_ours), ref(u_ref)
            torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)
            (out * g_out).sum().backward()
            (out_ref * g_out).sum().backward()
        assert torch.get_num_threads() == 2
        torch.testing.assert_close(u_ours.grad, u_ref.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-12)
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=1e-14, msg=key)
        ours.eval(), ref.eval()
        torch.testing.assert_close(ours(u), ref(u), rtol=0, atol=1e-12)
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------ fused BN + ReLU (bn_relu)

def _bn_relu_case(dtype, batch, channels, side, mode, relu=True):
    """relu(bn(u)) (``relu=False``: bn(u)) with mode "modules" (nn.BatchNorm2d + ReLU), "torch"
    (bn_relu's PyTorch formulation) or "kernels" (its C kernels): outputs, gradients and BN
    state after two training steps, all as float64."""
    from rcpb.accel.bn_relu import bn_relu

    gen = torch.Generator().manual_seed(channels + side)
    u = 3.0 + 2.0 * torch.randn(batch, channels, side, side, generator=gen, dtype=torch.float64)
    g_out = torch.randn(u.shape, generator=gen, dtype=torch.float64)
    bn = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1).to(dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 1.5, channels))
        bn.bias.copy_(torch.linspace(-0.2, 0.3, channels))
    x = u.to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    for _ in range(2):
        if mode == "modules":
            y = torch.relu(bn(x)) if relu else bn(x)
        else:
            y = bn_relu(bn, x, use_kernels=(mode == "kernels"), relu=relu)
        (y * g_out.to(dtype)).sum().backward()
    assert y.is_contiguous(memory_format=torch.channels_last)
    return {"out": y, "grad_u": x.grad, "grad_weight": bn.weight.grad,
            "grad_bias": bn.bias.grad, "running_mean": bn.running_mean,
            "running_var": bn.running_var, "num_batches_tracked": bn.num_batches_tracked}


def _assert_bn_relu_close(result, reference, rtol):
    for key, ref in reference.items():
        got = result[key].detach().double()
        ref = ref.detach().double()
        scale = float(ref.abs().max().clamp_min(1.0))
        assert float((got - ref).abs().max()) <= rtol * scale, key


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("batch,channels,side", [(6, 5, 7), (4, 8, 9), (3, 32, 5), (2, 3, 1)])
def test_bn_relu_torch_formulation_equals_modules(batch, channels, side, relu):
    reference = _bn_relu_case(torch.float64, batch, channels, side, "modules", relu)
    result = _bn_relu_case(torch.float64, batch, channels, side, "torch", relu)
    _assert_bn_relu_close(result, reference, rtol=1e-12)


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("batch,channels,side", [(6, 5, 7), (16, 8, 29), (3, 32, 5)])
def test_bn_relu_kernels_equal_modules_in_float64(batch, channels, side, relu):
    """The kernels run in float32 (double sums); compared with the float64 modules."""
    reference = _bn_relu_case(torch.float64, batch, channels, side, "modules", relu)
    result = _bn_relu_case(torch.float32, batch, channels, side, "kernels", relu)
    _assert_bn_relu_close(result, reference, rtol=2e-6)


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bn_relu_kernels_are_deterministic(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        first = _bn_relu_case(torch.float32, 8, 8, 11, "kernels")
        second = _bn_relu_case(torch.float32, 8, 8, 11, "kernels")
    finally:
        torch.set_num_threads(before)
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_models_use_bn_relu_in_training_on_large_maps_only(monkeypatch):
    from rcpb.accel import bn_relu
    from rcpb.models import build

    calls = []
    original = bn_relu.bn_relu
    monkeypatch.setattr(bn_relu, "bn_relu", lambda *a, **k: calls.append(1) or original(*a, **k))
    model = build(dict(arch="recurrent", recurrent_layers=1, iterations=3, readout="2-avg",
                       channels=4, act="relu", first_block_order="bn_act", input_size=13,
                       n_neurons=2, model_seed=0))
    accelerate(model, "cpu")
    x = torch.randn(5, 1, 13, 13)
    model.train()
    model(x)
    assert calls == []                # 5 x 4 x 5 x 5 values: below MIN_VALUES
    monkeypatch.setattr(bn_relu, "MIN_VALUES", 5 * 4 * 5 * 5)
    model(x)
    assert len(calls) == 1 + 3        # CPB1 and the RCPB's BN at t = 1, 2, 3
    model.eval()
    with torch.no_grad():
        model(x)
    assert len(calls) == 4


@pytest.mark.parametrize("act,order", [("softplus", "bn_act"), ("relu", "act_bn")])
def test_bn_without_relu_uses_bn_relu_on_large_maps_in_training(monkeypatch, act, order):
    """Softplus blocks and an act_bn CPB1 take BN alone from bn_relu, with relu=False."""
    from rcpb.accel import bn_relu
    from rcpb.models import build

    calls = []
    original = bn_relu.bn_relu
    monkeypatch.setattr(bn_relu, "bn_relu",
                        lambda *a, **k: calls.append(k.get("relu", True)) or original(*a, **k))
    monkeypatch.setattr(bn_relu, "MIN_VALUES", 5 * 4 * 5 * 5)
    model = build(dict(arch="recurrent", recurrent_layers=1, iterations=2, readout="no-avg",
                       channels=4, act=act, first_block_order=order, input_size=13,
                       n_neurons=2, model_seed=0))
    accelerate(model, "cpu")
    model.train()
    model(torch.randn(5, 1, 13, 13)).sum().backward()
    # CPB1, then the RCPB's BN at t = 1, 2 (ReLU fused where the block's act is ReLU)
    assert calls == [False, act == "relu", act == "relu"]


# ------------------------------------------------------------------ average pooling kernels

@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("batch,channels,side", [(4, 8, 29), (3, 5, 7), (2, 3, 9), (2, 2, 1)])
def test_avg_pool_kernels_equal_hand_pooling(batch, channels, side):
    """The C pooling (float32) against window means and their gradient worked out in float64:
    each pixel receives its window's gradient divided by the window's (clipped) pixel count."""
    import math

    from rcpb.accel.pool import avg_pool

    gen = torch.Generator().manual_seed(side)
    h = torch.randn(batch, channels, side, side, generator=gen, dtype=torch.float64)
    n = math.ceil(side / 3)
    g = torch.randn(batch, channels, n, n, generator=gen, dtype=torch.float64)
    expected = torch.empty(batch, channels, n, n, dtype=torch.float64)
    expected_grad = torch.empty_like(h)
    for i in range(n):
        for j in range(n):
            rows, cols = slice(3 * i, min(3 * i + 3, side)), slice(3 * j, min(3 * j + 3, side))
            window = h[:, :, rows, cols]
            expected[:, :, i, j] = window.mean((-1, -2))
            share = g[:, :, i, j] / window[0, 0].numel()      # per pixel of the window
            expected_grad[:, :, rows, cols] = share[..., None, None]
    h32 = h.float().contiguous(memory_format=torch.channels_last).requires_grad_()
    out = avg_pool(h32)
    out.backward(g.float())
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(h32.grad.double(), expected_grad, rtol=0, atol=1e-6)
    # the PyTorch formulation (used without a compiler) gives the same
    h64 = h.contiguous(memory_format=torch.channels_last).requires_grad_()
    avg_pool(h64, use_kernels=False).backward(g)
    torch.testing.assert_close(h64.grad, expected_grad, rtol=0, atol=1e-12)
