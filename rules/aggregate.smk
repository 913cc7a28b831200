# One table per dataset from the folders of its trained models (CONTRACTS "Results table"),
# by analysis/aggregate.py. Its inputs are the markers of the dataset's packs (rules/train.smk);
# the list of model folders (every training of the dataset, CONFIGS) and the aliases come from
# rules/common.smk.


rule aggregate:
    """results.csv (one row per model and per alias) and neurons.csv (one row per model and
    neuron). An alias is an ablation name that is not trained because another training keeps the
    same path lengths (rcpb.grid); its rows copy that training's, with trained_as naming it.
    A training that diverged has a row with status failed and the reason (no neuron rows);
    failed.csv lists it (and any alias trained as it) too."""
    input:
        pack_markers,
    output:
        results="results/{dataset}/results.csv",
        neurons="results/{dataset}/neurons.csv",
        failed="results/{dataset}/failed.csv",
        models="results/{dataset}/models.txt",
        aliases="results/{dataset}/aliases.json",
    params:
        aliases=aliases_digest,
    log:
        "results/logs/aggregate/{dataset}.log",
    run:
        # the model folders and the aliases go through files: too long for a command line
        write_aggregation_lists(output.models, output.aliases, wildcards.dataset)
        shell(
            "python -m analysis.aggregate --models {output.models} --aliases {output.aliases} "
            "--results {output.results} --neurons {output.neurons} --failed {output.failed} "
            "> {log} 2>&1"
        )


rule baselines:
    """The reference predictors of a simulated dataset (its truth and, for the circuits, the
    drive-only predictor), scored like the models on each split (rcpb.baselines); a header
    only for a dataset without a known truth."""
    input:
        lambda wildcards: DATASET_FILES[wildcards.dataset],
    output:
        "results/{dataset}/baselines.csv",
    params:
        preprocess=lambda wildcards: json.dumps(
            config["datasets"][wildcards.dataset].get("preprocess") or {}
        ),
        split_seeds=lambda wildcards: " ".join(
            str(s) for s in sorted({cfg["split_seed"] for cfg in CONFIGS[wildcards.dataset]})
        ),
    log:
        "results/logs/baselines/{dataset}.log",
    localrule: True
    conda:
        "../envs/rcpb.yaml"
    shell:
        "python -m rcpb.baselines {input:q} --dataset {wildcards.dataset:q} "
        "--preprocess {params.preprocess:q} --split-seeds {params.split_seeds} "
        "--out {output:q} > {log:q} 2>&1"
