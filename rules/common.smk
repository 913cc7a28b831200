# Config validation, grid expansion, dataset checks, the wildcard constraints and the input
# and param functions of every rule.
#
# Runs on every start of the workflow (and, on a cluster, of every job), so it stays light:
# rcpb.grid and rcpb.data.validate import numpy, h5py and PyYAML, never torch.

import gc
import json
import os
import sys
import tempfile

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rcpb import grid as rcpb_grid
from rcpb.config import describe_schema_error
from rcpb.errors import RcpbError
from rcpb.sizes import size_text
from rcpb.process.jobenv import put_interpreter_first_on_path, put_workflow_on_pythonpath

# analysis/ (tables, figures, aggregation) belongs to the workflow, not to the installed rcpb
# package: the repository goes on sys.path here and on PYTHONPATH for every job, which runs in
# the working directory (-d), not necessarily the repository.
put_workflow_on_pythonpath(os.path.join(workflow.current_basedir, ".."))

from analysis.workflow import targets as analysis_outputs


def _validate_config():
    """Schema check (fills the schema's defaults into config); one line naming the field."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as exc:
        cause = exc.__context__
        if cause is not None and hasattr(cause, "absolute_path"):
            raise WorkflowError(
                f"config: {describe_schema_error(cause)}. Fix this value in your "
                "config file; schemas/config.schema.yaml lists every key and allowed value."
            ) from None
        raise
    try:   # NaN and inf pass the schema's bounds
        from rcpb.config import check_finite

        check_finite(config, "config")
    except RcpbError as exc:
        raise WorkflowError(f"{exc}. Fix this value in your config file.") from None


def _expand_grids(aliases=None):
    """Dataset name -> list of training configurations (rcpb.grid); fills ``aliases``."""
    try:
        return rcpb_grid.expand(config, aliases=aliases)
    except RcpbError as exc:
        raise WorkflowError(f"config: {exc}") from None


# Building the DAG of a paper grid creates millions of objects and no cyclic garbage; Python's
# cyclic collector would spend about a tenth of a dry run rescanning them. It is off until the
# DAG is built and back on (with the DAG frozen out of its reach) when jobs start (onstart).
gc.disable()

_validate_config()
# dataset -> ablation names that are not trained because another training keeps the same path
# lengths (rcpb.grid; each with `trained_as`); the aggregation gives each a row of results.csv
ALIASES = {}
CONFIGS = _expand_grids(ALIASES)
DATASETS = list(CONFIGS)

# The longest member list a training job's command may carry: the shell command is one argument
# of `bash -c`, which Linux limits to 128 KiB.
_MAX_MEMBERS_CHARS = 100_000


def _packs():
    """Dataset name -> {pack id: the member folders, space-separated} (rcpb.grid.packs).

    Resolves pack_size and pack_slots (null: the device's default) into config (the train
    rule's resources read pack_slots).
    """
    try:
        size, slots = rcpb_grid.pack_settings(config)
    except RcpbError as exc:
        raise WorkflowError(f"config: {exc}") from None
    config["pack_size"], config["pack_slots"] = size, slots
    out = {}
    for name, cfgs in CONFIGS.items():
        out[name] = {
            pack: " ".join(f"results/{name}/{c['family']}/{c['config_id']}" for c in members)
            for pack, members in rcpb_grid.packs(cfgs, size, config["device"]).items()
        }
        longest = max(map(len, out[name].values()), default=0)
        if longest > _MAX_MEMBERS_CHARS:
            raise WorkflowError(
                f"config: pack_size: {size} configurations make a training job's command "
                f"{longest:,} characters long (dataset {name}), more than a shell command may "
                "be; use a smaller pack_size."
            )
    return out


# dataset -> pack id -> member folders (the train rule's params); dataset -> the packs' markers
# (the aggregation's input). Made once here: a job's params are a dict lookup.
PACKS = _packs()
PACK_MARKERS = {
    name: [f"results/{name}/packs/{pack}.done" for pack in packs] for name, packs in PACKS.items()
}


def _grid_summary():
    """One line per dataset: trainings per family (what `rcpb grid CONFIG` prints in full)."""
    lines = []
    for name, cfgs in CONFIGS.items():
        per_family = {}
        for cfg in cfgs:
            per_family[cfg["family"]] = per_family.get(cfg["family"], 0) + 1
        parts = ", ".join(f"{family} {n:,}" for family, n in per_family.items())
        shared = len(ALIASES.get(name, []))
        extra = (f"; {shared:,} ablation name(s) share another's training" if shared else "")
        lines.append(
            f"rcpb grid: {name}: {len(cfgs):,} trainings ({parts}){extra}; "
            f"{len(PACKS[name]):,} training jobs (packs of up to {config['pack_size']}, "
            f"{config['pack_slots']} at once)"
        )
    return "\n".join(lines)


if workflow.is_main_process:
    print(_grid_summary(), file=sys.stderr)
SIMULATED = {
    name: ds["simulate"] for name, ds in config["datasets"].items() if "simulate" in ds
}


def teacher_input_args(dataset):
    """``--crop C --downsample F`` of a simulated dataset's preprocess (what its models see)."""
    pre = config["datasets"][dataset].get("preprocess") or {}
    crop = f"--crop {size_text(pre['crop'])} " if pre.get("crop") else ""
    return f"{crop}--downsample {pre.get('downsample') or 1}"


DATASET_FILES = {name: rcpb_grid.dataset_file(name, ds) for name, ds in config["datasets"].items()}
DEVICE = config["device"]


def _regex(names):
    import re

    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


# For every rule. A rule that must tell simulated from provided datasets apart narrows
# `dataset` itself (train / train_simulated in rules/train.smk, simulate_dataset in
# rules/data.smk): there both would otherwise match the same file.
wildcard_constraints:
    dataset=_regex(DATASETS),
    family=_regex(rcpb_grid.FAMILIES),
    config_id="[^/]+",
    pack="[^/]+",
    split="[0-9]+",
    fraction="[0-9.]+",


# Jobs call `rcpb` and `python` from the environment that runs Snakemake, also when it is not
# activated (`.venv/bin/snakemake -c2`).
put_interpreter_first_on_path()


def _check_dataset_files():
    """Validate every provided dataset file that exists; return {name: path} of missing ones.

    A bad file stops the workflow here, before any job, with rcpb's message (file, field, fix):
    rcpb.data.start_checks.check_dataset_file, which reads a file without a time axis a block
    of stimuli at a time.
    """
    missing = {}
    for name, ds in config["datasets"].items():
        if "file" not in ds:
            continue
        path = ds["file"]
        if not os.path.exists(path):
            missing[name] = path
            continue
        if not workflow.is_main_process:
            continue  # checked once, by the process that schedules the jobs
        from rcpb.data.start_checks import check_dataset_file

        try:
            for text in check_dataset_file(path, config["datasets"][name]["preprocess"],
                                           CONFIGS[name], name):
                print(f"warning: datasets.{name} ({path}): {text}", file=sys.stderr)
        except RcpbError as exc:
            raise WorkflowError(f"datasets.{name}: {exc}") from None
    return missing


MISSING_FILES = _check_dataset_files()


onstart:
    gc.freeze()
    gc.enable()
    # a real run (not a dry run) needs every provided dataset file
    if MISSING_FILES:
        listing = "\n".join(f"  {name}: {path}" for name, path in MISSING_FILES.items())
        raise WorkflowError(
            "dataset file(s) not found:\n"
            + listing
            + "\nProvide them (convert your recordings with 'rcpb data import', SPEC 2.1) "
            "or remove these datasets from the config. Nothing was run."
        )
    # A grid file that exists is brought up to date with the config here (rewritten only when
    # its content changes); a missing one is made by rule grid_file (rules/train.smk). Not by
    # rerunning grid_file on a changed config: training jobs take the file as an ancient()
    # input, and Snakemake 9 then leaves the new trainings of a changed grid out of the run in
    # which grid_file reruns (they would come only in the next run).
    for name, cfgs in CONFIGS.items():
        if os.path.exists(grid_path(name)):
            rcpb_grid.write_grid_file(grid_path(name), cfgs, DEVICE)


# ----------------------------------------------------------------------------- targets


def grid_path(dataset):
    """results/{dataset}/grid.jsonl: every training configuration of a dataset, one per line;
    a training job reads its own line (rcpb train --from-grid)."""
    return f"results/{dataset}/{rcpb_grid.GRID_FILE}"


def write_grid(dataset, path, log):
    """Rule grid_file: write the grid file of ``dataset`` and a one-line log."""
    rcpb_grid.write_grid_file(path, CONFIGS[dataset], DEVICE)
    with open(log, "w") as f:
        print(f"{len(CONFIGS[dataset])} configurations -> {path}", file=f)


def model_dir(cfg):
    """results/{dataset}/{family}/{config_id}: the folder of one trained model."""
    return f"results/{cfg['dataset']}/{cfg['family']}/{cfg['config_id']}"


def pack_members(wildcards):
    """The member folders of a pack, space-separated (param of the train rules)."""
    try:
        return PACKS[wildcards.dataset][wildcards.pack]
    except KeyError:
        raise WorkflowError(
            f"results/{wildcards.dataset}/packs/{wildcards.pack}.done: no such pack in the "
            "current config (pack ids follow the grid and pack_size; the dataset's packs are "
            f"the inputs of results/{wildcards.dataset}/results.csv)."
        ) from None


def pack_markers(wildcards):
    """Markers of every pack of a dataset (input of the aggregation)."""
    return PACK_MARKERS[wildcards.dataset]


def aliases_digest(wildcards):
    """Digest of a dataset's aliases, a param of the aggregation: a changed set reruns it also
    when the trainings stay the same (le/ge names added that keep the lengths of trained
    models)."""
    import hashlib

    text = "".join(f"{a['config_id']} {a['trained_as']}\n" for a in ALIASES[wildcards.dataset])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_aggregation_lists(models_txt, aliases_json, dataset):
    """Files the aggregation reads, being too long for a command line: the folders of every
    training of ``dataset``, one per line, and the dataset's aliases (JSON list)."""
    import json

    with open(models_txt, "w") as f:
        f.writelines(model_dir(cfg) + "\n" for cfg in CONFIGS[dataset])
    with open(aliases_json, "w") as f:
        json.dump(ALIASES[dataset], f, sort_keys=True)


def all_targets(wildcards):
    """Default target: per dataset the results tables and every table, figure and summary, and
    the report's front page (rules/report.smk)."""
    targets = []
    for name in DATASETS:
        targets += [f"results/{name}/{t}" for t in ("results.csv", "neurons.csv", "dataset_summary.txt",
                                                    "baselines.csv")]
        targets += list(analysis_outputs(config, name, analysed_configs(name)))
    return targets + [FRONT_PAGE]


# ----------------------------------------------------------------------------- training


# Resources of a training job (one pack: up to pack_size trainings, pack_slots at a time; the
# runtime of train_resources is per job); a GPU is requested only when training on CUDA. The
# device itself reaches the job through the grid file: execution settings are not part of a
# configuration's id, so switching the device retrains nothing.
# tmpdir is Snakemake's default (the system temp dir), fixed here when the workflow starts instead
# of being evaluated as an expression for each of a paper grid's thousands of jobs (about 8 % of
# a dry run with one job per training). On a cluster each job re-reads this file on its node, so
# it gets the node's temp dir.
TRAIN_RESOURCES = {
    "mem_mb": config["train_resources"]["mem_mb"],
    "runtime": config["train_resources"]["runtime"],
    "tmpdir": tempfile.gettempdir(),
    # models a job trains at once (rcpb train --slots): not a scheduling limit, but an execution
    # setting that must not rerun finished packs when it changes, as a param would
    "pack_slots": config["pack_slots"],
    **({"gpu": 1} if DEVICE == "cuda" else {}),
}
