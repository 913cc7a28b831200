"""Aggregation (analysis.aggregate, python -m analysis.aggregate): model folders + aliases ->
results tables."""

import json

import pandas as pd
import pytest

from analysis.aggregate import collect, main, read_aliases, write_tables
from rcpb import grid
from rcpb.errors import RcpbError
from rcpb.config import validate_config


def t4_grid():
    """1 layer, T = 4, rm3-4 and le/ge: le2 is trained as rm3-4, le4 and ge1 as the partner."""
    config = {
        "datasets": {"d": {"file": "d.h5", "grid": "g"}},
        "grids": {"g": {
            "common": {"train_fraction": [1.0], "channels": [8], "act": ["relu"],
                       "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0]},
            "recurrent": {"recurrent_layers": [1], "iterations": [4], "readout": ["2-avg"]},
            "ablation_rm": {"sets": ["rm3-4"]},
            "ablation_lege": {},
        }},
    }
    validate_config(config)
    aliases = {}
    configs = grid.expand(config, aliases=aliases)["d"]
    return configs, aliases["d"]


def write_model(folder, cfg, perf, paths_p):
    """A finished model folder: config.json, metrics.json (2 neurons), paths.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "metrics.json").write_text(json.dumps({
        "test": {"cc_norm2": perf, "cc_raw": perf / 2, "cc_raw2": perf / 4, "loss": 1.0,
                 "n_excluded": 0, "ceiling_stimuli": "evaluated", "cc_norm2_per_neuron": [perf, perf],
                 "cc_raw_per_neuron": [perf / 2, perf / 2]},
        "val": {"cc_norm2": perf, "loss": 1.0}, "n_params": 100, "n_train": 10}))
    avg = sum(int(d) * p for d, p in paths_p.items())
    (folder / "paths.json").write_text(json.dumps({"avg_path_length": avg, "path_entropy": 0.5,
                                                   "path_p": paths_p}))


@pytest.fixture
def trained(tmp_path):
    """Folders of every training of t4_grid (performance = 0.1 x position), and the aliases."""
    configs, aliases = t4_grid()
    folders = []
    for i, cfg in enumerate(configs):
        allowed = cfg["allowed_lengths"] or [1, 2, 3, 4]
        folder = tmp_path / cfg["family"] / cfg["config_id"]
        write_model(folder, grid.training_config(cfg), 0.1 * (i + 1),
                    {str(d): 1 / len(allowed) for d in allowed})
        folders.append(folder)
    return configs, aliases, folders


def test_every_alias_gets_a_copy_of_its_training_row(trained, tmp_path):
    configs, aliases, folders = trained
    by_id = {c["config_id"]: c for c in configs}
    (path := tmp_path / "aliases.json").write_text(json.dumps(aliases))
    n_rows, n_neurons = write_tables(folders, tmp_path / "results.csv", tmp_path / "neurons.csv",
                                     read_aliases(path))
    assert n_rows == len(configs) + len(aliases)
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results.columns)[-1] == "trained_as"
    assert results["config_id"].is_unique
    assert results.loc[results["config_id"].isin(by_id), "trained_as"].isna().all()

    rows = results.set_index("config_id")
    (mp,) = [c for c in configs if c["family"] == "multipath"]
    (rm34,) = [c for c in configs if c["ablation"] == "rm3-4"]
    names = {a["ablation"]: a for a in aliases}
    assert sorted(names) == ["ge1", "le2", "le4"]
    for name, trained_as, allowed in (("le2", rm34, "1,2"), ("le4", mp, "1,2,3,4"),
                                      ("ge1", mp, "1,2,3,4")):
        row, source = rows.loc[names[name]["config_id"]], rows.loc[trained_as["config_id"]]
        assert row["trained_as"] == trained_as["config_id"]
        assert (row["family"], row["ablation"], row["allowed_lengths"]) == (
            "ablation_lege", name, allowed)
        assert row["partner_id"] == mp["config_id"]
        for column in ("test_cc_norm2", "test_cc_raw", "avg_path_length", "path_p1",
                       "n_params", "iterations", "readout"):
            assert row[column] == source[column]
    # le2 keeps lengths 1 and 2 with equal strength: the copied path statistics say so
    le2 = rows.loc[names["le2"]["config_id"]]
    assert (le2["path_p1"], le2["path_p2"], le2["avg_path_length"]) == (0.5, 0.5, 1.5)
    assert pd.isna(le2["path_p3"])

    neurons = pd.read_csv(tmp_path / "neurons.csv")
    assert n_neurons == len(neurons) == 2 * n_rows
    le2_neurons = neurons[neurons["config_id"] == names["le2"]["config_id"]]
    assert list(le2_neurons["test_cc_norm2"]) == [rows.loc[rm34["config_id"], "test_cc_norm2"]] * 2


def test_without_aliases_trained_as_is_an_empty_column(trained):
    configs, _, folders = trained
    results, neurons = collect(folders)
    assert len(results) == len(configs) and results["trained_as"].isna().all()
    assert len(neurons) == 2 * len(configs)


def test_alias_whose_training_is_missing_names_it(trained):
    configs, aliases, folders = trained
    (rm34,) = [c for c in configs if c["ablation"] == "rm3-4"]
    kept = [f for f in folders if f.name != rm34["config_id"]]
    with pytest.raises(RcpbError, match=rm34["config_id"]):
        collect(kept, aliases)


def test_alias_trained_under_its_own_id_keeps_its_own_row(trained, tmp_path):
    """A folder of a name that was trained before it became an alias: its own row is used."""
    configs, aliases, folders = trained
    le2 = next(a for a in aliases if a["ablation"] == "le2")
    own = tmp_path / "old" / le2["config_id"]
    write_model(own, {k: v for k, v in le2.items() if k != "trained_as"}, 0.99, {"1": 1.0})
    results, _ = collect(folders + [own], aliases)
    row = results[results["config_id"] == le2["config_id"]]
    assert len(row) == 1 and row["test_cc_norm2"].iloc[0] == 0.99
    assert pd.isna(row["trained_as"].iloc[0])
    assert len(results) == len(configs) + len(aliases)


def test_cli_aliases_option(trained, tmp_path):
    configs, aliases, folders = trained
    (tmp_path / "aliases.json").write_text(json.dumps(aliases))
    (tmp_path / "models.txt").write_text("".join(f"{f}\n" for f in folders))
    assert main(["--models", str(tmp_path / "models.txt"),
                 "--aliases", str(tmp_path / "aliases.json"),
                 "--results", str(tmp_path / "r.csv"), "--neurons", str(tmp_path / "n.csv")]) == 0
    results = pd.read_csv(tmp_path / "r.csv")
    assert results["trained_as"].notna().sum() == len(aliases) == 3
    (tmp_path / "bad.json").write_text(json.dumps([{"config_id": "x"}]))
    assert main([*map(str, folders), "--aliases", str(tmp_path / "bad.json"),
                 "--results", str(tmp_path / "r2.csv"), "--neurons", str(tmp_path / "n2.csv")]) != 0


def test_metrics_from_before_the_ceiling_of_the_target_are_refused(trained):
    configs, aliases, folders = trained
    metrics = json.loads((folders[0] / "metrics.json").read_text())
    del metrics["test"]["ceiling_stimuli"]
    (folders[0] / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RcpbError, match=f"delete {folders[0]}"):
        collect(folders)


def test_rcpb_does_not_import_analysis():
    """analysis/ is the workflow's, not part of the installed rcpb (no package cycle)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "rcpb"
    pattern = re.compile(r"^\s*(import analysis|from analysis)\b", re.MULTILINE)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
