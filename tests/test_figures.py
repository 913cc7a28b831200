"""Figures (analysis.figures): each writes a non-empty PNG, PDF and the CSV of what it draws,
names the performance measure of the table, and draws what exists when some performance is NaN."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import figures
from analysis.load import normalise
from analysis.plots.path_figures import choose_examples
from synthetic_results import MODES, make_results

TS = (2, 3, 4)
ALL_FIGURES = ("fig3a", "fig3d", "fig4cd", "fig6ab", "fig6cd", "fig6ef", "fig6gi", "lege")
MEASURES = ("test_cc_norm2", "val_cc_norm2")


def _raw(**kw):
    return make_results(fractions=(0.5, 1.0), channels=(8,), acts=("relu",), losses=("mse",),
                        iterations=TS, ablation_T=4, lege_T=(3, 4), **kw)


@pytest.fixture(scope="module")
def raw():
    """The results table before analysis.load.normalise (one row per model, every family)."""
    return _raw()


@pytest.fixture(scope="module")
def small(raw):
    """1 config x 2 seeds x 2 sizes per fraction; T 2-4; every family."""
    return normalise(raw)


def _render(tmp_path, name, df, split=0, fraction=1.0, pdf=False):
    exts = ("png", "pdf", "csv") if pdf else ("png", "csv")
    out = {ext: tmp_path / f"{name}.{ext}" for ext in exts}
    headline = figures.render(name, df, split, fraction, str(out["png"]),
                              str(out["pdf"]) if pdf else None, str(out["csv"]))
    for ext, path in out.items():
        assert path.stat().st_size > 0, ext
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    if pdf:
        assert out["pdf"].read_bytes()[:4] == b"%PDF"
    return pd.read_csv(out["csv"]), headline


def test_fig3a_one_dot_per_seed_averaged_pair(tmp_path, small):
    data, head = _render(tmp_path, "fig3a", small, fraction=None)
    dots = data[data["series"] == "pair"]
    # 2 fractions x 2 layer counts x 4 modes x 3 T, each averaged over 2 seeds
    assert len(dots) == 2 * 2 * 4 * len(TS)
    assert set(dots["n_seeds"]) == {2}
    # one best-FF line per fraction, nothing else without baselines
    assert len(data) == len(dots) + 2
    assert data.loc[data["series"] == "FF depth", "best_ff"].all()
    assert {"ff_perf", "recurrent_perf"} <= set(data.columns)
    assert "48 pairs (configurations, seeds averaged)" in head


def test_fig3d_rows_per_type_plus_ff(tmp_path, small):
    data, head = _render(tmp_path, "fig3d", small, pdf=True)
    # types, the size-matched FF line, and the two FF depths (3 and 5 blocks)
    assert len(data) == 4 * len(TS) + 1 + 2
    assert list(data.loc[data["series"] == "FF depth", "blocks"]) == [3, 5]
    ff = data[data["series"] == "size-matched FF"].iloc[0]
    assert ff["n_models"] == 4  # 2 sizes x 2 seeds
    assert set(data.loc[data["readout"] != "ff", "n_models"]) == {4}  # 2 layers x 2 seeds
    assert head.startswith("best (chosen on validation): ")
    assert set(data["metric"]) == {"cc_norm2"}
    assert data["best"].sum() == 1


def test_fig6ab_one_panel_per_layer_count(tmp_path, small):
    data, _ = _render(tmp_path, "fig6ab", small)
    assert sorted(data["recurrent_layers"].unique()) == [1, 2]
    # the FF line of each panel is the size-matched FF (one size, 2 seeds)
    assert set(data.loc[data["readout"] == "ff", "n_models"]) == {2}


def test_fig6cd_and_examples(tmp_path, small):
    data, _ = _render(tmp_path, "fig6cd", small)
    ff = data[data["readout"] == "ff"].set_index("recurrent_layers")["avg_path_length"]
    assert ff[1] == 2 and ff[2] == 4  # FF placed at its length
    assert data["example"].sum() == 2 * len(MODES)  # one example per mode and layer count
    ef, head = _render(tmp_path, "fig6ef", small)
    chosen = ef.groupby(["recurrent_layers", "readout", "iterations"])["p"].sum()
    assert len(chosen) == 2 * len(MODES)
    assert chosen.to_numpy() == pytest.approx(1.0)  # each distribution sums to 1
    assert head.startswith("examples:")


def test_choose_examples_smallest_range():
    summ = pd.DataFrame({
        "readout": ["no-avg", "no-avg", "2-avg", "2-avg"], "iterations": [2, 3, 2, 3],
        "avg_path_length": [1.5, 2.5, 1.2, 2.45], "perf_mean": [0.4] * 4,
    })
    ex = choose_examples(summ)
    assert list(zip(ex["readout"], ex["iterations"])) == [("no-avg", 3), ("2-avg", 3)]


def test_fig4cd_pairs(tmp_path, small):
    data, head = _render(tmp_path, "fig4cd", small)
    assert len(data) == 2 * 4 * len(TS) * 2  # layers x modes x T x seeds at one fraction
    assert "performance r = " in head


def test_fig6gi_marks_one_worst_removal_per_mode(tmp_path, small):
    data, head = _render(tmp_path, "fig6gi", small)
    # T = 4: 4 + 3 + 2 sets per mode
    assert len(data) == len(MODES) * 9
    assert data.groupby("readout")["worst"].sum().tolist() == [1] * len(MODES)
    worst = data[data["worst"]]
    assert set(worst["n_removed"]) == {3} and set(worst["removed"]) == {"1-3"}
    assert "worst removal 1-3" in head


def test_lege(tmp_path, small):
    data, _ = _render(tmp_path, "lege", small)
    assert set(data["kind"]) == {"le", "ge"}
    assert set(data["iterations"]) == {3, 4}


def test_absent_family_gives_placeholder(tmp_path, small):
    no_mp = small[~small["family"].isin(["multipath", "ablation_rm", "ablation_lege"])]
    data, head = _render(tmp_path, "fig4cd", no_mp, pdf=True)
    assert list(data.columns) == ["note", "metric"]
    assert "no multi-path models" in head
    data, _ = _render(tmp_path, "fig6gi", no_mp)
    assert "ablation_rm" in data["note"].iloc[0]


def test_cli(tmp_path, small):
    src = tmp_path / "results.csv"
    small.to_csv(src, index=False)
    png = tmp_path / "f" / "fig3d.png"
    rc = figures.main(["fig3d", "--results", str(src), "--split", "0", "--fraction", "50",
                       "--png", str(png)])
    assert rc == 0 and png.stat().st_size > 0
    assert figures.main(["fig3d", "--results", str(src), "--png", str(png)]) == 2  # needs --fraction


# --------------------------------------------------------------------------- the best type


def test_best_type_is_chosen_on_validation_not_test(tmp_path, raw):
    """Validation says no-avg T = 2 (the worst type on test) is best: fig. 3d and 6a-b mark it."""
    d = raw.copy()
    rec = d["family"] == "recurrent"
    d.loc[rec, "val_cc_norm2"] = 0.1
    chosen = rec & (d["readout"] == "no-avg") & (d["iterations"] == 2)
    d.loc[chosen, "val_cc_norm2"] = 0.9
    df = normalise(d)
    data, head = _render(tmp_path, "fig3d", df)
    best = data[data["best"]]
    assert list(zip(best["readout"], best["iterations"])) == [("no-avg", 2)]
    rows = df[rec & np.isclose(df["train_fraction"], 1.0)]
    test_best = rows.groupby(["readout", "iterations"])["perf"].mean().idxmax()
    assert test_best != ("no-avg", 2)  # test data would have chosen another type
    expected = rows.loc[chosen, "perf"].mean()
    assert best["perf_mean"].iloc[0] == pytest.approx(expected)
    assert head.startswith(f"best (chosen on validation): no-avg, T = 2: test {expected:.4f}")
    ab, head = _render(tmp_path, "fig6ab", df)
    best = ab[ab["best"]]
    assert sorted(best["recurrent_layers"]) == [1, 2]
    assert set(zip(best["readout"], best["iterations"])) == {("no-avg", 2)}
    assert head.count("chosen on validation") == 2


def test_no_validation_performance_marks_no_best(tmp_path, raw):
    d = raw.copy()
    d["val_cc_norm2"] = np.nan
    data, head = _render(tmp_path, "fig3d", normalise(d))
    assert not data["best"].any()
    assert "no best type marked: no validation CC_norm^2" in head
    assert "no validation CC_norm^2" in data["note"].iloc[0]


# --------------------------------------------------------------------------- NaN performance


def _nan_case(raw: pd.DataFrame, case: str) -> pd.DataFrame:
    """The table with NaN performance (test and validation) where ``case`` says."""
    d = raw.copy()
    fam = d["family"]
    where = {
        "all": pd.Series(True, index=d.index),
        "ff": fam == "ff",
        "recurrent": fam == "recurrent",
        "multipath": fam == "multipath",
        "ablations": fam.str.startswith("ablation"),
        "type": d["readout"] == "2-avg",
        "rows": pd.Series(np.random.default_rng(3).random(len(d)) < 0.3, index=d.index),
    }[case]
    d.loc[where, list(MEASURES)] = np.nan
    return normalise(d, metric="cc_norm2")


NAN_CASES = ("all", "ff", "recurrent", "multipath", "ablations", "type", "rows")


@pytest.mark.parametrize("case", NAN_CASES)
def test_every_figure_renders_with_nan_performance(tmp_path, raw, case):
    """(a) all, (b) one family's, (c) some rows' performance NaN: every figure writes its PNG
    and CSV, the CSV names the measure, and no exception escapes."""
    df = _nan_case(raw, case)
    for name in ALL_FIGURES:
        fraction = None if name == "fig3a" else 1.0
        data, head = _render(tmp_path, name, df, fraction=fraction)
        assert set(data["metric"]) == {"cc_norm2"}, name
        assert "note" in data.columns, name
        assert not re.search(r"\bnan\b", head), (name, head)  # no number printed as "nan"


def _note(data: pd.DataFrame) -> str:
    return " | ".join(data["note"].dropna().astype(str))


def test_all_nan_gives_placeholders_that_say_why(tmp_path, raw):
    df = _nan_case(raw, "all")
    for name in ("fig3a", "fig3d", "fig6ab", "fig6cd", "fig6gi", "lege"):
        data, head = _render(tmp_path, name, df, fraction=None if name == "fig3a" else 1.0)
        assert list(data.columns) == ["note", "metric"], name
        assert "no finite CC_norm^2" in head or "finite CC_norm^2" in head, (name, head)
        assert "results table has no such models" not in head  # the models are there
    # path lengths need no performance: fig. 4d and 6e-f are still drawn
    data, head = _render(tmp_path, "fig4cd", df)
    assert "performance r = n/a" in head and "average path length r = " in head
    assert "performance: no pair with a finite value" in _note(data)
    assert data["recurrent_avg_path_length"].notna().all()
    data, head = _render(tmp_path, "fig6ef", df)
    assert head.startswith("examples:") and "no finite CC_norm^2" in _note(data)
    assert data.groupby(["recurrent_layers", "readout"])["p"].sum().to_numpy() == pytest.approx(1.0)


def test_ff_nan_draws_the_recurrent_types_and_says_ff_is_missing(tmp_path, raw):
    df = _nan_case(raw, "ff")
    data, head = _render(tmp_path, "fig3d", df)
    types = data[data["readout"] != "ff"]
    assert len(types) == 4 * len(TS) and types["perf_mean"].notna().all()
    assert data.loc[data["readout"] == "ff", "n_models"].iloc[0] == 0
    assert "FF: no finite CC_norm^2 (4 models)" in _note(data)
    assert "vs FF" not in head  # no gain without an FF average
    data, head = _render(tmp_path, "fig3a", df, fraction=None)
    assert list(data.columns) == ["note", "metric"]  # nothing to pair with: placeholder
    assert "FF: no finite CC_norm^2" in head


def test_type_nan_is_left_out_and_named(tmp_path, raw):
    df = _nan_case(raw, "type")
    data, head = _render(tmp_path, "fig3d", df)
    gone = data[data["readout"] == "2-avg"]
    assert len(gone) == len(TS) and gone["perf_mean"].isna().all()
    assert (gone["n_models"] == 0).all() and not gone["best"].any()
    assert "types without a finite CC_norm^2: 2-avg T = 2, 3, 4" in _note(data)
    best = data[data["best"]].iloc[0]
    assert best["readout"] != "2-avg" and np.isfinite(best["perf_mean"])
    data, _ = _render(tmp_path, "fig6cd", df)
    assert data.loc[data["readout"] == "2-avg", "perf_mean"].isna().all()
    assert "2-avg T = 2, 3, 4" in _note(data)


def test_rows_nan_counts_only_finite_pairs(tmp_path, raw):
    df = _nan_case(raw, "rows")
    data, head = _render(tmp_path, "fig3a", df, fraction=None)
    data = data[data["series"] == "pair"]
    ok = data["ff_perf"].notna() & data["recurrent_perf"].notna()
    assert 0 < ok.sum() < len(data)
    above = (data.loc[ok, "recurrent_perf"] > data.loc[ok, "ff_perf"]).mean()
    assert head.startswith(f"recurrent above matched FF in {100 * above:.0f} % of {ok.sum()} ")
    assert f"{(~ok).sum()} pairs with NaN CC_norm^2 left out" in head
    data, _ = _render(tmp_path, "fig3d", df)
    n = df[(df["family"] == "recurrent") & np.isclose(df["train_fraction"], 1.0)]
    assert data.loc[data["readout"] != "ff", "n_models"].sum() == n["perf"].notna().sum()
    assert "left out" in _note(data)


def test_missing_partners(tmp_path, raw):
    """Recurrent models whose FF partner is absent and ablations whose full model is absent."""
    d = raw[~((raw["family"] == "ff") & (raw["blocks"] == 5))]  # no FF for 2 recurrent layers
    d = d[~((d["family"] == "multipath") & (d["readout"] == "no-avg"))]
    df = normalise(d)
    data, head = _render(tmp_path, "fig3a", df, fraction=None)
    assert set(data.loc[data["series"] == "pair", "recurrent_layers"]) == {1}
    assert "recurrent models without their FF partner (left out)" in _note(data)
    data, head = _render(tmp_path, "fig6ab", df)
    assert "no FF (5 blocks) models" in _note(data)
    data, head = _render(tmp_path, "fig6gi", df)
    noavg = data[data["readout"] == "no-avg"]
    assert noavg["full_mean"].isna().all() and noavg["perf_mean"].notna().all()
    assert "without an unablated multi-path partner" in _note(data)
    assert "no-avg (L1, T4): worst removal 1-3 (no full model to compare with)" in head
    data, head = _render(tmp_path, "lege", df)
    assert data.loc[data["readout"] == "no-avg", "paired_gain_pct"].isna().all()
    assert data.loc[data["readout"] != "no-avg", "paired_gain_pct"].notna().all()


# --------------------------------------------------------------------------- the measure


def _texts(fig) -> list[str]:
    """Axis labels, titles and figure-level labels of a matplotlib figure."""
    out = [fig.get_supxlabel(), fig.get_supylabel()]
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
    return [t for t in out if t]


@pytest.mark.parametrize("how", ["nan", "dropped"])
def test_cc_raw_table_is_labelled_cc_raw(tmp_path, raw, how):
    """A dataset without noise ceiling (test_cc_norm2 NaN or absent) is shown in CC_raw."""
    d = raw.copy()
    if how == "nan":
        d["test_cc_norm2"] = np.nan
        d["val_cc_norm2"] = np.nan
    else:
        d = d.drop(columns=["test_cc_norm2", "val_cc_norm2"])
    df = normalise(d)
    assert set(df["metric"]) == {"cc_raw"}
    for name in ALL_FIGURES:
        func, needs_fraction = figures.FIGURES[name]
        fig, data, head = func(df, 0, 1.0) if needs_fraction else func(df, 0)
        labels = _texts(fig)
        plt.close(fig)
        assert set(data["metric"]) == {"cc_raw"}, name
        if name == "fig6ef":  # path-length distributions: the measure is in the panel titles
            assert any("CC_raw" in t for t in labels), labels
            assert not any("CC_norm" in t or "CC$_{norm}" in t for t in labels)
        else:
            assert any("CC$_{raw}$" in t and "no noise ceiling" in t for t in labels), (name, labels)
            assert not any("norm" in t for t in labels), (name, labels)
    data, head = _render(tmp_path, "fig3d", df)
    assert head.startswith("best (chosen on validation): ")  # val_cc_raw chooses
    rec = df[(df["family"] == "recurrent") & np.isclose(df["train_fraction"], 1.0)]
    assert data.loc[data["readout"] != "ff", "perf_mean"].max() == pytest.approx(
        rec.groupby(["readout", "iterations"])["test_cc_raw"].mean().max())


def test_cli_metric(tmp_path, raw):
    src = tmp_path / "results.csv"
    d = raw.copy()
    d["test_cc_norm2"] = np.nan
    d.to_csv(src, index=False)
    csv = tmp_path / "fig3d.csv"
    args = ["fig3d", "--results", str(src), "--fraction", "100", "--png", str(tmp_path / "f.png"),
            "--csv", str(csv)]
    assert figures.main(args) == 0  # auto: cc_raw
    assert set(pd.read_csv(csv)["metric"]) == {"cc_raw"}
    assert figures.main([*args, "--metric", "cc_raw2"]) == 0
    assert set(pd.read_csv(csv)["metric"]) == {"cc_raw2"}
    assert figures.main([*args, "--metric", "cc_norm2"]) == 0  # forced on data without ceiling
    data = pd.read_csv(csv)
    assert list(data.columns) == ["note", "metric"] and "no finite CC_norm^2" in data["note"].iloc[0]
    with pytest.raises(SystemExit):
        figures.main([*args, "--metric", "bogus"])
