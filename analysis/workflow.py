"""Which tables and figures the workflow builds for a dataset, and the report headlines.

Used by rules/tables.smk, rules/figures.smk and rules/report.smk; pure Python (no Snakemake
import) so it is tested directly.

The families, training fractions and split seeds of a dataset are read from the config:
``config["datasets"][dataset]["grid"]`` names ``config["grids"][name]``, whose keys
``ff``, ``recurrent``, ``multipath``, ``ablation_rm``, ``ablation_lege`` are the families.
The exact families, split seeds and training fractions come from the expanded training
configurations (``rcpb.grid.expand``, the workflow's ``CONFIGS``) when they are passed. Without
them, a family's ``train_fraction`` / ``split_seed`` values are looked up in the family's entry,
then the grid's ``common`` entry, the grid, the dataset entry and the top level of the config (a
scalar or a list). Defaults: 1.0 and 0.
"""

from __future__ import annotations

import json
import math
import os

from analysis.labels import fraction_label
from rcpb.grid import FAMILIES
from rcpb.checkpoint import write_json_atomic

# figure name -> (needs these families, per training fraction?, output stem)
FIGURE_FAMILIES = {
    "fig3a": (("recurrent",), False),
    "fig3d": (("recurrent",), True),
    "fig6ab": (("recurrent",), True),
    "fig6cd": (("recurrent",), True),
    "fig6ef": (("recurrent",), True),
    "fig4cd": (("multipath",), True),
    "fig6gi": (("ablation_rm",), True),
    "lege": (("ablation_lege",), True),
}
TABLE_FAMILIES = {
    "table1": (),  # always built (the workflow's main table)
    "recurrent_vs_ff": ("recurrent",),
    "multipath_vs_recurrent": ("multipath",),
    "ablation_rm": ("ablation_rm",),
    "ablation_lege": ("ablation_lege",),
}
FIGURE_EXTS = ("png", "pdf", "csv")

_KEYS = {"train_fraction": ("train_fraction", "train_fractions", "fractions", "fraction"),
         "split_seed": ("split_seed", "split_seeds")}
_DEFAULTS = {"train_fraction": 1.0, "split_seed": 0}


def dataset_grid(config: dict, dataset: str) -> dict:
    """The grid dict of a dataset (``config["grids"][config["datasets"][dataset]["grid"]]``)."""
    ds = config.get("datasets", {}).get(dataset, {}) or {}
    grid = ds.get("grid")
    if isinstance(grid, dict):
        return grid
    return (config.get("grids", {}) or {}).get(grid, {}) or {}


def families(config: dict, dataset: str, configs: list[dict] | None = None) -> list[str]:
    """Families trained on a dataset.

    ``configs``: the expanded training configurations of the dataset (rcpb.grid.expand, partners
    included); when given, the families present there. Otherwise the grid keys present and not
    null or false (an empty entry trains the family with the common axes, as in rcpb.grid).
    """
    if configs is not None:
        present = {c.get("family") for c in configs}
        return [f for f in FAMILIES if f in present]
    grid = dataset_grid(config, dataset)
    out = []
    for f in FAMILIES:
        entry = grid.get(f)
        if entry is None or entry is False:
            continue
        if isinstance(entry, dict) and entry.get("enabled", True) is False:
            continue
        out.append(f)
    return out


def _lookup(dicts, key: str):
    for d in dicts:
        if not isinstance(d, dict):
            continue
        for k in _KEYS[key]:
            if k in d and d[k] is not None:
                v = d[k]
                return list(v) if isinstance(v, (list, tuple)) else [v]
    return None


def axis_values(config: dict, dataset: str, family: str, key: str,
                configs: list[dict] | None = None) -> list:
    """Sorted distinct values of ``train_fraction`` or ``split_seed`` for a family of a dataset.

    From ``configs`` when given (exact); otherwise looked up in the config (see module doc).
    """
    cast = float if key == "train_fraction" else int
    if configs is not None:
        return sorted({cast(c[key]) for c in configs if c.get("family") == family and key in c})
    grid = dataset_grid(config, dataset)
    entry = grid.get(family)
    entries = entry if isinstance(entry, list) else [entry]
    ds = config.get("datasets", {}).get(dataset, {}) or {}
    vals = []
    for e in entries:
        found = _lookup([e, grid.get("common"), grid, ds, config], key)
        vals.extend(found if found is not None else [_DEFAULTS[key]])
    return sorted({cast(v) for v in vals})


