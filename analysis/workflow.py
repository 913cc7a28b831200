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

from analysis.labels import blocks_label, fmt, fraction_label
from rcpb.grid import FAMILIES
from rcpb.atomic_files import write_json_atomic, write_text_atomic

# figure name -> (needs these families, per training fraction?, output stem)
FIGURE_FAMILIES = {
    "fig3a": (("recurrent",), False),
    "fig3d": (("recurrent",), True),
    "fig6ab": (("recurrent",), True),
    "fig6cd": (("recurrent",), True),
    "fig6ef": (("recurrent",), True),
    "neurons": (("recurrent",), True),
    "fig4cd": (("multipath",), True),
    "fig6gi": (("ablation_rm",), True),
    "lege": (("ablation_lege",), True),
    "cells_controls": (("recurrent",), True),    # and with_controls (below)
    "dynamics": (("recurrent",), True),          # and with_dynamics (below)
}
TABLE_FAMILIES = {
    "table1": (),  # always built (the workflow's main table)
    "recurrent_vs_ff": ("recurrent",),
    "multipath_vs_recurrent": ("multipath",),
    "ablation_rm": ("ablation_rm",),
    "ablation_lege": ("ablation_lege",),
    "controls": ("recurrent",),            # and with_controls (below)
    "dynamics": ("recurrent",),            # and with_dynamics (below)
}
#: the table and figure of recurrent cells vs their controls (analysis.controls)
CONTROLS_OUTPUTS = ("controls", "cells_controls")
#: the table and figure of time-binned data (analysis.dynamics)
DYNAMICS_OUTPUTS = ("dynamics",)
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
    return [t for t, need in TABLE_FAMILIES.items() if all(f in fams for f in need)
            and _wanted(t, config, dataset, configs)]


def _wanted(name: str, config: dict, dataset: str, configs: list[dict] | None) -> bool:
    """Whether a table or figure of a dataset's families is built: the controls outputs only
    :func:`with_controls`, the dynamics outputs only :func:`with_dynamics`, always otherwise."""
    if name in CONTROLS_OUTPUTS:
        return with_controls(config, dataset, configs)
    if name in DYNAMICS_OUTPUTS:
        return with_dynamics(config, dataset)
    return True


def with_dynamics(config: dict, dataset: str) -> bool:
    """Whether a dataset has time-binned responses (docs/dynamics.md): simulated with
    ``simulate.dynamics``, or a provided file whose ``responses`` are 4-D."""
    ds = (config.get("datasets") or {}).get(dataset) or {}
    if isinstance(ds.get("simulate"), dict):
        return ds["simulate"].get("dynamics") is not None
    path = ds.get("file")
    if not path or not os.path.exists(path):
        return False
    from rcpb.data.format import is_time_binned

    return is_time_binned(path)


def with_controls(config: dict, dataset: str, configs: list[dict] | None = None) -> bool:
    """Whether a dataset gets the controls table and figure: its grid trains a control family
    (analysis.controls.CONTROL_FAMILIES) or a recurrent cell other than rcpb."""
    from analysis.controls import CONTROL_FAMILIES

    if configs is not None:
        return any(c.get("family") in CONTROL_FAMILIES or c.get("cell") not in (None, "rcpb")
                   for c in configs)
    grid = dataset_grid(config, dataset)
    cells = (grid.get("recurrent") or {}).get("cell") if isinstance(grid.get("recurrent"),
                                                                     dict) else None
    return (any(grid.get(f) not in (None, False) for f in (*CONTROL_FAMILIES, "controls"))
            or any(c != "rcpb" for c in (cells or [])))


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
        if fam not in fams or not _wanted(name, config, dataset, configs):
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
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _pct(v) -> str:
    text = fmt(v, "pct")
    return text if text == "n/a" else f"{text} %"


