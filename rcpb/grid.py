"""Expansion of the config's grids into named, hashed training configurations (SPEC 8).

The workflow config (``config.yaml``, checked against ``schemas/config.schema.yaml``) lists
datasets and grids. Each dataset names one or more grids; a grid lists, per model *family*,
the axes whose Cartesian product is trained:

- ``common``: axes every family starts from (``split_seed``, ``train_fraction``, ``channels``,
  ``act``, ``first_block_order``, ``loss``, ``model_seed``);
- ``ff``: ``blocks``;
- ``recurrent``: ``recurrent_layers``, ``iterations``, ``readout``, ``cell`` (optional, default
  ``[rcpb]``; see "Cells" below);
- ``multipath``: starts from the recurrent family's axes but the cell (every rcpb recurrent
  configuration is retrained as a multi-path model) and overrides those it lists;
- ``ablation_rm``: starts from the multipath axes; ``remove_adjacent`` (numbers of adjacent
  path lengths removed, SPEC 7) and/or ``sets`` (explicit ablation names such as ``rm1,3``);
- ``ablation_lege``: starts from the multipath axes; every ``le{k}`` and ``ge{k}`` for each T;
- the controls ``ff_wider``, ``ff_deeper``, ``ff_depth``, ``min_unrolled``: each starts from the
  recurrent family's axes, cell included, and overrides those it lists (see "Controls").

Every family may override any common axis. A family that is absent is not trained, except for
the *partners* the other families need: every comparison model is trained. A recurrent model's
partner is the size-matched feed-forward model (``blocks = 2 * recurrent_layers + 1``, all other
axes equal), a multi-path model's partner its recurrent twin, an ablated model's partner the
unablated multi-path model. When a partner is not in its family's grid it is added to that
family (and counted as added by :func:`count`), so every comparison can be made.

Each distinct ablation is trained once. An ablation name stands for the set of path lengths it
keeps (``allowed_lengths``, :func:`rcpb.ablation_sets.parse_ablation`), and different names
can keep the same set: with 1 recurrent layer and T = 4 (lengths 1..4) ``le2`` = ``rm3-4``,
``le3`` = ``rm4``, ``ge2`` = ``rm1``, ``ge3`` = ``rm1-2``, and ``le4`` = ``ge1`` keep every
length (the unablated multi-path model). Of the ablated configurations that agree in everything but family and name
and keep the same set, one is trained and the others become *aliases*, which are not trained:

- a name that keeps every length is an alias of its partner, the unablated multi-path model
  (always in the grid, as the partner);
- otherwise the trained name is the first in family order (``ablation_rm`` before
  ``ablation_lege``, so the rm family keeps all its distinct trainings), then in the order the
  grids generate them (first grid first; within ``ablation_rm`` the ``remove_adjacent`` names
  before ``sets``; ``le{k}`` before ``ge{k}``).

An alias is the configuration dict the name would have had (its own ``family``, ``ablation``,
``allowed_lengths``, ``config_id`` and ``partner_id``) plus ``trained_as``, the config id of the
training that stands for it. :func:`expand` returns the trainings only (every consumer of the
grid: training rules, grid files, counts); ``expand(config, aliases=d)`` or
:func:`expand_aliases` give the aliases per dataset, and aggregation gives each alias a row of
the results table copied from its training (``analysis.aggregate``). Trained configurations
keep their ids; which names are aliases can change when the grid changes (adding ``rm3-4``
turns a trained ``le2`` into its alias).

Cells. The ``cell`` axis (:mod:`rcpb.cell_kinds`: ``rcpb``, ``vanilla``, ``convlstm``, ``rgc``)
chooses the recurrent cell of the recurrent family (and of the controls, which inherit it). A
configuration holds the field ``cell`` only when it is not ``rcpb`` (the model builder reads an
absent field as rcpb), so every id of a grid without the axis, or with ``cell: [rcpb]``, is
what it was before the axis existed; another cell's readable id names it (``rec-convlstm-L1-T4-
noavg-...``). Multi-path models and their ablations are built for the rcpb cell only (the
path reformulation, SPEC 6-7, has per-iteration BN copies; the convlstm and rgc cells have no
path form at all, and a vanilla model's paths are those of an rcpb model whose BNs are tied, so
its multi-path twin would be the rcpb one): the multipath family does not inherit the cell axis
(a ``cell`` listed there is an error saying so), so a recurrent configuration of another cell
gets no multi-path twin, and the twin a multi-path model needs is always the rcpb recurrent
model.
Every recurrent configuration, whatever its cell, has the size-matched FF partner (2L+1
blocks).

Controls (seed 001 section 3: Nayebi et al. 2018's controls for the parameters recurrence adds).
A grid that lists a control family gets one control per recurrent configuration of that
family's axes (the recurrent family's, each overridable, e.g. ``ff_wider: {cell: [convlstm]}``;
a configuration the recurrent family does not list is added, as a partner), with ``partner_id``
= the id of the recurrent configuration it controls for and ``matched_conv_params`` = that
model's conv parameter count (:func:`recurrent_conv_params`: CPB1's ``81 c`` + L x
:func:`rcpb.cell_kinds.layer_conv_params`; conv weights and biases, gate convolutions included;
BN and readout excluded: the readout scales with the neurons and has the same design in every
model, and the paper's size matching is on conv weights, "size-matched pairs have equal conv
weights"). An FF model of b blocks and c channels has ``81 c + (b - 1) 9 c^2``
(:func:`ff_conv_params`).

- ``ff_wider``: FF, 2L+1 blocks, the channel count c_w whose conv count is closest to the
  target (ties: the smaller; :func:`wider_channels`), so within one channel's worth of it;
- ``ff_deeper``: FF, the recurrent model's c channels, the number of blocks b_d >= 2L+1 whose
  conv count is closest to the target (ties: the smaller; :func:`deeper_blocks`);
- ``ff_depth``: FF, c channels, ``1 + L T`` blocks: the unrolled depth (only when listed);
- ``min_unrolled``: the same recurrent model with ``T = rcpb.cell_kinds.minimal_iterations(cell,
  L)``, the smallest T that uses every parameter, trained with the same settings; none is made
  for a recurrent configuration with T <= that minimum (it is its own minimally unrolled
  control).

A control's id hashes its ``partner_id`` too (:func:`canonical_json`): the controls of two
recurrent models that differ only in what the control does not copy (the readout, T) are
distinct rows of the results. Readable ids: ``ffwide{b}-``, ``ffdeep{b}-``, ``ffdepth{b}-``
(FF) and ``min-[cell-]L{L}-T{T}-...``.

A control that is the same model as another configuration (the same architecture and axes;
family, partner and ``matched_conv_params`` aside) is not trained twice: it is an alias of that
training, like an ablation name (below). An rcpb (or vanilla) model's conv count equals that of
its size-matched FF model, so its ``ff_wider`` and ``ff_deeper`` controls are that FF model
(c_w = c, b_d = 2L+1): aliases of the FF training (added as the recurrent model's partner
anyway); ``ff_depth`` with 1 + LT blocks may be an FF configuration of the grid, ``min_unrolled``
the recurrent configuration with T = T_min, and the FF controls of recurrent models that differ
only in readout or T are one model. The training that stands for a control is the configuration
of another family when there is one, else the first control of that model in family order
(``ff_wider``, ``ff_deeper``, ``ff_depth``, ``min_unrolled``), then in generation order; it
is trained in its family's folder with its own partner. Aggregation copies the training's row
for each alias with the alias's ``config_id``, ``family`` and ``partner_id``
(``analysis.aggregate.add_aliases``), so every recurrent configuration has a row per control.

One configuration is a JSON-serialisable dict (see the training configuration in the project's
interface notes) with ``config_id`` = readable prefix + ``-`` + the first 8 hex digits of the
SHA-256 of its canonical JSON. The hash covers every field except the id itself, the partner id,
the dataset file's location and the execution settings (``device``, ``threads``): the same
configuration always gets the same id, and any change of a value gives a new id, so adding a
grid value schedules exactly the new trainings.

Packs (:func:`packs`): the workflow trains a dataset's configurations in Snakemake jobs of up to
``pack_size`` configurations of the same structure (:func:`rcpb.pack.kinds.pack_key`), each job
training ``pack_slots`` of them at once (:func:`pack_settings`). A pack's id is derived from its
members' ids, so an unchanged grid keeps its pack ids.

numpy-free and torch-free apart from :mod:`rcpb.ablation_sets` (numpy): the Snakefile imports
this module on every start.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import re
from collections import Counter
from pathlib import Path

from rcpb import cell_kinds
from rcpb.errors import RcpbError
from rcpb.sizes import hw, size_value

#: the control families (section "Controls" of the module doc), in the order they are trained
CONTROL_FAMILIES = ("ff_wider", "ff_deeper", "ff_depth", "min_unrolled")
FAMILIES = ("ff", "recurrent", "multipath", "ablation_rm", "ablation_lege") + CONTROL_FAMILIES
ARCH = {"ff": "ff", "recurrent": "recurrent", "multipath": "multipath",
        "ablation_rm": "multipath", "ablation_lege": "multipath",
        "ff_wider": "ff", "ff_deeper": "ff", "ff_depth": "ff", "min_unrolled": "recurrent"}
# the family whose resolved axes a family starts from (None: the grid's common axes)
PARENT = {"ff": None, "recurrent": None, "multipath": "recurrent",
          "ablation_rm": "multipath", "ablation_lege": "multipath",
          **{family: "recurrent" for family in CONTROL_FAMILIES}}
COMMON_AXES = ("split_seed", "train_fraction", "channels", "act", "first_block_order", "loss",
               "model_seed")
RECURRENT_AXES = ("recurrent_layers", "iterations", "readout")
#: the recurrent cell (rcpb.cell_kinds): an axis of the recurrent family and the controls only
CELL_AXIS = "cell"
FAMILY_AXES = {
    "ff": ("blocks",),
    "recurrent": RECURRENT_AXES + (CELL_AXIS,),
    "multipath": RECURRENT_AXES,
    "ablation_rm": RECURRENT_AXES + ("remove_adjacent", "sets"),
    "ablation_lege": RECURRENT_AXES,
    **{family: RECURRENT_AXES + (CELL_AXIS,) for family in CONTROL_FAMILIES},
}
# axes a family may leave out: the ablation lists (one of them is checked) and the cell (rcpb)
OPTIONAL_AXES = ("remove_adjacent", "sets", CELL_AXIS)
READOUT_CODES = {"no-avg": "noavg", "early-avg": "early", "late-avg": "late", "2-avg": "2avg"}
FAMILY_CODES = {"ff": "ff", "recurrent": "rec", "multipath": "mp", "ablation_rm": "mp",
                "ablation_lege": "mp", "ff_wider": "ffwide", "ff_deeper": "ffdeep",
                "ff_depth": "ffdepth", "min_unrolled": "min"}
DEFAULT_SPLIT_SEEDS = [0]

# fields left out of the id hash: the id itself, the derived partner id, where the data file
# lives, and how the training is executed. A control's partner id is hashed (canonical_json).
UNHASHED = ("config_id", "partner_id", "dataset_file", "device", "threads")
FLOAT_FIELDS = ("train_fraction",)
TRAIN_FLOAT_FIELDS = ("lr", "lr_decay", "readout_l1", "smoothness")


# ----------------------------------------------------------------------------- ids


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_json(config: dict) -> str:
    """The JSON text the id hash is computed from (sorted keys, no spaces, unhashed fields out).

    A control (:data:`CONTROL_FAMILIES`) keeps its ``partner_id`` in the hash: it exists once
    per recurrent configuration it controls for, and the controls of two recurrent models that
    differ only in what the control does not copy (e.g. the readout, for an FF control) must
    still have distinct ids (they become aliases of one training, :func:`expand_dataset`).
    """
    keep = ("partner_id",) if config.get("family") in CONTROL_FAMILIES else ()
    return _ENCODER.encode({k: v for k, v in config.items()
                            if k not in UNHASHED or k in keep})


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}".replace(".", "p")


def id_prefix(config: dict) -> str:
    """Readable part of a config id, e.g. ``rec-L1-T4-2avg-c8-relu-bn_act-mse-f100-s0-sp0``."""
    common = (f"c{config['channels']}-{config['act']}-{config['first_block_order']}-"
              f"{config['loss']}-f{_percent(config['train_fraction'])}-s{config['model_seed']}-"
              f"sp{config['split_seed']}")
    if config["arch"] == "ff":
        return f"{FAMILY_CODES[config['family']]}{config['blocks']}-{common}"
    cell = f"{config['cell']}-" if config.get("cell") else ""   # absent: rcpb (ids unchanged)
    head = (f"{FAMILY_CODES[config['family']]}-{cell}L{config['recurrent_layers']}-"
            f"T{config['iterations']}-{READOUT_CODES[config['readout']]}")
    if config.get("ablation"):
        head += "-" + config["ablation"].replace(",", "_")
    return f"{head}-{common}"


def config_id(config: dict) -> str:
    """``id_prefix`` + ``-`` + 8 hex digits of SHA-256 of :func:`canonical_json`."""
    digest = hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:8]
    return f"{id_prefix(config)}-{digest}"


# ----------------------------------------------------------------------------- axes


def _axes(grid_name: str, grid: dict, family: str, cache: dict) -> dict:
    """Resolved axes (name -> list of values) of ``family`` in ``grid``, with inheritance."""
    if family in cache:
        return cache[family]
    parent = PARENT[family]
    base = dict(grid.get("common") or {}) if parent is None else dict(_axes(grid_name, grid,
                                                                             parent, cache))
    if parent is not None:
        # a child family inherits only the axes it has: not its parent's family-specific
        # extras, and a multi-path family not the recurrent family's cell (rcpb only)
        base = {k: v for k, v in base.items() if k in COMMON_AXES + FAMILY_AXES[family]}
    base.setdefault("split_seed", list(DEFAULT_SPLIT_SEEDS))
    base.update(grid.get(family) or {})
    if CELL_AXIS in FAMILY_AXES[family]:
        base.setdefault(CELL_AXIS, [cell_kinds.DEFAULT_CELL])
    cache[family] = base
    return base


def _check_axes(where: str, family: str, axes: dict) -> None:
    allowed = set(COMMON_AXES) | set(FAMILY_AXES[family])
    unknown = sorted(set(axes) - allowed)
    if CELL_AXIS in unknown and ARCH[family] == "multipath":
        raise RcpbError(f"{where}: multi-path models are defined for the rcpb cell only "
                        f"(SPEC 3.3); remove 'cell' here. A recurrent configuration of another "
                        f"cell gets no multi-path twin.")
    if unknown:
        raise RcpbError(f"{where}: unknown axis {', '.join(unknown)} for family '{family}'; "
                        f"allowed axes: {', '.join(sorted(allowed))}.")
    needed = list(COMMON_AXES) + [a for a in FAMILY_AXES[family] if a not in OPTIONAL_AXES]
    missing = [a for a in needed if not axes.get(a)]
    if missing:
        raise RcpbError(f"{where}: family '{family}' has no value for axis "
                        f"{', '.join(missing)}; list it under the grid's 'common' or under "
                        f"'{family}'.")
    for name, values in axes.items():
        if not isinstance(values, list):
            raise RcpbError(f"{where}.{name}: {values!r} must be a list of values, "
                            f"e.g. [{values!r}].")
        dup = [v for v, n in Counter(map(json.dumps, values)).items() if n > 1]
        if dup:
            raise RcpbError(f"{where}.{name}: value {', '.join(dup)} is listed twice.")
    for cell in axes.get(CELL_AXIS) or []:
        try:
            cell_kinds.check_cell(cell)
        except ValueError as exc:
            raise RcpbError(f"{where}.cell: {exc}.") from None
    if family == "ablation_rm" and not (axes.get("remove_adjacent") or axes.get("sets")):
        raise RcpbError(f"{where}: ablation_rm needs 'remove_adjacent' (e.g. [1, 2, 3]) "
                        f"and/or 'sets' (e.g. ['rm1,3']).")


def _product(axes: dict, names: tuple) -> list[dict]:
    values = [axes[n] for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _ablations(family: str, axes: dict, layers: int, T: int, where: str) -> list[str]:
    from rcpb import ablation_sets

    if family == "ablation_lege":
        return ablation_sets.lege_sets(T, layers)
    names: list[str] = []
    for n in axes.get("remove_adjacent") or []:
        found = ablation_sets.ablation_sets_adjacent(n, layers, T)
        if not found:
            raise RcpbError(f"{where}.remove_adjacent: removing {n} adjacent path lengths "
                            f"leaves no path with {layers} recurrent layer(s) and T = {T}; "
                            f"use fewer lengths or more iterations.")
        names += found
    for name in axes.get("sets") or []:
        try:
            ablation_sets.parse_ablation(name, layers, T)
        except RcpbError as exc:
            raise RcpbError(f"{where}.sets: {exc}") from None
        if name not in names:
            names.append(name)
    return names


# ----------------------------------------------------------------------------- configs


def _normalise_train(training: dict) -> dict:
    out = dict(training)
    for key in TRAIN_FLOAT_FIELDS:
        if key in out and out[key] is not None:
            out[key] = float(out[key])
    return out


def _normalise_preprocess(pre: dict | None) -> dict:
    pre = dict(pre or {})
    crop = pre.get("crop")   # [s, s] is the square s: the same model, the same id
    out = {"crop": None if crop is None else size_value(*hw(crop)),
           "downsample": pre.get("downsample") or 1,
           "neuron_scale": pre.get("neuron_scale")}
    if out["neuron_scale"] is not None:
        out["neuron_scale"] = float(out["neuron_scale"])
    if pre.get("split_sizes") is not None:  # only when set, so other ids stay as they were
        out["split_sizes"] = [int(v) for v in pre["split_sizes"]]
    for key in ("split", "ceiling_stimuli"):  # likewise (rcpb.data.prepare, rcpb.metrics)
        if pre.get(key) is not None:
            out[key] = str(pre[key])
    if pre.get("clip_negative") is not None:       # likewise (rcpb.data.validate)
        out["clip_negative"] = float(pre["clip_negative"])
    if pre.get("time_window"):                     # likewise (rcpb.data.prepare.time_window)
        out["time_window"] = {k: int(v) for k, v in sorted(pre["time_window"].items())}
    return out


def dataset_file(name: str, dataset: dict) -> str:
    """Path of a dataset's file: ``file`` as given, or ``data/{name}.h5`` for a simulated one."""
    return dataset["file"] if "file" in dataset else f"data/{name}.h5"


