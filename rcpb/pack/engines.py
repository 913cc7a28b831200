"""Where the tensors of a pack live and how one optimisation step of all its slots is computed.

Both engines train the unchanged stock-PyTorch model of :mod:`rcpb.models` with the objective of
:func:`rcpb.train.objective` and Adam (Kingma & Ba 2015, torch's update rule); a slot's numbers
never depend on the other slots (the equivalence tests in ``tests/test_pack.py`` hold each slot
equal to the same configuration trained alone):

- :class:`LoopEngine`: every slot is its own module (with the CPU speed paths of
  :func:`rcpb.accel.accelerate`) and its own :class:`rcpb.optim.Adam`, stepped one after the
  other in the same process. With one slot this *is* training alone (:func:`rcpb.train.train`).
- :class:`StackedEngine`: the slots' parameters, BatchNorm buffers and Adam moments are stacked
  along a leading slot axis ``[K, ...]``; one step is one batched computation,
  ``torch.func.vmap`` of ``torch.func.functional_call`` of the module, the loss is the sum of
  the active slots' own objectives (selected by index, never multiplied by 0), and the Adam
  update has a per-slot step count (bias correction) and learning rate.

An engine is driven by :func:`rcpb.pack.trainer.train_pack` through ``load`` (a configuration
into slot k), ``step`` (one step of the given slots), ``val_losses``, ``snapshot`` /
``restore`` (the best checkpoint, model and Adam state), ``set_lr``, ``export`` (slot k's
current state as a module) and ``release``. Which engine is the default where is measured by
``benchmarks/pack_throughput.py`` (docs/performance.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from rcpb.accel import accelerate
from rcpb.errors import RcpbError
from rcpb.optim import Adam
from rcpb.train import (EVAL_CHUNK, evaluation_prediction, objective, prediction_loss, predict,
                        target_bins)

BETAS = (0.9, 0.999)
EPS = 1e-8


@dataclass
class SlotData:
    """One configuration's data on the device: x_* ``[n, 1, H, W]``, y_* ``[n, neurons]`` (or
    time-binned ``[n, bins, neurons]``, rcpb.train.objective);
    ``*_nan``: whether the targets hold NaN (missing responses)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    train_nan: bool
    val_nan: bool


@dataclass
class Job:
    """One configuration to train: its freshly built model, data, resolved ``train`` dict
    (``tc``), loss name, and ``tag`` (the caller's handle, passed back when it finishes)."""

    model: nn.Module
    data: SlotData
    tc: dict
    loss: str
    tag: object = None


class LoopEngine:
    """Each slot its own accelerated module and Adam, stepped in turn."""

    def __init__(self, slots: int, device: torch.device):
        self.device = device
        self.jobs: list[Job | None] = [None] * slots
        self.opts: list[Adam | None] = [None] * slots
        self.best: list[tuple | None] = [None] * slots

    def load(self, k: int, job: Job) -> None:
        accelerate(job.model, self.device)   # CPU speed-ups, same function (docs/performance.md)
        job.model.train()
        self.jobs[k] = job
        self.opts[k] = Adam(job.model.parameters(), lr=job.tc["lr"], betas=BETAS, eps=EPS)

    def step(self, batches: dict[int, torch.Tensor]) -> torch.Tensor:
        """One step of each slot in ``batches`` (slot -> minibatch indices); returns the data
        losses of all slots (``[K]``, 0 for the others; not synchronised)."""
        zero = torch.zeros((), device=self.device)
        losses = [zero] * len(self.jobs)
        for k, idx in batches.items():
            job, opt = self.jobs[k], self.opts[k]
            idx = idx.to(self.device)
            data_loss, total = objective(job.model, job.data.x_train[idx], job.data.y_train[idx],
                                         job.tc, job.loss, has_nan=job.data.train_nan)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            losses[k] = data_loss.detach()
        return torch.stack(losses)

    def val_losses(self, ks: list[int]) -> list[float]:
        out = []
        for k in ks:
            job = self.jobs[k]
            pred = predict(job.model, job.data.x_val, n_bins=target_bins(job.data.y_val))
            out.append(prediction_loss(pred, job.data.y_val, job.loss, has_nan=job.data.val_nan))
            job.model.train()
        return torch.stack(out).tolist()

    def snapshot(self, k: int) -> None:
        model, opt = self.jobs[k].model, self.opts[k]
        self.best[k] = ({n: v.detach().clone() for n, v in model.state_dict().items()},
                        copy.deepcopy(opt.state_dict()))

    def restore(self, k: int) -> None:
        state, opt_state = self.best[k]
        self.jobs[k].model.load_state_dict(state)
        self.opts[k].load_state_dict(opt_state)   # loads copies: the snapshot stays as it was

    def set_lr(self, k: int, lr: float) -> None:
        self.opts[k].param_groups[0]["lr"] = lr

    def export(self, k: int) -> nn.Module:
        return self.jobs[k].model

    def release(self, k: int) -> None:
        self.jobs[k] = self.opts[k] = self.best[k] = None


