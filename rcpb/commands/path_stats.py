"""``rcpb paths MODEL_DIR``: path statistics of a trained model (SPEC 6).

Reads ``MODEL_DIR/config.json`` (the resolved config written by ``rcpb train``) and
``MODEL_DIR/best.pt`` (its state dict), rebuilds the model with
:func:`rcpb.models.build`, loads the weights and writes ``MODEL_DIR/paths.json``
atomically: :func:`rcpb.path_stats.path_stats` of the model (average path length in convs,
entropy in nats, normalised and unnormalised strength per length). No data needed.
``--components`` also prints every component's strength.
"""

from __future__ import annotations

import json
from pathlib import Path

from rcpb.errors import RcpbError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "paths",
        help="path-length distribution of a trained model -> MODEL_DIR/paths.json",
        description="Compute the path-length distribution, average path length and path "
                    "entropy of the trained model in MODEL_DIR (config.json + best.pt) and "
                    "write them to MODEL_DIR/paths.json.",
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="folder written by `rcpb train` (holds config.json and best.pt)")
    parser.add_argument("--components", action="store_true",
                        help="also print the strength of every conv and BN on a path")
    parser.set_defaults(run=run)


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise RcpbError(f"{path}: not found; MODEL_DIR must be a folder written by `rcpb train`.")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as exc:
        raise RcpbError(f"{path}: not valid JSON ({exc}); rerun `rcpb train` for this model.")
    if not isinstance(config, dict):
        raise RcpbError(f"{path}: expected a JSON object (the training config).")
    return config


def load_model(model_dir: str | Path):
    """The trained model of ``model_dir``: built from config.json, weights from best.pt."""
    from rcpb import models
    from rcpb.atomic_files import load_torch_file

    model_dir = Path(model_dir)
    config = _read_config(model_dir / "config.json")
    weights = model_dir / "best.pt"
    if not weights.is_file():
        raise RcpbError(f"{weights}: not found; the model in {model_dir} has not finished "
                        "training (rerun `rcpb train`).")
    state = load_torch_file(weights, fix=f"delete {model_dir} and rerun its target: 'rcpb train "
                                         f"--from-grid {model_dir}' retrains it",
                            map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    model = models.build(config)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise RcpbError(f"{weights}: does not match the model described by "
                        f"{model_dir / 'config.json'} ({exc}); rerun `rcpb train`.")
    model.eval()
    return model


def run(args) -> int:
    from rcpb import path_stats
    from rcpb.atomic_files import write_json_atomic

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise RcpbError(f"{model_dir}: no such folder; pass a folder written by `rcpb train`.")
    model = load_model(model_dir)
    stats = path_stats.path_stats(model)
    write_json_atomic(model_dir / "paths.json", stats)
    if args.components:
        for name, value in path_stats.component_strengths(model).items():
            print(f"{name}\t{value:.6g}")
    dist = ", ".join(f"{d}: {p:.3f}" for d, p in stats["path_p"].items())
    print(f"{model_dir / 'paths.json'}: average path length {stats['avg_path_length']:.3f}, "
          f"entropy {stats['path_entropy']:.3f} nats, p(length) {{{dist}}}")
    return 0
