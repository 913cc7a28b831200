# One job per training configuration (rcpb.grid): results/{dataset}/{family}/{config_id}/.
#
# A job finds its configuration by id in results/{dataset}/grid.jsonl, which the workflow writes
# when a run starts (rules/common.smk), and its thread count in OMP_NUM_THREADS, which Snakemake
# sets to the rule's threads. The job itself stays small (a short command, constant resources,
# no input functions): a paper grid has 20,000-30,000 of them.


rule train:
    """Train one model; metrics.json is written last, so it marks a finished training.

    For a dataset file you provide, which is validated when the workflow starts. It is not an
    input: a replaced dataset file does not retrain anything (use a new dataset name).
    """
    output:
        metrics="results/{dataset}/{family}/{config_id}/metrics.json",
    log:
        "results/{dataset}/{family}/{config_id}/train.log",
    conda:
        "../envs/rcpb.yaml"
    wildcard_constraints:
        dataset=_regex(set(DATASETS) - set(SIMULATED)),
        family=_regex(rcpb_grid.FAMILIES),
        config_id="[^/]+",
    threads: config["threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        "rcpb train --from-grid $(dirname {output.metrics}) > {log} 2>&1"


use rule train as train_simulated with:
    input:
        "data/{dataset}.h5",
    wildcard_constraints:
        dataset=_regex(SIMULATED),
        family=_regex(rcpb_grid.FAMILIES),
        config_id="[^/]+",
