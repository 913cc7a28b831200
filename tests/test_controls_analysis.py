"""The controls table and figure (analysis.controls): recurrent cells vs their size-matched,
wider and minimally unrolled controls, on a hand-made results table whose effects are known."""

import numpy as np
import pandas as pd
import pytest

from analysis.controls import controls_table
from analysis.figures import render
from analysis.load import normalise, study_rows
from analysis.tables import build

SEEDS = range(6)
EFFECTS = {"rcpb": 0.02, "convlstm": 0.05}          # recurrent - size-matched FF, per seed
WIDER_GAP = 0.03                                     # convlstm - its wider FF
UNROLLED_GAP = -0.01                                 # rcpb (T = 4) - its T = 2 twin


def _row(config_id, family, arch, seed, perf, partner="", **kw):
    base = dict(config_id=config_id, dataset="d", family=family, arch=arch, partner_id=partner,
                split_seed=0, train_fraction=1.0, channels=8, act="relu",
                first_block_order="bn_act", loss="mse", model_seed=seed, blocks=np.nan,
                recurrent_layers=np.nan, iterations=np.nan, readout="", ablation="",
                allowed_lengths="", cell="", test_cc_norm2=perf, val_cc_norm2=perf,
                n_params=1000, n_conv_params=1800, n_train=100)
    base.update(kw)
    return base


def results() -> pd.DataFrame:
    rows = []
    for s in SEEDS:
        ff = 0.50 + 0.01 * s + 0.002 * (s % 2)
        rows.append(_row(f"ff-{s}", "ff", "ff", s, ff, blocks=3))
        rec = dict(recurrent_layers=1, iterations=4, readout="no-avg")
        jitter = 0.001 * (s - 2.5)           # mean 0 over the seeds: the effects stay exact
        # the rcpb row leaves ``cell`` empty (a table from before the axis existed)
        rows.append(_row(f"rec-{s}", "recurrent", "recurrent", s, ff + EFFECTS["rcpb"] + jitter,
                         f"ff-{s}", n_conv_params=1800, n_params=1100, **rec))
        rows.append(_row(f"lstm-{s}", "recurrent", "recurrent", s, ff + EFFECTS["convlstm"] + jitter,
                         f"ff-{s}", cell="convlstm", n_conv_params=5304, n_params=5500, **rec))
        rows.append(_row(f"wide-{s}", "ff_wider", "ff", s, ff + EFFECTS["convlstm"] - WIDER_GAP,
                         f"lstm-{s}", blocks=3, channels=16, n_conv_params=5904, n_params=6200))
        rows.append(_row(f"min-{s}", "min_unrolled", "recurrent", s,
                         ff + EFFECTS["rcpb"] - UNROLLED_GAP, f"rec-{s}",
                         recurrent_layers=1, iterations=2, readout="no-avg", n_params=1050))
    return normalise(pd.DataFrame(rows))


def test_effects_counts_and_units_are_those_built_in():
    t = controls_table(results())
    got = {(r["cell"], r["control"]): r for _, r in t.iterrows()}
    assert set(got) == {("rcpb", "size-matched FF"), ("rcpb", "minimally unrolled"),
                        ("convlstm", "size-matched FF"), ("convlstm", "wider FF")}
    expected = {("rcpb", "size-matched FF"): EFFECTS["rcpb"],
                ("convlstm", "size-matched FF"): EFFECTS["convlstm"],
                ("convlstm", "wider FF"): WIDER_GAP, ("rcpb", "minimally unrolled"): UNROLLED_GAP}
    for key, effect in expected.items():
        r = got[key]
        assert r["diff_mean"] == pytest.approx(effect, abs=1e-12), key
        # one configuration with 6 seeds: the seeds are the units, 6 pairs
        assert r["n_pairs"] == 6 and r["unit"] == "seeds of the one configuration"
        # the jitter's t-interval: mean +- t(0.975, 5) sd / sqrt(6), sd of 0.001 * (s - 2.5)
        half = 2.5706 * np.std(0.001 * (np.arange(6) - 2.5), ddof=1) / np.sqrt(6)
        assert r["diff_ci_low"] == pytest.approx(effect - half, abs=1e-6)
        assert r["diff_ci_high"] == pytest.approx(effect + half, abs=1e-6)
    wide = got[("convlstm", "wider FF")]
    assert (wide["recurrent_conv_params"], wide["control_conv_params"]) == (5304, 5904)
    assert (wide["control_blocks"], wide["control_channels"]) == (3, 16)
    assert got[("rcpb", "minimally unrolled")]["control_iterations"] == 2
    assert got[("convlstm", "size-matched FF")]["recurrent_mean"] == pytest.approx(
        np.mean([0.50 + 0.01 * s + 0.002 * (s % 2) + EFFECTS["convlstm"] for s in SEEDS]),
        abs=1e-12)


def test_the_study_tables_keep_the_rcpb_cell_only():
    df = results()
    assert set(df.loc[df["family"] == "recurrent", "cell"]) == {"rcpb", "convlstm"}
    study = study_rows(df)
    assert set(study.loc[study["family"] == "recurrent", "config_id"]) == \
        {f"rec-{s}" for s in SEEDS}
    t1, _ = build("table1", df)
    assert t1["best_perf_mean"].iloc[0] == pytest.approx(
        np.mean([0.50 + 0.01 * s + 0.002 * (s % 2) + EFFECTS["rcpb"] for s in SEEDS]))
    table, md = build("controls", df, "d")
    assert len(table) == 4 and "wider FF" in md and "minimally unrolled" in md


def test_the_figure_draws_every_comparison(tmp_path):
    headline = render("cells_controls", results(), 0, 1.0, png=str(tmp_path / "c.png"),
                      csv=str(tmp_path / "c.csv"))
    data = pd.read_csv(tmp_path / "c.csv")
    assert len(data) == 4 and (tmp_path / "c.png").stat().st_size > 0
    assert "4 recurrent-vs-control comparisons" in headline
    # the minimally unrolled twin is built better than the T = 4 model
    assert "recurrent better (CI above 0) in 3, worse (CI below 0) in 1" in headline