def _make(family: str, base: dict, values: dict, extra: dict | None = None) -> dict:
    """One configuration dict with all fields of the training configuration, id filled in.

    ``values``: the axes' values (``cell`` optional: rcpb); ``extra``: further fields set
    before the id is computed (a control's ``partner_id`` and ``matched_conv_params``).
    """
    cfg = dict(base)
    cfg.update({
        "family": family, "arch": ARCH[family],
        "split_seed": int(values["split_seed"]),
        "train_fraction": float(values["train_fraction"]),
        "channels": int(values["channels"]), "act": values["act"],
        "first_block_order": values["first_block_order"], "loss": values["loss"],
        "model_seed": int(values["model_seed"]),
        "blocks": None, "recurrent_layers": None, "iterations": None, "readout": None,
        "ablation": None, "allowed_lengths": None,
    })
    if ARCH[family] == "ff":
        cfg["blocks"] = int(values["blocks"])
    else:
        cfg["recurrent_layers"] = int(values["recurrent_layers"])
        cfg["iterations"] = int(values["iterations"])
        cfg["readout"] = values["readout"]
        cell = cell_kinds.check_cell(values.get(CELL_AXIS) or cell_kinds.DEFAULT_CELL)
        if cell != cell_kinds.DEFAULT_CELL:   # only then: every rcpb id stays as it was
            cfg[CELL_AXIS] = cell
        if values.get("ablation"):
            from rcpb import ablation_sets

            cfg["ablation"] = values["ablation"]
            cfg["allowed_lengths"] = ablation_sets.parse_ablation(
                values["ablation"], cfg["recurrent_layers"], cfg["iterations"])
    cfg["partner_id"] = None
    cfg.update(extra or {})
    cfg["config_id"] = config_id(cfg)
    return cfg


