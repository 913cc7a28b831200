# rcpb: recurrent vs feed-forward CNN models of early visual cortex.
#
#   snakemake -c2                                   the built-in example (config.yaml)
#   snakemake -n --configfile configs/paper_ns2250.yaml
#   snakemake --profile profiles/slurm --configfile configs/paper_imagenet8k.yaml
#
# The config is checked against schemas/config.schema.yaml, the grids are expanded into training
# configurations, grouped into training jobs of up to pack_size configurations each (packs,
# rcpb.grid), and every dataset file that exists is validated before any job runs. Everything below is light (no torch): it runs on every start.

from snakemake.utils import min_version

min_version("9.0")


# the built-in example, unless --configfile names another config (which then replaces it
# rather than being merged into it)
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/analysis_functions.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/report.smk"
include: "rules/search.smk"


rule all:
    default_target: True
    input:
        all_targets,
