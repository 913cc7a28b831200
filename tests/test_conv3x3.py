"""Conv3x3 and its Winograd kernels (forward pass, input gradient, weight gradient)
against PyTorch's convolution in float64."""


import pytest
import torch
from torch import nn

from rcpb.accel import accelerate, conv3x3, kernels
from rcpb.accel.conv3x3 import (Conv3x3, conv3x3_forward, conv3x3_input_grad,
                                conv3x3_weight_grad)
from rcpb.accel.input_bn import FoldedInputConv
from rcpb.models import build


CL = torch.channels_last


SHAPES = [(2, 8, 8, 5, 5), (3, 16, 8, 1, 1), (1, 8, 24, 1, 4), (2, 24, 16, 6, 3),
          (3, 32, 32, 29, 29), (1, 40, 8, 2, 2), (2, 16, 40, 7, 8)]


def _weight_grad_float64(x, grad):
    """PyTorch's weight gradient of conv2d(x, w, padding=1), in float64."""
    cout, cin = grad.shape[1], x.shape[1]
    weight = torch.zeros(cout, cin, 3, 3, dtype=torch.float64)
    return torch.ops.aten.convolution_backward(
        grad.double(), x.double(), weight, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1,
        (False, True, False))[1]


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("batch,cin,cout,height,width", SHAPES)
def test_weight_grad_kernel_equals_torch_in_float64(batch, cin, cout, height, width):
    """Odd and even sides (partial tiles), 1x1 maps, single rows, channel counts 8 to 40."""
    gen = torch.Generator().manual_seed(cin * cout + height)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=CL)
    grad = torch.randn(batch, cout, height, width, generator=gen).contiguous(memory_format=CL)
    got = conv3x3_weight_grad(x, grad)
    expected = _weight_grad_float64(x, grad)
    assert got.shape == (cout, cin, 3, 3) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=CL)
    scale = float(expected.abs().max())
    assert float((got.double() - expected).abs().max()) <= 2e-6 * scale


@pytest.mark.usefixtures("require_kernels")
def test_weight_grad_kernel_of_a_hand_worked_case():
    """A 2x2 map: dW[kh, kw] = sum_{y,x} g[y, x] * x[y + kh - 1, x + kw - 1] per channel pair.

    x = [[1, 2], [3, 4]] padded with zeros, g = [[1, 0], [0, 1]] (8 input and 8 output
    channels, the same map in each): dW[1, 1] = 1 + 4 = 5 (centre
    tap), dW[0, 0] = g[1, 1] * x[0, 0] = 1, dW[2, 2] = g[0, 0] * x[1, 1] = 4,
    dW[0, 1] = g[1, 1] * x[0, 1] = 2, dW[1, 0] = g[1, 1] * x[1, 0] = 3,
    dW[1, 2] = g[0, 0] * x[0, 1] = 2, dW[2, 1] = g[0, 0] * x[1, 0] = 3, dW[0, 2] = dW[2, 0] = 0.
    """
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 8, 2, 2).contiguous(memory_format=CL)
    grad = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).expand(1, 8, 2, 2).contiguous(memory_format=CL)
    expected = torch.tensor([[1.0, 2.0, 0.0], [3.0, 5.0, 2.0], [0.0, 3.0, 4.0]])
    got = conv3x3_weight_grad(x, grad)
    for o in range(8):
        for i in range(8):
            assert torch.equal(got[o, i], expected)


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_weight_grad_kernel_is_deterministic(threads):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 16, 9, 9, generator=gen).contiguous(memory_format=CL)
    grad = torch.randn(5, 16, 9, 9, generator=gen).contiguous(memory_format=CL)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        first, second = conv3x3_weight_grad(x, grad), conv3x3_weight_grad(x, grad)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(first, second)


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("batch,cin,cout,height,width", SHAPES)
def test_winograd_forward_and_input_grad_equal_torch_in_float64(batch, cin, cout, height,
                                                                 width):
    """Odd and even sides (partial tiles), 1x1 maps, channel counts 8 to 40."""
    gen = torch.Generator().manual_seed(cin + 7 * cout + height)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=CL)
    weight = torch.randn(cout, cin, 3, 3, generator=gen)
    grad = torch.randn(batch, cout, height, width, generator=gen).contiguous(memory_format=CL)
    out = conv3x3_forward(x, weight)
    expected = nn.functional.conv2d(x.double(), weight.double(), padding=1)
    grad_x = conv3x3_input_grad(grad, weight)
    expected_grad_x = torch.ops.aten.convolution_backward(
        grad.double(), x.double(), weight.double(), None, (1, 1), (1, 1), (1, 1), False,
        (0, 0), 1, (True, False, False))[0]
    for got, ref in ((out, expected), (grad_x, expected_grad_x)):
        assert got.shape == ref.shape and got.is_contiguous(memory_format=CL)
        assert float((got.double() - ref).abs().max()) <= 2e-6 * float(ref.abs().max())


