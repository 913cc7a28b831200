"""``rcpb search``: an Optuna TPE search over recurrent cells, then the best cell's comparison.

    rcpb search CONFIG --dataset NAME [--trials N] [--seeds S] [--study-dir DIR]
        [--batch K] [--sampler-seed 0] [--device cpu|cuda] [--threads T] [--no-compare]

CONFIG is the workflow config (e.g. config.yaml); NAME one of its datasets. Each trial trains
one recurrent model (model_seed 0) with the config's training budget and is judged by its
validation performance; after N finished trials the best cell is retrained with S seeds next to
the RCPB baseline and the size-matched FF model, and compared with them on the test stimuli
(paired statistics). DIR (default ``results/search/NAME``) holds the study (``study.log``,
Optuna's journal storage), the trained models and the tables; rerunning the same command
resumes a killed search (finished trials are not retrained). The search space and its reasons:
docs/search.md; the files: :mod:`rcpb.search`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DEFAULT_TRIALS = 20
DEFAULT_SEEDS = 6


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="search recurrent cells with Optuna (TPE) on validation data, compare the best",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("config", metavar="CONFIG",
                   help="workflow config (YAML), e.g. config.yaml, or the config as a JSON "
                        "string starting with '{' (what the workflow's rule passes)")
    p.add_argument("--dataset", required=True, metavar="NAME", help="the dataset searched on")
    p.add_argument("--trials", type=int, default=None,
                   help=f"finished trials to reach (default: the config's search.trials, "
                        f"else {DEFAULT_TRIALS})")
    p.add_argument("--seeds", type=int, default=None,
                   help=f"seeds of the final comparison (default: the config's search.seeds, "
                        f"else {DEFAULT_SEEDS})")
    p.add_argument("--study-dir", metavar="DIR", default=None,
                   help="study folder (default results/search/NAME)")
    p.add_argument("--batch", type=int, default=1,
                   help="trials asked at once and trained as one pack (default 1)")
    p.add_argument("--sampler-seed", type=int, default=None,
                   help="seed of the TPE sampler (default: the config's search.sampler_seed, "
                        "else 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="overrides the config's 'device'")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the config's 'threads')")
    p.add_argument("--no-compare", action="store_true",
                   help="stop after the trials (no retraining with seeds, no comparison)")
    p.set_defaults(run=run)


def run(args) -> int:
    from rcpb import search
    from rcpb.errors import RcpbError

    config = _load(args.config)
    settings = config.get("search") or {}
    # numbers of the config's search key may be text (Snakemake's --config passes them so)
    trials = args.trials if args.trials is not None else int(settings.get("trials",
                                                                           DEFAULT_TRIALS))
    seeds = args.seeds if args.seeds is not None else int(settings.get("seeds", DEFAULT_SEEDS))
    sampler_seed = (args.sampler_seed if args.sampler_seed is not None
                    else int(settings.get("sampler_seed", 0)))
    device = args.device or config.get("device")
    threads = args.threads or config.get("threads")
    study_dir = Path(args.study_dir or f"results/search/{args.dataset}")
    if seeds < 1:
        raise RcpbError(f"--seeds {seeds}: must be >= 1")
    start = time.perf_counter()
    with search.study_lock(study_dir):
        study = search.run_search(config, args.dataset, trials, study_dir,
                                  sampler_seed=sampler_seed, batch=args.batch, device=device,
                                  threads=threads)
        print(f"rcpb search: {trials} trial(s) finished ({time.perf_counter() - start:.0f} s); "
              f"trials in {study_dir / 'trials.csv'}", file=sys.stderr)
        if args.no_compare:
            return 0
        search.run_comparison(config, args.dataset, study, study_dir, seeds, device=device,
                              threads=threads)
    print(f"rcpb search: done in {time.perf_counter() - start:.0f} s; "
          f"{study_dir / 'comparison.md'}", file=sys.stderr)
    return 0


def _load(text: str) -> dict:
    """The workflow config from a YAML file or a JSON string starting with ``{``, validated
    against the schema (defaults filled in)."""
    import json

    from rcpb.config import load_config, validate_config
    from rcpb.errors import RcpbError

    if not text.lstrip().startswith("{"):
        return load_config(text)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RcpbError(f"the CONFIG argument is not valid JSON ({exc})") from None
    validate_config(config, source="the CONFIG argument")
    return config