def one_channel_batch_norm_without_cudnn(model: nn.Module) -> None:
    """Run the model's one-channel BatchNorm layers (the input BatchNorm) without cuDNN.

    Under vmap, BatchNorm folds the slot axis into the channel axis; with one channel the folded
    input is a strided view that cuDNN's BatchNorm refuses ("Expected input->is_contiguous(...)",
    seen with torch 2.11 on an H200), while PyTorch's own CUDA kernel takes it and gives the
    numbers of training alone. Wider BatchNorm layers and every convolution keep cuDNN. The
    switch is torch.backends.cudnn.enabled, set off for the layer's forward (whose backward
    follows the forward's choice) and restored after it."""
    saved: dict[nn.Module, bool] = {}

    def off(module, args):
        saved[module] = torch.backends.cudnn.enabled
        torch.backends.cudnn.enabled = False

    def restore(module, args, output):
        torch.backends.cudnn.enabled = saved.pop(module)

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.num_features == 1:
            module.register_forward_pre_hook(off)
            module.register_forward_hook(restore)


class _Objective(nn.Module):
    """``(data loss, objective)`` of one slot as a module, for ``functional_call``."""

    def __init__(self, model: nn.Module, loss: str):
        super().__init__()
        self.m = model
        self.loss = loss

    def forward(self, x, y, readout_l1, smoothness, has_nan: bool):
        tc = {"readout_l1": readout_l1, "smoothness": smoothness}
        return objective(self.m, x, y, tc, self.loss, has_nan=has_nan)