def figure_path(dataset: str, name: str, split, fraction=None, ext: str = "png") -> str:
    """Output path of a figure file; ``fraction`` as a float or percent label (None for fig3a)."""
    if fraction is None:
        return f"results/{dataset}/figures/split{split}/{name}.{ext}"
    label = fraction if isinstance(fraction, str) else fraction_label(fraction)
    return f"results/{dataset}/figures/split{split}/frac{label}/{name}.{ext}"


def table_paths(dataset: str, name: str) -> list[str]:
    return [f"results/{dataset}/tables/{name}.csv", f"results/{dataset}/tables/{name}.md"]


def tables_for(config: dict, dataset: str, configs: list[dict] | None = None) -> list[str]:
    """Names of the tables built for a dataset (table1 always)."""
    fams = set(families(config, dataset, configs))
    return [t for t, need in TABLE_FAMILIES.items() if all(f in fams for f in need)]


def targets(config: dict, dataset: str, configs: list[dict] | None = None) -> list[str]:
    """Every table, figure (PNG, PDF, CSV) and summary path of a dataset.

    ``configs``: the dataset's expanded training configurations (exact families, split seeds
    and fractions); without them these are read from the config.
    """
    fams = families(config, dataset, configs)
    out = []
    for t in tables_for(config, dataset, configs):
        out += table_paths(dataset, t)
    for name, (need, per_fraction) in FIGURE_FAMILIES.items():
        fam = need[0]
        if fam not in fams:
            continue
        for split in axis_values(config, dataset, fam, "split_seed", configs):
            fracs = (axis_values(config, dataset, fam, "train_fraction", configs)
                     if per_fraction else [None])
            for frac in fracs:
                out += [figure_path(dataset, name, split, frac, ext) for ext in FIGURE_EXTS]
    out.append(summary_path(dataset))
    return out


def summary_path(dataset: str) -> str:
    return f"results/{dataset}/summary.json"


# --------------------------------------------------------------------------- headlines


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def _pct(v) -> str:
    v = _num(v)
    return "n/a" if not math.isfinite(v) else f"{v:+.2f} %"


def _p(v) -> str:
    v = _num(v)
    return "n/a" if not math.isfinite(v) else (f"{v:.2g}" if v >= 1e-4 else f"{v:.1e}")


def headlines(tables: dict) -> dict:
    """Headline strings for the report, from table DataFrames (keys: TABLE_FAMILIES names).

    Keys of the result: ``"table1"``, ``"{figure}/split{s}"`` (fig3a) and
    ``"{figure}/split{s}/frac{f}"``.
    """
    out = {}
    t1 = tables.get("table1")
    if t1 is not None and len(t1):
        parts, per_split = [], {}
        for r in t1.to_dict("records"):
            key_sf = f"split{int(r['split_seed'])}/frac{fraction_label(r['train_fraction'])}"
            if r.get("best_readout") and isinstance(r["best_readout"], str):
                text = (f"FF {_num(r['ff_mean']):.4f}; best {r['best_readout']}, T = "
                        f"{int(_num(r['best_iterations']))}: {_pct(r['gain_pct'])} vs FF "
                        f"(paired {_pct(r['paired_gain_pct'])} [{_pct(r['paired_gain_ci_low_pct'])}, "
                        f"{_pct(r['paired_gain_ci_high_pct'])}], p = {_p(r['wilcoxon_p'])})")
            else:
                text = f"FF {_num(r['ff_mean']):.4f}; no recurrent models"
            for fig in ("fig3d", "fig6ab"):
                out[f"{fig}/{key_sf}"] = text
            parts.append(f"split {int(r['split_seed'])}, {fraction_label(r['train_fraction'])} %: {text}")
            if isinstance(r.get("best_readout"), str) and r["best_readout"]:
                per_split.setdefault(int(r["split_seed"]), []).append(
                    f"{fraction_label(r['train_fraction'])} %: {_pct(r['gain_pct'])}")
        for split, items in per_split.items():
            out[f"fig3a/split{split}"] = "best-type gain over FF: " + ", ".join(items)
        out["table1"] = " | ".join(parts)
    mp = tables.get("multipath_vs_recurrent")
    if mp is not None and len(mp):
        for r in mp[mp["readout"] == "all"].to_dict("records"):
            key = f"fig4cd/split{int(r['split_seed'])}/frac{fraction_label(r['train_fraction'])}"
            out[key] = (f"r(performance) = {_num(r['pearson_r_perf']):.3f}, r(path length) = "
                        f"{_num(r['pearson_r_length']):.3f}; multi-path vs recurrent "
                        f"{_pct(r['paired_gain_pct'])} (p = {_p(r['wilcoxon_p'])}, n = {r['n_pairs']})")
    for name, fig in (("ablation_rm", "fig6gi"), ("ablation_lege", "lege")):
        ab = tables.get(name)
        if ab is None or not len(ab):
            continue
        for (s, f), g in ab.groupby(["split_seed", "train_fraction"]):
            g = g[g["change_pct"].notna()]
            if not len(g):
                continue
            if name == "ablation_rm":
                big = g[g["n_removed"] == g["n_removed"].max()]
                worst = big.loc[big["change_pct"].idxmin()]
                text = (f"worst removal of {int(worst['n_removed'])} lengths: {worst['removed']} "
                        f"({worst['readout']}, {_pct(worst['change_pct'])} vs full model)")
            else:
                worst = g.loc[g["change_pct"].idxmin()]
                text = (f"largest loss: {worst['ablation']} ({worst['readout']}, T = "
                        f"{int(worst['iterations'])}, {_pct(worst['change_pct'])} vs full model)")
            out[f"{fig}/split{int(s)}/frac{fraction_label(f)}"] = text
    return out


