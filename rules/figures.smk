# Figures (paper figures 3, 4, 6 and appendix D-H) from results/{dataset}/results.csv.
# Each figure is one rule with wildcards dataset, split (split seed) and fraction (training
# fraction in percent), writing PNG, PDF and the numbers drawn as CSV, so one figure can be
# rebuilt alone, e.g. `snakemake results/ns2250/figures/split0/frac100/fig3d.png`.
# Appendix versions are the same rules with other wildcards. Which figures a dataset gets:
# analysis/workflow.py; output paths and report labels: figure_output() in rules/common.smk.

# light jobs (seconds, < 1 GB): run by the scheduling process, never submitted to a cluster
localrules:
    fig3a,
    fig3d,
    fig4cd,
    fig6ab,
    fig6cd,
    fig6ef,
    fig6gi,
    fig_lege,


FIGURE_SHELL = (
    "python -m analysis.figures {params.name} --results {input:q} --split {wildcards.split}"
    " {params.fraction} --metric {params.metric} --png {output.png:q} --pdf {output.pdf:q} --csv {output.csv:q} > {log:q} 2>&1"
)


rule fig3a:
    """Recurrent vs size-matched FF, 24 panels (readout mode x T), coloured by fraction (fig. 3a, 9, 10, 26)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig3a", "Fig. 3a: recurrent vs FF scatter", per_fraction=False),
    log:
        figure_log("fig3a", per_fraction=False),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig3a",
        fraction="",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig3d:
    """Performance vs T per readout mode with the FF average (fig. 3d-f, 11, 27)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig3d", "Fig. 3d-f: performance vs iterations"),
    log:
        figure_log("fig3d"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig3d",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig4cd:
    """Multi-path vs recurrent models: performance and average path length (fig. 4c-d, 12, 13)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig4cd", "Fig. 4c-d: multi-path vs recurrent"),
    log:
        figure_log("fig4cd"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig4cd",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig6ab:
    """Performance vs T for 1 and 2 recurrent layers (fig. 6a-b, 14, 15, 18-20)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig6ab", "Fig. 6a-b: performance vs iterations by layers"),
    log:
        figure_log("fig6ab"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig6ab",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig6cd:
    """Performance vs average path length per readout mode, FF at its length (fig. 6c-d, 16, 17, 21-23)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig6cd", "Fig. 6c-d: performance vs path length"),
    log:
        figure_log("fig6cd"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig6cd",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig6ef:
    """Path-length distributions of example types with similar average length (fig. 6e-f)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig6ef", "Fig. 6e-f: path-length distributions"),
    log:
        figure_log("fig6ef"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig6ef",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig6gi:
    """Removing 1, 2, 3 adjacent path lengths vs the full multi-path model (fig. 6g-i, 24, 25)."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("fig6gi", "Fig. 6g-i: path ablations (removed lengths)"),
    log:
        figure_log("fig6gi"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="fig6gi",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL


rule fig_lege:
    """Keeping only path lengths <= k or >= k vs the full multi-path model."""
    input:
        "results/{dataset}/results.csv",
    output:
        **figure_output("lege", "Fig. 6j (beyond the paper): keep lengths <= k / >= k"),
    log:
        figure_log("lege"),
    conda:
        "../envs/rcpb.yaml"
    params:
        name="lege",
        fraction="--fraction {fraction}",
        metric=dataset_metric,
    wildcard_constraints:
        **FIG_WILDCARDS,
    shell:
        FIGURE_SHELL
