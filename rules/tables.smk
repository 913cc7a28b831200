# Tables (paper tables 1 and 3, plus paired statistics) from results/{dataset}/results.csv.
# Also defines analysis_targets(dataset): every table, figure and summary path of a dataset,
# depending on which model families the dataset's grid trains (analysis/workflow.py).

import sys

from analysis.workflow import headline_for as _headline_for
from analysis.workflow import targets as _analysis_targets

ANALYSIS_PYTHON = sys.executable

# light jobs (seconds, < 1 GB): run by the scheduling process, never submitted to a cluster
localrules:
    table1,
    table_recurrent_vs_ff,
    table_multipath_vs_recurrent,
    table_ablation_rm,
    table_ablation_lege,


def analysis_configs(dataset):
    """Expanded training configurations of ``dataset`` (CONFIGS of rules/common.smk), or None."""
    return globals().get("CONFIGS", {}).get(dataset)


def analysis_targets(dataset):
    """Every table (CSV + Markdown), figure (PNG, PDF, CSV) and the summary of ``dataset``."""
    return _analysis_targets(config, dataset, analysis_configs(dataset))


def _table_labels(name, title):
    """Report labels of a table; the headline is read from results/{dataset}/summary.json."""

    def labels(wildcards):
        head = _headline_for(wildcards.dataset, name) if name == "table1" else ""
        return {"table": title, "headline": head or "see the table"}

    return labels


def _table_rule_output(name, title):
    return {
        "csv": report(
            f"results/{{dataset}}/tables/{name}.csv",
            caption=f"../report/{name}.rst",
            category="{dataset}",
            subcategory="Tables",
            labels=_table_labels(name, title),
        ),
        "md": f"results/{{dataset}}/tables/{name}.md",
    }


rule table1:
    """Paper table 1 / 3: FF average, best (readout mode, T) and its gain, per split and fraction."""
    input:
        "results/{dataset}/results.csv",
    output:
        **_table_rule_output("table1", "Table 1/3: recurrent vs feed-forward"),
    log:
        "results/logs/analysis/{dataset}/tables/table1.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.tables table1 --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} > {log:q} 2>&1"


rule table_recurrent_vs_ff:
    """Every (readout mode, T) cell vs FF with paired gains, bootstrap CIs and Wilcoxon tests."""
    input:
        "results/{dataset}/results.csv",
    output:
        **_table_rule_output("recurrent_vs_ff", "Recurrent vs FF, every readout mode and T"),
    log:
        "results/logs/analysis/{dataset}/tables/recurrent_vs_ff.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.tables recurrent_vs_ff --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} > {log:q} 2>&1"


rule table_multipath_vs_recurrent:
    """Multi-path models vs their recurrent twins (paired statistics, Pearson r)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **_table_rule_output("multipath_vs_recurrent", "Multi-path vs recurrent"),
    log:
        "results/logs/analysis/{dataset}/tables/multipath_vs_recurrent.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.tables multipath_vs_recurrent --results {input:q}"
        " --csv {output.csv:q} --md {output.md:q} --dataset {wildcards.dataset:q} > {log:q} 2>&1"


rule table_ablation_rm:
    """Multi-path models with path lengths removed vs the unablated model."""
    input:
        "results/{dataset}/results.csv",
    output:
        **_table_rule_output("ablation_rm", "Ablations: removed path lengths"),
    log:
        "results/logs/analysis/{dataset}/tables/ablation_rm.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.tables ablation_rm --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} > {log:q} 2>&1"


rule table_ablation_lege:
    """Multi-path models keeping only lengths <= k or >= k vs the unablated model."""
    input:
        "results/{dataset}/results.csv",
    output:
        **_table_rule_output("ablation_lege", "Ablations: keep lengths <= k / >= k"),
    log:
        "results/logs/analysis/{dataset}/tables/ablation_lege.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.tables ablation_lege --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} > {log:q} 2>&1"