def path_headlines(df) -> dict:
    """Headlines of fig. 6c-d and 6e-f from the results table (example types, r(length, perf))."""
    from analysis import stats
    from analysis.load import select
    from analysis.plots.compare import type_summary
    from analysis.plots.paths import choose_examples

    out = {}
    rec = select(df, "recurrent")
    for (split, frac), part in rec.groupby(["split_seed", "train_fraction"]):
        key = f"split{int(split)}/frac{fraction_label(frac)}"
        ex_parts, r_parts = [], []
        for L, sub in part.groupby("recurrent_layers"):
            summ = type_summary(sub)
            ex = choose_examples(summ)
            if len(ex):
                ex_parts.append(f"{int(L)} layer(s): " + ", ".join(
                    f"{r.readout} T={int(r.iterations)} (length {r.avg_path_length:.2f}, "
                    f"perf {r.perf_mean:.3f})" for r in ex.itertuples()))
            r, n = stats.pearson(summ["avg_path_length"], summ["perf_mean"])
            r_parts.append(f"{int(L)} layer(s): r(length, performance) = {r:.2f} over {n} types")
        if ex_parts:
            out[f"fig6ef/{key}"] = "examples: " + "; ".join(ex_parts)
        out[f"fig6cd/{key}"] = "; ".join(r_parts)
    return out


def write_summary(table_csvs: list[str], out: str, results_csv: str | None = None) -> dict:
    """Read the table CSVs (and the results table for the path figures), compute headlines and
    write the summary JSON; returns it."""
    import pandas as pd

    tables = {}
    for path in table_csvs:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            tables[name] = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
        if "best_readout" in tables[name].columns:
            tables[name]["best_readout"] = tables[name]["best_readout"].fillna("")
    summary = {"headlines": headlines(tables)}
    if results_csv is not None:
        from analysis.load import read_results

        summary["headlines"].update(path_headlines(read_results(results_csv)))
    if "table1" in tables:
        summary["table1"] = json.loads(tables["table1"].to_json(orient="records"))
    write_json_atomic(out, summary)
    return summary


def headline_for(dataset: str, key: str) -> str:
    """Headline text from results/{dataset}/summary.json ("" when the summary is not there yet)."""
    path = summary_path(dataset)
    try:
        with open(path) as f:
            return json.load(f).get("headlines", {}).get(key, "")
    except (OSError, ValueError):
        return ""


def main(argv=None) -> int:
    """``python -m analysis.workflow summary OUT.json [--results RESULTS.csv] TABLE.csv ...``"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m analysis.workflow",
                                 description="Write the headline summary of a dataset.")
    ap.add_argument("command", choices=["summary"])
    ap.add_argument("out", help="results/{dataset}/summary.json")
    ap.add_argument("tables", nargs="*", help="table CSVs (results/{dataset}/tables/*.csv)")
    ap.add_argument("--results", help="results/{dataset}/results.csv (path-figure headlines)")
    args = ap.parse_args(argv)
    s = write_summary(args.tables, args.out, args.results)
    print(f"{args.out}: {len(s['headlines'])} headlines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
