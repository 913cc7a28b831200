"""The cell search's comparison (docs/search.md): the best cell vs the baselines on test.

``python -m analysis.search FINAL.csv --summary search_summary.json --csv OUT.csv --md OUT.md``
(run by ``rcpb search``, rcpb.search.run_comparison). FINAL.csv has one row per trained model
(``role``, ``config_id``, ``model_seed``, ``cell``, ``act``, ``iterations``, ``channels``,
``blocks``, ``val_perf``, ``test_perf``, ``metric``); roles: :data:`ROLES`. Each comparison of
:data:`COMPARISONS` whose two roles are present pairs the models by ``model_seed`` (the seeds
are the units) and gets the paired statistics of the tables (``analysis.tables._paired_columns``)
on the TEST values.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from analysis.tables import _paired_columns
from rcpb.atomic_files import write_text_atomic

#: role -> description (comparison.md)
ROLES = {
    "best": "the best cell of the search (highest validation value)",
    "rcpb": "the RCPB baseline (the grid's first recurrent configuration, cell rcpb)",
    "ff": "the RCPB baseline's size-matched FF model (2L + 1 blocks)",
    "best_ff": "the best cell's own size-matched FF model (its channels and activation)",
}
#: (name, treatment role, reference role), in the order written
COMPARISONS = (("best_vs_rcpb", "best", "rcpb"), ("best_vs_ff", "best", "ff"),
               ("best_vs_best_ff", "best", "best_ff"), ("rcpb_vs_ff", "rcpb", "ff"))
UNIT = "seeds (pairs matched on model_seed)"
COLUMNS = ["comparison", "treat", "ref", "treat_model", "ref_model", "metric", "split",
           "treat_mean", "ref_mean", "n_pairs", "unit", "diff_mean", "diff_ci_low",
           "diff_ci_high", "paired_gain_pct", "paired_gain_sem_pct", "paired_gain_ci_low_pct",
           "paired_gain_ci_high_pct", "p", "wilcoxon_p", "note"]


def _blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def model_text(row) -> str:
    if not _blank(row["blocks"]):
        return f"FF {int(row['blocks'])} blocks, c{int(row['channels'])}, {row['act']}"
    return f"{row['cell']} T{int(row['iterations'])}, c{int(row['channels'])}, {row['act']}"


def comparison_table(final: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison whose roles are both in ``final`` (see the module doc)."""
    by_role = {role: part.set_index("model_seed") for role, part in final.groupby("role")}
    rows = []
    for name, treat, ref in COMPARISONS:
        if treat not in by_role or ref not in by_role:
            continue
        seeds = sorted(set(by_role[treat].index) & set(by_role[ref].index))
        t = by_role[treat].loc[seeds]
        r = by_role[ref].loc[seeds]
        row = {"comparison": name, "treat": treat, "ref": ref,
               "treat_model": model_text(t.iloc[0]), "ref_model": model_text(r.iloc[0]),
               "metric": t["metric"].iloc[0], "split": "test",
               "treat_mean": float(t["test_perf"].mean()),
               "ref_mean": float(r["test_perf"].mean())}
        row.update(_paired_columns(t["test_perf"].to_numpy(float), r["test_perf"].to_numpy(float),
                                   UNIT))
        if list(t["config_id"]) == list(r["config_id"]):
            row["note"] = "; ".join(x for x in (row["note"], "the same model on both sides") if x)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _num(value, digits: int = 4) -> str:
    if _blank(value) or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(table: pd.DataFrame, final: pd.DataFrame, summary: dict) -> str:
    metric = summary.get("metric", "")
    params = ", ".join(f"{k} {v}" for k, v in summary.get("best_params", {}).items())
    first, last = summary.get("seeds", ["?", "?"])
    lines = [
        f"# Cell search on {summary.get('dataset', '')}",
        "",
        f"{summary.get('complete_trials')} complete trial(s) "
        f"({summary.get('distinct_configurations')} distinct configurations) of an Optuna TPE "
        f"study; objective: validation {metric} of one model (model_seed 0) per trial. Best "
        f"trial: {summary.get('best_trial')} ({params}), validation {metric} "
        f"{_num(summary.get('best_value'))}. It was retrained with model seeds {first}..{last} "
        f"next to the baselines; below, their TEST {metric} (the search used no test data), "
        "paired by seed.",
        "",
        "| comparison | treatment | reference | treat mean | ref mean | mean diff [95% CI] | "
        "gain % [95% CI] | p (t) | p (Wilcoxon) | n | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['comparison']} | {r['treat_model']} | {r['ref_model']} | "
            f"{_num(r['treat_mean'])} | {_num(r['ref_mean'])} | {_num(r['diff_mean'])} "
            f"[{_num(r['diff_ci_low'])}, {_num(r['diff_ci_high'])}] | "
            f"{_num(r['paired_gain_pct'], 2)} [{_num(r['paired_gain_ci_low_pct'], 2)}, "
            f"{_num(r['paired_gain_ci_high_pct'], 2)}] | {_num(r['p'])} | "
            f"{_num(r['wilcoxon_p'])} | {r['n_pairs']} | {r['note']} |")
    present = [k for k in ROLES if k in set(final["role"])]
    lines += ["", "Roles: " + "; ".join(f"{k}: {ROLES[k]}" for k in present) + ".", "",
              f"Per model (validation and test {metric}):", "",
              "| role | model_seed | config_id | val | test |", "|---|---|---|---|---|"]
    order = {k: i for i, k in enumerate(ROLES)}
    for _, r in final.sort_values(["role", "model_seed"],
                                  key=lambda c: c.map(order) if c.name == "role" else c).iterrows():
        lines.append(f"| {r['role']} | {r['model_seed']} | {r['config_id']} | "
                     f"{_num(r['val_perf'])} | {_num(r['test_perf'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.search", description=__doc__)
    parser.add_argument("final", help="final.csv of a search (rcpb search)")
    parser.add_argument("--summary", required=True, help="search_summary.json of the search")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--md", required=True)
    args = parser.parse_args(argv)
    final = pd.read_csv(args.final)
    with open(args.summary, encoding="utf-8") as f:
        summary = json.load(f)
    table = comparison_table(final)
    write_text_atomic(args.csv, table.to_csv(index=False))
    write_text_atomic(args.md, markdown(table, final, summary))
    for _, r in table.iterrows():
        print(f"analysis.search: {r['comparison']}: mean test {r['metric']} difference "
              f"{r['diff_mean']:+.4f} ({r['treat_model']} vs {r['ref_model']}, "
              f"n = {r['n_pairs']}, p = {_num(r['p'], 3)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
