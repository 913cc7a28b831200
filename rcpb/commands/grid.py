"""``rcpb grid CONFIG``: the trainings a workflow config asks for.

    rcpb grid config.yaml                 number of trainings per dataset, family and split seed
    rcpb grid config.yaml --list          one config id per line (results/{dataset}/{family}/{id})
    rcpb grid config.yaml --show ID       the full training configuration of one id (JSON)

The config is checked against ``schemas/config.schema.yaml`` and expanded by :mod:`rcpb.grid`,
exactly as the workflow does. Partners that a family needs but its grid does not list are added
(and counted as ``added``).
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "grid",
        help="count or list the trainings of a workflow config",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("config", metavar="CONFIG", help="workflow config (YAML), e.g. config.yaml")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--count", action="store_true",
                      help="trainings per dataset, family and split seed (the default)")
    mode.add_argument("--list", action="store_true", help="print dataset/family/config_id lines")
    mode.add_argument("--show", metavar="ID", help="print the configuration of this config id")
    p.add_argument("--dataset", metavar="NAME", help="only this dataset")
    p.add_argument("--family", metavar="FAMILY", help="only this family")
    p.set_defaults(run=run)


def run(args) -> int:
    from rcpb import grid
    from rcpb.errors import RcpbError

    config = grid.load_config(args.config)
    expanded = grid.expand(config)
    if args.dataset is not None:
        if args.dataset not in expanded:
            raise RcpbError(f"--dataset {args.dataset}: not in {args.config} (datasets: "
                            f"{', '.join(expanded)}).")
        expanded = {args.dataset: expanded[args.dataset]}
    if args.family is not None:
        if args.family not in grid.FAMILIES:
            raise RcpbError(f"--family {args.family}: use one of {', '.join(grid.FAMILIES)}.")
        expanded = {k: [c for c in v if c["family"] == args.family] for k, v in expanded.items()}

    if args.show:
        for configs in expanded.values():
            for cfg in configs:
                if cfg["config_id"] == args.show:
                    print(json.dumps(grid.training_config(cfg), indent=2, sort_keys=True))
                    return 0
        raise RcpbError(f"--show {args.show}: no configuration with this id in {args.config}.")
    if args.list:
        _print("\n".join(f"{name}/{cfg['family']}/{cfg['config_id']}"
                         for name, configs in expanded.items() for cfg in configs))
        return 0
    _print(format_counts(expanded))
    return 0


def _print(text: str) -> None:
    """Print, tolerating a reader that stops early (``rcpb grid ... --list | head``)."""
    import os
    import sys

    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def format_counts(expanded: dict) -> str:
    """Table of trainings per dataset, family and split seed, with totals."""
    from rcpb import grid

    lines = [f"{'dataset':<16} {'family':<14} {'split_seed':>10} {'trainings':>10} {'added':>7}"]
    total = 0
    for name, configs in expanded.items():
        counts = grid.count(configs)
        order = {f: i for i, f in enumerate(grid.FAMILIES)}
        for (family, split), n in sorted(counts.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
            lines.append(f"{name:<16} {family:<14} {split:>10} {n['total']:>10,} "
                         f"{n['added']:>7,}")
        lines.append(f"{name:<16} {'all':<14} {'':>10} {len(configs):>10,}")
        total += len(configs)
    if len(expanded) > 1:
        lines.append(f"{'all':<16} {'all':<14} {'':>10} {total:>10,}")
    lines.append("(added: partners a family needs that its grid does not list)")
    return "\n".join(lines)