# ----------------------------------------------------------------------------- controls

#: conv weights of the first block (CPB1: 9 x 9, 1 input channel, no bias) per channel
FIRST_BLOCK_PARAMS_PER_CHANNEL = 81
#: conv weights of one Conv(3) block per squared channel count (3 x 3, c -> c, no bias)
FF_BLOCK_PARAMS_PER_CHANNEL2 = 9


def ff_conv_params(channels: int, blocks: int) -> int:
    """Conv parameters of an FF model: CPB1 (``81 c``) + ``blocks - 1`` Conv(3) blocks
    (``9 c^2`` each); BN and readout excluded."""
    c = int(channels)
    return (FIRST_BLOCK_PARAMS_PER_CHANNEL * c
            + (int(blocks) - 1) * FF_BLOCK_PARAMS_PER_CHANNEL2 * c * c)


def recurrent_conv_params(cell: str, channels: int, recurrent_layers: int) -> int:
    """Conv parameters (weights and biases, gate convolutions included; BN and readout
    excluded) of a recurrent model: CPB1 + ``recurrent_layers`` layers of ``cell``
    (:func:`rcpb.cell_kinds.layer_conv_params`). The target the FF controls match."""
    c = int(channels)
    return (FIRST_BLOCK_PARAMS_PER_CHANNEL * c
            + int(recurrent_layers) * cell_kinds.layer_conv_params(cell, c))


