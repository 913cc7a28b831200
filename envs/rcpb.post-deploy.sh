#!/usr/bin/env bash
# Runs once inside the new conda environment (envs/rcpb.yaml): installs rcpb from the checkout
# Snakemake was started in (the repository root, where the Snakefile is), without touching the
# pinned dependencies.
set -euo pipefail
python -m pip install --no-deps --no-build-isolation --editable .
