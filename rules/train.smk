# One job per training configuration (rcpb.grid): results/{dataset}/{family}/{config_id}/.
#
# A job finds its configuration by id in results/{dataset}/grid.jsonl, which the workflow writes
# when a run starts (rules/common.smk). The job itself stays small (a short command, constant
# resources, no input functions): a paper grid has 20,000-30,000 of them.


rule train:
    """Train one model; metrics.json is written last, so it marks a finished training."""
    input:
        # stands for the dataset file (whose path the configuration holds)
        "results/{dataset}/dataset_summary.txt",
    output:
        metrics="results/{dataset}/{family}/{config_id}/metrics.json",
    log:
        "results/{dataset}/{family}/{config_id}/train.log",
    conda:
        "../envs/rcpb.yaml"
    wildcard_constraints:
        dataset=_regex(DATASETS),
        family=_regex(rcpb_grid.FAMILIES),
        config_id="[^/]+",
    threads: config["threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        "rcpb train --from-grid $(dirname {output.metrics}) --threads {threads} > {log} 2>&1"
