"""``rcpb aggregate``: the folders of trained models -> results.csv and neurons.csv.

    rcpb aggregate FOLDER ... --results results.csv --neurons neurons.csv
    rcpb aggregate --models models.txt --results results.csv --neurons neurons.csv
    rcpb aggregate --models models.txt --aliases aliases.json --results ... --neurons ...

Each FOLDER holds ``config.json``, ``metrics.json`` and ``paths.json`` of one model (written by
``rcpb train``); ``--models`` names a file listing the folders one per line (the workflow uses it,
the list is too long for a command line). ``--aliases`` names a JSON list of the dataset's
aliases (ablation names not trained because another training keeps the same path lengths,
:mod:`rcpb.grid`; the workflow writes ``results/{dataset}/aliases.json``): each gets a row copied
from that training, with ``trained_as`` naming it. Columns: see :mod:`analysis.aggregate`.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="collect trained models into results.csv and neurons.csv",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="model folders")
    p.add_argument("--models", metavar="FILE", help="file listing model folders, one per line")
    p.add_argument("--aliases", metavar="JSON",
                   help="aliases of the dataset (ablation names trained as another model); "
                        "each gets a row copied from that model")
    p.add_argument("--results", required=True, metavar="CSV", help="output: one row per model")
    p.add_argument("--neurons", required=True, metavar="CSV",
                   help="output: one row per model and neuron")
    p.set_defaults(run=run)


def run(args) -> int:
    from analysis.aggregate import read_aliases, read_folder_list, write_tables
    from rcpb.errors import RcpbError

    folders = list(args.folders)
    if args.models:
        folders += read_folder_list(args.models)
    if not folders:
        raise RcpbError("no model folders given; pass FOLDER arguments or --models FILE.")
    aliases = read_aliases(args.aliases) if args.aliases else []
    n_rows, n_neuron_rows = write_tables(folders, args.results, args.neurons, aliases)
    print(f"rcpb aggregate: {len(folders)} models + {n_rows - len(folders)} aliases -> "
          f"{args.results}; {n_neuron_rows} neuron rows -> {args.neurons}", file=sys.stderr)
    return 0
