"""Folders of trained models -> the results table and the per-neuron table of a dataset.

A model folder (``results/{dataset}/{family}/{config_id}/``, written by ``rcpb train``) holds
``config.json`` (the resolved training configuration), ``metrics.json`` and ``paths.json``.
:func:`collect` reads them into two pandas tables:

- results: one row per model, columns :data:`CONFIG_COLUMNS` (configuration, with ``preprocess``
  flattened to ``crop``, ``downsample``, ``neuron_scale`` and ``allowed_lengths`` as a
  ``"1,2,4"`` string, empty when every length is kept), :data:`METRIC_COLUMNS`, and
  ``path_p1 .. path_p{max}`` (strength share of paths of length d; NaN where a model has no path
  of that length);
- neurons: one row per model and neuron: ``config_id``, ``neuron`` (index in the dataset's
  ``responses``), ``test_cc_norm2`` (NaN for a neuron without a defined noise ceiling),
  ``test_cc_raw``.

Every table and figure is derived from these tables, never from training logs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rcpb.checkpoint import atomic_path
from rcpb.errors import RcpbError

CONFIG_COLUMNS = [
    "config_id", "dataset", "family", "arch", "partner_id", "split_seed", "train_fraction",
    "channels", "act", "first_block_order", "loss", "model_seed", "blocks", "recurrent_layers",
    "iterations", "readout", "ablation", "allowed_lengths", "crop", "downsample", "neuron_scale",
    "input_size", "n_neurons",
]
METRIC_COLUMNS = [
    "test_cc_norm2", "test_cc_raw", "test_cc_raw2", "test_loss", "test_n_excluded",
    "val_cc_norm2", "val_loss", "n_params", "n_conv_params", "n_train", "wall_time_s",
    "best_step", "avg_path_length", "path_entropy",
]
NEURON_COLUMNS = ["config_id", "neuron", "test_cc_norm2", "test_cc_raw"]
# integer columns that are empty for some models (pandas nullable integers, not floats)
OPTIONAL_INT_COLUMNS = ["split_seed", "channels", "model_seed", "blocks", "recurrent_layers",
                        "iterations", "crop", "downsample", "input_size", "n_neurons",
                        "test_n_excluded", "n_params", "n_conv_params", "n_train", "best_step"]


def _number(value) -> float:
    """JSON number or null (how NaN is stored) -> float, NaN for null."""
    return math.nan if value is None else float(value)


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RcpbError(f"{path} is missing: the model in {path.parent} has not finished "
                        f"training; run the workflow (or 'rcpb train') for it first.") from None
    except json.JSONDecodeError as exc:
        raise RcpbError(f"{path} is not valid JSON ({exc}); delete {path.parent} and retrain "
                        f"that model.") from None


def read_model(folder: str | Path) -> tuple[dict, list[dict]]:
    """One model folder -> (results row, per-neuron rows)."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    metrics = _read_json(folder / "metrics.json")
    paths = _read_json(folder / "paths.json")

    row = {key: config.get(key) for key in CONFIG_COLUMNS}
    if not row["config_id"]:
        row["config_id"] = folder.name
    pre = config.get("preprocess") or {}
    row.update(crop=pre.get("crop"), downsample=pre.get("downsample"),
               neuron_scale=pre.get("neuron_scale"))
    allowed = config.get("allowed_lengths")
    row["allowed_lengths"] = "" if not allowed else ",".join(str(int(d)) for d in allowed)

    test, val = metrics.get("test", {}), metrics.get("val", {})
    row.update({
        "test_cc_norm2": _number(test.get("cc_norm2")),
        "test_cc_raw": _number(test.get("cc_raw")),
        "test_cc_raw2": _number(test.get("cc_raw2")),
        "test_loss": _number(test.get("loss")),
        "test_n_excluded": test.get("n_excluded"),
        "val_cc_norm2": _number(val.get("cc_norm2")),
        "val_loss": _number(val.get("loss")),
        "n_params": metrics.get("n_params"),
        "n_conv_params": metrics.get("n_conv_params"),
        "n_train": metrics.get("n_train"),
        "wall_time_s": _number(metrics.get("wall_time_s")),
        "best_step": metrics.get("best_step"),
        "avg_path_length": _number(paths.get("avg_path_length")),
        "path_entropy": _number(paths.get("path_entropy")),
    })
    for length, p in (paths.get("path_p") or {}).items():
        row[f"path_p{int(length)}"] = _number(p)

    norm2 = test.get("cc_norm2_per_neuron") or []
    raw = test.get("cc_raw_per_neuron") or []
    neurons = [{"config_id": row["config_id"], "neuron": i, "test_cc_norm2": _number(n),
                "test_cc_raw": _number(r)} for i, (n, r) in enumerate(zip(norm2, raw))]
    return row, neurons


def collect(folders) -> tuple:
    """Model folders -> (results DataFrame, neurons DataFrame); columns as in the module doc."""
    import pandas as pd

    rows, neuron_rows = [], []
    for folder in folders:
        row, neurons = read_model(folder)
        rows.append(row)
        neuron_rows.extend(neurons)
    lengths = sorted({int(k[len("path_p"):]) for row in rows for k in row
                      if k.startswith("path_p")})
    path_columns = [f"path_p{d}" for d in range(1, max(lengths) + 1)] if lengths else []
    results = pd.DataFrame(rows, columns=CONFIG_COLUMNS + METRIC_COLUMNS + path_columns)
    results = results.astype({c: "Int64" for c in OPTIONAL_INT_COLUMNS})
    neurons = pd.DataFrame(neuron_rows, columns=NEURON_COLUMNS)
    return results, neurons


def read_folder_list(path: str | Path) -> list[str]:
    """Model folders listed one per line in ``path`` (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RcpbError(f"cannot read the list of model folders {path}: {exc.strerror}.") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_tables(folders, results_csv: str | Path, neurons_csv: str | Path) -> tuple[int, int]:
    """Collect ``folders`` and write both CSV files atomically; returns (models, neuron rows)."""
    results, neurons = collect(folders)
    for table, path in ((results, results_csv), (neurons, neurons_csv)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    return len(results), len(neurons)
