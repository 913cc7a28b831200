# The HTML report: `snakemake --report results/report.html` collects every table and figure
# marked with report() in rules/tables.smk and rules/figures.smk, with the captions in
# report/*.rst. The headline numbers shown next to each item come from
# results/{dataset}/summary.json, written here from the tables.


report: "../report/workflow.rst"


localrules:
    analysis_summary,


rule analysis_summary:
    """Headline numbers of every table and figure of a dataset, for the report."""
    input:
        results="results/{dataset}/results.csv",
        tables=summary_tables,
    output:
        "results/{dataset}/summary.json",
    log:
        "results/logs/analysis/{dataset}/summary.log",
    conda:
        "../envs/rcpb.yaml"
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.workflow summary {output:q} {input.tables:q}"
        " --results {input.results:q} > {log:q} 2>&1"
