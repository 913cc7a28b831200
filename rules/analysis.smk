# Paths and report labels of the analysis outputs: the tables (rules/tables.smk), figures
# (rules/figures.smk) and summary (rules/report.smk). Which ones a dataset gets is decided in
# analysis/workflow.py from the config and the expanded grids (CONFIGS of rules/common.smk).

import os

from analysis.labels import report_fraction_label
from analysis.workflow import headline_for
from analysis.workflow import tables_for as report_tables_for


def table_output(name, title):
    """Outputs of a table rule: CSV (in the report, with caption report/{name}.rst) and Markdown."""

    def labels(wildcards):
        head = headline_for(wildcards.dataset, name) if name == "table1" else ""
        return {"table": title, "headline": head or "see the table"}

    return {
        "csv": report(
            f"results/{{dataset}}/tables/{name}.csv",
            caption=f"../report/{name}.rst",
            category="{dataset}",
            subcategory="Tables",
            labels=labels,
        ),
        "md": f"results/{{dataset}}/tables/{name}.md",
    }


FIG_DIR = "results/{dataset}/figures/split{split}"
FIG_WILDCARDS = {"dataset": "[^/]+", "split": "[0-9]+", "fraction": "[0-9.]+"}


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


def figure_output(name, figure, per_fraction=True):
    """Outputs of a figure rule: PNG and CSV (in the report), PDF."""
    folder = f"{FIG_DIR}/frac{{fraction}}" if per_fraction else FIG_DIR
    stem = f"{folder}/{name}"
    common = dict(caption=f"../report/{name}.rst", category="{dataset}", subcategory=figure)
    return {
        "png": report(
            f"{stem}.png", labels=_figure_labels(name, figure, per_fraction, "figure"), **common
        ),
        "pdf": f"{stem}.pdf",
        "csv": report(
            f"{stem}.csv",
            labels=_figure_labels(name, figure, per_fraction, "numbers (CSV)"),
            **common,
        ),
    }


def figure_log(name, per_fraction=True):
    base = "results/logs/analysis/{dataset}/figures/split{split}"
    return f"{base}/frac{{fraction}}/{name}.log" if per_fraction else f"{base}/{name}.log"


def summary_tables(wildcards):
    """The tables whose headlines go into results/{dataset}/summary.json."""
    configs = CONFIGS.get(wildcards.dataset)
    if configs is not None:  # trainings and aliases (rules/common.smk)
        configs = configs + globals().get("ALIASES", {}).get(wildcards.dataset, [])
    names = report_tables_for(config, wildcards.dataset, configs)
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


def dataset_description(wildcards):
    from analysis.workflow import dataset_description as describe

    return describe(config, wildcards.dataset)


FRONT_PAGE = "results/report_front.rst"