@pytest.mark.usefixtures("require_kernels")
def test_winograd_of_identity_and_shift_kernels_is_exact():
    """Small integers and kernels of 0s and 1s: every Winograd intermediate is exact in float32.
    The centre tap copies the input; the tap (0, 0) moves it one pixel down and right (row 0
    and column 0 become 0, the padding)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-4, 5, (2, 8, 5, 7), generator=gen).float().contiguous(memory_format=CL)
    centre, corner = torch.zeros(8, 8, 3, 3), torch.zeros(8, 8, 3, 3)
    for c in range(8):
        centre[c, c, 1, 1] = 1.0
        corner[c, c, 0, 0] = 1.0
    assert torch.equal(conv3x3_forward(x, centre), x)
    shifted = torch.zeros_like(x)
    shifted[:, :, 1:, 1:] = x[:, :, :-1, :-1]
    assert torch.equal(conv3x3_forward(x, corner), shifted)


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_winograd_does_not_depend_on_the_thread_count(threads):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 16, 9, 9, generator=gen).contiguous(memory_format=CL)
    weight = torch.randn(8, 16, 3, 3, generator=gen)
    reference = conv3x3_forward(x, weight)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert torch.equal(conv3x3_forward(x, weight), reference)
    finally:
        torch.set_num_threads(before)


def _conv_pair(cin, cout, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ours, ref = Conv3x3(cin, cout).to(memory_format=CL), nn.Conv2d(cin, cout, 3, padding=1,
                                                                      bias=False)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(ref.weight.shape, generator=gen))
        ours.weight.copy_(ref.weight)
    return ours, ref.double()


@pytest.mark.usefixtures("require_kernels")
@pytest.mark.parametrize("cin,cout,uses_kernels", [(8, 16, False), (16, 16, True),
                                                   (32, 24, True), (32, 12, False)])
def test_conv3x3_equals_conv2d(cin, cout, uses_kernels, monkeypatch):
    """Forward and both gradients against nn.Conv2d in float64; the kernels run from
    MIN_CHANNELS (16) input channels, with output channels a multiple of 8."""
    calls = []
    for name in ("conv3x3_forward", "conv3x3_input_grad", "conv3x3_weight_grad"):
        original = getattr(conv3x3, name)
        monkeypatch.setattr(conv3x3, name,
                            lambda *a, _name=name, _f=original: calls.append(_name) or _f(*a))
    ours, ref = _conv_pair(cin, cout)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, cin, 7, 7, generator=gen)
    g_out = torch.randn(3, cout, 7, 7, generator=gen, dtype=torch.float64)
    x32 = x.contiguous(memory_format=CL).requires_grad_()
    x64 = x.double().requires_grad_()
    out, out_ref = ours(x32), ref(x64)
    (out.double() * g_out).sum().backward()
    (out_ref * g_out).sum().backward()
    expected_calls = ["conv3x3_forward", "conv3x3_input_grad", "conv3x3_weight_grad"]
    assert sorted(calls) == (expected_calls if uses_kernels else [])
    for got, expected in ((out, out_ref), (x32.grad, x64.grad),
                          (ours.weight.grad, ref.weight.grad)):
        got, expected = got.detach().double(), expected.detach()
        assert float((got - expected).abs().max()) <= 2e-6 * float(expected.abs().max())


def test_conv3x3_without_grad_and_without_a_compiler(monkeypatch):
    """Without autograd (evaluation) the forward kernel runs alone; without the C kernels it is
    PyTorch's conv, bit for bit."""
    ours, ref = _conv_pair(16, 16)
    x = torch.randn(2, 16, 5, 5).contiguous(memory_format=CL)
    with torch.no_grad():
        expected = ref(x.double())
    if kernels.available():
        with torch.no_grad():
            out = ours(x)
        assert not out.requires_grad
        assert float((out.double() - expected).abs().max()) <= 2e-6 * float(expected.abs().max())
    monkeypatch.setattr(kernels, "library", lambda: None)
    assert not conv3x3.kernels_apply(x, ours.weight)
    torch.testing.assert_close(ours(x), nn.functional.conv2d(x, ours.weight, padding=1),
                               rtol=0, atol=0)


def test_accelerate_makes_every_3x3_conv_a_conv3x3():
    """FF blocks, RCPB convs and multi-path convs; CPB1's 9x9 conv is folded with BN_in.
    Parameter names are those of nn.Conv2d (checkpoints load unchanged)."""
    base = dict(channels=16, act="relu", first_block_order="bn_act", input_size=15,
                n_neurons=2, model_seed=0)
    for config in (dict(base, arch="ff", blocks=3),
                   dict(base, arch="recurrent", recurrent_layers=2, iterations=2,
                        readout="no-avg"),
                   dict(base, arch="multipath", recurrent_layers=1, iterations=2,
                        readout="no-avg")):
        model = build(config)
        keys = list(model.state_dict())
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert [type(m) for m in convs] == [nn.Conv2d] * len(convs)   # the reference
        accelerate(model, "cpu")
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert [type(m) for m in convs] == [FoldedInputConv] + [Conv3x3] * (len(convs) - 1)
        assert list(model.state_dict()) == keys
        if config["arch"] == "recurrent":
            assert {"rcpbs.0.ff.weight", "rcpbs.0.lat.weight",
                    "rcpbs.1.ff.weight"} <= set(model.state_dict())


@pytest.mark.usefixtures("require_kernels")
def test_weight_grad_kernel_rejects_channels_it_cannot_block():
    x = torch.zeros(1, 12, 3, 3).contiguous(memory_format=CL)
    with pytest.raises(ValueError, match="multiples of 8"):
        conv3x3_weight_grad(x, torch.zeros(1, 8, 3, 3))


@pytest.mark.usefixtures("require_kernels")
def test_weight_grad_kernel_with_more_threads_than_image_rows():
    """Threads without tile rows of their own contribute nothing (2 tile rows, 3 threads)."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 1, 3, generator=gen).contiguous(memory_format=CL)
    grad = torch.randn(2, 16, 1, 3, generator=gen).contiguous(memory_format=CL)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        got = conv3x3_weight_grad(x, grad)
    finally:
        torch.set_num_threads(before)
    expected = _weight_grad_float64(x, grad)
    assert float((got.double() - expected).abs().max()) <= 2e-6 * float(expected.abs().max())
