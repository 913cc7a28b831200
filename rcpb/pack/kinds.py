"""Which training configurations may share a pack: the one place that decides it.

A pack trains K configurations at once from one model definition (``rcpb.pack.engines``): every
slot must run the same sequence of operations on tensors of the same shapes. So configurations
share a pack only when they agree in every field that changes the model's structure, the loss
or the minibatch shape:

- :data:`STRUCTURE_FIELDS`, read from the configuration (:func:`pack_key`, used by the grid to
  put configurations into the same Snakemake pack job);
- the data-derived ``input_size``, ``n_neurons`` and the minibatch size actually used,
  ``min(batch_size, n_train)`` (:func:`slot_kind`, used by the trainer within a job: a job's
  members that differ here are trained in separate groups of slots).

That holds for the stacked engine (one vmapped computation, the default on CUDA). The loop
engine (the default on CPU) steps each slot's own module, so any configurations may share its
slots; a CPU training job holds configurations of one architecture and size
(:func:`job_key`), so that its members cost about the same and adding a grid value regroups
only the jobs of the sizes it touches.

Everything else may differ between the slots of a pack and is handled per slot: ``model_seed``,
``split_seed``, ``train_fraction``, ``train.data_seed``, ``train.lr``, ``train.lr_decay``,
``train.phases``, ``train.eval_every``, ``train.patience``, ``train.max_steps``,
``train.readout_l1``, ``train.smoothness``, the dataset file and its preprocessing (as long as
the shapes agree), and the family (a multi-path model and its ablations with the same kept
lengths have the same structure).

torch-free: the workflow imports it through :mod:`rcpb.grid` on every start.
"""

from __future__ import annotations

import hashlib
import json

from rcpb.sizes import hw

#: Configuration fields that every slot of a pack shares (absent fields count as None).
#: ``cell``: absent, None and "rcpb" are one value (:data:`DEFAULT_FIELDS`).
STRUCTURE_FIELDS = ("arch", "channels", "blocks", "recurrent_layers", "iterations", "readout",
                    "act", "first_block_order", "allowed_lengths", "loss", "device", "cell")

#: Fields whose default value counts as absent, and the default. They enter the hashed fields
#: only when set to another value, so the keys of configurations written before the field
#: existed (and of configurations that leave it at its default) do not change.
DEFAULT_FIELDS = {"cell": "rcpb"}

#: Fields of ``train`` that every slot shares: the minibatch shape.
TRAIN_STRUCTURE_FIELDS = ("batch_size",)


def _fields(cfg: dict, names) -> dict:
    """``{name: cfg.get(name)}``, leaving out fields of :data:`DEFAULT_FIELDS` that are absent,
    None or at their default."""
    return {k: cfg.get(k) for k in names
            if k not in DEFAULT_FIELDS or cfg.get(k) not in (None, DEFAULT_FIELDS[k])}


def _head(cfg: dict, with_iterations: bool) -> str:
    """``ff{blocks}``, or ``rec-L{layers}[-T{T}]`` with the cell after the arch when it is not
    rcpb (``rec-convlstm-L1-T4``)."""
    if cfg.get("arch") == "ff":
        return f"ff{cfg.get('blocks')}"
    head = f"{cfg.get('arch', '?')[:3]}"
    if cfg.get("cell") not in (None, DEFAULT_FIELDS["cell"]):
        head += f"-{cfg.get('cell')}"
    head += f"-L{cfg.get('recurrent_layers')}"
    return head + (f"-T{cfg.get('iterations')}" if with_iterations else "")


def _structure(cfg: dict) -> dict:
    train = cfg.get("train") or {}
    out = _fields(cfg, STRUCTURE_FIELDS)
    out.update({f"train.{k}": train.get(k) for k in TRAIN_STRUCTURE_FIELDS})
    return out


def pack_key(cfg: dict) -> str:
    """Short text naming the structure of ``cfg``: configurations with the same key may be
    packed together (before their data are prepared). E.g. ``rec-L1-T4-c8-1a2b3c4d``,
    ``rec-convlstm-L1-T4-c8-...``."""
    return _named(_head(cfg, True), cfg, _structure(cfg))


#: Fields that group configurations into CPU training jobs (the loop engine); ``cell`` as in
#: :data:`STRUCTURE_FIELDS` (a cell changes a model's cost).
SIZE_FIELDS = ("arch", "channels", "blocks", "recurrent_layers", "cell")


def job_key(cfg: dict, device: str = "cpu") -> str:
    """Configurations with the same key go into the same training jobs (``rcpb.grid.packs``):
    on CUDA the structure (:func:`pack_key`), on CPU the architecture and size."""
    if device == "cuda":
        return pack_key(cfg)
    return _named(_head(cfg, False), cfg, _fields(cfg, SIZE_FIELDS))


def _named(head: str, cfg: dict, fields: dict) -> str:
    """``{head}-c{channels}-{8 hex digits of the SHA-256 of fields}``."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    return f"{head}-c{cfg.get('channels')}-{digest}"


def slot_kind(cfg: dict, n_train: int) -> tuple:
    """Everything two resolved configurations (``input_size`` and ``n_neurons`` filled from
    their data; ``n_train`` training stimuli) must share to be trained in the same slots."""
    batch = min(int(cfg["train"]["batch_size"]), int(n_train))
    size = cfg.get("input_size")
    return (pack_key(cfg), None if size is None else hw(size), cfg.get("n_neurons"), batch)
