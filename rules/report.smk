# The HTML report: `snakemake --report results/report.html` collects every table and figure
# marked with report() in rules/tables.smk and rules/figures.smk, with the captions in
# report/*.rst. The headline numbers shown next to each item come from
# results/{dataset}/summary.json, written here from the tables; the report's landing text is
# the answer of every dataset (FRONT_PAGE, made from the summaries) followed by
# report/workflow.rst, or report/workflow.rst alone before a run has made it.


report: os.path.abspath(FRONT_PAGE) if os.path.exists(FRONT_PAGE) else "../report/workflow.rst"


localrules:
    analysis_summary,
    front_page,


rule analysis_summary:
    """Headline numbers of every table and figure of a dataset, for the report."""
    input:
        results="results/{dataset}/results.csv",
        baselines="results/{dataset}/baselines.csv",
        tables=summary_tables,
    output:
        "results/{dataset}/summary.json",
    log:
        "results/logs/analysis/{dataset}/summary.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        metric=dataset_metric,
        description=dataset_description,
        circuit=dataset_circuit,
    shell:
        "python -m analysis.workflow summary {output:q} {input.tables:q}"
        " --results {input.results:q} --baselines {input.baselines:q} --metric {params.metric}"
        " --dataset {wildcards.dataset:q} --description={params.description:q}"
        " --circuit={params.circuit:q} > {log:q} 2>&1"


rule front_page:
    """The report's landing text: per dataset its known answer (a simulated ground truth), the
    answer (Table 1 as sentences: the best cell vs the best and the size-matched FF, and whether
    that agrees with the known answer), the baselines, then the report's description."""
    input:
        summaries=[f"results/{name}/summary.json" for name in config["datasets"]],
        intro=os.path.join(str(workflow.current_basedir), "..", "report", "workflow.rst"),
    output:
        FRONT_PAGE,
    log:
        "results/logs/analysis/front_page.log",
    conda:
        "../envs/rcpb.yaml"
    shell:
        "python -m analysis.workflow front {output:q} {input.summaries:q} --intro {input.intro:q}"
        " > {log:q} 2>&1"
