# The cell search (docs/search.md): an Optuna TPE study over recurrent cells on one dataset's
# validation data, then the best cell retrained with seeds and compared with the RCPB and FF
# baselines on test. Run only when asked, never by `all`:
#
#   snakemake -c2 search_teacher_recurrent                       one dataset (search_<dataset>)
#   snakemake -c2 search --config search='{dataset: teacher_recurrent, trials: 20, seeds: 6}'
#
# `search` searches on the config's search.dataset (every dataset when it names none); trials,
# seeds and sampler_seed come from the config's `search` key (defaults 20, 6, 0). The study
# lives in results/search/{dataset}/ (study.log: Optuna's journal storage; trials/ and final/:
# the trained models), none of which is an output of the job: a killed job rerun resumes the
# study and retrains no finished trial (rcpb.search). The job's outputs are the tables.

SEARCH = config.get("search") or {}
if SEARCH.get("dataset") is not None and SEARCH["dataset"] not in DATASETS:
    raise WorkflowError(
        f"config: search.dataset: {SEARCH['dataset']!r} is not a dataset of the config "
        f"(datasets: {', '.join(DATASETS)})."
    )
# the comparison of each dataset searched by the target `search`
SEARCH_TARGETS = [
    f"results/search/{name}/comparison.md"
    for name in ([SEARCH["dataset"]] if SEARCH.get("dataset") else DATASETS)
]


rule search_study:
    """Search cells on one dataset and compare the best with the baselines (rcpb search)."""
    input:
        data=lambda wildcards: DATASET_FILES[wildcards.dataset],
    output:
        comparison="results/search/{dataset}/comparison.csv",
        md="results/search/{dataset}/comparison.md",
        trials="results/search/{dataset}/trials.csv",
    params:
        # the workflow config as JSON (defaults filled in, --config applied): what rcpb search
        # expands, exactly as the workflow does
        config=lambda wildcards: json.dumps(config, sort_keys=True),
        trials=int(SEARCH.get("trials", 20)),
        seeds=int(SEARCH.get("seeds", 6)),
        sampler_seed=int(SEARCH.get("sampler_seed", 0)),
    log:
        "results/logs/search/{dataset}.log",
    conda:
        "../envs/rcpb.yaml"
    threads: config["threads"]
    shell:
        "rcpb search {params.config:q} --dataset {wildcards.dataset} --trials {params.trials}"
        " --seeds {params.seeds} --sampler-seed {params.sampler_seed}"
        " --study-dir results/search/{wildcards.dataset} --threads {threads} > {log:q} 2>&1"


rule search:
    """The cell search on search.dataset (every dataset when the config names none)."""
    input:
        SEARCH_TARGETS,
    localrule: True


for _search_dataset in DATASETS:

    rule:
        name:
            f"search_{_search_dataset}"
        input:
            f"results/search/{_search_dataset}/comparison.md",
        localrule: True
