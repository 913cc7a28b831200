"""Tables from the results table (analysis.tables) and the analysis targets (analysis.workflow)."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis import tables, workflow
from analysis.load import normalise, read_results, seed_average
from rcpb.errors import RcpbError
from rcpb.config import load_config
from synthetic_results import make_results, true_gain


def _row(family, cid, perf, partner="", seed=0, channels=8, frac=1.0, split=0, val=None, **kw):
    return {"config_id": cid, "family": family, "partner_id": partner, "model_seed": seed,
            "channels": channels, "train_fraction": frac, "split_seed": split,
            "test_cc_norm2": perf, "val_cc_norm2": perf if val is None else val,
            "n_train": 100 * frac, "blocks": np.nan,
            "recurrent_layers": np.nan, "iterations": np.nan, "readout": "", **kw}


@pytest.fixture
def hand_table():
    """Two FF configs (channels 8, 16) x 2 seeds; two recurrent types partnered with them."""
    rows = []
    ff = {(8, 0): 0.40, (8, 1): 0.42, (16, 0): 0.50, (16, 1): 0.52}
    late = {(8, 0): 0.44, (8, 1): 0.46, (16, 0): 0.55, (16, 1): 0.57}
    for (ch, s), v in ff.items():
        rows.append(_row("ff", f"ff{ch}{s}", v, seed=s, channels=ch, blocks=3))
        rows.append(_row("recurrent", f"late{ch}{s}", late[(ch, s)], f"ff{ch}{s}", s, ch,
                         recurrent_layers=1, iterations=2, readout="late-avg"))
        rows.append(_row("recurrent", f"no{ch}{s}", v, f"ff{ch}{s}", s, ch,
                         recurrent_layers=1, iterations=2, readout="no-avg"))
    return normalise(pd.DataFrame(rows))


def test_table1_by_hand(hand_table):
    t1 = tables.table1(hand_table)
    assert len(t1) == 1
    r = t1.iloc[0]
    assert r["ff_mean"] == pytest.approx(0.46)
    assert r["ff_sem"] == pytest.approx(np.std([0.40, 0.42, 0.50, 0.52], ddof=1) / 2)
    assert (r["best_readout"], r["best_iterations"]) == ("late-avg", 2)
    assert r["best_perf_mean"] == pytest.approx(0.505)
    assert r["gain_pct"] == pytest.approx(100 * (0.505 / 0.46 - 1))
    # paired over seed-averaged configurations (0.45 vs 0.41, 0.56 vs 0.51): ratio of means
    assert r["n_pairs"] == 2
    assert r["paired_gain_pct"] == pytest.approx(100 * ((0.45 + 0.56) / (0.41 + 0.51) - 1))
    assert r["diff_mean"] == pytest.approx(0.045)
    # two pairs: no interval and no p-value, and the table says why
    assert math.isnan(r["diff_ci_low"]) and math.isnan(r["p"])
    assert "n = 2: too few pairs for a CI" in r["note"]
    md = tables.table1_markdown(t1)
    assert "(n = 2: too few pairs for a CI" in md and "[" not in md.split("Every (readout")[0].split("|---")[1]
    # all cells: 2 cells looked at; each FF configuration against the mean of its partners
    assert r["n_cells"] == 2
    assert r["cells_mean"] == pytest.approx((0.505 + 0.46) / 2)
    assert r["all_diff_mean"] == pytest.approx(0.0225)
    assert r["training_data"] == "100 % (100)"


def test_cells_by_hand(hand_table):
    cells = tables.recurrent_vs_ff(hand_table)
    assert list(cells["readout"]) == ["no-avg", "late-avg"]  # paper's mode order
    no = cells[cells["readout"] == "no-avg"].iloc[0]
    assert no["gain_pct"] == pytest.approx(0.0)
    assert no["paired_gain_pct"] == pytest.approx(0.0)
    assert math.isnan(no["p"])  # 2 pairs: no test
    assert no["perf_sem"] == pytest.approx(np.std([0.40, 0.42, 0.50, 0.52], ddof=1) / 2)


def test_seed_average_groups_only_over_model_seed(hand_table):
    sa = seed_average(hand_table[hand_table["family"] == "ff"], ["test_cc_norm2"])
    assert sorted(sa["test_cc_norm2"].round(6)) == [0.41, 0.51]
    assert set(sa["n_seeds"]) == {2}


def test_seed_average_counts_the_seeds_it_averages(hand_table):
    df = hand_table.copy()
    df.loc[df["config_id"] == "ff81", "perf"] = np.nan     # seed 1 of the 8-channel FF failed
    sa = seed_average(df[df["family"] == "ff"], ["perf"]).set_index("channels")
    assert sa.loc[8, "perf"] == pytest.approx(0.40) and sa.loc[8, "n_seeds"] == 1
    assert sa.loc[16, "n_seeds"] == 2


def test_single_pair_gives_nan_statistics_with_note():
    df = normalise(pd.DataFrame([
        _row("ff", "f", 0.4, blocks=3),
        _row("recurrent", "r", 0.5, "f", recurrent_layers=1, iterations=3, readout="2-avg"),
    ]))
    cells = tables.recurrent_vs_ff(df)
    r = cells.iloc[0]
    assert r["n_pairs"] == 1
    assert r["paired_gain_pct"] == pytest.approx(25.0)
    assert math.isnan(r["paired_gain_ci_low_pct"]) and math.isnan(r["p"])
    assert "n = 1" in r["note"]
    assert "n = 1: too few pairs" in tables.table1_markdown(tables.table1(df, cells))


def _cells_table(test, val, n_configs=8):
    """FF configs (channels 8 + i) at 0.40 and three recurrent cells with the given test and
    validation offsets over their partner; two seeds each (+-0.01)."""
    rows = []
    for i in range(n_configs):
        for s in (0, 1):
            base = 0.40 + 0.01 * i + (0.01 if s else -0.01)
            rows.append(_row("ff", f"ff{i}{s}", base, seed=s, channels=8 + i, blocks=3))
            for T in test:
                rows.append(_row("recurrent", f"r{T}-{i}{s}", base + test[T] + 0.002 * (-1) ** i,
                                 f"ff{i}{s}", s, 8 + i, val=base + val[T], recurrent_layers=1,
                                 iterations=T, readout="2-avg"))
    return normalise(pd.DataFrame(rows))


def test_best_cell_is_chosen_on_validation_even_when_test_disagrees():
    # T = 2 is best on test (+0.05) but worst on validation; T = 3 is best on validation
    df = _cells_table(test={2: 0.05, 3: 0.01, 4: 0.0}, val={2: -0.02, 3: 0.03, 4: 0.0})
    r = tables.table1(df).iloc[0]
    assert (r["best_readout"], r["best_iterations"]) == ("2-avg", 3)
    assert r["best_val_mean"] == pytest.approx(np.mean([0.40 + 0.01 * i for i in range(8)]) + 0.03)
    # what is reported for it is its test value: +0.01 over FF on every configuration
    assert r["diff_mean"] == pytest.approx(0.01)
    assert r["n_pairs"] == 8 and r["n_cells"] == 3
    assert r["diff_ci_low"] < 0.01 < r["diff_ci_high"]
    # next to the mean over all 3 cells: (0.05 + 0.01 + 0) / 3 over FF
    assert r["all_diff_mean"] == pytest.approx(0.02)
    assert r["all_n_pairs"] == 8


def test_seed_halves_choose_on_one_half_and_report_the_other():
    df = _cells_table(test={2: 0.05, 3: 0.01}, val={2: -0.02, 3: 0.03})
    # make seed 1's test values of T = 3 differ: they are what is reported
    m = (df["model_seed"] == 1) & (df["iterations"] == 3)
    df.loc[m, "perf"] += 0.02
    r = tables.table1(df, selection="seed_halves").iloc[0]
    assert r["best_iterations"] == 3
    assert r["diff_mean"] == pytest.approx(0.03)  # seed 1 alone: +0.01 + 0.02
    assert r["selection"] == "seed_halves"
    one_seed = df[df["model_seed"] == 0]
    r1 = tables.table1(one_seed, selection="seed_halves").iloc[0]
    assert "chosen on validation instead" in r1["note"]


def test_table1_without_recurrent_or_ff_models():
    only_ff = normalise(pd.DataFrame([_row("ff", "f", 0.4, blocks=3)]))
    t1 = tables.table1(only_ff)
    assert t1.iloc[0]["note"] == "no recurrent models"
    only_rec = normalise(pd.DataFrame([
        _row("recurrent", "r", 0.5, "missing", recurrent_layers=1, iterations=3, readout="2-avg")]))
    t1 = tables.table1(only_rec)
    assert "no feed-forward models" in t1.iloc[0]["note"]
    assert math.isnan(t1.iloc[0]["gain_pct"])


@pytest.fixture(scope="module")
def synthetic():
    return normalise(make_results(channels=(8, 16), acts=("relu",), losses=("mse", "poisson"),
                                  iterations=(2, 4, 7), lege_T=(4,)))


def test_synthetic_best_type_and_gain(synthetic):
    t1 = tables.table1(synthetic)
    assert list(t1["train_fraction"]) == [0.25, 0.5, 1.0]
    for r in t1.itertuples():
        assert (r.best_readout, r.best_iterations) == ("2-avg", 7)
        truth = 100 * true_gain("2-avg", 7, r.train_fraction)
        assert r.gain_pct == pytest.approx(truth, abs=1.0)
        assert r.paired_gain_ci_low_pct < truth + 1.0 and r.paired_gain_ci_high_pct > truth - 1.0
        assert r.wilcoxon_p < 0.01


def test_multipath_and_ablation_tables(synthetic):
    mp = tables.multipath_vs_recurrent(synthetic)
    pooled = mp[mp["readout"] == "all"]
    assert len(pooled) == 3
    assert (pooled["pearson_r_perf"] > 0.95).all()
    assert (pooled["paired_gain_pct"].abs() < 0.5).all()
    ab = tables.ablation_table(synthetic, "ablation_rm")
    one = ab[(ab["readout"] == "2-avg") & (ab["n_removed"] == 1)]
    assert list(one["removed"]) == ["1", "2", "3", "4", "5", "6", "7"]
    # synthetic truth: removing length d costs 3 % / d
    assert one.iloc[0]["change_pct"] == pytest.approx(-3.0, abs=0.6)
    three = ab[(ab["readout"] == "2-avg") & (ab["n_removed"] == 3)]
    assert three.loc[three["change_pct"].idxmin(), "removed"] == "1-3"
    lege = tables.ablation_table(synthetic, "ablation_lege")
    assert set(lege["kind"]) == {"le", "ge"}
    # le4 keeps every length (T = 4); le1 removes lengths 2-4 (truth: -3.25 %)
    for _, g in lege.groupby("readout"):
        le = g.set_index("ablation")["change_pct"]
        assert abs(le["le4"]) < abs(le["le1"])
        assert le["le1"] == pytest.approx(-3.25, abs=1.5)


def test_read_results_errors(tmp_path):
    with pytest.raises(RcpbError, match="not found"):
        read_results(str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"config_id": ["a"], "family": ["ff"]}).to_csv(bad, index=False)
    with pytest.raises(RcpbError, match="missing column"):
        read_results(str(bad))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(RcpbError, match="empty"):
        read_results(str(empty))


def test_cli_writes_csv_and_markdown(tmp_path, synthetic):
    src = tmp_path / "results.csv"
    synthetic.to_csv(src, index=False)
    out_csv, out_md = tmp_path / "t" / "table1.csv", tmp_path / "t" / "table1.md"
    assert tables.main(["table1", "--results", str(src), "--csv", str(out_csv), "--md", str(out_md),
                        "--dataset", "syn"]) == 0
    assert len(pd.read_csv(out_csv)) == 3
    md = out_md.read_text()
    assert "2-avg, T = 7" in md and "| 100 % (1400) |" in md
    assert tables.main(["table1", "--results", str(tmp_path / "missing.csv"), "--csv", str(out_csv),
                        "--md", str(out_md)]) == 2


def test_headlines_from_tables(synthetic):
    heads = workflow.headlines({
        "table1": tables.table1(synthetic),
        "multipath_vs_recurrent": tables.multipath_vs_recurrent(synthetic),
        "ablation_rm": tables.ablation_table(synthetic, "ablation_rm"),
    })
    heads = workflow.headlines({
        "table1": tables.table1(synthetic),
        "recurrent_vs_ff": tables.recurrent_vs_ff(synthetic),
        "multipath_vs_recurrent": tables.multipath_vs_recurrent(synthetic),
        "ablation_rm": tables.ablation_table(synthetic, "ablation_rm"),
    })
    assert heads["fig3d/split0/frac100"].startswith("best on validation: 2-avg, T = 7")
    assert heads["fig3a/split0"].startswith("all cells vs FF: 25 %: effect +")
    assert "r(performance)" in heads["fig4cd/split0/frac50"]
    assert "1-3" in heads["fig6gi/split0/frac100"]


def test_targets_from_expanded_grid_match_config_lookup():
    from rcpb import grid

    config = load_config("config.yaml")
    configs = grid.expand(config)
    for ds in config["datasets"]:
        exact = workflow.targets(config, ds, configs[ds])
        assert exact == workflow.targets(config, ds)
        assert f"results/{ds}/tables/table1.csv" in exact
        assert f"results/{ds}/summary.json" in exact
        fams = {c["family"] for c in configs[ds]}
        assert any("fig4cd" in t for t in exact) == ("multipath" in fams)
        assert any(t.endswith("/fig3d.pdf") for t in exact) == ("recurrent" in fams)
        assert any("fig6gi" in t for t in exact) == ("ablation_rm" in fams)


@pytest.mark.slow
def test_rules_build_tables_figure_summary_and_report(tmp_path):
    """rules/{tables,figures,report}.smk on a synthetic results table, then `snakemake --report`."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    ds = tmp_path / "results" / "syn"
    ds.mkdir(parents=True)
    make_results(fractions=(1.0,), channels=(8,), acts=("relu",), losses=("mse",),
                 iterations=(2, 3), multipath=False, dataset="syn").to_csv(ds / "results.csv", index=False)
    # what rules/aggregate.smk's baselines rule writes (here by hand)
    (ds / "baselines.csv").write_text(
        "dataset,split_seed,predictor,description,test_cc_norm2,test_cc_raw,val_cc_norm2,val_cc_raw\n"
        "syn,0,truth,true mean rates,0.97,0.9,0.96,0.9\n"
        "syn,0,drive,feed-forward drive,0.31,0.5,0.3,0.5\n")
    config = {"datasets": {"syn": {"grid": "g"}},
              "grids": {"g": {"common": {"train_fraction": [1.0]}, "ff": {}, "recurrent": {}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n'
        # what rules/common.smk provides to the analysis rules: jobs that find python and the
        # analysis package (not installed: on PYTHONPATH), the wildcard constraints, the grids
        + "from rcpb.process.jobenv import put_interpreter_first_on_path, put_workflow_on_pythonpath\n"
        + f"put_interpreter_first_on_path()\nput_workflow_on_pythonpath({str(root)!r})\n"
        + "wildcard_constraints:\n    dataset='[^/]+',\n    split='[0-9]+',\n"
        + "    fraction='[0-9.]+',\n"
        + "CONFIGS, ALIASES = {}, {}\n"
        + "".join(f'include: "{root}/rules/{s}.smk"\n'
                  for s in ("analysis_functions", "tables", "figures", "report"))
        + "rule all:\n    input: ANALYSIS_FEW\n")

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "snakemake", *args, "-d", str(tmp_path),
                              "-s", str(tmp_path / "Snakefile")],
                             # not from the repository: analysis must come from PYTHONPATH
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    targets = workflow.targets(config, "syn")
    assert "results/syn/figures/split0/frac100/fig3d.png" in targets
    assert not any("fig4cd" in t for t in targets)
    # a few of them (each job imports pandas, scipy and matplotlib: seconds)
    few = [t for t in targets if "fig" not in t or t.endswith("frac100/fig3d.png")]
    snakefile = (tmp_path / "Snakefile").read_text().replace("ANALYSIS_FEW", repr(few))
    (tmp_path / "Snakefile").write_text(snakefile)
    run("-c2")
    for t in few + ["results/syn/figures/split0/frac100/fig3d.csv"]:
        assert (tmp_path / t).stat().st_size > 0, t
    summary = json.loads((ds / "summary.json").read_text())
    assert "best" in summary["headlines"]["fig3d/split0/frac100"]
    assert [b["predictor"] for b in summary["baselines"]] == ["truth", "drive"]
    assert summary["table1"][0]["truth_perf"] == pytest.approx(0.97)
    fig3d = pd.read_csv(ds / "figures/split0/frac100/fig3d.csv")
    assert sorted(fig3d.loc[fig3d["series"] == "baseline", "perf_mean"]) == [0.31, 0.97]
    run("--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    assert "Table 1/3" in html and "performance vs number of iterations" in html


def test_summary_answer_and_front_page(tmp_path, synthetic):
    src = tmp_path / "results.csv"
    synthetic.to_csv(src, index=False)
    csvs = []
    for name in ("table1", "recurrent_vs_ff"):
        csvs.append(tmp_path / f"{name}.csv")
        assert tables.main([name, "--results", str(src), "--csv", str(csvs[-1]),
                            "--md", str(tmp_path / f"{name}.md")]) == 0
    summary = workflow.write_summary([str(c) for c in csvs], str(tmp_path / "s" / "summary.json"),
                                     str(src), dataset="syn", description="synthetic")
    assert summary["metric"] == "cc_norm2"
    assert len(summary["answer"]) == 3  # one line per training fraction
    line = summary["answer"][-1]
    assert line.startswith("split 0, 100 % (1400) training data: recurrent vs feed-forward")
    assert "best cell 2-avg, T = 7 (chosen on validation, of 12 cells)" in line
    assert "effect +" in line and "] pairs" not in line and "p = " in line
    # both comparisons, the best FF first; no known answer for this dataset: no verdict
    assert line.index("Vs the best FF (") < line.index("Vs the size-matched FF (3, 5 blocks")
    assert "pairs (configurations, seeds averaged)" in line and "Known answer" not in line
    assert summary["known_answer"] is None and summary["baselines"] == []
    front = workflow.front_page([str(tmp_path / "s" / "summary.json")], "report/workflow.rst",
                                str(tmp_path / "front.rst"))
    assert front.startswith("rcpb: recurrent vs feed-forward")
    assert "**syn** (synthetic):" in front and line in front
    assert front.index("The answer") < front.index("How to read this report")


def test_dataset_description_and_known_answer_of_the_ground_truths():
    from rcpb.data.simulate import KNOWN_ANSWERS

    config = load_config("config.yaml")
    simulated = {ds: e["simulate"]["circuit"] for ds, e in config["datasets"].items()
                 if isinstance(e.get("simulate"), dict)}
    assert simulated
    for ds, circuit in simulated.items():
        assert workflow.dataset_description(config, ds) == f"simulated ground truth: {circuit}"
        known = workflow.known_answer(config, ds)
        assert known == {"circuit": circuit, **KNOWN_ANSWERS[circuit]}
    assert workflow.known_answer({"datasets": {"real": {"file": "x.h5"}}}, "real") is None


def test_convergence_counts_trained_models_and_flags_undertraining():
    import pandas as pd

    df = pd.DataFrame({
        "phases": [3, 3, 3, 3], "phases_stopped_early": [3, 2, 0, 0],
        "steps": [100, 150, 225, 225], "best_step": [60, 150, 225, 225],
        "trained_as": ["", "", "", "m3"],       # the last row is an alias of the third
    })
    conv = workflow.convergence(df)
    assert conv == {"phases": 9, "phases_stopped_early": 5, "models": 3, "best_at_last_step": 2}
    line = workflow.convergence_line(conv)
    assert line.startswith("Training: 5 of 9 phases (56 %) stopped on patience, 2 of 3 models "
                           "(67 %) had their best validation checkpoint at their last step")
    assert "not trained to convergence" in line
    done = {"phases": 10, "phases_stopped_early": 9, "models": 20, "best_at_last_step": 1}
    assert "not trained" not in workflow.convergence_line(done)   # 90 % and 5 %: converged
    assert workflow.convergence_line({}) == ""
