"""Figures (analysis.figures): each writes a non-empty PNG, PDF and the CSV of what it draws."""

import pandas as pd
import pytest

from analysis import figures
from analysis.load import normalise
from analysis.plots.paths import choose_examples
from synthetic_results import MODES, make_results

TS = (2, 3, 4)


@pytest.fixture(scope="module")
def small():
    """1 config x 2 seeds x 2 sizes per fraction; T 2-4; every family."""
    return normalise(make_results(fractions=(0.5, 1.0), channels=(8,), acts=("relu",),
                                  losses=("mse",), iterations=TS, ablation_T=4, lege_T=(3, 4)))


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
    # 2 fractions x 2 layer counts x 4 modes x 3 T, each averaged over 2 seeds
    assert len(data) == 2 * 2 * 4 * len(TS)
    assert set(data["n_seeds"]) == {2}
    assert {"ff_perf", "recurrent_perf"} <= set(data.columns)
    assert "seed-averaged pairs" in head


def test_fig3d_rows_per_type_plus_ff(tmp_path, small):
    data, head = _render(tmp_path, "fig3d", small, pdf=True)
    assert len(data) == 4 * len(TS) + 1
    ff = data[data["readout"] == "ff"].iloc[0]
    assert ff["n_models"] == 4  # 2 sizes x 2 seeds
    assert set(data.loc[data["readout"] != "ff", "n_models"]) == {4}  # 2 layers x 2 seeds
    assert head.startswith("best ")


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
    assert list(data.columns) == ["note"]
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
