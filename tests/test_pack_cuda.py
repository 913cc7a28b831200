"""The pack equivalence tests on a CUDA device (skipped without one): each slot of a stacked
pack on the GPU equals its configuration trained alone on the GPU, for every architecture and
readout mode, and for time-binned targets (tests/test_pack.py and tests/test_dynamics_fit.py
hold the same on the CPU)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_dynamics_fit import _binned_slot_data
from test_pack import ARCHS, _assert_same, _mixed

from rcpb.models import build
from rcpb.pack.engines import Job, SlotData
from rcpb.pack.trainer import train_pack
from rcpb.train import train_config

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _on(data: SlotData, device) -> SlotData:
    return dataclasses.replace(data, **{f.name: getattr(data, f.name).to(device)
                                        for f in dataclasses.fields(data)
                                        if isinstance(getattr(data, f.name), torch.Tensor)})


def _run(configs, datas, engine, slots, device="cuda", dtype=torch.float64):
    out = {}

    def finished(job, schedule, model, wall_s):
        out[job.tag] = (schedule, {k: v.detach().cpu().clone()
                                   for k, v in model.state_dict().items()})

    jobs = [Job(build(c).to(dtype), _on(d, device), train_config(c), c["loss"], tag=i)
            for i, (c, d) in enumerate(zip(configs, datas))]
    train_pack(jobs, finished, slots=slots, engine=engine, device=device)
    return out


@needs_cuda
@pytest.mark.parametrize("arch", ARCHS)
def test_stacked_slots_on_cuda_equal_their_configurations_alone(arch):
    torch.backends.cudnn.deterministic = True
    configs, datas = _mixed(arch)
    packed = _run(configs, datas, "stacked", slots=3)
    for i in range(len(configs)):
        _assert_same(_run([configs[i]], [datas[i]], "loop", 1)[0], packed[i], tol=1e-7)


@needs_cuda
@pytest.mark.parametrize("arch", [dict(arch="ff", blocks=3),
                                  dict(arch="recurrent", recurrent_layers=1, iterations=3,
                                       readout="late-avg")], ids=["ff", "recurrent"])
def test_time_binned_packs_on_cuda_equal_training_alone(arch):
    from test_dynamics_fit import _config

    configs = [_config(arch, seed=s) for s in range(3)]
    datas = [_binned_slot_data(64, 0), _binned_slot_data(48, 1), _binned_slot_data(64, 0)]
    packed = _run(configs, datas, "stacked", 2)
    for i in range(3):
        _assert_same(_run([configs[i]], [datas[i]], "loop", 1)[0], packed[i], tol=1e-7)


def test_one_channel_batch_norm_runs_without_cudnn_and_restores_it():
    """The input BatchNorm (1 channel) sees cuDNN off during its forward, the others see it on,
    and the setting is restored after (rcpb.pack.engines.one_channel_batch_norm_without_cudnn)."""
    from rcpb.pack.engines import one_channel_batch_norm_without_cudnn
    from test_pack import _config

    model = build(_config(dict(arch="ff", blocks=3), 0, 0.01))
    one_channel_batch_norm_without_cudnn(model)
    seen = {}

    def record(name):
        def hook(module, args):
            seen.setdefault(name, torch.backends.cudnn.enabled)
        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.register_forward_pre_hook(record(name))
    before = torch.backends.cudnn.enabled
    model(torch.randn(4, 1, 13, 13))
    assert torch.backends.cudnn.enabled == before
    one_channel = {n for n, m in model.named_modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.num_features == 1}
    assert one_channel == {"bn_in"}
    assert seen["bn_in"] is False
    assert all(v == before for n, v in seen.items() if n != "bn_in") and len(seen) > 1
