"""The best FF chosen on validation, the units of replication, the baselines in tables and
figures, and the front page's answer against the known truth (analysis.tables, analysis.plots,
analysis.workflow), each against numbers worked out by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis import figures, tables, workflow
from analysis.load import normalise, read_baselines

SEEDS = range(6)
# FF depth -> (test, validation) base performance: depth 2 is best on validation, depth 1 on
# test, depth 3 is the size-matched partner of the 1-layer recurrent models
FF_BASE = {1: (0.50, 0.40), 2: (0.45, 0.50), 3: (0.40, 0.45)}
T_CRIT_5DF = 2.5706  # t(0.975, 5 degrees of freedom), printed tables


def _row(family, cid, test, val, seed, channels=8, partner="", **kw):
    return {"config_id": cid, "family": family, "partner_id": partner, "model_seed": seed,
            "channels": channels, "act": "relu", "loss": "mse", "train_fraction": 1.0,
            "split_seed": 0, "test_cc_norm2": test, "val_cc_norm2": val, "n_train": 100,
            "blocks": np.nan, "recurrent_layers": np.nan, "iterations": np.nan, "readout": "",
            **kw}


def _table(channels=(8,), rec_base=0.47, rec_slope=0.003):
    """FF depths 1-3 and one recurrent type (1 layer, T = 2, 2-avg) per channel count and
    seed: FF test = base + 0.001 * seed, recurrent test = rec_base + rec_slope * seed."""
    rows = []
    for ch in channels:
        for s in SEEDS:
            for b, (test, val) in FF_BASE.items():
                rows.append(_row("ff", f"ff{b}-{ch}-{s}", test + 0.001 * s, val + 0.001 * s, s,
                                 ch, blocks=b))
            rows.append(_row("recurrent", f"rec-{ch}-{s}", rec_base + rec_slope * s, 0.6, s, ch,
                             f"ff3-{ch}-{s}", recurrent_layers=1, iterations=2, readout="2-avg"))
    return normalise(pd.DataFrame(rows))


def _t_interval_of_0_to_5(mean, step):
    """The t 95 % interval of mean + step * (s - 2.5) for s = 0..5, by hand."""
    half = T_CRIT_5DF * step * math.sqrt(3.5) / math.sqrt(6)
    return mean - half, mean + half


@pytest.fixture
def baselines_csv(tmp_path):
    path = tmp_path / "baselines.csv"
    path.write_text(
        "dataset,split_seed,predictor,description,test_cc_norm2,test_cc_raw,val_cc_norm2,val_cc_raw\n"
        "d,0,truth,true mean rates,0.97,0.9,0.96,0.9\n"
        "d,0,drive,feed-forward drive,0.31,0.5,0.3,0.5\n"
        "d,1,truth,true mean rates,0.5,0.4,0.5,0.4\n")
    return path


# --------------------------------------------------------------------------- best FF


def test_best_ff_is_chosen_on_validation_not_test():
    df = _table()
    depths = tables.ff_depths(df)
    assert list(depths["blocks"]) == [1, 2, 3]
    assert list(depths["best"]) == [False, True, False]
    assert list(depths["size_matched"]) == [False, False, True]
    assert depths.loc[depths["perf_mean"].idxmax(), "blocks"] == 1  # test would choose 1
    assert tables.best_ff_blocks(depths) == {(0, 1.0): 2}


def test_table1_compares_with_the_size_matched_and_the_best_ff():
    r = tables.table1(_table()).iloc[0]
    # the size-matched FF (3 blocks) alone, not the mean over every depth
    assert r["ff_blocks"] == "3" and r["ff_n_models"] == 6
    assert r["ff_mean"] == pytest.approx(0.4025)
    assert r["bestff_blocks"] == 2 and r["bestff_n_models"] == 6
    assert r["bestff_mean"] == pytest.approx(0.4525)
    assert r["bestff_val_mean"] == pytest.approx(0.5025)
    # one configuration: the 6 seeds are the pairs; recurrent - best FF = 0.02 + 0.002 seed
    assert r["bestff_n_pairs"] == 6 and r["bestff_unit"] == tables.UNIT_SEEDS
    assert r["bestff_diff_mean"] == pytest.approx(0.025)
    lo, hi = _t_interval_of_0_to_5(0.025, 0.002)
    assert r["bestff_diff_ci_low"] == pytest.approx(lo, abs=1e-5)
    assert r["bestff_diff_ci_high"] == pytest.approx(hi, abs=1e-5)
    assert r["bestff_gain_pct"] == pytest.approx(100 * (0.4775 / 0.4525 - 1))
    # recurrent - size-matched FF = 0.07 + 0.002 seed
    assert r["diff_mean"] == pytest.approx(0.075) and r["unit"] == tables.UNIT_SEEDS
    assert r["gain_pct"] == pytest.approx(100 * (0.4775 / 0.4025 - 1))
    # all cells (one cell here): the same pairs
    assert r["all_bestff_diff_mean"] == pytest.approx(0.025) and r["all_bestff_n_pairs"] == 6
    md = tables.table1_markdown(tables.table1(_table()))
    assert "### vs the best FF" in md and "2 blocks: 0.4525" in md
    assert f"Pairs: {tables.UNIT_SEEDS}" in md


def test_cells_table_ff_mean_is_the_size_matched_ff():
    cells = tables.recurrent_vs_ff(_table())
    r = cells.iloc[0]
    assert r["ff_mean"] == pytest.approx(0.4025)  # not (0.5 + 0.45 + 0.4) / 3 + 0.0025
    assert r["bestff_blocks"] == 2 and r["bestff_diff_mean"] == pytest.approx(0.025)
    assert r["bestff_p_holm"] == pytest.approx(r["bestff_p"])  # one cell: nothing to adjust
    md = tables.cells_markdown(cells)
    assert "### vs the size-matched FF" in md and "### vs the best FF" in md


def test_seed_halves_choose_the_best_ff_on_the_first_half():
    df = _table()
    # on the second half of the seeds (3-5) depth 1 is best on validation: not used to choose
    late = (df["family"] == "ff") & (df["blocks"] == 1) & (df["model_seed"] >= 3)
    df.loc[late, "val_perf"] = 0.9
    r = tables.table1(df, selection="seed_halves").iloc[0]
    assert r["bestff_blocks"] == 2
    assert r["bestff_n_models"] == 3  # reported from seeds 3-5 alone
    assert r["bestff_mean"] == pytest.approx(0.45 + 0.004)
    assert tables.table1(df).iloc[0]["bestff_blocks"] == 1  # all seeds: depth 1 wins


# --------------------------------------------------------------------------- units


def test_several_configurations_are_the_units_and_seeds_are_averaged():
    r = tables.table1(_table(channels=(8, 16))).iloc[0]
    assert r["bestff_n_pairs"] == 2 and r["bestff_unit"] == tables.UNIT_CONFIGS
    assert r["n_pairs"] == 2 and r["unit"] == tables.UNIT_CONFIGS
    assert math.isnan(r["bestff_diff_ci_low"])  # 2 pairs: no CI
    assert "n = 2: too few pairs" in r["bestff_note"]


def test_comparison_units_by_hand():
    df = _table()
    p = tables.best_ff_pairs(df)
    assert sorted(p["ref_blocks"].unique()) == [2]
    assert (p["model_seed"] == p["ref_config_id"].str.split("-").str[-1].astype(int)).all()
    units, unit = tables.comparison_units(p)
    assert unit == tables.UNIT_SEEDS and len(units) == 6
    np.testing.assert_allclose(sorted(units["perf"] - units["ref_perf"]),
                               [0.02 + 0.002 * s for s in SEEDS])
    units, unit = tables.comparison_units(tables.best_ff_pairs(_table(channels=(8, 16))))
    assert unit == tables.UNIT_CONFIGS and len(units) == 2


# --------------------------------------------------------------------------- baselines


def test_read_baselines(tmp_path, baselines_csv):
    b = read_baselines(str(baselines_csv), "cc_norm2")
    assert list(b["predictor"]) == ["truth", "drive", "truth"]
    assert list(b["perf"]) == [0.97, 0.31, 0.5] and list(b["val_perf"]) == [0.96, 0.3, 0.5]
    assert list(read_baselines(str(baselines_csv), "cc_raw")["perf"]) == [0.9, 0.5, 0.4]
    assert read_baselines(str(baselines_csv), "cc_raw2")["perf"].isna().all()
    assert read_baselines(None, "cc_norm2").empty
    assert read_baselines(str(tmp_path / "missing.csv"), "cc_norm2").empty
    header = tmp_path / "header.csv"
    header.write_text("dataset,split_seed,predictor,description,test_cc_norm2,test_cc_raw,"
                      "val_cc_norm2,val_cc_raw\n")
    assert read_baselines(str(header), "cc_norm2").empty
    (tmp_path / "empty.csv").write_text("")
    assert read_baselines(str(tmp_path / "empty.csv"), "cc_norm2").empty


def test_tables_carry_the_baselines_of_their_split(baselines_csv):
    b = read_baselines(str(baselines_csv), "cc_norm2")
    t1, md = tables.build("table1", _table(), "d", baselines=b)
    assert t1.iloc[0]["truth_perf"] == 0.97 and t1.iloc[0]["drive_perf"] == 0.31
    assert "truth 0.9700 (true mean rates), drive 0.3100 (feed-forward drive)" in md
    assert "split 1" not in md  # only the splits of the table
    cells, md = tables.build("recurrent_vs_ff", _table(), "d", baselines=b)
    assert (cells["truth_perf"] == 0.97).all() and "Baselines (test CC_norm^2" in md
    t1, md = tables.build("table1", _table(), "d")
    assert math.isnan(t1.iloc[0]["truth_perf"]) and "Baselines" not in md


def test_table_cli_with_and_without_baselines(tmp_path, baselines_csv):
    src = tmp_path / "results.csv"
    _table().to_csv(src, index=False)
    out = [str(tmp_path / "t1.csv"), str(tmp_path / "t1.md")]
    args = ["table1", "--results", str(src), "--csv", out[0], "--md", out[1]]
    assert tables.main([*args, "--baselines", str(baselines_csv)]) == 0
    assert pd.read_csv(out[0])["truth_perf"].iloc[0] == 0.97
    assert tables.main([*args, "--baselines", str(tmp_path / "none.csv")]) == 0
    assert pd.read_csv(out[0])["truth_perf"].isna().all()


def _render(tmp_path, name, df, baselines, fraction=1.0):
    csv = tmp_path / f"{name}.csv"
    head = figures.render(name, df, 0, fraction, str(tmp_path / f"{name}.png"), None, str(csv),
                          baselines)
    return pd.read_csv(csv), head


def test_fig3d_draws_every_depth_the_best_ff_and_the_baselines(tmp_path, baselines_csv):
    b = read_baselines(str(baselines_csv), "cc_norm2")
    data, head = _render(tmp_path, "fig3d", _table(), b)
    depth = data[data["series"] == "FF depth"].set_index("blocks")
    assert list(depth.index) == [1, 2, 3]
    assert list(depth["best_ff"]) == [False, True, False]
    assert list(depth["size_matched"]) == [False, False, True]
    assert depth.loc[2, "perf_mean"] == pytest.approx(0.4525)
    matched = data[data["series"] == "size-matched FF"]
    assert matched["perf_mean"].iloc[0] == pytest.approx(0.4025)
    base = data[data["series"] == "baseline"].set_index("predictor")["perf_mean"]
    assert base.to_dict() == {"truth": 0.97, "drive": 0.31}
    assert "vs best FF (2 blocks) 0.4525" in head
    data, _ = _render(tmp_path, "fig3d", _table(), read_baselines(None, "cc_norm2"))
    assert not (data["series"] == "baseline").any()


def test_fig3a_and_fig6ab_draw_the_best_ff_and_the_baselines(tmp_path, baselines_csv):
    b = read_baselines(str(baselines_csv), "cc_norm2")
    data, head = _render(tmp_path, "fig3a", _table(), b, fraction=None)
    # one configuration: its 6 seeds are the units of the statistics, and the dots
    dots = data[data["series"] == "pair"]
    assert sorted(dots["model_seed"]) == list(SEEDS)
    assert list(dots["recurrent_perf"] - dots["ff_perf"]) == pytest.approx(
        [0.47 + 0.003 * s - (FF_BASE[3][0] + 0.001 * s) for s in sorted(SEEDS)])
    assert "6 pairs (seeds of the one configuration)" in head
    best = data[data["series"] == "FF depth"]
    assert list(best["blocks"]) == [2] and best["perf_mean"].iloc[0] == pytest.approx(0.4525)
    assert sorted(data.loc[data["series"] == "baseline", "perf_mean"]) == [0.31, 0.97]
    data, _ = _render(tmp_path, "fig6ab", _table(), b)
    assert list(data.loc[data["series"] == "FF depth", "blocks"]) == [2]
    assert sorted(data.loc[data["series"] == "baseline", "predictor"]) == ["drive", "truth"]


def test_figure_cli_baselines_optional(tmp_path, baselines_csv):
    src = tmp_path / "results.csv"
    _table().to_csv(src, index=False)
    csv = tmp_path / "fig3d.csv"
    args = ["fig3d", "--results", str(src), "--fraction", "100", "--png",
            str(tmp_path / "f.png"), "--csv", str(csv)]
    assert figures.main([*args, "--baselines", str(baselines_csv)]) == 0
    assert (pd.read_csv(csv)["series"] == "baseline").sum() == 2
    assert figures.main([*args, "--baselines", str(tmp_path / "missing.csv")]) == 0
    assert (pd.read_csv(csv)["series"] == "baseline").sum() == 0


# --------------------------------------------------------------------------- the front page


@pytest.mark.parametrize("recurrence, rec_base, channels, expected", [
    ("helps", 0.47, (8,), "detected"),          # CI [+0.021, +0.029] above 0
    ("helps", 0.43, (8,), "not detected"),      # recurrent below the best FF
    ("none", 0.43, (8,), "consistent"),
    ("none", 0.47, (8,), "inconsistent"),
    ("helps", 0.47, (8, 16), "undecided"),      # 2 configurations: no CI
])
def test_verdict_against_the_known_answer(recurrence, rec_base, channels, expected):
    r = tables.table1(_table(channels, rec_base)).iloc[0].to_dict()
    assert workflow.verdict(r, {"recurrence": recurrence, "text": ""}) == expected
    assert workflow.verdict(r, None) == ""


def test_front_page_names_both_comparisons_and_the_known_answer(tmp_path, baselines_csv):
    from rcpb.data.simulate import KNOWN_ANSWERS

    src = tmp_path / "results.csv"
    _table().to_csv(src, index=False)
    t1 = tmp_path / "table1.csv"
    assert tables.main(["table1", "--results", str(src), "--csv", str(t1), "--md",
                        str(tmp_path / "t1.md"), "--baselines", str(baselines_csv)]) == 0
    out = tmp_path / "d" / "summary.json"
    assert workflow.main(["summary", str(out), str(t1), "--results", str(src), "--dataset", "d",
                          "--baselines", str(baselines_csv), "--circuit",
                          "recurrent_teacher"]) == 0
    s = json.loads(out.read_text())
    assert s["known_answer"]["recurrence"] == "helps"
    assert s["verdicts"] == [{"split_seed": 0, "train_fraction": 1.0, "verdict": "detected"}]
    assert [b["predictor"] for b in s["baselines"]] == ["truth", "drive", "truth"]
    front = workflow.front_page([str(out)], "report/workflow.rst", str(tmp_path / "front.rst"))
    page = front.split("How to read this report")[0]
    assert f"Known answer: recurrence helps ({KNOWN_ANSWERS['recurrent_teacher']['text']})" in page
    assert "Vs the best FF (2 blocks, chosen on validation; test 0.4525): effect +0.0250" in page
    assert "Vs the size-matched FF (3 blocks; test 0.4025): effect +0.0750" in page
    assert f"n = 6 pairs ({tables.UNIT_SEEDS})" in page
    assert "result: detected" in page
    assert ("Baselines (test CC_norm^2, not trained models): split 0: truth 0.9700 (true mean "
            "rates), drive 0.3100 (feed-forward drive); split 1: truth 0.5000") in page