def _closest(count, target: int, lo: int) -> int:
    """The integer n >= lo whose ``count(n)`` (increasing in n) is closest to ``target``; of
    two equally close, the smaller."""
    hi = lo
    while count(hi) < target:          # doubling, then bisection: first n with count >= target
        hi *= 2
    left = lo
    while left < hi:
        mid = (left + hi) // 2
        if count(mid) < target:
            left = mid + 1
        else:
            hi = mid
    if hi > lo and target - count(hi - 1) <= count(hi) - target:
        return hi - 1
    return hi


def wider_channels(target: int, blocks: int) -> int:
    """The channel count c_w >= 1 whose FF(``blocks``) conv count is closest to ``target``
    (ties: the smaller)."""
    return _closest(lambda c: ff_conv_params(c, blocks), int(target), 1)


def deeper_blocks(target: int, channels: int, min_blocks: int) -> int:
    """The number of blocks b_d >= ``min_blocks`` whose FF conv count at ``channels`` is
    closest to ``target`` (ties: the smaller)."""
    return _closest(lambda b: ff_conv_params(channels, b), int(target), int(min_blocks))


def control_config(family: str, rec: dict) -> dict | None:
    """The ``family`` control (:data:`CONTROL_FAMILIES`) of the recurrent configuration
    ``rec``, with ``partner_id`` = its id and ``matched_conv_params`` = its conv parameter
    count; None for a minimally unrolled control of a model unrolled no longer than that."""
    cell = rec.get(CELL_AXIS) or cell_kinds.DEFAULT_CELL
    layers, c, T = rec["recurrent_layers"], rec["channels"], rec["iterations"]
    target = recurrent_conv_params(cell, c, layers)
    base = {k: rec[k] for k in ("dataset", "dataset_file", "preprocess", "train")}
    values = {k: rec[k] for k in COMMON_AXES}
    extra = {"partner_id": rec["config_id"], "matched_conv_params": target}
    if family == "ff_wider":
        values.update(blocks=2 * layers + 1, channels=wider_channels(target, 2 * layers + 1))
    elif family == "ff_deeper":
        values["blocks"] = deeper_blocks(target, c, 2 * layers + 1)
    elif family == "ff_depth":
        values["blocks"] = 1 + layers * T
    elif family == "min_unrolled":
        t_min = cell_kinds.minimal_iterations(cell, layers)
        if T <= t_min:
            return None
        values.update({k: rec[k] for k in RECURRENT_AXES}, iterations=t_min, cell=cell)
    else:
        raise ValueError(f"not a control family: {family!r}")
    return _make(family, base, values, extra)


