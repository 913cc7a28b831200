"""The ``rcpb`` command line: ``rcpb <command> ...``.

Each command lives in its own module under :mod:`rcpb.commands` with two
functions, ``register(subparsers)`` and ``run(args)``. Command modules import
heavy dependencies (torch) inside ``run`` so that ``rcpb --help`` and the
light commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rcpb.errors import RcpbError

# command name -> module under rcpb.commands
COMMANDS = {
    "data": "rcpb.commands.data",
    "train": "rcpb.commands.train",
    "paths": "rcpb.commands.path_stats",
    "grid": "rcpb.commands.grid",
    "search": "rcpb.commands.search",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcpb",
        description="Recurrent vs feed-forward CNN models of early visual cortex.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # command not available in this build
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except RcpbError as exc:
        print(f"rcpb: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
