# Training: one Snakemake job per pack, a group of up to `pack_size` configurations of the same
# structure (rcpb.grid.packs, made once in rules/common.smk: PACKS), trained `pack_slots` at a
# time by one process: `rcpb train --from-grid DIR ... --slots K --done MARKER`.
#
# Each member writes its own folder results/{dataset}/{family}/{config_id}/ (metrics.json last:
# a finished training, or a failed one that diverged). Those files are not outputs of the job:
# Snakemake deletes the outputs of a failed job and those of a job it reruns. The job's only
# output is the pack's marker results/{dataset}/packs/{pack}.done, written by rcpb train after
# every member is finished; rcpb train skips members that are finished already, so a pack
# killed at any point and rerun trains only its unfinished members, and a pack regrouped by a
# new grid value trains only its new members.
#
# A job finds its members' configurations by id in results/{dataset}/grid.jsonl (rule
# grid_file; kept up to date with the config when a run starts, rules/common.smk) and its thread
# count in OMP_NUM_THREADS, which Snakemake sets to the rule's threads. The job stays small for
# Snakemake to plan (a paper grid has thousands): its params are a dict lookup, its resources
# constant. pack_slots reaches the command as a resource (TRAIN_RESOURCES, rules/common.smk), not
# as a param: like device and threads it is an execution setting that does not change results,
# and changing it reruns nothing (`--set-resources train:pack_slots=N` overrides it per rule).


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
    """Train one pack of models; its marker (output) is written after every member is finished.

    For a dataset file you provide, which is validated when the workflow starts. It is not an
    input: a replaced dataset file does not retrain anything (use a new dataset name). Nor is
    a rewritten grid file (ancient): a new config adds trainings, it never redoes finished ones.
    """
    input:
        grid=ancient(f"results/{{dataset}}/{rcpb_grid.GRID_FILE}"),
    output:
        "results/{dataset}/packs/{pack}.done",
    params:
        members=pack_members,
    log:
        "results/{dataset}/packs/{pack}.log",
    # wall time, memory and CPU of the job (Snakemake's benchmark), to size cluster resources
    benchmark:
        "results/{dataset}/packs/{pack}.benchmark.tsv"
    conda:
        "../envs/rcpb.yaml"
    # provided datasets only: train_simulated makes the same files for simulated ones
    wildcard_constraints:
        dataset=_regex(set(DATASETS) - set(SIMULATED)),
    threads: config["threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        "rcpb train --from-grid {params.members} --slots {resources.pack_slots} --done {output}"
        " > {log} 2>&1"


use rule train as train_simulated with:
    input:
        grid=ancient(f"results/{{dataset}}/{rcpb_grid.GRID_FILE}"),
        data="data/{dataset}.h5",
    wildcard_constraints:
        dataset=_regex(SIMULATED),
