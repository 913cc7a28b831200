# One job per training configuration (rcpb.grid): results/{dataset}/{family}/{config_id}/.


rule train:
    """Train one model; metrics.json is written last, so it marks a finished training."""
    input:
        # stands for the dataset file (whose path the configuration holds); a pattern rather
        # than an input function keeps building a DAG of 30,000 trainings fast
        "results/{dataset}/dataset_summary.txt",
    output:
        metrics="results/{dataset}/{family}/{config_id}/metrics.json",
    params:
        config=training_config,
    log:
        "results/{dataset}/{family}/{config_id}/train.log",
    wildcard_constraints:
        dataset=_regex(DATASETS),
        family=_regex(rcpb_grid.FAMILIES),
        config_id="[^/]+",
    threads: config["threads"]
    resources:
        mem_mb=config["train_resources"]["mem_mb"],
        runtime=config["train_resources"]["runtime"],
        gpu=1 if DEVICE == "cuda" else 0,
        # execution settings are resources, not params: switching device retrains nothing
        device=DEVICE,
    shell:
        GPU_SLOT_SH + "rcpb train {params.config:q} --out $(dirname {output.metrics}) "
        "--device {resources.device} --threads {threads} > {log} 2>&1"
