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


def write_model(folder, cfg, perf, paths_p, ceiling=(0.8, 0.6)):
    """A finished model folder: config.json, metrics.json (2 neurons; ``ceiling``: the test
    split's cc_max_per_neuron, None for none recorded), paths.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    test = {"cc_norm2": perf, "cc_raw": perf / 2, "cc_raw2": perf / 4, "loss": 1.0,
            "n_excluded": 0, "ceiling_stimuli": "evaluated", "cc_norm2_per_neuron": [perf, perf],
            "cc_raw_per_neuron": [perf / 2, perf / 2]}
    if ceiling is not None:
        test["cc_max_per_neuron"] = list(ceiling)
    (folder / "metrics.json").write_text(json.dumps({
        "test": test, "val": {"cc_norm2": perf, "loss": 1.0, "cc_max_per_neuron": [0.1, 0.1]},
        "n_params": 100, "n_train": 10}))
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
    n_rows, n_neurons, n_failed = write_tables(folders, tmp_path / "results.csv",
                                               tmp_path / "neurons.csv", read_aliases(path))
    assert n_failed == 0
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


def test_neurons_table_has_the_test_ceiling_of_each_neuron(trained, tmp_path):
    """test_cc_max comes from metrics.json test.cc_max_per_neuron (not val), NaN where it is
    NaN or not recorded; the new column is the last one."""
    configs, aliases, folders = trained
    mp = next(c for c in configs if c["family"] == "multipath")
    old, nan = tmp_path / "old" / "m-old", tmp_path / "nan" / "m-nan"
    write_model(old, {**mp, "config_id": "m-old"}, 0.5, {"1": 1.0}, ceiling=None)
    write_model(nan, {**mp, "config_id": "m-nan"}, 0.5, {"1": 1.0}, ceiling=(float("nan"), 0.3))
    write_tables(folders + [old, nan], tmp_path / "results.csv", tmp_path / "neurons.csv",
                 aliases)
    neurons = pd.read_csv(tmp_path / "neurons.csv")
    assert list(neurons.columns) == ["config_id", "neuron", "test_cc_norm2", "test_cc_raw",
                                     "test_cc_max"]
    trained_rows = neurons[neurons["config_id"].isin({c["config_id"] for c in configs})]
    assert list(trained_rows["test_cc_max"]) == [0.8, 0.6] * len(configs)
    # aliases copy their training's ceilings
    alias_rows = neurons[neurons["config_id"].isin({a["config_id"] for a in aliases})]
    alias_rows = alias_rows.sort_values(["config_id", "neuron"])
    assert list(alias_rows["test_cc_max"]) == [0.8, 0.6] * len(aliases)
    assert neurons.loc[neurons["config_id"] == "m-old", "test_cc_max"].isna().all()
    nan_rows = neurons[neurons["config_id"] == "m-nan"]
    assert pd.isna(nan_rows["test_cc_max"].iloc[0]) and nan_rows["test_cc_max"].iloc[1] == 0.3


def test_without_aliases_trained_as_is_an_empty_column(trained):
    configs, _, folders = trained
    results, neurons, failed = collect(folders)
    assert len(results) == len(configs) and results["trained_as"].isna().all()
    assert failed.empty
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
    results, _, _ = collect(folders + [own], aliases)
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


def fail(folder, reason="loss is nan", step=7):
    """Turn a model folder into a failed training as the pack trainer writes it: metrics.json
    with the reason and no metrics, config.json, no paths.json or best.pt."""
    (folder / "metrics.json").write_text(json.dumps(
        {"failed": reason, "failed_at_step": step, "n_train": 10, "wall_time_s": 1.5}))
    (folder / "paths.json").unlink()


def test_failed_training_has_a_failed_row_and_is_listed_with_its_aliases(trained, tmp_path):
    configs, aliases, folders = trained
    (mp,) = [c for c in configs if c["family"] == "multipath"]
    fail(tmp_path / "multipath" / mp["config_id"])
    warnings = []
    results, neurons, failed = collect(folders, aliases, warn=warnings.append)
    # le4 and ge1 keep every length: trained as the failed multi-path model, so failed too
    lost = sorted(a["config_id"] for a in aliases if a["trained_as"] == mp["config_id"])
    assert len(lost) == 2
    failed_ids = {mp["config_id"], *lost}
    assert set(results.loc[results["status"] == "failed", "config_id"]) == failed_ids
    assert not failed_ids & set(neurons["config_id"])
    assert len(results) == len(configs) + len(aliases)
    assert len(neurons) == 2 * (len(results) - len(failed_ids))
    assert list(failed.columns) == ["config_id", "family", "reason"]
    assert sorted(failed["config_id"]) == sorted([mp["config_id"], *lost])
    by_id = failed.set_index("config_id")
    assert by_id.loc[mp["config_id"], "family"] == "multipath"
    assert by_id.loc[mp["config_id"], "reason"] == "loss is nan (step 7)"
    assert mp["config_id"] in by_id.loc[lost[0], "reason"]
    # one warning per failed training (not per alias), naming it and the reason
    assert len(warnings) == 1 and mp["config_id"] in warnings[0] and "loss is nan" in warnings[0]
    # the multi-path model's ablations keep their rows; their partner is simply absent
    rm = results[results["family"] == "ablation_rm"]
    assert len(rm) == 1 and rm["partner_id"].iloc[0] == mp["config_id"]


def test_cli_writes_failed_csv_and_warns(trained, tmp_path, capsys):
    configs, aliases, folders = trained
    out = [f"--{k}={tmp_path / (k + '.csv')}" for k in ("results", "neurons", "failed")]
    assert main([*map(str, folders), *out]) == 0
    assert (tmp_path / "failed.csv").read_text().strip() == "config_id,family,reason"
    assert "warning" not in capsys.readouterr().err

    (rec,) = [c for c in configs if c["family"] == "recurrent"]
    fail(tmp_path / "recurrent" / rec["config_id"], reason="parameters are inf")
    assert main([*map(str, folders), *out]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and rec["config_id"] in err and "1 failed" in err
    failed = pd.read_csv(tmp_path / "failed.csv")
    assert failed.to_dict("records") == [{"config_id": rec["config_id"], "family": "recurrent",
                                          "reason": "parameters are inf (step 7)"}]
    row = pd.read_csv(tmp_path / "results.csv").set_index("config_id").loc[rec["config_id"]]
    assert row["status"] == "failed" and row["failure"] == "parameters are inf (step 7)"


def test_read_model_of_a_failed_training_says_so(trained, tmp_path):
    from analysis.aggregate import read_model

    configs, _, folders = trained
    fail(folders[0])
    with pytest.raises(RcpbError, match="failed training"):
        read_model(folders[0])


def test_tables_and_figures_leave_out_pairs_whose_partner_failed(tmp_path):
    """Failed trainings are left out: every table and figure is made without them, and a model
    whose partner failed drops out of the paired statistics instead of breaking them."""
    import matplotlib

    matplotlib.use("Agg")
    from analysis import figures, tables
    from analysis.load import normalise, pairs
    from synthetic_results import make_results

    raw = make_results(fractions=(1.0,), channels=(8,), acts=("relu",), losses=("mse",),
                       iterations=(2, 4), ablation_T=4, lege_T=(4,))
    ff = raw[(raw["family"] == "ff") & (raw["blocks"] == 3)]["config_id"]
    mp = raw[(raw["family"] == "multipath") & (raw["iterations"] == 4)
             & (raw["readout"] == "2-avg")]["config_id"]
    rec = raw[raw["family"] == "recurrent"]["config_id"]
    failed = {ff.iloc[0], mp.iloc[0], rec.iloc[-1]}
    full, kept = normalise(raw), normalise(raw[~raw["config_id"].isin(failed)])
    assert len(full) - len(kept) == 3

    # the failed FF model's recurrent partners are left out of the pairs (per model), the failed
    # recurrent model too; the rest stay paired
    full_pairs, kept_pairs = pairs(full, "recurrent", "ff"), pairs(kept, "recurrent", "ff")
    n_partners = int((full["partner_id"] == ff.iloc[0]).sum())
    assert n_partners > 0
    assert len(kept_pairs) == len(full_pairs) - n_partners - 1
    assert not set(kept_pairs["ref_config_id"]) & failed
    from analysis.workflow import DYNAMICS_OUTPUTS

    for name in tables.TABLES:
        table, md = tables.build(name, kept, "d")
        # the dynamics table is built for time-binned data only (analysis.workflow)
        assert (len(table) or name in DYNAMICS_OUTPUTS) and md, name
    assert tables.ablation_table(kept, "ablation_rm")["n_models"].sum() > 0
    for name in figures.FIGURES:
        per_fraction = name not in ("fig3a",)
        out = {ext: tmp_path / f"{name}.{ext}" for ext in ("png", "csv")}
        figures.render(name, kept, 0, 1.0 if per_fraction else None, str(out["png"]), None,
                       str(out["csv"]))
        assert out["png"].stat().st_size > 0, name


def test_rcpb_does_not_import_analysis():
    """analysis/ is the workflow's, not part of the installed rcpb (no package cycle)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "rcpb"
    pattern = re.compile(r"^\s*(import analysis|from analysis)\b", re.MULTILINE)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_convergence_columns_count_phases_that_stopped_on_patience(tmp_path):
    configs, _ = t4_grid()
    cfg = dict(grid.training_config(configs[0]), train={"max_steps": 75, "patience": 3})
    folder = tmp_path / "m"
    write_model(folder, cfg, 0.5, {"1": 1.0})
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update(steps_per_phase=[75, 40, 75], best_step=115)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    results, _, _ = collect([folder])
    row = results.iloc[0]
    # 75 + 40 + 75 steps; only the 40-step phase ended before max_steps (on patience)
    assert (row["steps"], row["phases"], row["phases_stopped_early"]) == (190, 3, 1)
    assert row["best_step"] == 115
