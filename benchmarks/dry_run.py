"""Time `snakemake -n` on the paper configs: wall time and peak memory of each run.

    python benchmarks/dry_run.py                      # both paper configs, 3 runs each
    python benchmarks/dry_run.py --repeats 5 --quiet  # with -q (job counts only)
    python benchmarks/dry_run.py configs/paper_ns2250.yaml

Runs from the repository root, where the Snakefile is; nothing is written except Snakemake's
own .snakemake/ bookkeeping. Prints one line per run and the median per config.
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from processes import run_measured  # benchmarks/processes.py (this script's folder)

ROOT = Path(__file__).resolve().parent.parent
PAPER_CONFIGS = ["configs/paper_ns2250.yaml", "configs/paper_imagenet8k.yaml"]


def snakemake_command() -> list[str]:
    """The snakemake of this interpreter's environment, else the one on PATH."""
    local = Path(sys.executable).with_name("snakemake")
    if local.exists():
        return [str(local)]
    found = shutil.which("snakemake")
    if found is None:
        sys.exit("snakemake not found: install the package (pip install -e .) first")
    return [found]


def time_one(command: list[str]) -> tuple[float, float]:
    """Run `command` in ROOT; return (wall seconds, peak resident memory in MB)."""
    wall, usage, code, stderr = run_measured(command, ROOT, keep_stdout=False)
    if code != 0:
        sys.exit(f"{' '.join(command)} failed ({code}):\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=PAPER_CONFIGS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quiet", action="store_true", help="pass -q (no per-job listing)")
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}")
    for config in args.configs:
        command = snakemake_command() + ["-n", "--configfile", config] + (["-q"] if args.quiet else [])
        walls = []
        for i in range(args.repeats):
            wall, rss = time_one(command)
            walls.append(wall)
            print(f"{config}  run {i + 1}: {wall:6.1f} s  peak {rss:5.0f} MB", flush=True)
        print(f"{config}  median of {args.repeats}: {statistics.median(walls):.1f} s")


if __name__ == "__main__":
    main()
