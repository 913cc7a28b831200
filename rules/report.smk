# The HTML report: `snakemake --report results/report.html` collects every table and figure
# marked with report() in rules/tables.smk and rules/figures.smk, with the captions in
# report/*.rst. The headline numbers shown next to each item come from
# results/{dataset}/summary.json, written here from the tables.

import sys

from analysis.workflow import tables_for as _report_tables_for

ANALYSIS_PYTHON = sys.executable

report: "../report/workflow.rst"


localrules:
    analysis_summary,


rule analysis_summary:
    """Headline numbers of every table and figure of a dataset, for the report."""
    input:
        results="results/{dataset}/results.csv",
        tables=lambda wc: [
            f"results/{wc.dataset}/tables/{t}.csv"
            for t in _report_tables_for(config, wc.dataset, globals().get("CONFIGS", {}).get(wc.dataset))
        ],
    output:
        "results/{dataset}/summary.json",
    log:
        "results/logs/analysis/{dataset}/summary.log",
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "{ANALYSIS_PYTHON:q} -m analysis.workflow summary {output:q} {input.tables:q}"
        " --results {input.results:q} > {log:q} 2>&1"