_KEY_FIELDS = ("family",) + COMMON_AXES + ("blocks",) + RECURRENT_AXES + (CELL_AXIS,
                                                                           "ablation")


def _key(cfg: dict) -> tuple:
    """What distinguishes configurations of one dataset (dataset, preprocess, train are shared;
    ``cell`` is None for rcpb and feed-forward models)."""
    return tuple(cfg.get(k) for k in _KEY_FIELDS)


def _partner_key(cfg: dict) -> tuple | None:
    """:func:`_key` of the partner of ``cfg`` (None for feed-forward models, and for controls,
    which get their partner when made)."""
    family = cfg["family"]
    if family == "ff" or family in CONTROL_FAMILIES:
        return None
    values = dict(zip(_KEY_FIELDS, _key(cfg)))
    if family == "recurrent":
        values.update(family="ff", blocks=2 * cfg["recurrent_layers"] + 1,
                      recurrent_layers=None, iterations=None, readout=None, cell=None)
    else:
        values.update(family="recurrent" if family == "multipath" else "multipath",
                      ablation=None)
    return tuple(values[k] for k in _KEY_FIELDS)


def partner_config(cfg: dict) -> dict | None:
    """The configuration ``cfg`` is compared with (without its own ``partner_id``), or None.

    Controls are made with their partner (:func:`control_config`): None for them too."""
    family = cfg["family"]
    if family == "ff" or family in CONTROL_FAMILIES:
        return None
    values = {k: cfg[k] for k in COMMON_AXES}
    base = {k: cfg[k] for k in ("dataset", "dataset_file", "preprocess", "train")}
    if family == "recurrent":
        values["blocks"] = 2 * cfg["recurrent_layers"] + 1
        return _make("ff", base, values)
    values.update({k: cfg[k] for k in RECURRENT_AXES})
    if family == "multipath":
        return _make("recurrent", base, values)
    return _make("multipath", base, values)  # ablations: the unablated multi-path model


