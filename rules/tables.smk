# Tables (paper tables 1 and 3, plus paired statistics) from results/{dataset}/results.csv.
# One rule per table, all made by the loop below from TABLES: results/{dataset}/tables/{name}.csv
# (in the report, caption report/{name}.rst) and .md, by `python -m analysis.tables {name}`.
# Which tables a dataset gets depends on the families its grid trains (analysis/workflow.py).

# rule name, table name (analysis.tables, file names), report label, description
TABLES = [
    ("table1", "table1", "Table 1/3: recurrent vs feed-forward",
     "Paper table 1 / 3: size-matched and best FF, best (readout mode, T) and its gains, baselines, per split and fraction."),
    ("table_recurrent_vs_ff", "recurrent_vs_ff", "Recurrent vs FF, every readout mode and T",
     "Every (readout mode, T) cell vs the size-matched and the best FF with paired gains, t CIs and Wilcoxon tests."),
    ("table_multipath_vs_recurrent", "multipath_vs_recurrent", "Multi-path vs recurrent",
     "Multi-path models vs their recurrent twins (paired statistics, Pearson r)."),
    ("table_ablation_rm", "ablation_rm", "Ablations: removed path lengths",
     "Multi-path models with path lengths removed vs the unablated model."),
    ("table_ablation_lege", "ablation_lege", "Ablations: keep lengths <= k / >= k",
     "Multi-path models keeping only lengths <= k or >= k vs the unablated model."),
    ("table_controls", "controls", "Recurrent cells vs their controls",
     "Each recurrent cell type vs its size-matched, wider, deeper and unrolled-depth FF and its minimally unrolled twin, with parameter counts."),
    ("table_dynamics", "dynamics", "Time bins: recurrent vs FF",
     "Time-binned data: recurrent vs size-matched FF on the time-profile correlation, the mean over bins and each bin."),
]


for rule_name, table, title, description in TABLES:

    rule:
        name:
            rule_name
        input:
            results="results/{dataset}/results.csv",
            # the truth ceiling and drive-only predictor (header alone for recorded data)
            baselines="results/{dataset}/baselines.csv",
        output:
            csv=report(
                f"results/{{dataset}}/tables/{table}.csv",
                caption=f"../report/{table}.rst",
                category="{dataset}",
                subcategory="Tables",
                labels=_table_labels(table, title),
            ),
            md=f"results/{{dataset}}/tables/{table}.md",
        log:
            f"results/logs/analysis/{{dataset}}/tables/{table}.log",
        # light (seconds, < 1 GB): run by the scheduling process, never submitted to a cluster
        localrule: True
        conda:
            "../envs/rcpb.yaml"
        params:
            table=table,
            analysis=dataset_analysis_args,
        shell:
            "python -m analysis.tables {params.table} --results {input.results:q}"
            " --baselines {input.baselines:q} --csv {output.csv:q} --md {output.md:q}"
            " --dataset {wildcards.dataset:q} {params.analysis} > {log:q} 2>&1"

    workflow.get_rule(rule_name).docstring = description
