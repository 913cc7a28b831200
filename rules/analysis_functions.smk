# Input, param and report-label functions of the analysis rules: the tables (rules/tables.smk),
# figures (rules/figures.smk) and summary (rules/report.smk). Which tables and figures a dataset
# gets is decided in analysis/workflow.py from the config and the expanded grids (CONFIGS and
# ALIASES of rules/common.smk). Kept apart from common.smk so that the analysis rules can be
# run on a results table alone (tests/test_tables.py includes this file and those rules).

import os

from analysis.labels import report_fraction_label
from analysis.workflow import headline_for
from analysis.workflow import tables_for as report_tables_for

FRONT_PAGE = "results/report_front.rst"


def analysed_configs(dataset):
    """Every configuration the analysis of a dataset reports: the trainings and the aliases of
    rules/common.smk (an ablation name whose training is another's still gets its rows, tables
    and figures); None for a dataset without expanded grids (then the config is read)."""
    configs = CONFIGS.get(dataset)
    return None if configs is None else configs + ALIASES.get(dataset, [])


def summary_tables(wildcards):
    """The tables whose headlines go into results/{dataset}/summary.json."""
    names = report_tables_for(config, wildcards.dataset, analysed_configs(wildcards.dataset))
    return [f"results/{wildcards.dataset}/tables/{t}.csv" for t in names]


def _dataset_entry(wildcards):
    return (config.get("datasets") or {}).get(wildcards.dataset) or {}


def dataset_metric(wildcards):
    """The dataset's performance measure (config `datasets.<name>.metric`, default auto)."""
    return _dataset_entry(wildcards).get("metric", "auto")


def dataset_analysis_args(wildcards):
    """Command-line options of the table scripts: the measure and how Table 1 selects."""
    entry = _dataset_entry(wildcards)
    return f"--metric {entry.get('metric', 'auto')} --selection {entry.get('selection', 'validation')}"


def dataset_circuit(wildcards):
    """The simulated ground truth's circuit (rcpb.data.simulate.KNOWN_ANSWERS), "" for
    recorded data: the summary states its known answer."""
    sim = _dataset_entry(wildcards).get("simulate")
    return sim.get("circuit", "recurrent") if isinstance(sim, dict) else ""


def dataset_description(wildcards):
    from analysis.workflow import dataset_description as describe

    return describe(config, wildcards.dataset)


def _table_labels(name, title):
    """Report labels of a table; Table 1's headline is read from results/{dataset}/summary.json."""

    def labels(wildcards):
        head = headline_for(wildcards.dataset, name) if name == "table1" else ""
        return {"table": title, "headline": head or "see the table"}

    return labels


def _figure_labels(name, figure, per_fraction, kind):
    """Report labels of a figure file; the headline is read from results/{dataset}/summary.json."""

    def labels(wildcards):
        parts = [name, f"split{wildcards.split}"]
        lab = {"figure": figure, "split seed": wildcards.split}
        if per_fraction:
            parts.append(f"frac{wildcards.fraction}")
            lab["training data"] = report_fraction_label(wildcards.fraction)
        lab["file"] = kind
        key = os.path.join(*parts)  # e.g. fig3d/split0/frac100, as in summary.json
        lab["headline"] = headline_for(wildcards.dataset, key) or "see the figure title"
        return lab

    return labels
