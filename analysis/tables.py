"""Tables computed from the results table (paper tables 1 and 3, plus paired statistics).

Definitions (performance = test CC_norm^2 of one trained model):

- *FF average performance* (paper table 1 column 2): mean over all feed-forward models of the
  split and training fraction (both sizes, all hyperparameters and seeds), with its s.e.m.
  over models.
- *Type average* of a recurrent type (readout mode, T): mean over all recurrent models of that
  type (both layer counts, all hyperparameters and seeds), s.e.m. over models.
- *Gain* (paper table 1 column 4): ``type average / FF average - 1``, in %. The best type is
  the one with the highest type average.
- *Paired gain* (beyond the paper): each recurrent model and its size-matched FF partner
  (``partner_id``) are averaged over initialisation seeds; ``recurrent / FF - 1`` per
  configuration; mean, s.e.m., bootstrap 95 % CI and the Wilcoxon signed-rank p-value of the
  paired differences (analysis.stats). Holm-adjusted p-values are over the cells of a
  (split, fraction).

Multi-path vs recurrent and ablated vs unablated multi-path models use the same paired
statistics with their own partners.

Entry point: ``python -m analysis.tables NAME --results results/D/results.csv --csv OUT.csv
--md OUT.md`` with NAME one of table1, recurrent_vs_ff, multipath_vs_recurrent, ablation_rm,
ablation_lege.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import (
    PERF, READOUT_MODES, fraction_label, fraction_text, n_train_of, pairs, read_results,
    removed_lengths, seed_average, select, set_text,
)
from rcpb.checkpoint import write_text_atomic
from rcpb.errors import RcpbError

PAIRED_COLUMNS = [
    "n_pairs", "paired_gain_pct", "paired_gain_sem_pct", "paired_gain_ci_low_pct",
    "paired_gain_ci_high_pct", "diff_mean", "wilcoxon_p",
]


def _mode_order(modes) -> list[str]:
    known = [m for m in READOUT_MODES if m in set(modes)]
    return known + sorted(set(modes) - set(known))


def _paired_columns(treat, ref) -> dict:
    """Paired statistics of two aligned arrays, with gains in %."""
    s = stats.paired_comparison(treat, ref)
    return {
        "n_pairs": s["n_pairs"],
        "paired_gain_pct": 100 * s["gain_mean"],
        "paired_gain_sem_pct": 100 * s["gain_sem"],
        "paired_gain_ci_low_pct": 100 * s["gain_ci_low"],
        "paired_gain_ci_high_pct": 100 * s["gain_ci_high"],
        "diff_mean": s["diff_mean"],
        "wilcoxon_p": s["wilcoxon_p"],
        "note": s["note"],
    }


def _add_holm(out: pd.DataFrame, family_keys: list[str]) -> pd.DataFrame:
    out["wilcoxon_p_holm"] = np.nan
    if out.empty:
        return out
    for _, idx in out.groupby(family_keys, dropna=False).groups.items():
        out.loc[idx, "wilcoxon_p_holm"] = stats.holm(out.loc[idx, "wilcoxon_p"].to_numpy())
    return out


def seed_averaged_pairs(df: pd.DataFrame, family: str, partner_family: str) -> pd.DataFrame:
    """Pairs (family row, partner row) averaged over initialisation seeds.

    Returns one row per configuration with ``test_cc_norm2``, ``ref_test_cc_norm2``,
    ``avg_path_length``, ``ref_avg_path_length`` (seed means) and ``n_seeds``.
    """
    p = pairs(df, family, partner_family)
    return seed_average(p, [PERF, f"ref_{PERF}", "avg_path_length", "ref_avg_path_length"])


# --------------------------------------------------------------------------- recurrent vs FF


def recurrent_vs_ff(df: pd.DataFrame) -> pd.DataFrame:
    """The 24-cell table: one row per (split_seed, train_fraction, readout, iterations).

    Columns: split_seed, train_fraction, n_train, readout, iterations, n_models, perf_mean,
    perf_sem, ff_n_models, ff_mean, ff_sem, gain_pct (paper definition), the paired columns
    (PAIRED_COLUMNS), wilcoxon_p_holm, note.
    """
    rows = []
    rec_all = select(df, "recurrent")
    pr = seed_averaged_pairs(df, "recurrent", "ff")
    for (split, frac), rec in rec_all.groupby(["split_seed", "train_fraction"]):
        ff = select(df, "ff", split, frac)
        ff_mean = ff[PERF].mean() if len(ff) else math.nan
        ff_sem = stats.sem(ff[PERF])
        cell_pairs = select(pr, None, split, frac) if len(pr) else pr
        for (mode, T), cell in rec.groupby(["readout", "iterations"]):
            perf = cell[PERF].mean()
            cp = cell_pairs[(cell_pairs["readout"] == mode) & (cell_pairs["iterations"] == T)] \
                if len(cell_pairs) else cell_pairs
            row = {
                "split_seed": int(split), "train_fraction": float(frac),
                "n_train": _n_train(df, split, frac), "readout": mode, "iterations": int(T),
                "n_models": int(cell[PERF].notna().sum()), "perf_mean": perf,
                "perf_sem": stats.sem(cell[PERF]), "ff_n_models": int(ff[PERF].notna().sum()),
                "ff_mean": ff_mean, "ff_sem": ff_sem,
                "gain_pct": 100 * (perf / ff_mean - 1) if ff_mean > 0 else math.nan,
            }
            row.update(_paired_columns(cp[PERF] if len(cp) else [], cp[f"ref_{PERF}"] if len(cp) else []))
            if not len(ff):
                row["note"] = "; ".join(filter(None, ["no feed-forward models", row["note"]]))
            rows.append(row)
    cols = ["split_seed", "train_fraction", "n_train", "readout", "iterations", "n_models",
            "perf_mean", "perf_sem", "ff_n_models", "ff_mean", "ff_sem", "gain_pct",
            *PAIRED_COLUMNS, "wilcoxon_p_holm", "note"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "wilcoxon_p_holm"])
    out = _add_holm(out, ["split_seed", "train_fraction"])
    out = _sort_modes(out, ["split_seed", "train_fraction", "readout", "iterations"])
    return out[cols]


def _n_train(df, split, frac) -> float:
    return n_train_of(select(df, None, split, frac))


def _sort_modes(out: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if out.empty or "readout" not in out.columns:
        return out.reset_index(drop=True)
    order = {m: i for i, m in enumerate(_mode_order(out["readout"].unique()))}
    key = out["readout"].map(order)
    return (out.assign(_k=key).sort_values([c if c != "readout" else "_k" for c in by])
            .drop(columns="_k").reset_index(drop=True))


def table1(df: pd.DataFrame, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper table 1 / 3: one row per (split_seed, train_fraction) present among FF or recurrent rows.

    Columns: split_seed, train_fraction, training_data ("25 % (350)"), ff_n_models, ff_mean,
    ff_sem, best_readout, best_iterations, best_perf_mean, best_perf_sem, gain_pct (best type
    average / FF average - 1, %), the paired columns of the best cell, note.
    """
    if cells is None:
        cells = recurrent_vs_ff(df)
    rows = []
    sub = df[df["family"].isin(["ff", "recurrent"])]
    for (split, frac), part in sub.groupby(["split_seed", "train_fraction"]):
        ff = part[part["family"] == "ff"]
        row = {
            "split_seed": int(split), "train_fraction": float(frac),
            "training_data": fraction_text(frac, part),
            "ff_n_models": int(ff[PERF].notna().sum()),
            "ff_mean": ff[PERF].mean() if len(ff) else math.nan, "ff_sem": stats.sem(ff[PERF]),
        }
        c = cells[(cells["split_seed"] == split) & np.isclose(cells["train_fraction"], frac)]
        c = c[c["perf_mean"].notna()]
        if len(c):
            best = c.loc[c["perf_mean"].idxmax()]
            row.update({
                "best_readout": best["readout"], "best_iterations": int(best["iterations"]),
                "best_perf_mean": best["perf_mean"], "best_perf_sem": best["perf_sem"],
                "gain_pct": best["gain_pct"],
                **{k: best[k] for k in PAIRED_COLUMNS}, "note": best["note"],
            })
        else:
            row.update({"best_readout": "", "best_iterations": np.nan, "best_perf_mean": np.nan,
                        "best_perf_sem": np.nan, "gain_pct": np.nan,
                        **{k: np.nan for k in PAIRED_COLUMNS}, "note": "no recurrent models"})
        if not len(ff):
            row["note"] = "; ".join(filter(None, ["no feed-forward models", row["note"]]))
        rows.append(row)
    cols = ["split_seed", "train_fraction", "training_data", "ff_n_models", "ff_mean", "ff_sem",
            "best_readout", "best_iterations", "best_perf_mean", "best_perf_sem", "gain_pct",
            *PAIRED_COLUMNS, "note"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- multipath vs recurrent


def multipath_vs_recurrent(df: pd.DataFrame) -> pd.DataFrame:
    """Multi-path models vs their recurrent twins, per (split, fraction, readout, T) and pooled.

    One row per cell plus one row per (split, fraction) with readout "all" (pooled over
    readouts, T and layers). Columns: split_seed, train_fraction, readout, iterations,
    n_models, multipath_mean, recurrent_mean, paired columns (gain = multipath / recurrent - 1,
    over seed-averaged pairs), pearson_r_perf, pearson_r_length (over individual model pairs,
    as in fig. 4c-d), wilcoxon_p_holm, note.
    """
    pr = seed_averaged_pairs(df, "multipath", "recurrent")
    ind = pairs(df, "multipath", "recurrent")
    cols = ["split_seed", "train_fraction", "readout", "iterations", "n_models",
            "multipath_mean", "recurrent_mean", *PAIRED_COLUMNS, "pearson_r_perf",
            "pearson_r_length", "wilcoxon_p_holm", "note"]
    rows = []
    mp = select(df, "multipath")
    for (split, frac), part in pr.groupby(["split_seed", "train_fraction"]):
        groups = [(("all", np.nan), part)] + list(part.groupby(["readout", "iterations"]))
        for (mode, T), cell in groups:
            models = select(mp, None, split, frac)
            one = select(ind, None, split, frac)
            if mode != "all":
                models = models[(models["readout"] == mode) & (models["iterations"] == T)]
                one = one[(one["readout"] == mode) & (one["iterations"] == T)]
            row = {"split_seed": int(split), "train_fraction": float(frac), "readout": mode,
                   "iterations": T, "n_models": int(len(models)),
                   "multipath_mean": cell[PERF].mean(), "recurrent_mean": cell[f"ref_{PERF}"].mean(),
                   "pearson_r_perf": stats.pearson(one[f"ref_{PERF}"], one[PERF])[0],
                   "pearson_r_length": stats.pearson(one["ref_avg_path_length"],
                                                     one["avg_path_length"])[0]}
            row.update(_paired_columns(cell[PERF], cell[f"ref_{PERF}"]))
            rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "wilcoxon_p_holm"])
    cells = out["readout"] != "all"
    out["wilcoxon_p_holm"] = np.nan
    if cells.any():
        sub = _add_holm(out[cells].copy(), ["split_seed", "train_fraction"])
        out.loc[cells, "wilcoxon_p_holm"] = sub["wilcoxon_p_holm"]
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- ablations