def expand_dataset(name: str, dataset: dict, grids: dict, training: dict,
                   aliases: list | None = None) -> list[dict]:
    """All configurations of one dataset, partners included, each with ``partner_id``.

    Order: by family (FAMILIES order), then as generated by the grids (first grid first,
    axes in the order written in the config); configurations listed twice appear once.
    Ablations that keep the same lengths as a trained configuration, and controls that are the
    same model as another training, are left out (see the module doc); when ``aliases`` is a
    list, they are appended to it (with ``trained_as``).
    """
    grid_names = dataset.get("grid")
    grid_names = [grid_names] if isinstance(grid_names, str) else list(grid_names or [])
    if not grid_names:
        raise RcpbError(f"datasets.{name}.grid: name the grid(s) to train on this dataset.")
    base = {"dataset": name, "dataset_file": dataset_file(name, dataset),
            "preprocess": _normalise_preprocess(dataset.get("preprocess")),
            "train": _normalise_train(training)}
    by_id: dict[str, dict] = {}
    for grid_name in grid_names:
        if grid_name not in grids:
            raise RcpbError(f"datasets.{name}.grid: there is no grid '{grid_name}' under "
                            f"'grids' (known: {', '.join(sorted(grids)) or 'none'}).")
        grid = grids[grid_name]
        cache: dict = {}
        for family in FAMILIES:
            if grid.get(family) is None:
                continue
            where = f"grids.{grid_name}.{family}"
            axes = _axes(grid_name, grid, family, cache)
            _check_axes(where, family, axes)
            names = COMMON_AXES + (("blocks",) if family == "ff" else RECURRENT_AXES)
            if CELL_AXIS in FAMILY_AXES[family]:
                names += (CELL_AXIS,)
            for values in _product(axes, names):
                if family in CONTROL_FAMILIES:
                    # the recurrent configuration controlled for: a partner when not listed
                    rec = _make("recurrent", base, values)
                    cfg = control_config(family, rec)
                    if cfg is None:       # min_unrolled of a model unrolled only T_min times
                        continue
                    if rec["config_id"] not in by_id:
                        rec["added_as_partner"] = True
                        by_id[rec["config_id"]] = rec
                    by_id.setdefault(cfg["config_id"], cfg)
                elif family.startswith("ablation"):
                    for ablation in _ablations(family, axes, int(values["recurrent_layers"]),
                                               int(values["iterations"]), where):
                        cfg = _make(family, base, {**values, "ablation": ablation})
                        by_id.setdefault(cfg["config_id"], cfg)
                else:
                    cfg = _make(family, base, values)
                    # listed here: not a partner a control of an earlier grid added
                    by_id.setdefault(cfg["config_id"], cfg).pop("added_as_partner", None)

    # partners: link, adding the missing ones (which may need partners themselves)
    index = {_key(cfg): cfg["config_id"] for cfg in by_id.values()}
    todo = list(by_id.values())
    while todo:
        cfg = todo.pop()
        wanted = _partner_key(cfg)
        if wanted is None:
            continue
        if wanted in index:
            cfg["partner_id"] = index[wanted]
            continue
        partner = partner_config(cfg)
        partner["added_as_partner"] = True
        cfg["partner_id"] = partner["config_id"]
        by_id[partner["config_id"]] = partner
        index[_key(partner)] = partner["config_id"]
        todo.append(partner)
    order = {f: i for i, f in enumerate(FAMILIES)}
    shared = _split_aliases(by_id, order) + _split_control_aliases(by_id, order)
    if aliases is not None:
        aliases.extend(shared)
    return sorted(by_id.values(), key=lambda c: order[c["family"]])


# what ablations of one dataset must share to be the same training, besides the allowed lengths:
# every field of _key but family and name (dataset, preprocess and train are shared)
def _same_but_name(cfg: dict) -> tuple:
    return tuple(cfg.get(k) for k in _KEY_FIELDS[1:-1])


def _split_aliases(by_id: dict, order: dict) -> list[dict]:
    """Remove from ``by_id`` the ablations another training stands for; return them as aliases.

    Partners are linked already: an alias keeps its ``partner_id`` (the unablated multi-path
    model), and one that keeps every length is trained as that partner.
    """
    ablated = [c for c in by_id.values() if c["ablation"]]
    ablated.sort(key=lambda c: order[c["family"]])  # stable: generation order within a family
    trained: dict[tuple, str] = {}
    out = []
    for cfg in ablated:
        allowed = cfg["allowed_lengths"]
        # allowed lengths are distinct existing lengths (rcpb.ablation_sets.parse_ablation),
        # of which there are T (L..T+L-1): T of them is every length
        if len(allowed) == cfg["iterations"]:
            target = cfg["partner_id"]
        else:
            key = (_same_but_name(cfg), tuple(allowed))
            target = trained.setdefault(key, cfg["config_id"])
            if target == cfg["config_id"]:
                continue
        alias = by_id.pop(cfg["config_id"])
        alias["trained_as"] = target
        out.append(alias)
    return out


# what makes two configurations of one dataset the same model: _key without the family (the
# architecture instead), and so without a control's partner and matched count
def _model_key(cfg: dict) -> tuple:
    return (cfg["arch"],) + _key(cfg)[1:]


def _split_control_aliases(by_id: dict, order: dict) -> list[dict]:
    """Remove from ``by_id`` the controls that are the same model as another training; return
    them as aliases (each keeps its ``partner_id``, the recurrent model it controls for).

    The training that stands for a control: a configuration of another family that is the same
    model (e.g. the size-matched FF for an rcpb model's wider and deeper controls, the recurrent
    configuration at the minimal T), else the first control of that model in family order
    (ff_wider, ff_deeper, ff_depth, min_unrolled), then in generation order.
    """
    trained = {_model_key(c): c["config_id"] for c in by_id.values()
               if c["family"] not in CONTROL_FAMILIES}
    controls = [c for c in by_id.values() if c["family"] in CONTROL_FAMILIES]
    controls.sort(key=lambda c: order[c["family"]])   # stable: generation order within a family
    out = []
    for cfg in controls:
        target = trained.setdefault(_model_key(cfg), cfg["config_id"])
        if target == cfg["config_id"]:
            continue
        alias = by_id.pop(cfg["config_id"])
        alias["trained_as"] = target
        out.append(alias)
    return out


