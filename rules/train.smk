# One job per training configuration (rcpb.grid): results/{dataset}/{family}/{config_id}/.
#
# A job finds its configuration by id in results/{dataset}/grid.jsonl (rule grid_file; kept up
# to date with the config when a run starts, rules/common.smk) and its thread count in
# OMP_NUM_THREADS, which Snakemake sets to the rule's threads. The job itself stays small (a
# short command, constant resources, no input functions): a paper grid has 20,000-30,000 of them.


rule grid_file:
    """Every training configuration of a dataset, one JSON line each (rcpb.grid), with the
    execution settings (device) that are not part of a configuration's id."""
    output:
        f"results/{{dataset}}/{rcpb_grid.GRID_FILE}",
    log:
        "results/logs/grid_file/{dataset}.log",
    localrule: True
    run:
        write_grid(wildcards.dataset, output[0], log[0])


rule train:
    """Train one model; metrics.json is written last, so it marks a finished training.

    For a dataset file you provide, which is validated when the workflow starts. It is not an
    input: a replaced dataset file does not retrain anything (use a new dataset name). Nor is
    a rewritten grid file (ancient): a new config adds trainings, it never redoes finished ones.
    """
    input:
        grid=ancient(f"results/{{dataset}}/{rcpb_grid.GRID_FILE}"),
    output:
        metrics="results/{dataset}/{family}/{config_id}/metrics.json",
    log:
        "results/{dataset}/{family}/{config_id}/train.log",
    # wall time, memory and CPU of the job (Snakemake's benchmark), to size cluster resources
    benchmark:
        "results/{dataset}/{family}/{config_id}/benchmark.tsv"
    conda:
        "../envs/rcpb.yaml"
    # provided datasets only: train_simulated makes the same files for simulated ones
    wildcard_constraints:
        dataset=_regex(set(DATASETS) - set(SIMULATED)),
    threads: config["threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        "rcpb train --from-grid $(dirname {output.metrics}) > {log} 2>&1"


use rule train as train_simulated with:
    input:
        grid=ancient(f"results/{{dataset}}/{rcpb_grid.GRID_FILE}"),
        data="data/{dataset}.h5",
    wildcard_constraints:
        dataset=_regex(SIMULATED),
