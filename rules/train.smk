# One job per training configuration (rcpb.grid): results/{dataset}/{family}/{config_id}/.


rule train:
    """Train one model; metrics.json is written last, so it marks a finished training."""
    input:
        dataset=training_dataset,
    output:
        metrics="results/{dataset}/{family}/{config_id}/metrics.json",
        paths="results/{dataset}/{family}/{config_id}/paths.json",
    params:
        config=training_config,
        out=subpath(output.metrics, parent=True),
    log:
        "results/{dataset}/{family}/{config_id}/train.log",
    benchmark:
        "results/{dataset}/{family}/{config_id}/benchmark.tsv"
    wildcard_constraints:
        dataset=_regex(DATASETS),
        family=_regex(rcpb_grid.FAMILIES),
        config_id="[^/]+",
    threads: config["threads"]
    resources:
        mem_mb=config["train_resources"]["mem_mb"],
        runtime=config["train_resources"]["runtime"],
        gpu=1 if DEVICE == "cuda" else 0,
    shell:
        "{GPU_SLOT}{RCPB} train {params.config:q} --out {params.out} "
        "--device {DEVICE} --threads {threads} > {log} 2>&1"