def check_datasets(config: dict) -> None:
    """Checks of the dataset section that a JSON schema cannot express."""
    datasets = config.get("datasets") or {}
    simulated = {}
    for name, ds in datasets.items():
        has_file, has_sim = "file" in ds, "simulate" in ds
        if has_file == has_sim:
            raise RcpbError(f"datasets.{name}: give exactly one of 'file' (a dataset file you "
                            f"provide) or 'simulate' (a dataset the workflow simulates).")
        if has_sim:
            simulated[dataset_file(name, ds)] = name
    for name, ds in datasets.items():
        if "file" in ds and ds["file"] in simulated:
            raise RcpbError(f"datasets.{name}.file: {ds['file']} is where the simulated dataset "
                            f"'{simulated[ds['file']]}' is written; choose another path.")


#: families trained on time-binned data (docs/dynamics.md): multi-path models and their
#: ablations are defined on the averaged prediction only
TIME_BINNED_FAMILIES = ("ff", "recurrent", "ff_wider", "ff_deeper", "ff_depth", "min_unrolled")


def check_time_binned_grid(configs: list[dict], where: str) -> None:
    """RcpbError unless every configuration can fit time-binned responses: a family of
    :data:`TIME_BINNED_FAMILIES`, recurrent models with the late-avg readout (iteration t's own
    prediction through the one readout; the other modes average or keep one iteration)."""
    for cfg in configs:
        if cfg["family"] not in TIME_BINNED_FAMILIES:
            raise RcpbError(f"{where}: the dataset is time-binned, and family {cfg['family']!r} "
                            f"is not defined on time bins; train only "
                            f"{', '.join(TIME_BINNED_FAMILIES)} on it (docs/dynamics.md).")
        if cfg.get("arch") == "recurrent" and cfg.get("readout") != "late-avg":
            raise RcpbError(f"{where}: the dataset is time-binned, and {cfg['config_id']} has "
                            f"readout {cfg.get('readout')!r}; recurrent models fit time bins "
                            f"with readout late-avg (iteration t predicts bin offset + t - 1 "
                            f"through one readout); set readout: [late-avg] in its grid.")


def expand(config: dict, aliases: dict | None = None) -> dict[str, list[dict]]:
    """All trainings of a (schema-validated) workflow config: dataset name -> list.

    When ``aliases`` is a dict, it receives dataset name -> list of aliases (ablation names and
    controls another training stands for, each with ``trained_as``; see the module doc), from
    the same expansion.
    """
    check_datasets(config)
    grids = config.get("grids") or {}
    training = config.get("training") or {}
    out = {}
    for name, ds in (config.get("datasets") or {}).items():
        shared: list[dict] = []
        out[name] = expand_dataset(name, ds, grids, training, aliases=shared)
        dynamics = (ds.get("simulate") or {}).get("dynamics")
        if dynamics is not None:      # simulated time bins: the window is known from the config
            from rcpb.data.prepare import time_window
            from rcpb.data.simulate import check_dynamics

            d = check_dynamics(dynamics)
            time_window((ds.get("preprocess") or {}).get("time_window"), d["bins"], 0,
                        d["on_bins"], f"datasets.{name}")
            check_time_binned_grid(out[name], f"datasets.{name}")
        if aliases is not None:
            aliases[name] = shared
    return out


def expand_aliases(config: dict) -> dict[str, list[dict]]:
    """Dataset name -> the aliases of :func:`expand` (ablation names and controls that are not
    trained)."""
    aliases: dict[str, list[dict]] = {}
    expand(config, aliases=aliases)
    return aliases


def count_aliases(aliases: list[dict]) -> dict:
    """(family, split_seed) -> number of aliases (names trained as another configuration)."""
    return dict(Counter((alias["family"], alias["split_seed"]) for alias in aliases))


def count(configs: list[dict]) -> dict:
    """(family, split_seed) -> {"total": n, "added": n added as partners}."""
    out: dict = {}
    for cfg in configs:
        entry = out.setdefault((cfg["family"], cfg["split_seed"]), {"total": 0, "added": 0})
        entry["total"] += 1
        entry["added"] += int(bool(cfg.get("added_as_partner")))
    return out


def training_config(cfg: dict) -> dict:
    """The dict passed to ``rcpb train`` (without bookkeeping fields of the grid)."""
    return {k: v for k, v in cfg.items() if k != "added_as_partner"}


# ----------------------------------------------------------------------------- grid files

#: Name of a dataset's grid file, ``results/{dataset}/grid.jsonl``: one training configuration
#: (:func:`training_config`) per line. The workflow's rule ``grid_file`` writes it (and a run
#: refreshes it when the config changed); a training job
#: ``rcpb train --from-grid results/{dataset}/{family}/{config_id}`` reads its line from it.
GRID_FILE = "grid.jsonl"


