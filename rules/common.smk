# Config validation, grid expansion, dataset checks and the input functions of every rule.
#
# Runs on every start of the workflow (and, on a cluster, of every job), so it stays light:
# rcpb.grid and rcpb.data.validate import numpy, h5py and PyYAML, never torch.

import json
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rcpb import grid as rcpb_grid
from rcpb.errors import RcpbError


def _validate_config():
    """Schema check (fills the schema's defaults into config); one line naming the field."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as exc:
        cause = exc.__context__
        if cause is not None and hasattr(cause, "absolute_path"):
            raise WorkflowError(
                f"config: {rcpb_grid.describe_schema_error(cause)}. Fix this value in your "
                "config file; schemas/config.schema.yaml lists every key and allowed value."
            ) from None
        raise


def _expand_grids():
    """Dataset name -> list of training configurations (rcpb.grid)."""
    try:
        return rcpb_grid.expand(config)
    except RcpbError as exc:
        raise WorkflowError(f"config: {exc}") from None


_validate_config()
CONFIGS = _expand_grids()
DATASETS = list(CONFIGS)


def _grid_summary():
    """One line per dataset: trainings per family (what `rcpb grid CONFIG` prints in full)."""
    lines = []
    for name, cfgs in CONFIGS.items():
        per_family = {}
        for cfg in cfgs:
            per_family[cfg["family"]] = per_family.get(cfg["family"], 0) + 1
        parts = ", ".join(f"{family} {n:,}" for family, n in per_family.items())
        lines.append(f"rcpb grid: {name}: {len(cfgs):,} trainings ({parts})")
    return "\n".join(lines)


if workflow.is_main_process:
    print(_grid_summary(), file=sys.stderr)
# (dataset, family, config_id) -> configuration
CONFIG_BY_ID = {
    (cfg["dataset"], cfg["family"], cfg["config_id"]): cfg
    for cfgs in CONFIGS.values()
    for cfg in cfgs
}
SIMULATED = {
    name: ds["simulate"] for name, ds in config["datasets"].items() if "simulate" in ds
}
DATASET_FILES = {name: rcpb_grid.dataset_file(name, ds) for name, ds in config["datasets"].items()}
DEVICE = config["device"]
# Jobs call `rcpb` from the environment that runs Snakemake, also when it is not activated
# (`.venv/bin/snakemake -c2`): its bin directory goes first on the jobs' PATH.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def _check_dataset_files():
    """Validate every provided dataset file that exists; return {name: path} of missing ones.

    A bad file stops the workflow here, before any job, with rcpb's message (file, field, fix).
    The losses of the dataset's grid decide whether negative responses are an error.
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
        from rcpb.data.preprocess import preprocess_images
        from rcpb.data.validate import load_dataset

        loss = "poisson" if any(c["loss"] == "poisson" for c in CONFIGS[name]) else None
        try:
            data = load_dataset(path, loss=loss)
            pre = config["datasets"][name]["preprocess"]
            size = preprocess_images(data.images[:1], pre["crop"], pre["downsample"]).shape[-1]
        except RcpbError as exc:
            raise WorkflowError(f"datasets.{name}: {exc}") from None
        if size < 9:
            raise WorkflowError(
                f"datasets.{name}.preprocess: the model input would be {size} x {size} px, but "
                "the first layer's 9 x 9 convolution needs at least 9 px; use a larger crop "
                "or a smaller downsample factor."
            )
    return missing


MISSING_FILES = _check_dataset_files()


onstart:
    # a real run (not a dry run) needs every provided dataset file
    if MISSING_FILES:
        listing = "\n".join(f"  {name}: {path}" for name, path in MISSING_FILES.items())
        raise WorkflowError(
            "dataset file(s) not found:\n"
            + listing
            + "\nProvide them (convert your recordings with 'rcpb data import', SPEC 2.1) "
            "or remove these datasets from the config. Nothing was run."
        )


# ----------------------------------------------------------------------------- targets


def model_dir(cfg):
    """results/{dataset}/{family}/{config_id}: the folder of one trained model."""
    return f"results/{cfg['dataset']}/{cfg['family']}/{cfg['config_id']}"


def metrics_files(wildcards):
    """metrics.json of every model of a dataset (input of the aggregation)."""
    return [f"{model_dir(cfg)}/metrics.json" for cfg in CONFIGS[wildcards.dataset]]


def all_targets(wildcards):
    """Default target: per dataset the results tables, plus every analysis output if defined."""
    targets = []
    for name in DATASETS:
        targets += [f"results/{name}/results.csv", f"results/{name}/neurons.csv"]
        if "analysis_targets" in globals():
            targets += list(globals()["analysis_targets"](name))
    return targets


# ----------------------------------------------------------------------------- training


def training_config(wildcards):
    """The configuration of one training job, as the JSON text `rcpb train` reads."""
    key = (wildcards.dataset, wildcards.family, wildcards.config_id)
    try:
        cfg = CONFIG_BY_ID[key]
    except KeyError:
        raise WorkflowError(
            f"results/{'/'.join(key)} is not a configuration of the current config "
            "(rcpb grid CONFIG --list prints them)."
        ) from None
    return json.dumps(rcpb_grid.training_config(cfg), sort_keys=True)


def _regex(names):
    import re

    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


# Shell prefix of every training: with a GPU requested (resources.gpu > 0) on a machine with
# several GPUs and no scheduler that assigns one (a workstation), take the first GPU whose slot
# lock is free; the lock is released when the job ends. Under SLURM (CUDA_VISIBLE_DEVICES set)
# and on CPU nothing happens.
GPU_SLOT_SH = (
    'if [ {resources.gpu} -gt 0 ] && [ -z "${{CUDA_VISIBLE_DEVICES:-}}" ] '
    "&& command -v nvidia-smi >/dev/null 2>&1; then "
    "mkdir -p .snakemake/gpu-slots; "
    "for i in $(seq 0 $(( $(nvidia-smi -L | wc -l) - 1 ))); do "
    "exec 9>.snakemake/gpu-slots/$i.lock; "
    "if flock -n 9; then export CUDA_VISIBLE_DEVICES=$i; break; fi; exec 9>&-; done; fi; "
)
