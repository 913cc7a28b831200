# One table per dataset from the folders of its trained models (CONTRACTS "Results table").


rule aggregate:
    """results.csv (one row per model) and neurons.csv (one row per model and neuron)."""
    input:
        metrics_files,
    output:
        results="results/{dataset}/results.csv",
        neurons="results/{dataset}/neurons.csv",
        models="results/{dataset}/models.txt",
    log:
        "results/logs/aggregate/{dataset}.log",
    wildcard_constraints:
        dataset=_regex(DATASETS),
    run:
        # the list of model folders goes through a file: it is too long for a command line
        with open(output.models, "w") as f:
            f.writelines(os.path.dirname(m) + "\n" for m in input)
        shell(
            "rcpb aggregate --models {output.models} --results {output.results} "
            "--neurons {output.neurons} > {log} 2>&1"
        )
