"""Train many configurations in one process: K slots, each running its own schedule.

:func:`train_pack` keeps K = ``slots`` configurations training at once in an engine
(:mod:`rcpb.pack.engines`). Each slot has its own minibatch order (a ``torch.Generator``
seeded with its ``train.data_seed``), Adam state and step count, learning-rate phase,
early-stopping counter and best checkpoint (:class:`rcpb.pack.schedule.Schedule`). When a
slot finishes (or fails: NaN or infinite loss), ``on_finish`` receives it and the slot takes
the next configuration of the queue, so K stays constant until the queue runs dry. A slot's
numbers are those of its configuration trained alone (tests/test_pack.py).

For the stacked engine the jobs given to one call must share a slot kind
(:func:`rcpb.pack.kinds.slot_kind`: the same model structure, loss and minibatch size); the loop
engine takes any mix.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import torch

from rcpb.pack.engines import ENGINES, Job
from rcpb.pack.schedule import Schedule


def nanmean_rows(y: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """``torch.nanmean(y, 0)`` (its very formula: nansum over rows / valid count) without the
    int64 copy of ``y`` it makes to count (a [stimuli, neurons] training set: 8 bytes a value);
    the valid values are counted ``block`` rows at a time."""
    count = sum((~torch.isnan(part)).sum(0) for part in y.split(block))
    return torch.nansum(y, 0).div(count)


def minibatches(n: int, batch_size: int, generator: torch.Generator):
    """Endless minibatch index tensors (CPU, int64): a new permutation of ``range(n)`` per epoch
    from ``generator``, the last incomplete batch dropped; ``n < batch_size``: all n at once."""
    size = min(batch_size, n)
    per_epoch = n // size
    while True:
        perm = torch.randperm(n, generator=generator)
        for i in range(per_epoch):
            yield perm[i * size: (i + 1) * size]


class _Slot:
    """What the trainer keeps per slot: its job, schedule, minibatches and timing."""

    def __init__(self, job: Job):
        self.job = job
        self.schedule = Schedule(job.tc)
        generator = torch.Generator().manual_seed(int(job.tc["data_seed"]))
        self.batches = minibatches(job.data.x_train.shape[0], int(job.tc["batch_size"]),
                                   generator)
        self.since_eval = 0       # steps since the last evaluation
        self.start = time.perf_counter()


def train_pack(
    jobs: list[Job],
    on_finish: Callable[[Job, Schedule, torch.nn.Module | None, float], None],
    *,
    slots: int | None = None,
    engine: str = "loop",
    device: str | torch.device = "cpu",
    on_phase_end: Callable[[Job, Schedule], None] | None = None,
) -> None:
    """Train ``jobs`` (one slot kind), at most ``slots`` at once (default: all).

    ``on_finish(job, schedule, model, wall_s)`` is called once per job when it is finished
    (``model``: its module holding the best state, in eval mode) or has failed
    (``schedule.failed`` says why; ``model`` None). ``on_phase_end(job, schedule)`` after each
    phase. ``engine``: "loop" or "stacked" (:mod:`rcpb.pack.engines`).
    """
    device = torch.device(device)
    queue = deque(jobs)
    width = min(slots or len(jobs), len(jobs))
    eng = ENGINES[engine](width, device)
    running = torch.zeros(width, device=device)     # sum of data losses since the last evaluation
    active: dict[int, _Slot] = {}

    def finish(k: int) -> None:
        slot = active.pop(k)
        failed = slot.schedule.failed is not None
        model = None if failed else eng.export(k)
        eng.release(k)
        on_finish(slot.job, slot.schedule, model, time.perf_counter() - slot.start)

    def fill(k: int) -> None:
        """Load the queue's next job into slot k (and the next, while one fails at once)."""
        while queue:
            job = queue.popleft()
            with torch.no_grad():
                job.model.to(device)
                y = job.data.y_train   # [n, neurons] or time-binned [n, bins, neurons]
                job.model.readout.init_bias(nanmean_rows(y.reshape(-1, y.shape[-1])))
            eng.load(k, job)
            slot = active[k] = _Slot(job)
            running[k] = 0.0
            if slot.schedule.start(eng.val_losses([k])[0]).failed:
                finish(k)
                continue
            eng.snapshot(k)
            return

    for k in range(width):
        fill(k)
    while active:
        running += eng.step({k: next(slot.batches) for k, slot in active.items()})
        due = []
        for k, slot in active.items():
            slot.since_eval += 1
            if slot.schedule.stepped():
                due.append(k)
        if not due:
            continue
        val = eng.val_losses(due)
        train_sum = running[due].tolist()
        for k, value, total in zip(due, val, train_sum):
            slot = active[k]
            decision = slot.schedule.evaluated(total / slot.since_eval, value)
            slot.since_eval = 0
            running[k] = 0.0
            if decision.failed:
                finish(k)
                fill(k)
                continue
            if decision.improved:
                eng.snapshot(k)
            if decision.phase_over:
                eng.restore(k)
                if on_phase_end is not None:
                    on_phase_end(slot.job, slot.schedule)
                if decision.finished:
                    finish(k)
                    fill(k)
                else:
                    eng.set_lr(k, slot.schedule.lr)
