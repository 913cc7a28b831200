"""End to end: Snakemake simulates a tiny dataset, trains every family in packs and aggregates.

A handful of models (1 feed-forward, 2 recurrent, 2 multi-path and 2 rm-ablations) on 160
stimuli with a budget of 10 steps. The 4 le/ge names (T = 2) keep the lengths of rm2 (le1), rm1
(ge2) or all of them (le2, ge1: the multi-path model), so they are not trained (aliases) but get
results rows copied from those trainings. Checks one results row per configuration and alias
with finite metrics and the right partners, that every pack job leaves its marker and
benchmark, that an unchanged rerun does nothing, that a figure can be rebuilt alone, and that a
new seed trains exactly the new configurations (the packs that get them rerun, finding their
other members finished). The config is tests/conftest.py's tiny_workflow_config.
"""

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from rcpb import grid
from rcpb.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["results/tiny/results.csv", "results/tiny/neurons.csv"]


def snakemake(workdir, cfg, *args, targets=TARGETS):
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", *targets, *args, "-s", str(ROOT / "Snakefile"),
           "-d", str(workdir), "--configfile", str(workdir / "config.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def expected(cfg, aliases=None):
    """config_id -> training configuration; ``aliases`` (a dict) gets config_id -> alias."""
    cfg = copy.deepcopy(cfg)
    validate_config(cfg)
    shared = {}
    configs = {c["config_id"]: c for c in grid.expand(cfg, aliases=shared)["tiny"]}
    if aliases is not None:
        aliases.update({a["config_id"]: a for a in shared["tiny"]})
    return configs


def planned_trainings(output):
    """Number of training jobs (rules train and train_simulated: one per pack) in a dry run's
    job stats."""
    # a dry run prints the job stats table twice: one count per rule name
    counts = dict(re.findall(r"^(train(?:_simulated)?)\s+(\d+)\s*$", output, re.MULTILINE))
    return sum(int(n) for n in counts.values())


def planned_packs(output):
    """Pack ids of the training jobs a dry run lists."""
    return set(re.findall(r"wildcards: dataset=tiny, pack=(\S+)", output))


def packs(cfg):
    """pack id -> member config ids, as the workflow groups them (pack_size of the config)."""
    cfg = copy.deepcopy(cfg)
    validate_config(cfg)
    size, _ = grid.pack_settings(cfg)
    return {pack: [c["config_id"] for c in members]
            for pack, members in grid.packs(grid.expand(cfg)["tiny"], size).items()}


def model_folder(workdir, cfg):
    return workdir / "results" / "tiny" / cfg["family"] / cfg["config_id"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_workflow_config):
    """The tiny workflow (tests/conftest.py) run to its results tables, in its own folder."""
    workdir = tmp_path_factory.mktemp("workflow")
    with h5py.File(ROOT / "data" / "ns2250_stimuli_74px.h5") as src, \
            h5py.File(workdir / "images.h5", "w") as dst:
        dst.create_dataset("images", data=src["images"][:160])
    snakemake(workdir, tiny_workflow_config, "-c2")
    return workdir


@pytest.mark.slow
def test_one_row_per_configuration_with_finite_metrics(finished_run, tiny_workflow_config):
    aliases = {}
    configs = expected(tiny_workflow_config, aliases)
    assert len(configs) == 7 and len(aliases) == 4
    results = pd.read_csv(finished_run / "results" / "tiny" / "results.csv")
    assert sorted(results["config_id"]) == sorted([*configs, *aliases])
    for row in results.itertuples():
        cfg = configs.get(row.config_id) or aliases[row.config_id]
        assert (row.trained_as if isinstance(row.trained_as, str) else None) == cfg.get(
            "trained_as")
        assert row.family == cfg["family"]
        assert (row.partner_id if isinstance(row.partner_id, str) else None) == cfg["partner_id"]
        for column in ("test_cc_norm2", "test_cc_raw", "test_loss", "val_loss",
                       "avg_path_length"):
            assert math.isfinite(getattr(row, column)), (row.config_id, column)
        assert row.n_params > 0 and row.n_neurons == 6 and row.input_size == 18
    ablated = results[results["family"] == "ablation_rm"].set_index("ablation")
    assert ablated.loc["rm1", "allowed_lengths"] == "2"
    assert ablated.loc["rm1", "avg_path_length"] == pytest.approx(2.0)  # only length-2 paths
    # ge2 keeps length 2 only, as rm1 does: rm1's row under ge2's name
    lege = results[results["family"] == "ablation_lege"].set_index("ablation")
    assert sorted(lege.index) == ["ge1", "ge2", "le1", "le2"]
    assert lege.loc["ge2", "trained_as"] == ablated.loc["rm1", "config_id"]
    assert lege.loc["ge2", "test_cc_norm2"] == ablated.loc["rm1", "test_cc_norm2"]
    assert lege.loc["ge2", "allowed_lengths"] == "2"
    assert lege.loc["le2", "trained_as"] == lege.loc["le2", "partner_id"]  # the full model
    ff = results[results["family"] == "ff"].iloc[0]
    assert ff["avg_path_length"] == pytest.approx(2.0)  # 3 blocks: 2 convs after CPB1

    neurons = pd.read_csv(finished_run / "results" / "tiny" / "neurons.csv")
    assert len(neurons) == 11 * 6
    assert set(neurons["config_id"]) == set(configs) | set(aliases)


@pytest.mark.slow
def test_every_pack_leaves_its_marker_and_benchmark(finished_run, tiny_workflow_config):
    """One job per pack: its marker lists every member as trained, its benchmark.tsv (wall
    time, memory) is there for sizing; no training failed."""
    configs = expected(tiny_workflow_config)
    folders = {f"results/tiny/{c['family']}/{c['config_id']}" for c in configs.values()}
    seen = set()
    for pack, members in packs(tiny_workflow_config).items():
        stem = finished_run / "results" / "tiny" / "packs" / pack
        marker = json.loads(Path(f"{stem}.done").read_text())
        assert set(marker["members"].values()) == {"trained"}, marker
        assert {Path(d).name for d in marker["members"]} == set(members)
        seen |= {str(Path(d)) for d in marker["members"]}
        header = Path(f"{stem}.benchmark.tsv").read_text().splitlines()[0].split("\t")
        assert "s" in header and "max_rss" in header, stem
        assert Path(f"{stem}.log").exists()
    assert {str(Path(f)) for f in folders} == seen
    failed = (finished_run / "results" / "tiny" / "failed.csv").read_text()
    assert failed.strip() == "config_id,family,reason"


@pytest.mark.slow
def test_unchanged_rerun_does_nothing(finished_run, tiny_workflow_config):
    out = snakemake(finished_run, tiny_workflow_config, "-n")
    assert "Nothing to be done" in out
    # the start-up summary counts every training of the grid, done or not, and the packs
    summary = [line for line in out.splitlines() if line.startswith("rcpb grid: ")]
    assert len(summary) == 1 and f"{len(expected(tiny_workflow_config))} trainings" in summary[0]
    assert f"{len(packs(tiny_workflow_config))} training jobs" in summary[0]


@pytest.mark.slow
def test_changed_pack_slots_reruns_nothing(finished_run, tiny_workflow_config):
    """pack_slots is an execution setting (passed as a resource, not a param)."""
    cfg = copy.deepcopy(tiny_workflow_config)
    cfg["pack_slots"] = 3
    assert "Nothing to be done" in snakemake(finished_run, cfg, "-n")


@pytest.mark.slow
def test_a_figure_is_rebuilt_alone(finished_run, tiny_workflow_config):
    """After a finished run, a figure target (made or deleted) needs its own rule only."""
    target = "results/tiny/figures/split0/frac100/fig3d.png"
    out = snakemake(finished_run, tiny_workflow_config, "-n", targets=[target])
    assert re.search(r"^fig3d\s+1\s*$", out, re.MULTILINE), out[-2000:]
    assert planned_trainings(out) == 0 and "aggregate" not in out


@pytest.mark.slow
def test_new_seed_trains_exactly_the_new_configurations(finished_run, tiny_workflow_config,
                                                        tmp_path):
    cfg = copy.deepcopy(tiny_workflow_config)
    cfg["grids"]["g"]["common"]["model_seed"] = [0, 1]
    old_configs, new_configs = expected(tiny_workflow_config), expected(cfg)
    new = set(new_configs) - set(old_configs)
    assert len(new) == 7
    # the packs that get a new member are regrouped (new ids); every other pack keeps its id
    old_packs, new_packs = packs(tiny_workflow_config), packs(cfg)
    changed = set(new_packs) - set(old_packs)
    assert {m for p in changed for m in new_packs[p]} >= new
    out = snakemake(finished_run, cfg, "-n")
    assert planned_packs(out) == changed and planned_trainings(out) == len(changed)
    assert "grid_file" not in out  # the grid file is refreshed when the run starts

    # run it (in a copy): the new configurations are trained, the finished ones are not
    workdir = tmp_path / "more_seeds"
    shutil.copytree(finished_run, workdir, symlinks=True)
    before = {cid: (model_folder(workdir, c) / "metrics.json").stat().st_mtime_ns
              for cid, c in old_configs.items()}
    snakemake(workdir, cfg, "-c2")
    for cid, c in old_configs.items():
        assert (model_folder(workdir, c) / "metrics.json").stat().st_mtime_ns == before[cid]
    status = {}
    for pack in changed:
        marker = workdir / "results" / "tiny" / "packs" / f"{pack}.done"
        members = json.loads(marker.read_text())["members"]
        status.update({Path(d).name: s for d, s in members.items()})
    assert {cid for cid, s in status.items() if s == "trained"} == new
    assert {cid for cid, s in status.items() if s == "done-before"} == (
        {m for p in changed for m in new_packs[p]} - new)
    results = pd.read_csv(workdir / "results" / "tiny" / "results.csv")
    assert set(new_configs) <= set(results["config_id"])
    assert "Nothing to be done" in snakemake(workdir, cfg, "-n")


@pytest.mark.parametrize("configfile", [None, "configs/paper_ns2250.yaml"])
def test_lint_passes(configfile):
    """`snakemake --lint` finds nothing, for the example and for a paper config."""
    cmd = [sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile")]
    if configfile:
        cmd += ["--configfile", str(ROOT / configfile)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr
    assert "your workflow is in a good condition" in result.stdout + result.stderr
