"""Packed training (rcpb.pack): each slot of a pack trains exactly as its configuration alone.

"Alone" is :func:`rcpb.train.train`'s path: one slot, the loop engine. The stacked engine
computes all slots in one vmapped step with per-slot Adam; it is compared in float64, where
summation-order differences stay at rounding level. (In float32 they do not: parameters whose
true gradient is 0, such as BN_in's shift before a BatchNorm, get gradients of rounding noise
near Adam's eps, which Adam's normalisation turns into steps of size lr. Both engines do that;
the noise differs between them.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcpb.models import build
from rcpb.models.readout import READOUT_MODES
from rcpb.pack.engines import Job, SlotData
from rcpb.pack.kinds import job_key, pack_key, slot_kind
from rcpb.pack.trainer import train_pack
from rcpb.train import train, train_config

SIZE = 13          # input px (the smallest the models take is 11)
NEURONS = 5


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n_train: int, seed: int = 0, dtype=torch.float64) -> SlotData:
    """Responses of a fixed linear-nonlinear filter bank plus noise, so that training improves
    and then stalls (early stopping happens)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + 60, 1, SIZE, SIZE))
    filters = rng.normal(size=(NEURONS, SIZE * SIZE)) / SIZE
    y = np.maximum(x.reshape(len(x), -1) @ filters.T, 0) + 0.3 * rng.normal(size=(len(x), NEURONS))
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return SlotData(t(x[:n_train]), t(y[:n_train]), t(x[n_train:]), t(y[n_train:]), False, False)


def _config(arch: dict, seed: int, lr: float, **train_over) -> dict:
    train = dict(batch_size=16, lr=lr, lr_decay=3.0, phases=2, eval_every=10, patience=3,
                 max_steps=100, readout_l1=0.01, smoothness=5e-6, data_seed=seed)
    train.update(train_over)
    return dict(channels=4, act="relu", first_block_order="bn_act", input_size=SIZE,
                n_neurons=NEURONS, model_seed=seed, loss="mse", train=train, **arch)


def _run(configs, datas, engine, slots, dtype=torch.float64):
    """Train ``configs`` (data ``datas[i]``) as one pack; {index: (schedule, state dict)}."""
    out = {}

    def finished(job, schedule, model, wall_s):
        state = None if model is None else {k: v.clone() for k, v in model.state_dict().items()}
        out[job.tag] = (schedule, state)

    jobs = [Job(build(c).to(dtype), d, train_config(c), c["loss"], tag=i)
            for i, (c, d) in enumerate(zip(configs, datas))]
    train_pack(jobs, finished, slots=slots, engine=engine)
    return out


def _alone(configs, datas, dtype=torch.float64):
    """Each configuration in a pack of its own (what rcpb.train.train does)."""
    return {i: _run([c], [d], "loop", 1, dtype)[0] for i, (c, d) in enumerate(zip(configs, datas))}


def _assert_same(a, b, tol):
    (sa, state_a), (sb, state_b) = a, b
    assert sb.failed is None and sa.failed is None
    # identical early-stopping decisions
    assert sb.steps_per_phase == sa.steps_per_phase
    assert sb.best_step == sa.best_step
    assert [r["step"] for r in sb.log] == [r["step"] for r in sa.log]
    # losses and parameters within rounding
    for ra, rb in zip(sa.log, sb.log):
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=tol, abs=tol)
        if not math.isnan(ra["train_loss"]):
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=tol, abs=tol)
    for key, value in state_a.items():
        torch.testing.assert_close(state_b[key].double(), value.double(), rtol=tol, atol=tol)


ARCHS = ([pytest.param(dict(arch="ff", blocks=3), id="ff")]
         + [pytest.param(dict(arch="recurrent", recurrent_layers=1, iterations=3, readout=m),
                         id=f"rec-{m}") for m in READOUT_MODES]
         + [pytest.param(dict(arch="multipath", recurrent_layers=1, iterations=3,
                              readout=m), id=f"multipath-{m}") for m in READOUT_MODES])


def _mixed(arch):
    """Four configurations of one kind: different seeds, data sizes and learning rates."""
    datas = [_data(96, seed=0), _data(64, seed=1), _data(96, seed=0), _data(80, seed=2)]
    configs = [_config(arch, 0, 0.01), _config(arch, 1, 0.01), _config(arch, 2, 0.003, patience=20),
               _config(arch, 3, 0.03, patience=2)]
    return configs, datas


@pytest.mark.parametrize("arch", ARCHS)
def test_stacked_slots_equal_their_configurations_alone(arch):
    configs, datas = _mixed(arch)
    alone = _alone(configs, datas)
    # 3 slots for 4 configurations: the slot that finishes first takes the fourth
    packed = _run(configs, datas, "stacked", slots=3)
    phases_run = set()
    for i in range(len(configs)):
        _assert_same(alone[i], packed[i], tol=1e-7)
        phases_run.add(tuple(alone[i][0].steps_per_phase))
    # the case is not degenerate: phases end by patience as well as by max_steps
    assert any(s < 100 for steps in phases_run for s in steps)
    assert any(s == 100 for steps in phases_run for s in steps)


