"""Expansion of the config's grids into named, hashed training configurations (SPEC 8).

The workflow config (``config.yaml``, checked against ``schemas/config.schema.yaml``) lists
datasets and grids. Each dataset names one or more grids; a grid lists, per model *family*,
the axes whose Cartesian product is trained:

- ``common``: axes every family starts from (``split_seed``, ``train_fraction``, ``channels``,
  ``act``, ``first_block_order``, ``loss``, ``model_seed``);
- ``ff``: ``blocks``;
- ``recurrent``: ``recurrent_layers``, ``iterations``, ``readout``;
- ``multipath``: starts from the recurrent family's axes (every recurrent configuration is
  retrained as a multi-path model) and overrides those it lists;
- ``ablation_rm``: starts from the multipath axes; ``remove_adjacent`` (numbers of adjacent
  path lengths removed, SPEC 7) and/or ``sets`` (explicit ablation names such as ``rm1,3``);
- ``ablation_lege``: starts from the multipath axes; every ``le{k}`` and ``ge{k}`` for each T.

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

from rcpb.errors import RcpbError
from rcpb.sizes import hw, size_value

FAMILIES = ("ff", "recurrent", "multipath", "ablation_rm", "ablation_lege")
ARCH = {"ff": "ff", "recurrent": "recurrent", "multipath": "multipath",
        "ablation_rm": "multipath", "ablation_lege": "multipath"}
# the family whose resolved axes a family starts from (None: the grid's common axes)
PARENT = {"ff": None, "recurrent": None, "multipath": "recurrent",
          "ablation_rm": "multipath", "ablation_lege": "multipath"}
COMMON_AXES = ("split_seed", "train_fraction", "channels", "act", "first_block_order", "loss",
               "model_seed")
RECURRENT_AXES = ("recurrent_layers", "iterations", "readout")
FAMILY_AXES = {
    "ff": ("blocks",),
    "recurrent": RECURRENT_AXES,
    "multipath": RECURRENT_AXES,
    "ablation_rm": RECURRENT_AXES + ("remove_adjacent", "sets"),
    "ablation_lege": RECURRENT_AXES,
}
READOUT_CODES = {"no-avg": "noavg", "early-avg": "early", "late-avg": "late", "2-avg": "2avg"}
FAMILY_CODES = {"ff": "ff", "recurrent": "rec", "multipath": "mp", "ablation_rm": "mp",
                "ablation_lege": "mp"}
DEFAULT_SPLIT_SEEDS = [0]

# fields left out of the id hash: the id itself, the derived partner id, where the data file
# lives, and how the training is executed
UNHASHED = ("config_id", "partner_id", "dataset_file", "device", "threads")
FLOAT_FIELDS = ("train_fraction",)
TRAIN_FLOAT_FIELDS = ("lr", "lr_decay", "readout_l1", "smoothness")


# ----------------------------------------------------------------------------- ids


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_json(config: dict) -> str:
    """The JSON text the id hash is computed from (sorted keys, no spaces, unhashed fields out)."""
    return _ENCODER.encode({k: v for k, v in config.items() if k not in UNHASHED})


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}".replace(".", "p")


def id_prefix(config: dict) -> str:
    """Readable part of a config id, e.g. ``rec-L1-T4-2avg-c8-relu-bn_act-mse-f100-s0-sp0``."""
    common = (f"c{config['channels']}-{config['act']}-{config['first_block_order']}-"
              f"{config['loss']}-f{_percent(config['train_fraction'])}-s{config['model_seed']}-"
              f"sp{config['split_seed']}")
    if config["arch"] == "ff":
        return f"ff{config['blocks']}-{common}"
    head = (f"{FAMILY_CODES[config['family']]}-L{config['recurrent_layers']}-"
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
        # a child family does not inherit its parent's family-specific extras
        base = {k: v for k, v in base.items() if k in COMMON_AXES + RECURRENT_AXES}
    base.setdefault("split_seed", list(DEFAULT_SPLIT_SEEDS))
    base.update(grid.get(family) or {})
    cache[family] = base
    return base


def _check_axes(where: str, family: str, axes: dict) -> None:
    allowed = set(COMMON_AXES) | set(FAMILY_AXES[family])
    unknown = sorted(set(axes) - allowed)
    if unknown:
        raise RcpbError(f"{where}: unknown axis {', '.join(unknown)} for family '{family}'; "
                        f"allowed axes: {', '.join(sorted(allowed))}.")
    needed = list(COMMON_AXES) + [a for a in FAMILY_AXES[family]
                                  if a not in ("remove_adjacent", "sets")]
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
    return out


def dataset_file(name: str, dataset: dict) -> str:
    """Path of a dataset's file: ``file`` as given, or ``data/{name}.h5`` for a simulated one."""
    return dataset["file"] if "file" in dataset else f"data/{name}.h5"


