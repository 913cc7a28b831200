"""``rcpb grid CONFIG``: the trainings a workflow config asks for.

    rcpb grid config.yaml                 number of trainings per dataset, family and split seed
    rcpb grid config.yaml --list          one config id per line (results/{dataset}/{family}/{id})
    rcpb grid config.yaml --show ID       the full training configuration of one id (JSON)
    rcpb grid config.yaml --cost [--benchmark FILE.json]
                                          estimated compute per dataset and family (rcpb.cost)

The config is checked against ``schemas/config.schema.yaml`` and expanded by :mod:`rcpb.grid`,
exactly as the workflow does. Partners that a family needs but its grid does not list are added
(and counted as ``added``). Ablation names that keep the same path lengths as another training
(an rm set, another le/ge name, or every length: the unablated multi-path model) are not trained;
they are counted as ``aliases`` (``--show`` prints one with ``trained_as``, the id that stands
for it; ``--list`` lists trainings only). Likewise a control (families ``ff_wider``,
``ff_deeper``, ``ff_depth``, ``min_unrolled``: one per recurrent configuration) that is the same
model as another training, e.g. an rcpb model's wider and deeper controls, which are its
size-matched FF model.
"""

from __future__ import annotations

import json
import sys

from rcpb.sizes import parse_size, size_text


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
    mode.add_argument("--cost", action="store_true",
                      help="estimated CPU- or GPU-hours per dataset and family (an upper bound: "
                           "every phase at max_steps), from --benchmark or a quick measurement")
    p.add_argument("--benchmark", metavar="FILE",
                   help="with --cost: figures measured by benchmarks/pack_throughput.py --json "
                        "FILE (on the target device); default: measure a few steps here")
    p.add_argument("--input-size", type=parse_size, metavar="N|HxW",
                   help="with --cost: model input size (px) for datasets whose file does not "
                        "exist yet")
    p.add_argument("--neurons", type=int, metavar="N",
                   help="with --cost: number of neurons for datasets whose file does not "
                        "exist yet")
    p.add_argument("--dataset", metavar="NAME", help="only this dataset")
    p.add_argument("--family", metavar="FAMILY", help="only this family")
    p.set_defaults(run=run)


def run(args) -> int:
    from rcpb import grid
    from rcpb.config import load_config
    from rcpb.errors import RcpbError

    if not args.cost and (args.benchmark or args.input_size or args.neurons):
        raise RcpbError("--benchmark, --input-size and --neurons go with --cost.")
    config = load_config(args.config)
    aliases: dict = {}
    expanded = grid.expand(config, aliases=aliases)
    if args.dataset is not None:
        if args.dataset not in expanded:
            raise RcpbError(f"--dataset {args.dataset}: not in {args.config} (datasets: "
                            f"{', '.join(expanded)}).")
        expanded = {args.dataset: expanded[args.dataset]}
        aliases = {args.dataset: aliases[args.dataset]}
    if args.family is not None:
        if args.family not in grid.FAMILIES:
            raise RcpbError(f"--family {args.family}: use one of {', '.join(grid.FAMILIES)}.")
        expanded = {k: [c for c in v if c["family"] == args.family] for k, v in expanded.items()}
        aliases = {k: [a for a in v if a["family"] == args.family] for k, v in aliases.items()}

    if args.show:
        for configs in expanded.values():
            for cfg in configs:
                if cfg["config_id"] == args.show:
                    print(json.dumps(grid.training_config(cfg), indent=2, sort_keys=True))
                    return 0
        for shared in aliases.values():
            for alias in shared:
                if alias["config_id"] == args.show:
                    why = ("is the same model" if alias["family"] in grid.CONTROL_FAMILIES
                           else "keeps the same path lengths")
                    print(f"{args.show} is not trained: {alias['trained_as']} {why} and "
                          f"stands for it (trained_as).", file=sys.stderr)
                    print(json.dumps(alias, indent=2, sort_keys=True))
                    return 0
        raise RcpbError(f"--show {args.show}: no configuration with this id in {args.config}.")
    if args.cost:
        _print(cost_report(config, expanded, args))
        return 0
    if args.list:
        _print("\n".join(f"{name}/{cfg['family']}/{cfg['config_id']}"
                         for name, configs in expanded.items() for cfg in configs))
        return 0
    _print(format_counts(expanded, aliases))
    return 0


