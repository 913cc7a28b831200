# Dataset files: simulated ones are made here (SPEC 2.4); provided ones are validated when the
# workflow starts (rules/common.smk).

from rcpb.data import simulate as rcpb_simulate


rule simulate_dataset:
    """Responses of a seeded ground truth (a model V1 circuit or a teacher network) to an
    image set, as a dataset file (docs/ground_truth.md)."""
    input:
        images=lambda wildcards: SIMULATED[wildcards.dataset]["images"],
    output:
        "data/{dataset}.h5",
    params:
        circuit=lambda wildcards: SIMULATED[wildcards.dataset]["circuit"],
        neurons=lambda wildcards: SIMULATED[wildcards.dataset]["neurons"],
        trials=lambda wildcards: SIMULATED[wildcards.dataset]["trials"],
        seed=lambda wildcards: SIMULATED[wildcards.dataset]["seed"],
        input_size=lambda wildcards: (
            ""
            if SIMULATED[wildcards.dataset]["input_size"] is None
            else f"--input-size {SIMULATED[wildcards.dataset]['input_size']}"
        ),
        # a teacher sees the model input the students see: the dataset's crop and downsampling
        teacher_input=lambda wildcards: teacher_input_args(wildcards.dataset),
        # time-binned responses (simulate.dynamics; docs/ground_truth.md, Dynamics)
        dynamics=lambda wildcards: rcpb_simulate.dynamics_args(
            SIMULATED[wildcards.dataset].get("dynamics")
        ),
    log:
        "results/logs/simulate_dataset/{dataset}.log",
    conda:
        "../envs/rcpb.yaml"
    # only simulated datasets: a provided file may also lie in data/
    wildcard_constraints:
        dataset=_regex(SIMULATED),
    shell:
        "rcpb data simulate --circuit {params.circuit} --images {input.images} "
        "--neurons {params.neurons} --trials {params.trials} --seed {params.seed} "
        "{params.input_size} {params.teacher_input} {params.dynamics} --out {output} "
        "> {log} 2>&1"


rule dataset_summary:
    """What the dataset holds (stimuli, neurons, trials, split), for the reader."""
    input:
        lambda wildcards: DATASET_FILES[wildcards.dataset],
    output:
        "results/{dataset}/dataset_summary.txt",
    log:
        "results/logs/dataset_summary/{dataset}.log",
    conda:
        "../envs/rcpb.yaml"
    shell:
        "rcpb data summary {input} > {output} 2> {log}"


if MISSING_FILES:

    rule dataset_file_missing:
        """Stands for a dataset file that must be provided (a dry run lists it; a run stops)."""
        output:
            f"{{path}}",
        log:
            "results/logs/dataset_file_missing/{path}.log",
        conda:
            "../envs/rcpb.yaml"
        wildcard_constraints:
            path=_regex(MISSING_FILES.values()),
        shell:
            "echo 'dataset file {output} not found: provide it (rcpb data import, SPEC 2.1)' "
            "| tee {log} >&2; exit 1"