class StackedEngine:
    """The slots' state stacked along a slot axis; one step is one vmapped computation."""

    def __init__(self, slots: int, device: torch.device):
        self.K = slots
        self.device = device
        self.jobs: list[Job | None] = [None] * slots
        self.best: list[dict | None] = [None] * slots
        self.template: _Objective | None = None
        self._stores = None

    # ------------------------------------------------------------------ state

    def _allocate(self, job: Job) -> None:
        model = copy.deepcopy(job.model).to(self.device)
        if self.device.type == "cuda":
            one_channel_batch_norm_without_cudnn(model)
        self.template = _Objective(model, job.loss).train()
        K, dev = self.K, self.device
        self.params = {n: torch.zeros((K,) + p.shape, dtype=p.dtype, device=dev, requires_grad=True)
                       for n, p in model.named_parameters()}
        self.buffers = {n: torch.zeros((K,) + b.shape, dtype=b.dtype, device=dev)
                        for n, b in model.named_buffers()}
        self.exp_avg = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.steps = torch.zeros(K, dtype=torch.float64, device=dev)
        self.lrs = torch.zeros(K, dtype=torch.float64, device=dev)
        self.dtype = next(model.parameters()).dtype
        self.weights = torch.zeros(K, 2, dtype=self.dtype, device=dev)  # readout_l1, smoothness
        self.loss = job.loss
        # the same tensors under the names functional_call sees inside _Objective
        self._call_state = ({f"m.{n}": t for n, t in self.params.items()},
                            {f"m.{n}": t for n, t in self.buffers.items()})
        self._active = ((), None)   # (slots stepped, their index tensor on the device)

    @torch.no_grad()
    def load(self, k: int, job: Job) -> None:
        if self.template is None:
            self._allocate(job)
        names = [n for n, _ in job.model.named_parameters()]
        if names != list(self.params) or job.loss != self.loss:
            raise RcpbError("a pack's slots must share one model structure and loss "
                            "(rcpb.pack.kinds decides which configurations share a pack)")
        for n, p in job.model.named_parameters():
            self.params[n][k].copy_(p)
        for n, b in job.model.named_buffers():
            self.buffers[n][k].copy_(b)
        for moments in (self.exp_avg, self.exp_avg_sq):
            for t in moments.values():
                t[k].zero_()
        self.steps[k] = 0.0
        self.lrs[k] = job.tc["lr"]
        self.weights[k, 0] = job.tc["readout_l1"]
        self.weights[k, 1] = job.tc["smoothness"]
        self.jobs[k] = job
        self._stores = None   # the data store is rebuilt at the next step

    def _data_stores(self):
        """One device tensor of every distinct training set of the loaded slots, and each
        slot's offset into it, so that a step gathers all minibatches with one index."""
        if self._stores is None:
            seen: dict[int, int] = {}
            xs, ys, offsets, total = [], [], [], 0
            for job in self.jobs:
                if job is None:
                    offsets.append(0)
                    continue
                key = id(job.data.x_train)
                if key not in seen:
                    seen[key] = total
                    xs.append(job.data.x_train)
                    ys.append(job.data.y_train)
                    total += job.data.x_train.shape[0]
                offsets.append(seen[key])
            self._stores = (torch.cat(xs), torch.cat(ys), torch.tensor(offsets),
                            any(j.data.train_nan for j in self.jobs if j is not None))
        return self._stores

    # ------------------------------------------------------------------ step

    def step(self, batches: dict[int, torch.Tensor]) -> torch.Tensor:
        """One step of the slots in ``batches`` (slot -> minibatch indices); returns the data
        losses of all K slots (``[K]``; rows of other slots are meaningless)."""
        x_store, y_store, offsets, has_nan = self._data_stores()
        size = next(iter(batches.values())).shape[0]
        index = torch.zeros(self.K, size, dtype=torch.long)
        for k, idx in batches.items():
            index[k] = idx + offsets[k]
        index = index.to(self.device, non_blocking=True)
        x, y = x_store[index], y_store[index]               # [K, B, 1, S, S], [K, B, neurons]

        def one(params, buffers, x, y, w):
            return functional_call(self.template, (params, buffers), (x, y, w[0], w[1], has_nan))

        data_loss, total = vmap(one)(*self._call_state, x, y, self.weights)
        # a parameter the model's output does not use (e.g. the BatchNorm of a chain whose
        # iteration a no-avg readout ignores) gets no gradient and, as in torch's Adam, no update
        grads = torch.autograd.grad(total[self._active_index(batches)].sum(),
                                    list(self.params.values()),
                                    allow_unused=True)
        self._adam(grads)
        return data_loss.detach()

    def _active_index(self, batches: dict) -> torch.Tensor:
        """The stepped slots as an index tensor on the device, made again only when they change."""
        slots = tuple(sorted(batches))
        if self._active[0] != slots:
            self._active = (slots, torch.tensor(slots, device=self.device))
        return self._active[1]

    @torch.no_grad()
    def _adam(self, grads) -> None:
        """torch's Adam update (``torch.optim.adam``), with a step count and learning rate per
        slot: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
        ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``."""
        beta1, beta2 = BETAS
        self.steps += 1
        step_size = (self.lrs / (1 - beta1 ** self.steps)).to(self.dtype)
        bc2_sqrt = (1 - beta2 ** self.steps).sqrt().to(self.dtype)
        for (name, p), g in zip(self.params.items(), grads):
            if g is None:
                continue
            shape = (self.K,) + (1,) * (p.dim() - 1)
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / bc2_sqrt.view(shape)).add_(EPS)
            p.addcdiv_(m * -step_size.view(shape), denom)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def val_losses(self, ks: list[int]) -> list[float]:
        """Validation loss of slots ``ks`` (the prediction averaged over iterations, eval mode);
        slots with the same validation set are evaluated in one vmapped pass."""
        groups: dict[int, list[int]] = {}
        for k in ks:
            groups.setdefault(id(self.jobs[k].data.x_val), []).append(k)
        values: dict[int, torch.Tensor] = {}
        model = self.template.m
        model.eval()
        try:
            for members in groups.values():
                data = self.jobs[members[0]].data
                sel = torch.tensor(members, device=self.device)
                params = {n: p[sel] for n, p in self.params.items()}
                buffers = {n: b[sel] for n, b in self.buffers.items()}
                parts = []
                n_bins = target_bins(data.y_val)
                for i in range(0, data.x_val.shape[0], EVAL_CHUNK):
                    chunk = data.x_val[i: i + EVAL_CHUNK]

                    def one(p, b, chunk=chunk):
                        return evaluation_prediction(
                            functional_call(model, (p, b), (chunk,)), n_bins)

                    parts.append(vmap(one)(params, buffers))
                pred = torch.cat(parts, 1)           # [slots, n_val, neurons] (or bins, neurons)
                for g, k in enumerate(members):
                    values[k] = prediction_loss(pred[g], data.y_val, self.loss,
                                                has_nan=data.val_nan)
        finally:
            model.train()
        return torch.stack([values[k] for k in ks]).tolist()

    # ------------------------------------------------------------------ checkpoints

    @torch.no_grad()
    def snapshot(self, k: int) -> None:
        self.best[k] = {
            "params": {n: p[k].clone() for n, p in self.params.items()},
            "buffers": {n: b[k].clone() for n, b in self.buffers.items()},
            "exp_avg": {n: t[k].clone() for n, t in self.exp_avg.items()},
            "exp_avg_sq": {n: t[k].clone() for n, t in self.exp_avg_sq.items()},
            "step": self.steps[k].clone(),
        }

    @torch.no_grad()
    def restore(self, k: int) -> None:
        best = self.best[k]
        for key, stacked in (("params", self.params), ("buffers", self.buffers),
                             ("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            for n, t in stacked.items():
                t[k].copy_(best[key][n])
        self.steps[k] = best["step"]

    def set_lr(self, k: int, lr: float) -> None:
        self.lrs[k] = lr

    @torch.no_grad()
    def export(self, k: int) -> nn.Module:
        """Slot k's model (the module it was loaded with) holding the slot's current state."""
        model = self.jobs[k].model.to(self.device)
        state = {n: p[k].clone() for n, p in self.params.items()}
        state.update({n: b[k].clone() for n, b in self.buffers.items()})
        model.load_state_dict(state)
        return model.eval()

    def release(self, k: int) -> None:
        self.jobs[k] = self.best[k] = None
        self._stores = None


ENGINES = {"loop": LoopEngine, "stacked": StackedEngine}