def ablation_pairs(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Ablated models with their unablated multi-path partner and the removed lengths.

    One row per ablated model (seeds not averaged) with ``removed`` (list of lengths),
    ``removed_text`` ("2-4"), ``n_removed``, ``kind`` (rm/le/ge/only), ``k`` (for le/ge)
    and ``ref_test_cc_norm2`` (NaN when the partner is missing).
    """
    rows = select(df, family).copy()
    if rows.empty:
        return rows.assign(removed=[], removed_text=[], n_removed=[], kind=[], k=[],
                           **{f"ref_{PERF}": []})
    removed = [removed_lengths(a, L, T) for a, L, T in
               zip(rows["ablation"], rows["recurrent_layers"], rows["iterations"])]
    rows["removed"] = removed
    rows["removed_text"] = [set_text(r) for r in removed]
    rows["n_removed"] = [len(r) for r in removed]
    rows["kind"] = rows["ablation"].str.extract(r"^(rm|only|le|ge)", expand=False).fillna("")
    rows["k"] = pd.to_numeric(rows["ablation"].str.extract(r"^(?:le|ge)(\d+)$", expand=False),
                              errors="coerce")
    full = select(df, "multipath").drop_duplicates("config_id").set_index("config_id")[PERF]
    rows[f"ref_{PERF}"] = rows["partner_id"].map(full)
    return rows


def ablation_table(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Ablated vs unablated multi-path models, one row per ablation set and readout mode.

    Groups by (split_seed, train_fraction, recurrent_layers, iterations, readout, ablation).
    Columns: those keys, kind, k, removed (text), n_removed, n_models, perf_mean, perf_sem,
    full_n_models, full_mean (mean of the distinct unablated partners), change_pct
    (perf_mean / full_mean - 1, %), paired columns (seed-averaged ablated vs its own partner),
    note.
    """
    ab = ablation_pairs(df, family)
    keys = ["split_seed", "train_fraction", "recurrent_layers", "iterations", "readout", "ablation"]
    cols = [*keys, "kind", "k", "removed", "n_removed", "n_models", "perf_mean", "perf_sem",
            "full_n_models", "full_mean", "change_pct", *PAIRED_COLUMNS, "note"]
    if ab.empty:
        return pd.DataFrame(columns=cols)
    sa = seed_average(ab.drop(columns=["removed"]), [PERF, f"ref_{PERF}"])
    full = select(df, "multipath").drop_duplicates("config_id").set_index("config_id")[PERF]
    rows = []
    for key, cell in ab.groupby(keys, dropna=False):
        partners = full.reindex(cell["partner_id"].unique()).dropna()
        sp = sa
        for k, v in zip(keys, key):
            sp = sp[sp[k] == v]
        fm = partners.mean() if len(partners) else math.nan
        row = dict(zip(keys, key))
        row.update({
            "kind": cell["kind"].iloc[0], "k": cell["k"].iloc[0],
            "removed": cell["removed_text"].iloc[0], "n_removed": int(cell["n_removed"].iloc[0]),
            "n_models": int(cell[PERF].notna().sum()), "perf_mean": cell[PERF].mean(),
            "perf_sem": stats.sem(cell[PERF]), "full_n_models": int(len(partners)),
            "full_mean": fm, "change_pct": 100 * (cell[PERF].mean() / fm - 1) if fm > 0 else math.nan,
        })
        row.update(_paired_columns(sp[PERF], sp[f"ref_{PERF}"]))
        if not len(partners):
            row["note"] = "; ".join(filter(None, ["unablated multi-path partner missing", row["note"]]))
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    out["_first"] = [int(r.split("-")[0].split(",")[0]) if r[:1].isdigit() else 0 for r in out["removed"]]
    out = _sort_modes(out, ["split_seed", "train_fraction", "recurrent_layers", "iterations",
                            "readout", "kind", "k", "n_removed", "_first"])
    return out[cols]


# --------------------------------------------------------------------------- rendering


def _fmt(v, kind: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if kind == "perf":
        return f"{v:.4f}"
    if kind == "pct":
        return f"{v:+.2f}"
    if kind == "p":
        return f"{v:.2g}" if v >= 1e-4 else f"{v:.1e}"
    if kind == "int":
        return str(int(v))
    if kind == "frac":
        return f"{fraction_label(v)} %"
    return str(v)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table from header and string cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _ci(row) -> str:
    lo, hi = row["paired_gain_ci_low_pct"], row["paired_gain_ci_high_pct"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return f"[{lo:+.2f}, {hi:+.2f}]"


DEFINITIONS = (
    "Performance: test CC_norm^2, mean over neurons with a defined noise ceiling. "
    "FF average: mean over all feed-forward models of the split and fraction (± s.e.m. over "
    "models). Gain: best recurrent type's average / FF average - 1 (paper table 1). Paired "
    "gain: mean over configurations (seeds averaged) of recurrent / size-matched FF - 1, "
    "bootstrap 95 % CI (BCa, 9999 resamples, seed 0); p: two-sided Wilcoxon signed-rank test "
    "of the paired differences. The best cell is chosen after looking at every (readout mode, T) "
    "cell, so its p-value is optimistic; the Holm-adjusted values are in recurrent_vs_ff.csv."
)


def table1_markdown(t1: pd.DataFrame, dataset: str = "") -> str:
    """Paper-style Markdown rendering of table1()."""
    header = ["split", "training data", "FF avg perf (± s.e.m., n)", "best readout mode, T",
              "best avg perf", "gain (%)", "paired gain (%) [95 % CI]", "Wilcoxon p", "n pairs"]
    rows = []
    for _, r in t1.iterrows():
        best = "n/a" if not r["best_readout"] else f"{r['best_readout']}, {int(r['best_iterations'])}"
        rows.append([
            str(r["split_seed"]), r["training_data"],
            f"{_fmt(r['ff_mean'], 'perf')} ± {_fmt(r['ff_sem'], 'perf')} ({r['ff_n_models']})",
            best, _fmt(r["best_perf_mean"], "perf"), _fmt(r["gain_pct"], "pct"),
            f"{_fmt(r['paired_gain_pct'], 'pct')} {_ci(r)}", _fmt(r["wilcoxon_p"], "p"),
            _fmt(r["n_pairs"], "int"),
        ])
    title = f"# Table 1: recurrent vs feed-forward models{' on ' + dataset if dataset else ''}\n\n"
    notes = [n for n in t1["note"] if isinstance(n, str) and n]
    text = title + markdown_table(header, rows) + "\n" + DEFINITIONS + "\n"
    if notes:
        text += "\nNotes: " + "; ".join(sorted(set(notes))) + "\n"
    return text


def cells_markdown(cells: pd.DataFrame, dataset: str = "") -> str:
    """recurrent_vs_ff() as one Markdown grid per (split, fraction): rows readout, columns T.

    Each cell: gain % (paper definition) / paired gain % [95 % CI], p.
    """
    text = f"# Recurrent vs feed-forward, every readout mode and T{' on ' + dataset if dataset else ''}\n\n"
    text += ("Cell: type average (± s.e.m.); gain over the FF average (%); paired gain (%) "
             "[bootstrap 95 % CI]; Wilcoxon p (Holm-adjusted within the table).\n\n")
    for (split, frac), part in cells.groupby(["split_seed", "train_fraction"]):
        Ts = sorted(part["iterations"].unique())
        ff = part.iloc[0]
        text += (f"## split {split}, {fraction_label(frac)} % training data: FF average "
                 f"{_fmt(ff['ff_mean'], 'perf')} ± {_fmt(ff['ff_sem'], 'perf')} "
                 f"({ff['ff_n_models']} models)\n\n")
        rows = []
        for mode in _mode_order(part["readout"].unique()):
            line = [mode]
            for T in Ts:
                c = part[(part["readout"] == mode) & (part["iterations"] == T)]
                if c.empty:
                    line.append("")
                    continue
                r = c.iloc[0]
                line.append(
                    f"{_fmt(r['perf_mean'], 'perf')} ± {_fmt(r['perf_sem'], 'perf')}; "
                    f"{_fmt(r['gain_pct'], 'pct')} %; {_fmt(r['paired_gain_pct'], 'pct')} {_ci(r)}; "
                    f"p {_fmt(r['wilcoxon_p_holm'], 'p')}"
                )
            rows.append(line)
        text += markdown_table(["readout \\ T", *[f"T = {int(T)}" for T in Ts]], rows) + "\n"
    if cells.empty:
        text += "No recurrent models in the results table.\n"
    return text


def generic_markdown(table: pd.DataFrame, title: str, columns: list[str]) -> str:
    """Markdown of selected columns with numeric formatting by column name."""
    def kind(c):
        if c.endswith("_pct"):
            return "pct"
        if "wilcoxon" in c:
            return "p"
        if c.startswith("n_") or c in ("split_seed", "iterations", "recurrent_layers", "k"):
            return "int"
        if c == "train_fraction":
            return "frac"
        if c.endswith(("_mean", "_sem", "pearson_r_perf", "pearson_r_length")):
            return "perf"
        return "str"
    cols = [c for c in columns if c in table.columns]
    rows = [[_fmt(r[c], kind(c)) if not (isinstance(r[c], str)) else r[c] for c in cols]
            for _, r in table.iterrows()]
    body = markdown_table(cols, rows) if len(rows) else "No models of this family in the results table.\n"
    return f"# {title}\n\n" + body


# --------------------------------------------------------------------------- CLI

TABLES = ("table1", "recurrent_vs_ff", "multipath_vs_recurrent", "ablation_rm", "ablation_lege")


def build(name: str, df: pd.DataFrame, dataset: str = "") -> tuple[pd.DataFrame, str]:
    """Compute table ``name`` and its Markdown rendering."""
    if name == "table1":
        t = table1(df)
        return t, table1_markdown(t, dataset)
    if name == "recurrent_vs_ff":
        t = recurrent_vs_ff(df)
        return t, cells_markdown(t, dataset)
    if name == "multipath_vs_recurrent":
        t = multipath_vs_recurrent(df)
        md = generic_markdown(t, "Multi-path models vs their recurrent twins" + (f" on {dataset}" if dataset else ""),
                              ["split_seed", "train_fraction", "readout", "iterations", "n_models",
                               "multipath_mean", "recurrent_mean", "paired_gain_pct",
                               "paired_gain_ci_low_pct", "paired_gain_ci_high_pct", "wilcoxon_p",
                               "wilcoxon_p_holm", "pearson_r_perf", "pearson_r_length", "note"])
        return t, md
    if name in ("ablation_rm", "ablation_lege"):
        t = ablation_table(df, name)
        md = generic_markdown(t, f"Path ablations ({name}) vs unablated multi-path models"
                              + (f" on {dataset}" if dataset else ""),
                              ["split_seed", "train_fraction", "recurrent_layers", "iterations",
                               "readout", "ablation", "removed", "n_models", "perf_mean", "perf_sem",
                               "full_mean", "change_pct", "paired_gain_pct", "paired_gain_ci_low_pct",
                               "paired_gain_ci_high_pct", "wilcoxon_p", "note"])
        return t, md
    raise RcpbError(f"table {name!r}: unknown; use one of {', '.join(TABLES)}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.tables", description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=TABLES)
    ap.add_argument("--results", required=True, help="results/{dataset}/results.csv")
    ap.add_argument("--csv", required=True, help="output CSV")
    ap.add_argument("--md", required=True, help="output Markdown")
    ap.add_argument("--dataset", default="", help="dataset name for titles")
    args = ap.parse_args(argv)
    try:
        df = read_results(args.results)
        t, md = build(args.name, df, args.dataset)
    except RcpbError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text_atomic(args.csv, t.to_csv(index=False))
    write_text_atomic(args.md, md)
    print(f"{args.name}: {len(t)} rows -> {args.csv}, {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