def test_loop_engine_pack_is_bit_identical_to_training_alone_in_float32():
    arch = dict(arch="recurrent", recurrent_layers=1, iterations=2, readout="late-avg")
    configs, _ = _mixed(arch)
    datas = [_data(96, seed=0, dtype=torch.float32), _data(64, seed=1, dtype=torch.float32),
             _data(96, seed=0, dtype=torch.float32), _data(80, seed=2, dtype=torch.float32)]
    alone = _alone(configs, datas, torch.float32)
    packed = _run(configs, datas, "loop", slots=2, dtype=torch.float32)
    for i in range(len(configs)):
        _assert_same(alone[i], packed[i], tol=0.0)


def test_loop_engine_pack_of_mixed_structures_equals_each_alone():
    archs = [dict(arch="ff", blocks=5),
             dict(arch="recurrent", recurrent_layers=2, iterations=2, readout="2-avg"),
             dict(arch="multipath", recurrent_layers=1, iterations=2, readout="no-avg")]
    configs = [_config(a, i, 0.01) for i, a in enumerate(archs)]
    datas = [_data(64, seed=i, dtype=torch.float32) for i in range(3)]
    alone = _alone(configs, datas, torch.float32)
    packed = _run(configs, datas, "loop", slots=2, dtype=torch.float32)
    for i in range(len(configs)):
        _assert_same(alone[i], packed[i], tol=0.0)


def test_same_configuration_in_two_packs_gives_the_same_result():
    arch = dict(arch="recurrent", recurrent_layers=2, iterations=2, readout="no-avg")
    configs, datas = _mixed(arch)
    shared = _config(arch, 7, 0.01)
    data = _data(96, seed=3)
    first = _run([shared] + configs[:2], [data] + datas[:2], "stacked", slots=3)[0]
    second = _run(configs[2:] + [shared], datas[2:] + [data], "stacked", slots=2)[2]
    _assert_same(first, second, tol=1e-9)


@pytest.mark.parametrize("engine", ["stacked", "loop"])
def test_a_diverging_slot_stops_alone_and_the_others_finish_as_alone(engine):
    arch = dict(arch="ff", blocks=3)
    configs, datas = _mixed(arch)
    configs[1] = _config(arch, 1, math.inf)   # its first Adam step makes the parameters inf/NaN
    packed = _run(configs, datas, engine, slots=4)
    schedule, state = packed[1]
    assert state is None
    assert schedule.failed is not None and "diverged" in schedule.failed
    assert schedule.step == 10             # found at its first evaluation, step eval_every
    alone = _alone([configs[i] for i in (0, 2, 3)], [datas[i] for i in (0, 2, 3)])
    for i, j in zip((0, 2, 3), range(3)):
        _assert_same(alone[j], packed[i], tol=1e-7 if engine == "stacked" else 0.0)


def test_training_alone_reports_a_diverged_run_as_failed():
    from rcpb.data.prepare import Prepared

    d = _data(64, dtype=torch.float32)
    data = Prepared(x_train=d.x_train.numpy(), y_train=d.y_train.numpy(), x_val=d.x_val.numpy(),
                    y_val=d.y_val.numpy(), x_test=d.x_val.numpy(), y_test=d.y_val.numpy(),
                    responses=np.zeros((1, 1, NEURONS), np.float32), input_size=SIZE,
                    n_neurons=NEURONS, n_train_full=64, test_index=np.arange(1))
    cfg = _config(dict(arch="ff", blocks=3), 0, math.inf)
    result = train(build(cfg), data, cfg)
    assert result.failed is not None and result.best_state is None


def test_pack_kinds_separate_structures_and_allow_per_slot_settings():
    ff = _config(dict(arch="ff", blocks=3), 0, 0.01)
    assert pack_key(ff) == pack_key(_config(dict(arch="ff", blocks=3), 5, 0.1, max_steps=7))
    assert pack_key(ff) == pack_key(dict(ff, train_fraction=0.5, split_seed=3, dataset_file="b"))
    assert pack_key(ff) != pack_key(_config(dict(arch="ff", blocks=5), 0, 0.01))
    assert pack_key(ff) != pack_key(dict(ff, channels=8))
    assert pack_key(ff) != pack_key(dict(ff, loss="poisson"))
    assert pack_key(ff) != pack_key(_config(dict(arch="ff", blocks=3), 0, 0.01, batch_size=32))
    # data-derived: input size, neurons, and the minibatch actually used
    assert slot_kind(ff, 100) == slot_kind(ff, 50)
    assert slot_kind(ff, 100) != slot_kind(ff, 8)               # 8 stimuli < batch 16
    assert slot_kind(ff, 100) != slot_kind(dict(ff, n_neurons=6), 100)
    # training jobs: on CUDA by structure, on CPU (loop engine) by architecture and size
    rec = _config(dict(arch="recurrent", recurrent_layers=1, iterations=2, readout="no-avg"), 0, 0.01)
    rec4 = dict(rec, iterations=4, readout="2-avg", act="softplus")
    assert job_key(rec, "cuda") != job_key(rec4, "cuda")
    assert job_key(rec, "cpu") == job_key(rec4, "cpu")
    assert job_key(rec, "cpu") != job_key(dict(rec, recurrent_layers=2), "cpu")
    assert job_key(rec, "cpu") != job_key(dict(rec, channels=8), "cpu")