def cost_report(config: dict, expanded: dict, args) -> str:
    """The text of ``--cost`` (see :mod:`rcpb.cost` for the model and its units)."""
    from rcpb import cost

    datasets = config.get("datasets") or {}
    shapes = {name: cost.dataset_shape(name, datasets[name], args.input_size, args.neurons)
              for name in expanded}
    device = config.get("device") or "cpu"
    if args.benchmark:
        bench = cost.load_benchmark(args.benchmark)
    else:
        bench = cost.measure_here(cost.quick_structures(expanded, shapes), device,
                                  int(config.get("threads") or 1))
    size, slots, source = cost.pack_settings(config)
    from rcpb.pack.run import default_engine

    engine = default_engine(bench.device)   # the figures are those of the measured device
    lines = cost.estimate(expanded, shapes, bench, size, slots, engine)
    data = "".join(f"\n  {name}: {size_text(s.input_size)} px, {s.n_neurons} neurons"
                   + (f", {s.n_train_full} training stimuli (100 %)" if s.n_train_full else "")
                   + f" ({s.source})" for name, s in shapes.items())
    return (f"Estimated compute of {args.config} (device {device}). Data:{data}\n\n"
            + cost.format_estimate(lines, bench, device, size, slots, source, engine))


def _print(text: str) -> None:
    """Print, tolerating a reader that stops early (``rcpb grid ... --list | head``)."""
    import os
    import sys

    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def format_counts(expanded: dict, aliases: dict | None = None) -> str:
    """Table of trainings per dataset, family and split seed, with totals.

    ``aliases`` (dataset -> aliases, :func:`rcpb.grid.expand`): per row, the ablation names that
    are not trained because another training keeps the same path lengths, and the controls that
    are not trained because another training is the same model.
    """
    from rcpb import grid

    aliases = aliases or {}
    lines = [f"{'dataset':<16} {'family':<14} {'split_seed':>10} {'trainings':>10} {'added':>7}"
             f" {'aliases':>8}"]
    total = total_aliases = 0
    order = {f: i for i, f in enumerate(grid.FAMILIES)}
    for name, configs in expanded.items():
        counts = grid.count(configs)
        shared = grid.count_aliases(aliases.get(name) or [])
        for key in shared:  # a family whose every name is an alias has no training
            counts.setdefault(key, {"total": 0, "added": 0})
        for (family, split), n in sorted(counts.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
            lines.append(f"{name:<16} {family:<14} {split:>10} {n['total']:>10,} "
                         f"{n['added']:>7,} {shared.get((family, split), 0):>8,}")
        n_aliases = len(aliases.get(name) or [])
        lines.append(f"{name:<16} {'all':<14} {'':>10} {len(configs):>10,} {'':>7} "
                     f"{n_aliases:>8,}")
        total += len(configs)
        total_aliases += n_aliases
    if len(expanded) > 1:
        lines.append(f"{'all':<16} {'all':<14} {'':>10} {total:>10,} {'':>7} "
                     f"{total_aliases:>8,}")
    lines.append("(added: partners a family needs that its grid does not list)")
    lines.append("(aliases: ablation names not trained because they keep the same path lengths "
                 "as another training:\n an rm set, another le/ge name, or every length = the "
                 "unablated multi-path model; results.csv copies its row)")
    if any(f in grid.CONTROL_FAMILIES for rows in aliases.values() for f in
           (a["family"] for a in rows)):
        lines.append("(control aliases: controls that are the same model as another training, "
                     "e.g. an rcpb model's wider\n and deeper controls = its size-matched FF "
                     "model; each keeps its partner_id, results.csv copies the row)")
    return "\n".join(lines)