def _make(family: str, base: dict, values: dict) -> dict:
    """One configuration dict with all fields of the training configuration, id filled in."""
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
    if family == "ff":
        cfg["blocks"] = int(values["blocks"])
    else:
        cfg["recurrent_layers"] = int(values["recurrent_layers"])
        cfg["iterations"] = int(values["iterations"])
        cfg["readout"] = values["readout"]
        if values.get("ablation"):
            from rcpb import ablation_sets

            cfg["ablation"] = values["ablation"]
            cfg["allowed_lengths"] = ablation_sets.parse_ablation(
                values["ablation"], cfg["recurrent_layers"], cfg["iterations"])
    cfg["partner_id"] = None
    cfg["config_id"] = config_id(cfg)
    return cfg


_KEY_FIELDS = ("family",) + COMMON_AXES + ("blocks",) + RECURRENT_AXES + ("ablation",)


def _key(cfg: dict) -> tuple:
    """What distinguishes configurations of one dataset (dataset, preprocess, train are shared)."""
    return tuple(cfg[k] for k in _KEY_FIELDS)


def _partner_key(cfg: dict) -> tuple | None:
    """:func:`_key` of the partner of ``cfg`` (None for feed-forward models)."""
    family = cfg["family"]
    if family == "ff":
        return None
    values = dict(zip(_KEY_FIELDS, _key(cfg)))
    if family == "recurrent":
        values.update(family="ff", blocks=2 * cfg["recurrent_layers"] + 1,
                      recurrent_layers=None, iterations=None, readout=None)
    else:
        values.update(family="recurrent" if family == "multipath" else "multipath",
                      ablation=None)
    return tuple(values[k] for k in _KEY_FIELDS)


def partner_config(cfg: dict) -> dict | None:
    """The configuration ``cfg`` is compared with (without its own ``partner_id``), or None."""
    family = cfg["family"]
    if family == "ff":
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
    Ablations that keep the same lengths as a trained configuration are left out (see the
    module doc); when ``aliases`` is a list, they are appended to it (with ``trained_as``).
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
            for values in _product(axes, names):
                if family.startswith("ablation"):
                    for ablation in _ablations(family, axes, int(values["recurrent_layers"]),
                                               int(values["iterations"]), where):
                        cfg = _make(family, base, {**values, "ablation": ablation})
                        by_id.setdefault(cfg["config_id"], cfg)
                else:
                    cfg = _make(family, base, values)
                    by_id.setdefault(cfg["config_id"], cfg)

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
    shared = _split_aliases(by_id, order)
    if aliases is not None:
        aliases.extend(shared)
    return sorted(by_id.values(), key=lambda c: order[c["family"]])


# what ablations of one dataset must share to be the same training, besides the allowed lengths:
# every field of _key but family and name (dataset, preprocess and train are shared)
_same_but_name = operator.itemgetter(*_KEY_FIELDS[1:-1])


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


def expand(config: dict, aliases: dict | None = None) -> dict[str, list[dict]]:
    """All trainings of a (schema-validated) workflow config: dataset name -> list.

    When ``aliases`` is a dict, it receives dataset name -> list of aliases (ablation names
    another training stands for, each with ``trained_as``; see the module doc), from the same
    expansion.
    """
    check_datasets(config)
    grids = config.get("grids") or {}
    training = config.get("training") or {}
    out = {}
    for name, ds in (config.get("datasets") or {}).items():
        shared: list[dict] = []
        out[name] = expand_dataset(name, ds, grids, training, aliases=shared)
        if aliases is not None:
            aliases[name] = shared
    return out


def expand_aliases(config: dict) -> dict[str, list[dict]]:
    """Dataset name -> the aliases of :func:`expand` (ablation names that are not trained)."""
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
