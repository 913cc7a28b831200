"""Accelerated models (rcpb.accel.accelerate) against the stock-PyTorch reference models.

Outputs, gradients of every parameter and BN running statistics after two training steps,
then eval-mode outputs. The reference runs in float64. Accelerated:

- float32: the C kernels where they apply (Winograd 3x3 convs from 16 channels, BN kernels,
  pooling kernels), compared within float32 tolerances;
- float64: the kernels are float32-only, so this checks the PyTorch formulations of the
  accelerated paths (BN_in fold, BN one-thread backward and PyTorch-ops BN below 16 channels,
  pooling's gather backward), compared within float64 tolerances.
"""

import copy
import os
import shutil

import pytest
import torch

from rcpb.accel import accelerate, bn_relu, kernels
from rcpb.models import build
from rcpb.sizes import hw

READOUTS = ["no-avg", "early-avg", "late-avg", "2-avg"]
BASE = dict(act="relu", first_block_order="bn_act", input_size=20, n_neurons=3, model_seed=0)
CONFIGS = (
    [("ff", dict(arch="ff", blocks=3))]
    + [(f"rec{layers}-{mode}", dict(arch="recurrent", recurrent_layers=layers, iterations=3,
                                    readout=mode))
       for layers in (1, 2) for mode in READOUTS]
    + [(f"multipath{layers}", dict(arch="multipath", recurrent_layers=layers, iterations=3,
                                   readout="2-avg")) for layers in (1, 2)]
    + [("ff-softplus-act_bn", dict(arch="ff", blocks=3, act="softplus",
                                   first_block_order="act_bn"))]
    # rectangular frames (rows != columns): the pooling kernels' square path is not taken
    + [("ff-14x23", dict(arch="ff", blocks=3, input_size=[14, 23])),
       ("rec2-2avg-23x14", dict(arch="recurrent", recurrent_layers=2, iterations=3,
                                readout="2-avg", input_size=[23, 14]))]
)


@pytest.fixture
def small_maps_take_the_fast_paths(monkeypatch):
    """The BN kernels normally start at 2^18 values; let the test's small maps use them."""
    monkeypatch.setattr(bn_relu, "MIN_VALUES", 1)


def _step(model, x, g, dtype):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x.to(dtype))
    (out.double() * g).sum().backward()
    return out


def _compare(config, channels, dtype, rtol):
    torch.manual_seed(0)
    cfg = dict(BASE, channels=channels, **config)
    reference = build(cfg).double()
    fast = accelerate(copy.deepcopy(build(cfg)).to(dtype), "cpu")
    with torch.no_grad():   # BN affine parameters away from 1 and 0
        for ref_p, fast_p in zip(reference.parameters(), fast.parameters()):
            if ref_p.dim() == 1:
                ref_p.add_(0.3 * torch.rand_like(ref_p))
                fast_p.copy_(ref_p)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, *hw(cfg["input_size"]), generator=gen, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)   # the one-thread BN backward and the kernels' threading
    try:
        for _ in range(2):
            out_ref = reference.train()(x)
            g = torch.randn(out_ref.shape, generator=gen, dtype=torch.float64)
            reference.zero_grad(set_to_none=True)
            (out_ref * g).sum().backward()
            out = _step(fast, x, g, dtype)
            _close(out, out_ref, rtol, "train output")
            # gradients that are 0 in exact arithmetic (e.g. BN_in's shift, removed by CPB1's
            # BN) are compared against the largest gradient of the model
            floor = max(float(p.grad.abs().max()) for p in reference.parameters())
            for (name, p_ref), (fast_name, p) in zip(reference.named_parameters(),
                                                     fast.named_parameters()):
                assert name == fast_name
                _close(p.grad, p_ref.grad, rtol, f"gradient of {name}", floor)
        for (name, b_ref), (_, b) in zip(reference.named_buffers(), fast.named_buffers()):
            _close(b, b_ref, rtol, f"buffer {name}")
        reference.eval(), fast.eval()
        with torch.no_grad():
            _close(fast(x.to(dtype)), reference(x), rtol, "eval output")
    finally:
        torch.set_num_threads(threads)


def _close(got, expected, rtol, what, floor=0.0):
    """max |got - expected| <= rtol * max(max |expected|, floor)."""
    got, expected = got.detach().double(), expected.detach()
    assert got.shape == expected.shape, what
    scale = max(float(expected.abs().max()), floor) or 1.0
    error = float((got - expected).abs().max())
    assert error <= rtol * scale, f"{what}: max error {error:.3g}, scale {scale:.3g}"


@pytest.mark.usefixtures("small_maps_take_the_fast_paths")
@pytest.mark.parametrize("channels", [8, 16])
@pytest.mark.parametrize("name,config", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_accelerated_equals_reference_in_float64(name, config, channels):
    _compare(config, channels, torch.float64, rtol=1e-9)


@pytest.mark.usefixtures("small_maps_take_the_fast_paths")
@pytest.mark.parametrize("channels", [8, 16])
@pytest.mark.parametrize("name,config", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_accelerated_equals_reference_in_float32(name, config, channels):
    if shutil.which(os.environ.get("CC", "cc")) is not None:
        assert kernels.available(), "a C compiler is present but kernels.c did not build"
    _compare(config, channels, torch.float32, rtol=1e-4)


def test_accelerate_keeps_state_dict_and_leaves_other_devices_alone():
    cfg = dict(BASE, channels=8, arch="recurrent", recurrent_layers=2, iterations=2,
               readout="2-avg")
    model = build(cfg)
    keys = {k: v.clone() for k, v in model.state_dict().items()}
    assert accelerate(model, "meta") is model
    assert all(type(m).__module__.startswith(("torch.", "rcpb.models")) for m in model.modules())
    accelerate(model, torch.device("cpu"))
    assert any(type(m).__module__.startswith("rcpb.accel") for m in model.modules())
    state = model.state_dict()
    assert list(state) == list(keys)
    assert all(torch.equal(state[k], v) for k, v in keys.items())
    build(cfg).load_state_dict(state)   # checkpoints of accelerated models load as reference