def comparison_text(r: dict, prefix: str = "") -> str:
    """'effect +0.0123 [+0.0040, +0.0206], gain +3.41 % [+1.02 %, +5.90 %], p = 0.004, n = 12
    pairs (configurations, seeds averaged)' (or '... n = 2 pair(s): too few for a CI or
    p-value') from a table row with paired columns (analysis.tables.PAIRED_COLUMNS, optionally
    under ``prefix``)."""
    def col(name):
        return r.get(prefix + name)

    n = fmt(col("n_pairs"), "int").replace("n/a", "0")
    unit = col("unit")
    unit = f" ({unit})" if isinstance(unit, str) and unit else ""
    effect, gain = f"effect {fmt(col('diff_mean'), 'diff')}", f"gain {_pct(col('paired_gain_pct'))}"
    lo, hi = _num(col("diff_ci_low")), _num(col("diff_ci_high"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{effect}, {gain}, n = {n} pair(s){unit}: too few for a CI or p-value"
    glo, ghi = _num(col("paired_gain_ci_low_pct")), _num(col("paired_gain_ci_high_pct"))
    gci = f" [{_pct(glo)}, {_pct(ghi)}]" if math.isfinite(glo) and math.isfinite(ghi) else ""
    return (f"{effect} [{fmt(lo, 'diff')}, {fmt(hi, 'diff')}], {gain}{gci}, "
            f"p = {fmt(col('p'), 'p')}, n = {n} pairs{unit}")


def known_answer(config: dict, dataset: str) -> dict | None:
    """The known answer of a dataset simulated from a built-in ground truth: {"circuit",
    "recurrence" ("helps" or "none"), "text"} from rcpb.data.simulate.KNOWN_ANSWERS; None for
    recorded data or a circuit without a known answer."""
    ds = (config.get("datasets") or {}).get(dataset) or {}
    sim = ds.get("simulate")
    if not isinstance(sim, dict):
        return None
    return known_answer_of(sim.get("circuit", "recurrent"))


def known_answer_of(circuit: str | None) -> dict | None:
    """{"circuit", "recurrence", "text"} of a built-in ground truth (None when unknown)."""
    if not circuit:
        return None
    from rcpb.data.simulate import KNOWN_ANSWERS

    known = KNOWN_ANSWERS.get(circuit)
    return None if known is None else {"circuit": circuit, **known}


def verdict(r: dict, known: dict | None) -> str:
    """Whether a Table 1 row agrees with the known answer, judged on the CI of the effect of the
    best cell over the best FF (``bestff_diff_ci_low``/``_high``): for "helps", "detected" when
    the CI lies above 0, else "not detected"; for "none", "consistent" when it does not lie
    above 0, else "inconsistent"; "undecided" without a CI; "" without a known answer."""
    if not known:
        return ""
    lo, hi = _num(r.get("bestff_diff_ci_low")), _num(r.get("bestff_diff_ci_high"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undecided"
    above = lo > 0
    if known["recurrence"] == "helps":
        return "detected" if above else "not detected"
    return "inconsistent" if above else "consistent"


ANSWER_TEXT = {"helps": "recurrence helps", "none": "recurrence does not help"}
_VERDICT_TEXT = {
    "detected": "the CI of (best cell - best FF) lies above 0",
    "not detected": "the CI of (best cell - best FF) does not lie above 0",
    "consistent": "the CI of (best cell - best FF) does not lie above 0",
    "inconsistent": "the CI of (best cell - best FF) lies above 0, where recurrence should not help",
    "undecided": "no CI of (best cell - best FF): too few pairs",
}


def answer_lines(t1_records: list[dict], measure: str = "CC_norm^2",
                 known: dict | None = None) -> list[str]:
    """The answer of a dataset, one line per (split, fraction), from Table 1's rows: the best
    cell against the best FF and against the size-matched FF, each with its CI (or why there is
    none), and with a ``known`` answer (:func:`known_answer`) the :func:`verdict`."""
    lines = []
    for r in t1_records:
        where = f"split {int(_num(r['split_seed']))}, {r.get('training_data') or fraction_label(r['train_fraction']) + ' %'} training data"
        if not (isinstance(r.get("best_readout"), str) and r["best_readout"]):
            lines.append(f"{where}: no recurrent model could be compared ({r.get('note') or 'no models'}).")
            continue
        chosen = ("chosen on validation" if r.get("selection", "validation") == "validation"
                  else "chosen on half of the seeds, reported on the other half")
        line = (
            f"{where}: recurrent vs feed-forward ({measure}), best cell "
            f"{r['best_readout']}, T = {int(_num(r['best_iterations']))} ({chosen}, of "
            f"{int(_num(r['n_cells']))} cells): test {fmt(r['best_perf_mean'], 'perf')}. "
            f"Vs the best FF ({blocks_label(r.get('bestff_blocks'))}, chosen on validation; test "
            f"{fmt(r.get('bestff_mean'), 'perf')}): {comparison_text(r, 'bestff_')}. "
            f"Vs the size-matched FF ({r.get('ff_blocks') or 'n/a'} blocks; test "
            f"{fmt(r['ff_mean'], 'perf')}): {comparison_text(r)}. Mean over all "
            f"{int(_num(r['n_cells']))} cells: {fmt(r['cells_mean'], 'perf')}; vs the "
            f"size-matched FF {comparison_text(r, 'all_')}."
        )
        v = verdict(r, known)
        if v:
            line += f" Known answer: {ANSWER_TEXT[known['recurrence']]}; result: {v} ({_VERDICT_TEXT[v]})."
        lines.append(line)
    return lines


def baselines_line(records: list[dict], measure: str = "CC_norm^2") -> str:
    """'Baselines (test CC_norm^2): split 0: truth 0.9800 (...), drive 0.4100 (...).' from the
    records of analysis.load.read_baselines ("" without any)."""
    by_split: dict = {}
    for b in records:
        desc = f" ({b['description']})" if b.get("description") else ""
        by_split.setdefault(int(_num(b["split_seed"])), []).append(
            f"{b['predictor']} {fmt(b.get('perf'), 'perf')}{desc}")
    if not by_split:
        return ""
    return (f"Baselines (test {measure}, not trained models): "
            + "; ".join(f"split {s}: {', '.join(items)}" for s, items in sorted(by_split.items()))
            + ".")


def headlines(tables: dict) -> dict:
    """Headline strings for the report, from table DataFrames (keys: TABLE_FAMILIES names).

    Keys of the result: ``"table1"``, ``"{figure}/split{s}"`` (fig3a) and
    ``"{figure}/split{s}/frac{f}"``.
    """
    out = {}
    t1 = tables.get("table1")
    if t1 is not None and len(t1):
        out["table1"] = " | ".join(answer_lines(t1.to_dict("records"), ""))
        per_split = {}
        for r in t1.to_dict("records"):
            if isinstance(r.get("best_readout"), str) and r["best_readout"]:
                per_split.setdefault(int(r["split_seed"]), []).append(
                    f"{fraction_label(r['train_fraction'])} %: {comparison_text(r, 'all_')}; "
                    f"vs the best FF ({blocks_label(r.get('bestff_blocks'))}): "
                    f"{comparison_text(r, 'all_bestff_')}")
        for split, items in per_split.items():
            out[f"fig3a/split{split}"] = "all cells vs FF: " + "; ".join(items)
    cells = tables.get("recurrent_vs_ff")
    if cells is not None and "val_mean" in cells.columns:
        from analysis.tables import best_cell

        for (s, f), g in cells.groupby(["split_seed", "train_fraction"]):
            best = best_cell(g)
            if best is None:
                continue
            out[f"fig3d/split{int(s)}/frac{fraction_label(f)}"] = (
                f"best on validation: {best['readout']}, T = {int(best['iterations'])}: test "
                f"{fmt(best['perf_mean'], 'perf')} vs size-matched FF "
                f"{fmt(best['ff_mean'], 'perf')}; {comparison_text(best.to_dict())}; vs best FF "
                f"({blocks_label(best.get('bestff_blocks'))}) {fmt(best.get('bestff_mean'), 'perf')}; "
                f"{comparison_text(best.to_dict(), 'bestff_')}")
    mp = tables.get("multipath_vs_recurrent")
    if mp is not None and len(mp):
        for r in mp[mp["readout"] == "all"].to_dict("records"):
            key = f"fig4cd/split{int(r['split_seed'])}/frac{fraction_label(r['train_fraction'])}"
            out[key] = (f"r(performance) = {fmt(r['pearson_r_perf'], 'perf')}, r(path length) = "
                        f"{fmt(r['pearson_r_length'], 'perf')}; multi-path vs recurrent: "
                        f"{comparison_text(r)}")
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
                text = (f"lowest mean after removing {int(worst['n_removed'])} lengths: "
                        f"{worst['removed']} ({worst['readout']}, {_pct(worst['change_pct'])} vs "
                        f"full model; {comparison_text(worst.to_dict())})")
            else:
                worst = g.loc[g["change_pct"].idxmin()]
                text = (f"lowest mean: {worst['ablation']} ({worst['readout']}, T = "
                        f"{int(worst['iterations'])}, {_pct(worst['change_pct'])} vs full model; "
                        f"{comparison_text(worst.to_dict())})")
            out[f"{fig}/split{int(s)}/frac{fraction_label(f)}"] = text
    dyn = tables.get("dynamics")
    if dyn is not None and len(dyn):
        from analysis.dynamics import MEAN, PROFILE

        main = dyn[dyn["measure"].isin([PROFILE]) | dyn["measure"].str.startswith(MEAN)]
        for (s, f), g in main.groupby(["split_seed", "train_fraction"]):
            out[f"dynamics/split{int(s)}/frac{fraction_label(f)}"] = "; ".join(
                f"{r['cell']} L{int(r['recurrent_layers'])} T{int(r['iterations'])} vs "
                f"size-matched FF, {r['measure']}: {comparison_text(r)}"
                for r in g.to_dict("records"))
    return out


def results_headlines(df) -> dict:
    """Headlines of fig. 6a-b, 6c-d and 6e-f from the results table: per layer count the type
    best on validation (6a-b), r(average path length, performance) (6c-d), example types (6e-f)."""
    from analysis import stats
    from analysis.load import select
    from analysis.plots.compare import type_summary
    from analysis.plots.path_figures import choose_examples
    from analysis.tables import best_cell

    out = {}
    rec = select(df, "recurrent")
    for (split, frac), part in rec.groupby(["split_seed", "train_fraction"]):
        key = f"split{int(split)}/frac{fraction_label(frac)}"
        ex_parts, r_parts, best_parts = [], [], []
        for L, sub in part.groupby("recurrent_layers"):
            summ = type_summary(sub)
            best = best_cell(summ, "val_perf_mean")
            if best is not None:
                best_parts.append(f"{int(L)} layer(s): {best['readout']}, T = "
                                  f"{int(best['iterations'])} (test {fmt(best['perf_mean'], 'perf')})")
            ex = choose_examples(summ)
            if len(ex):
                ex_parts.append(f"{int(L)} layer(s): " + ", ".join(
                    f"{r.readout} T={int(r.iterations)} (length {r.avg_path_length:.2f}, "
                    f"perf {fmt(r.perf_mean, 'perf')})" for r in ex.itertuples()))
            r, n = stats.pearson(summ["avg_path_length"], summ["perf_mean"])
            r_text = f"{r:.2f}" if math.isfinite(r) else "n/a"
            r_parts.append(f"{int(L)} layer(s): r(length, performance) = {r_text} over {n} types")
        if best_parts:
            out[f"fig6ab/{key}"] = "best type on validation: " + "; ".join(best_parts)
        if ex_parts:
            out[f"fig6ef/{key}"] = "examples: " + "; ".join(ex_parts)
        out[f"fig6cd/{key}"] = "; ".join(r_parts)
    return out


#: Goals for a converged study (early stopping decides): at least this share of phases ends on
#: patience, and fewer than this share of models has its best checkpoint at its last step.
CONVERGED_PATIENCE_SHARE = 0.8
CONVERGED_LAST_STEP_SHARE = 0.1


def convergence(df) -> dict:
    """How the trainings of a results table ended (trained rows only, not aliases): ``phases``,
    ``phases_stopped_early`` (ended on patience before max_steps), ``models``,
    ``best_at_last_step`` (models whose best checkpoint is their last step); {} without the
    columns."""
    if "phases_stopped_early" not in df.columns:
        return {}
    trained = df[df["trained_as"].fillna("") == ""] if "trained_as" in df.columns else df
    trained = trained.dropna(subset=["phases", "steps", "best_step"])
    return {"phases": int(trained["phases"].sum()),
            "phases_stopped_early": int(trained["phases_stopped_early"].sum()),
            "models": int(len(trained)),
            "best_at_last_step": int((trained["best_step"] == trained["steps"]).sum())}


def convergence_line(conv: dict) -> str:
    """One sentence on whether the models were trained to convergence ("" without numbers)."""
    if not conv or not conv.get("phases") or not conv.get("models"):
        return ""
    early = conv["phases_stopped_early"] / conv["phases"]
    last = conv["best_at_last_step"] / conv["models"]
    text = (f"Training: {conv['phases_stopped_early']} of {conv['phases']} phases "
            f"({100 * early:.0f} %) stopped on patience, {conv['best_at_last_step']} of "
            f"{conv['models']} models ({100 * last:.0f} %) had their best validation checkpoint "
            "at their last step")
    if early < CONVERGED_PATIENCE_SHARE or last >= CONVERGED_LAST_STEP_SHARE:
        text += (": these models are not trained to convergence (the goal: at least "
                 f"{100 * CONVERGED_PATIENCE_SHARE:.0f} % and under "
                 f"{100 * CONVERGED_LAST_STEP_SHARE:.0f} %), so their comparison says little "
                 "about the models at convergence")
    return text + "."


def dataset_description(config: dict, dataset: str) -> str:
    """What a dataset is, for the report's front page ("simulated ground truth: recurrent_teacher",
    or its file); the known answer of a simulated one is :func:`known_answer`."""
    ds = (config.get("datasets") or {}).get(dataset) or {}
    sim = ds.get("simulate")
    if isinstance(sim, dict):
        return f"simulated ground truth: {sim.get('circuit', 'recurrent')}"
    return f"recordings from {ds['file']}" if ds.get("file") else ""


def write_summary(table_csvs: list[str], out: str, results_csv: str | None = None,
                  metric: str = "auto", dataset: str = "", description: str = "",
                  baselines_csv: str | None = None, circuit: str = "") -> dict:
    """Read the table CSVs (and the results table for the figures' headlines), compute headlines
    and the dataset's answer, and write the summary JSON; returns it.

    Keys: dataset, description, metric (the performance measure used), headlines (item ->
    text), table1 (its rows), answer (one line per split and fraction, see answer_lines),
    known_answer ({"circuit", "recurrence", "text"} of the simulated ground truth ``circuit``,
    or null), verdicts (one per Table 1 row: split_seed, train_fraction, verdict; see
    :func:`verdict`), baselines (the rows of ``baselines_csv`` in the measure:
    split_seed, predictor, description, perf, val_perf; see analysis.load.read_baselines),
    convergence (how the trainings ended, see :func:`convergence`; with the results table).
    """
    import pandas as pd

    from analysis.load import METRICS, read_baselines

    tables = {}
    for path in table_csvs:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            tables[name] = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
        for col in ("best_readout", "ff_blocks"):
            if col in tables[name].columns:
                tables[name][col] = tables[name][col].fillna("").astype(str)
    known = known_answer_of(circuit)
    summary = {"dataset": dataset, "description": description, "metric": metric,
               "known_answer": known, "headlines": headlines(tables)}
    if results_csv is not None:
        from analysis.load import metric_of, n_failed, read_results

        df = read_results(results_csv, metric)
        summary["metric"] = metric_of(df)
        summary["n_failed"] = n_failed(df)   # trainings left out (status failed)
        summary["headlines"].update(results_headlines(df))
        summary["convergence"] = convergence(df)
    measure_metric = summary["metric"] if summary["metric"] in METRICS else "cc_norm2"
    summary["baselines"] = json.loads(
        read_baselines(baselines_csv, measure_metric).to_json(orient="records"))
    if "table1" in tables:
        records = json.loads(tables["table1"].to_json(orient="records"))
        summary["table1"] = records
        measure = METRICS.get(summary["metric"], ("", summary["metric"]))[1]
        summary["answer"] = answer_lines(records, measure, known)
        summary["verdicts"] = [{"split_seed": r["split_seed"], "train_fraction": r["train_fraction"],
                                "verdict": verdict(r, known)} for r in records]
    write_json_atomic(out, summary)
    return summary


def failed_line(n_failed) -> str:
    """The report's line on diverged trainings ("" when none failed)."""
    if not n_failed:
        return ""
    return (f"{int(n_failed)} training(s) diverged (loss or parameters NaN or infinite): "
            "status failed in results.csv with the reason (also failed.csv); every table and "
            "figure leaves them out, and a model whose partner failed drops out of its pairs.")


def front_page(summaries: list[str], intro: str, out: str) -> str:
    """The report's landing text (reStructuredText): the answer of every dataset, read from its
    summary.json (its known answer when simulated from a built-in ground truth, the best cell
    against the best FF and the size-matched FF per split and fraction, the baselines, how the
    trainings ended), followed by ``intro`` (report/workflow.rst without its title). Returns it."""
    from analysis.load import METRICS

    with open(intro, encoding="utf-8") as f:
        lines = f.read().splitlines()
    title, body = lines[:2], lines[2:]
    text = "\n".join(title) + "\n\nThe answer\n----------\n\n"
    for path in summaries:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        name = s.get("dataset") or os.path.basename(os.path.dirname(path))
        desc = f" ({s['description']})" if s.get("description") else ""
        text += f"**{name}**{desc}:\n\n"
        known = s.get("known_answer")
        items = [f"Known answer: {ANSWER_TEXT[known['recurrence']]} ({known['text']})."] if known else []
        items += s.get("answer") or ["no Table 1 for this dataset."]
        measure = METRICS.get(s.get("metric"), ("", s.get("metric") or ""))[1]
        items += [baselines_line(s.get("baselines") or [], measure),
                  convergence_line(s.get("convergence") or {}), failed_line(s.get("n_failed"))]
        text += "".join(f"- {line}\n" for line in items if line)
        text += "\n"
    text += ("Each line is generated from ``results/<dataset>/summary.json`` (Table 1): the best "
             "(readout mode, T) cell and the best feed-forward depth are chosen on validation "
             "data and reported on test data; effect = mean paired difference (recurrent - "
             "feed-forward) with its 95 % t-interval, gain = ratio of means - 1 with Fieller's "
             "95 % interval, p = paired t-test; n = configurations with their seeds averaged, or "
             "the seeds when there is one configuration. The known answer of a simulated ground "
             "truth is detected (where recurrence helps) when the CI of (best cell - best FF) lies "
             "above 0, and the result is consistent (where it does not help) when that CI does "
             "not lie above 0; without a CI it is undecided. "
             "Baselines: the simulator's true mean rates (the ceiling any model can reach) and "
             "its feed-forward drive alone.\n")
    text += "\n".join(body) + "\n"
    write_text_atomic(out, text)
    return text


def headline_for(dataset: str, key: str) -> str:
    """Headline text from results/{dataset}/summary.json ("" when the summary is not there yet)."""
    path = summary_path(dataset)
    try:
        with open(path) as f:
            return json.load(f).get("headlines", {}).get(key, "")
    except (OSError, ValueError):
        return ""


def main(argv=None) -> int:
    """``python -m analysis.workflow summary OUT.json [--results RESULTS.csv] [--baselines
    BASELINES.csv] [--circuit CIRCUIT] TABLE.csv ...`` or ``... front OUT.rst SUMMARY.json ...``"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m analysis.workflow",
                                 description="Write the headline summary of a dataset.")
    ap.add_argument("command", choices=["summary", "front"])
    ap.add_argument("out", help="results/{dataset}/summary.json, or the front page (.rst)")
    ap.add_argument("inputs", nargs="*", help="summary: table CSVs (results/{dataset}/tables/"
                    "*.csv); front: summary JSON files")
    ap.add_argument("--results", help="results/{dataset}/results.csv (figure headlines)")
    ap.add_argument("--metric", default="auto", help="performance measure (analysis.load)")
    ap.add_argument("--dataset", default="", help="dataset name")
    ap.add_argument("--description", default="", help="what the dataset is")
    ap.add_argument("--intro", default="report/workflow.rst", help="front: the report's text")
    ap.add_argument("--baselines", default=None, help="summary: results/{dataset}/baselines.csv "
                    "(optional; missing or empty: no baselines)")
    ap.add_argument("--circuit", default="", help="summary: the simulated ground truth's "
                    "circuit (rcpb.data.simulate.KNOWN_ANSWERS), '' for recorded data")
    args = ap.parse_args(argv)
    if args.command == "front":
        front_page(args.inputs, args.intro, args.out)
        print(f"{args.out}: the answer of {len(args.inputs)} dataset(s)")
        return 0
    s = write_summary(args.inputs, args.out, args.results, args.metric, args.dataset,
                      args.description, args.baselines, args.circuit)
    print(f"{args.out}: {len(s['headlines'])} headlines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