def grid_lines(configs: list[dict], device: str = "cpu") -> str:
    """The text of a grid file: one JSON object per configuration (sorted keys), in grid order.

    ``device`` (an execution setting, not part of the ids) is added to every configuration.
    """
    return "".join(_ENCODER.encode({**training_config(cfg), "device": device}) + "\n"
                   for cfg in configs)


def write_grid_file(path: str | Path, configs: list[dict], device: str = "cpu") -> bool:
    """Write the grid file of one dataset's configurations; False if it already held them.

    The file is replaced atomically and only when its content changes, so a rerun with the same
    config leaves it (and its modification time) untouched.
    """
    from rcpb.atomic_files import write_text_atomic

    path = Path(path)
    text = grid_lines(configs, device)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return True


def read_grid_entry(path: str | Path, config_id: str) -> dict:
    """The configuration with id ``config_id`` from the grid file ``path``.

    Only the matching line is parsed: a paper grid's file holds tens of thousands of lines.
    """
    needle = json.dumps(config_id)  # the quoted id; lines holding it are parsed and checked
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if needle in line:
                    cfg = json.loads(line)
                    if cfg.get("config_id") == config_id:
                        return cfg
    except OSError as exc:
        raise RcpbError(f"cannot read the grid file {path}: {exc.strerror}. The workflow writes "
                        "it (snakemake results/<dataset>/grid.jsonl); 'rcpb grid CONFIG --show ID' "
                        "prints "
                        "one configuration for 'rcpb train'.") from None
    raise RcpbError(f"{path} holds no configuration with id {config_id!r}: it is not a training "
                    "of the current config ('rcpb grid CONFIG --list' prints the ids).")


_ID_FIELD = re.compile(r'"config_id":"([^"]*)"')


def read_grid_entries(path: str | Path, config_ids: list[str]) -> dict[str, dict]:
    """``{config_id: configuration}`` for every id in ``config_ids``, reading the grid file
    ``path`` once (a pack's members); an id it lacks is an error as in :func:`read_grid_entry`."""
    wanted = set(config_ids)
    found: dict[str, dict] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                match = _ID_FIELD.search(line)   # grid lines are compact JSON (grid_lines)
                if match is None or match.group(1) in wanted:
                    cfg = json.loads(line)
                    if cfg.get("config_id") in wanted:
                        found[cfg["config_id"]] = cfg
    except OSError:
        return {i: read_grid_entry(path, i) for i in config_ids}   # raises its clear error
    for config_id in config_ids:
        if config_id not in found:
            read_grid_entry(path, config_id)                           # raises its clear error
    return found


# ----------------------------------------------------------------------------- packs

#: Per device, the ``pack_size`` and ``pack_slots`` used when the config leaves them null
#: (provisional: to be set from ``benchmarks/pack_throughput.py`` on each device).
PACK_DEFAULTS = {"cpu": {"pack_size": 8, "pack_slots": 8},
                 "cuda": {"pack_size": 64, "pack_slots": 64}}


def pack_settings(config: dict) -> tuple[int, int]:
    """``(pack_size, pack_slots)`` of a (schema-validated) workflow config: the config's values,
    or where one is null or absent, :data:`PACK_DEFAULTS` of its ``device``.

    ``pack_size``: configurations per Snakemake training job; ``pack_slots``: models a job
    trains at once (a finished slot takes the job's next configuration of its kind).
    """
    defaults = PACK_DEFAULTS[config.get("device") or "cpu"]
    out = []
    for key in ("pack_size", "pack_slots"):
        value = config.get(key)
        if value is None:
            value = defaults[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            what = {"pack_size": "configurations per training job",
                    "pack_slots": "models a training job trains at once"}[key]
            raise RcpbError(f"{key}: {value!r} is not a positive integer; set it to the number "
                            f"of {what} (e.g. {defaults[key]}), or null for the device's "
                            "default.")
        out.append(value)
    return out[0], out[1]


def packs(configs: list[dict], size: int, device: str = "cpu") -> dict[str, list[dict]]:
    """Training configurations of one dataset -> packs: pack id -> its configurations.

    Configurations are grouped by :func:`rcpb.pack.kinds.job_key` (on CUDA the same structure:
    they are trained in one batched computation; on CPU the same architecture and size), each
    group ordered by ``config_id`` and cut into packs of at most ``size`` (the last one of a
    group may be smaller). Packs are in the order of their keys.

    A pack's id is the readable part of its key (e.g. ``rec-L1-T4-c8``) + ``-`` + the first 8
    hex digits of the SHA-256 of its members' ids joined by newlines: the same grid gives the
    same packs and ids, and a grid with new values changes only the packs of the structures
    that got new configurations (whose rerun skips the members already finished).
    """
    from rcpb.pack.kinds import job_key

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise RcpbError(f"pack_size: {size!r} is not a positive integer.")
    groups: dict[str, list[dict]] = {}
    for cfg in configs:
        groups.setdefault(job_key(cfg, device), []).append(cfg)
    out: dict[str, list[dict]] = {}
    for key in sorted(groups):
        members = sorted(groups[key], key=operator.itemgetter("config_id"))
        head = key.rsplit("-", 1)[0]
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            text = "\n".join(cfg["config_id"] for cfg in chunk)
            pack_id = f"{head}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"
            if pack_id in out:  # two packs whose member lists hash alike (never seen)
                raise RcpbError(f"two packs of {len(configs)} configurations got the same id "
                                f"{pack_id}; change pack_size by one to regroup them.")
            out[pack_id] = chunk
    return out
