# Figures (paper figures 3, 4, 6 and appendix D-H) from results/{dataset}/results.csv.
# One rule per figure, all made by the loop below from FIGURES, with wildcards dataset, split
# (split seed) and, for most, fraction (training fraction in percent); each writes PNG, PDF and
# the numbers drawn as CSV (PNG and CSV in the report, caption report/{name}.rst), by
# `python -m analysis.figures {name}`. One figure can be rebuilt alone, e.g.
# `snakemake results/ns2250/figures/split0/frac100/fig3d.png`; appendix versions are the same
# rules with other wildcards. Which figures a dataset gets: analysis/workflow.py.

# rule name, figure name (analysis.figures, file names), report subcategory, one file per
# training fraction (else one per split, all fractions drawn), description
FIGURES = [
    ("fig3a", "fig3a", "Fig. 3a: recurrent vs FF scatter", False,
     "Recurrent vs size-matched FF, 24 panels (readout mode x T), coloured by fraction (fig. 3a, 9, 10, 26)."),
    ("fig3d", "fig3d", "Fig. 3d-f: performance vs iterations", True,
     "Performance vs T per readout mode with the size-matched and best FF, every FF depth and the baselines (fig. 3d-f, 11, 27)."),
    ("fig4cd", "fig4cd", "Fig. 4c-d: multi-path vs recurrent", True,
     "Multi-path vs recurrent models: performance and average path length (fig. 4c-d, 12, 13)."),
    ("fig6ab", "fig6ab", "Fig. 6a-b: performance vs iterations by layers", True,
     "Performance vs T for 1 and 2 recurrent layers (fig. 6a-b, 14, 15, 18-20)."),
    ("fig6cd", "fig6cd", "Fig. 6c-d: performance vs path length", True,
     "Performance vs average path length per readout mode, FF at its length (fig. 6c-d, 16, 17, 21-23)."),
    ("fig6ef", "fig6ef", "Fig. 6e-f: path-length distributions", True,
     "Path-length distributions of example types with similar average length (fig. 6e-f)."),
    ("fig6gi", "fig6gi", "Fig. 6g-i: path ablations (removed lengths)", True,
     "Removing 1, 2, 3 adjacent path lengths vs the full multi-path model (fig. 6g-i, 24, 25)."),
    ("fig_lege", "lege", "Fig. 6j (beyond the paper): keep lengths <= k / >= k", True,
     "Keeping only path lengths <= k or >= k vs the full multi-path model."),
    ("fig_neurons", "neurons", "Per neuron (beyond the paper): recurrent vs FF", True,
     "Per neuron: the validation-best recurrent cell vs its size-matched FF, against the noise "
     "ceiling, with the share of neurons improved."),
    ("fig_cells_controls", "cells_controls", "Recurrent cells vs their controls", True,
     "Each recurrent cell type vs its size-matched, wider and deeper FF and its minimally "
     "unrolled twin: paired effects with 95 % CIs and parameter counts (Nayebi et al. 2018)."),
    ("fig_dynamics", "dynamics", "Time bins: recurrent vs FF", True,
     "Time-binned data: performance per bin, the population's mean temporal profile (truth vs "
     "models) and the paired effects on the time profile."),
]

# figures drawn from the per-neuron table too (input `neurons`, passed as --neurons); only
# these depend on neurons.csv, so the others can be built from a results table alone
WITH_NEURONS = ("neurons",)


def _neurons_option(per_neuron):
    """Param function: '--neurons <input.neurons, quoted>' for a per-neuron figure, else ''
    (a param, not a shell expression: the shell of these rules is evaluated at run time, after
    the loop has moved on)."""
    import shlex

    def option(wildcards, input):
        return f"--neurons {shlex.quote(input.neurons)}" if per_neuron else ""

    return option


for rule_name, figure, title, per_fraction, description in FIGURES:
    folder = "split{split}/frac{fraction}" if per_fraction else "split{split}"
    stem = f"results/{{dataset}}/figures/{folder}/{figure}"
    in_report = dict(caption=f"../report/{figure}.rst", category="{dataset}", subcategory=title)
    per_neuron = figure in WITH_NEURONS
    neurons_input = {"neurons": "results/{dataset}/neurons.csv"} if per_neuron else {}

    rule:
        name:
            rule_name
        input:
            results="results/{dataset}/results.csv",
            # reference lines of the recurrent-vs-FF figures (header alone for recorded data)
            baselines="results/{dataset}/baselines.csv",
            # per-neuron values (results/{dataset}/neurons.csv) of the per-neuron figure
            **neurons_input,
        output:
            png=report(
                f"{stem}.png",
                labels=_figure_labels(figure, title, per_fraction, "figure"),
                **in_report,
            ),
            pdf=f"{stem}.pdf",
            csv=report(
                f"{stem}.csv",
                labels=_figure_labels(figure, title, per_fraction, "numbers (CSV)"),
                **in_report,
            ),
        log:
            f"results/logs/analysis/{{dataset}}/figures/{folder}/{figure}.log",
        # light (seconds, < 1 GB): run by the scheduling process, never submitted to a cluster
        localrule: True
        conda:
            "../envs/rcpb.yaml"
        params:
            figure=figure,
            fraction="--fraction {fraction}" if per_fraction else "",
            metric=dataset_metric,
            neurons=_neurons_option(per_neuron),
        shell:
            "python -m analysis.figures {params.figure} --results {input.results:q}"
            " --baselines {input.baselines:q} --split {wildcards.split} {params.neurons}"
            " {params.fraction} --metric {params.metric} --png {output.png:q} --pdf {output.pdf:q}"
            " --csv {output.csv:q} > {log:q} 2>&1"

    workflow.get_rule(rule_name).docstring = description
