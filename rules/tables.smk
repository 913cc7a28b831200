# Tables (paper tables 1 and 3, plus paired statistics) from results/{dataset}/results.csv.
# Which tables a dataset gets depends on the families its grid trains (analysis/workflow.py);
# output paths and report labels: table_output() in rules/common.smk.

# light jobs (seconds, < 1 GB): run by the scheduling process, never submitted to a cluster
localrules:
    table1,
    table_recurrent_vs_ff,
    table_multipath_vs_recurrent,
    table_ablation_rm,
    table_ablation_lege,


rule table1:
    """Paper table 1 / 3: FF average, best (readout mode, T) and its gain, per split and fraction."""
    input:
        "results/{dataset}/results.csv",
    output:
        **table_output("table1", "Table 1/3: recurrent vs feed-forward"),
    log:
        "results/logs/analysis/{dataset}/tables/table1.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        analysis=dataset_analysis_args,
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.tables table1 --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"


rule table_recurrent_vs_ff:
    """Every (readout mode, T) cell vs FF with paired gains, bootstrap CIs and Wilcoxon tests."""
    input:
        "results/{dataset}/results.csv",
    output:
        **table_output("recurrent_vs_ff", "Recurrent vs FF, every readout mode and T"),
    log:
        "results/logs/analysis/{dataset}/tables/recurrent_vs_ff.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        analysis=dataset_analysis_args,
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.tables recurrent_vs_ff --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"


rule table_multipath_vs_recurrent:
    """Multi-path models vs their recurrent twins (paired statistics, Pearson r)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **table_output("multipath_vs_recurrent", "Multi-path vs recurrent"),
    log:
        "results/logs/analysis/{dataset}/tables/multipath_vs_recurrent.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        analysis=dataset_analysis_args,
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.tables multipath_vs_recurrent --results {input:q}"
        " --csv {output.csv:q} --md {output.md:q} --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"


rule table_ablation_rm:
    """Multi-path models with path lengths removed vs the unablated model."""
    input:
        "results/{dataset}/results.csv",
    output:
        **table_output("ablation_rm", "Ablations: removed path lengths"),
    log:
        "results/logs/analysis/{dataset}/tables/ablation_rm.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        analysis=dataset_analysis_args,
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.tables ablation_rm --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"


rule table_ablation_lege:
    """Multi-path models keeping only lengths <= k or >= k vs the unablated model."""
    input:
        "results/{dataset}/results.csv",
    output:
        **table_output("ablation_lege", "Ablations: keep lengths <= k / >= k"),
    log:
        "results/logs/analysis/{dataset}/tables/ablation_lege.log",
    conda:
        "../envs/rcpb.yaml"
    params:
        analysis=dataset_analysis_args,
    wildcard_constraints:
        dataset="[^/]+",
    shell:
        "python -m analysis.tables ablation_lege --results {input:q} --csv {output.csv:q}"
        " --md {output.md:q} --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"
