"""Configurations and output folders in, trained models' files out: ``rcpb train`` runs this.

:func:`run_pack` takes (resolved configuration, output folder) pairs, leaves members whose
folder already holds a finished result of the same configuration, prepares each distinct data
set once, builds every model, groups the members by slot kind (:func:`rcpb.pack.kinds.slot_kind`)
and trains each group with :func:`rcpb.pack.trainer.train_pack`. Per member it writes into its
folder (all files atomically):

- ``config.json``  the full resolved configuration (before training starts);
- ``log.csv``      one row per validation evaluation (rewritten after every phase);
- ``best.pt``      state dict of the best validation checkpoint (the single-model format);
- ``paths.json``   :func:`rcpb.path_stats.path_stats` of that model;
- ``metrics.json`` last: val/test metrics (:func:`rcpb.train.evaluate`), parameter counts,
  steps per phase, best step, wall time, ``n_train``, ``split_source``, and ``pack`` (engine
  and slots it was trained with).

A member whose loss became NaN or infinite (diverged) stops alone and is written as a failed
training: ``config.json``, ``log.csv`` and ``metrics.json`` = ``{"failed": reason, ...}``
(:data:`FAILED_KEY`), without val/test metrics. A failed member is finished: a rerun leaves it
(the same configuration would fail the same way).

A member's ``metrics.json`` marks it finished, so a pack killed at any point and run again
trains only the members without one, and gives the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from rcpb.errors import RcpbError

#: Key of a failed training's metrics.json (its value: why it failed).
FAILED_KEY = "failed"

ENGINES = ("stacked", "loop")


def default_engine(device: str) -> str:
    """The engine a pack uses unless told: measured by benchmarks/pack_throughput.py
    (docs/performance.md): on CUDA one batched computation, on CPU one module per slot."""
    return "stacked" if device == "cuda" else "loop"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_pack(members: list[tuple[dict, Path]], *, slots: int | None = None,
             engine: str | None = None, progress=_say) -> dict[str, str]:
    """Train the unfinished ``members`` (resolved configurations, all on one device; see the
    module docstring), at most ``slots`` at once per slot kind (default: all). Returns
    ``{output folder: "trained" | "failed" | "done-before" | "error"}``; "error": evaluating or
    writing that member's results raised (traceback in the log); it has no metrics.json, so a
    rerun trains it again, and its pack mates are not affected."""
    import torch

    from rcpb import models
    from rcpb.atomic_files import write_csv_atomic, write_json_atomic
    from rcpb.commands.train import _check_existing, _fill_data_fields
    from rcpb.data.prepare import prepare
    from rcpb.pack.engines import Job
    from rcpb.pack.kinds import slot_kind
    from rcpb.pack.trainer import train_pack
    from rcpb.train import LOG_COLUMNS, slot_data, train_config

    status: dict[str, str] = {}
    todo = []
    for cfg, out in members:
        if _check_existing(out, cfg):
            status[str(out)] = "done-before"
        else:
            todo.append((cfg, Path(out)))
    if not todo:
        return status
    devices = {cfg["device"] for cfg, _ in todo}
    if len(devices) > 1:
        raise RcpbError(f"one pack trains on one device; its members ask for {sorted(devices)}")
    device = torch.device(devices.pop())
    engine = engine or default_engine(device.type)

    # One preparation per data set and split, at the largest training fraction its members
    # use; the smaller fractions are its nested subsets (with_fraction), sharing every array
    # but the training rows, also on the device (tensors): one copy of the data per split.
    def split_key(cfg):
        return json.dumps([cfg["dataset_file"], cfg["preprocess"], cfg["split_seed"],
                           cfg["loss"]], sort_keys=True)

    largest: dict[str, float] = {}
    for cfg, _ in todo:
        largest[split_key(cfg)] = max(largest.get(split_key(cfg), 0.0), cfg["train_fraction"])
    prepared: dict[tuple, object] = {}
    on_device: dict[int, object] = {}
    tensors: dict[int, tuple] = {}
    groups: dict[tuple, list] = {}
    for cfg, out in todo:
        key, fraction = split_key(cfg), cfg["train_fraction"]
        if (key, largest[key]) not in prepared:
            prepared[key, largest[key]] = prepare(
                cfg["dataset_file"], cfg["preprocess"], split_seed=cfg["split_seed"],
                train_fraction=largest[key], loss=cfg["loss"])
        if (key, fraction) not in prepared:
            prepared[key, fraction] = with_fraction(prepared[key, largest[key]], fraction,
                                                    cfg["split_seed"])
        data = prepared[key, fraction]
        if id(data) not in on_device:
            on_device[id(data)] = slot_data(data, device, tensors)
        _fill_data_fields(cfg, data)
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("metrics.json", "best.pt", "paths.json"):
            (out / stale).unlink(missing_ok=True)
        write_json_atomic(out / "config.json", cfg)
        torch.manual_seed(int(cfg["model_seed"]))
        job = Job(models.build(cfg), on_device[id(data)], train_config(cfg), cfg["loss"],
                  tag=(cfg, out, data))
        progress(f"rcpb train {cfg.get('config_id') or out.name}: {len(data.x_train)} training "
                 f"stimuli, {models.count_parameters(job.model)} parameters, device {device.type}")
        # the stacked engine computes a group's slots as one: they must share a slot kind; the
        # loop engine steps each slot's own module, so one group holds every member
        kind = slot_kind(cfg, len(data.x_train)) if engine == "stacked" else "any"
        groups.setdefault(kind, []).append(job)

    def write_log(job, schedule):
        write_csv_atomic(job.tag[1] / "log.csv", schedule.log, LOG_COLUMNS)

    def phase_end(job, schedule):
        write_log(job, schedule)
        progress(f"rcpb train {job.tag[0].get('config_id') or job.tag[1].name}: "
                 f"{schedule.phase_summary()}")

    for jobs in groups.values():
        width = min(slots or len(jobs), len(jobs))
        pack = {"engine": engine, "slots": width}
        progress(f"rcpb train: {len(jobs)} configuration(s), {width} at a time "
                 f"({engine} engine, {device.type})")

        def finished(job, schedule, model, wall_s, pack=pack):
            cfg, out, data = job.tag
            write_log(job, schedule)
            if schedule.failed is not None:
                write_json_atomic(out / "metrics.json", {
                    FAILED_KEY: schedule.failed, "failed_at_step": schedule.step,
                    "steps_per_phase": schedule.steps_per_phase,
                    "n_train": int(len(data.x_train)), "wall_time_s": wall_s, "pack": pack})
                status[str(out)] = "failed"
                progress(f"rcpb train {cfg.get('config_id') or out.name}: FAILED, "
                         f"{schedule.failed}")
                return
            try:
                _write_trained(out, cfg, data, model, schedule, wall_s, pack)
            except RcpbError as exc:   # e.g. a full disk: one clear line, nothing partial left
                progress(f"rcpb train {cfg.get('config_id') or out.name}: ERROR: {exc}")
                status[str(out)] = "error"
                return
            except Exception:      # this member only: its pack mates go on; a rerun retries it
                progress(f"rcpb train {cfg.get('config_id') or out.name}: ERROR while "
                         f"evaluating or writing its results (not finished):\n"
                         f"{traceback.format_exc()}")
                status[str(out)] = "error"
                return
            status[str(out)] = "trained"

        train_pack(jobs, finished, slots=width, engine=engine, device=device,
                   on_phase_end=phase_end)
    return status


def with_fraction(data, fraction: float, split_seed: int):
    """``data`` (:class:`rcpb.data.prepare.Prepared` at a larger ``train_fraction`` of split
    ``split_seed``) cut to ``fraction``: what ``prepare`` gives for ``fraction``, the training
    rows being a nested subset of the larger fraction's (rcpb.data.splits.training_subset); every
    other array is shared, not copied."""
    import dataclasses

    import numpy as np

    from rcpb.data.splits import training_subset

    # the full training set: every stimulus that is neither validation nor test
    n = data.n_train_full + data.val_index.size + data.test_index.size
    train_full = np.setdiff1d(np.arange(n), np.concatenate([data.val_index, data.test_index]))
    index = training_subset(train_full, fraction, split_seed).astype(np.int64)
    rows = np.searchsorted(data.train_index, index)
    if not np.array_equal(data.train_index[np.minimum(rows, data.train_index.size - 1)], index):
        raise ValueError(f"train_fraction {fraction} is not a subset of the prepared "
                         f"{data.train_index.size} training stimuli")
    return dataclasses.replace(data, x_train=data.x_train[rows], y_train=data.y_train[rows],
                               train_index=index)


def _write_trained(out: Path, cfg: dict, data, model, schedule, wall_s: float,
                   pack: dict) -> None:
    """best.pt, paths.json and, last, metrics.json of a finished member."""
    from rcpb import models, path_stats
    from rcpb.atomic_files import save_atomic, write_json_atomic
    from rcpb.train import evaluate

    save_atomic({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                out / "best.pt")
    metrics = evaluate(model, data, cfg)
    model.cpu()
    write_json_atomic(out / "paths.json", path_stats.path_stats(model))
    metrics.update({
        "n_params": int(models.count_parameters(model)),
        "n_conv_params": int(models.count_conv_parameters(model)),
        "steps_per_phase": schedule.steps_per_phase,
        "best_step": schedule.best_step,
        "best_val_loss": schedule.best_val,
        "wall_time_s": wall_s,
        "n_train": int(len(data.x_train)),
        "split_source": data.split_source,
        "pack": pack,
    })
    write_json_atomic(out / "metrics.json", metrics)
    _say(f"rcpb train {cfg.get('config_id') or out.name}: test cc_norm2 "
         f"{metrics['test']['cc_norm2']:.4f}, {wall_s:.1f} s")


def write_done(path: Path, status: dict[str, str]) -> None:
    """The pack marker: every member's status, written atomically once all are finished."""
    from rcpb.atomic_files import write_json_atomic

    write_json_atomic(Path(path), {"members": status})
