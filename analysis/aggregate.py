"""Folders of trained models -> the results table and the per-neuron table of a dataset.

    python -m analysis.aggregate FOLDER ... --results results.csv --neurons neurons.csv
    python -m analysis.aggregate --models models.txt [--aliases aliases.json] --results ... --neurons ...
        [--failed failed.csv]

``--models`` names a file listing the folders one per line (the workflow writes
``results/{dataset}/models.txt``: the list is too long for a command line); ``--aliases`` names
the JSON list of the dataset's aliases (``results/{dataset}/aliases.json``, see below).

A model folder (``results/{dataset}/{family}/{config_id}/``, written by ``rcpb train``) holds
``config.json`` (the resolved training configuration), ``metrics.json`` and ``paths.json``.
:func:`collect` reads them into two pandas tables:

- results: one row per model, columns :data:`CONFIG_COLUMNS` (configuration, with ``preprocess``
  flattened to ``crop``, ``downsample``, ``neuron_scale``; ``crop`` and ``input_size`` as text,
  ``"36"`` for a square and ``"36x64"`` (rows x columns) otherwise (rcpb.sizes); and
  ``allowed_lengths`` as a ``"1,2,4"`` string, empty when every length is kept; ``cell`` the
  recurrent cell, ``rcpb`` for a recurrent or multi-path model whose config has no ``cell``,
  empty for FF models), :data:`METRIC_COLUMNS`, and
  ``path_p1 .. path_p{max}`` (strength share of paths of length d; NaN where a model has no path
  of that length); ``steps``, ``phases`` and ``phases_stopped_early`` (phases that ended on
  patience, before their ``max_steps``) say whether the training converged: ``best_step ==
  steps`` means the best checkpoint was the last step;
- neurons: one row per model and neuron: ``config_id``, ``neuron`` (index in the dataset's
  ``responses``), ``test_cc_norm2`` (NaN for a neuron without a defined noise ceiling),
  ``test_cc_raw``, ``test_cc_max`` (the noise ceiling used for the neuron on the test split,
  ``metrics.json`` ``test.cc_max_per_neuron``; NaN where undefined or not recorded).

Aliases (:mod:`rcpb.grid`): an ablation name that keeps the same path lengths as another
training (an rm set, another le/ge name, or every length: the unablated multi-path model) is not
trained. Given the dataset's aliases (``aliases.json``, written by the workflow), each gets a
row that copies its training's row (metrics, path statistics: the same allowed lengths give the
same model) with the alias's own ``config_id``, ``family``, ``ablation``, ``allowed_lengths`` and
``partner_id``, and the last column ``trained_as`` = the config id of that training (empty for
trained models); its neuron rows are copied the same way.

Status: the results table has the columns :data:`STATUS_COLUMNS` right after the
configuration: ``status`` is ``"ok"`` for a trained model and ``"failed"`` for a failed training,
``failure`` the reason (empty when ok).

Failed trainings: a training that diverged (its loss or parameters became NaN or infinite) is
finished without a model; its ``metrics.json`` holds the key ``"failed"`` (the reason,
:data:`FAILED_KEY`) and no metrics. It gets a results row with its configuration, ``status``
``"failed"``, the reason in ``failure`` and every metric and path column empty (NaN), and no
neuron rows; so does every alias trained as it (its reason: ``trained as <id>, which failed:
...``). :func:`collect` also lists them in a third table (``failed``: ``config_id``, ``family``,
``reason``), and ``--failed CSV`` writes that table (a header alone when no training failed).
Each failed training is also reported on stderr, one warning line each. The analysis reads
only the rows with status ``ok`` (analysis.load.normalise, which counts the others); a model
whose partner failed is left out of the paired statistics.

A ``metrics.json``, ``config.json`` or ``paths.json`` that is truncated or otherwise not valid
JSON is an error naming the file and the fix (delete the model folder and retrain it).

Every table and figure is derived from these tables, never from training logs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rcpb.atomic_files import atomic_path, read_json
from rcpb.errors import RcpbError
from rcpb.metrics import BIN_COLUMNS, bin_columns
from rcpb.sizes import size_text

CONFIG_COLUMNS = [
    "config_id", "dataset", "family", "arch", "partner_id", "split_seed", "train_fraction",
    "channels", "act", "first_block_order", "loss", "model_seed", "blocks", "recurrent_layers",
    "iterations", "readout", "cell", "ablation", "allowed_lengths", "crop", "downsample",
    "neuron_scale",
    "input_size", "n_neurons",
]
METRIC_COLUMNS = [
    "test_cc_norm2", "test_cc_raw", "test_cc_raw2", "test_frac_negative_cc_raw", "test_loss",
    "test_n_excluded", "val_cc_norm2", "val_cc_raw", "val_cc_raw2", "val_frac_negative_cc_raw",
    "val_loss", "val_n_excluded", "split_source", "ceiling_stimuli", "n_params",
    "n_conv_params", "n_train", "wall_time_s", "best_step", "steps", "phases",
    "phases_stopped_early", "avg_path_length", "path_entropy",
]
NEURON_COLUMNS = ["config_id", "neuron", "test_cc_norm2", "test_cc_raw", "test_cc_max"]
FAILED_COLUMNS = ["config_id", "family", "reason"]
#: status of a results row (``status``) and why a training failed (``failure``, empty when ok)
STATUS_COLUMNS = ["status", "failure"]
STATUS_OK, STATUS_FAILED = "ok", "failed"
#: the key of a failed training's metrics.json (rcpb.pack.run.FAILED_KEY): the reason
FAILED_KEY = "failed"
# integer columns that are empty for some models (pandas nullable integers, not floats)
OPTIONAL_INT_COLUMNS = ["split_seed", "channels", "model_seed", "blocks", "recurrent_layers",
                        "iterations", "downsample", "n_neurons",
                        "test_n_excluded", "val_n_excluded", "n_params", "n_conv_params",
                        "n_train", "best_step", "steps", "phases", "phases_stopped_early"]


def _size(value):
    """A size column's text: ``"36"`` (square) or ``"36x64"`` (rows x columns); None if absent."""
    return None if value is None else size_text(value)


def _number(value) -> float:
    """JSON number or null (how NaN is stored) -> float, NaN for null."""
    return math.nan if value is None else float(value)


def _read_json(path: Path) -> dict:
    """A JSON file of a model folder; RcpbError naming it when it is missing, or truncated or
    corrupted (with the fix: delete the folder and retrain that model)."""
    if not path.exists():
        raise RcpbError(f"{path} is missing: the model in {path.parent} has not finished "
                        f"training; run the workflow (or 'rcpb train') for it first.")
    return read_json(path, fix=f"delete {path.parent} and rerun its target: "
                                    f"'rcpb train --from-grid {path.parent}' retrains it")


def read_failure(folder: str | Path, metrics: dict | None = None) -> dict | None:
    """For a failed training (``metrics.json`` with :data:`FAILED_KEY`): its row of the failed
    table (``config_id``, ``family``, ``reason``); None for any other folder. ``metrics``: the
    folder's metrics.json when read already."""
    folder = Path(folder)
    if metrics is None:
        metrics = _read_json(folder / "metrics.json")
    if FAILED_KEY not in metrics:
        return None
    try:
        config = _read_json(folder / "config.json")
    except RcpbError:
        config = {}
    reason = str(metrics[FAILED_KEY])
    if metrics.get("failed_at_step") is not None:
        reason += f" (step {metrics['failed_at_step']})"
    return {"config_id": config.get("config_id") or folder.name,
            "family": config.get("family") or folder.parent.name, "reason": reason}


def read_model(folder: str | Path, metrics: dict | None = None) -> tuple[dict, object]:
    """One model folder -> (results row, its neuron rows: a DataFrame with
    :data:`NEURON_COLUMNS`); ``metrics``: its metrics.json when read already.

    A ``metrics.json`` without ``test.ceiling_stimuli`` was written before the noise ceiling
    described the target actually used (rcpb.metrics): its cc_norm2 is on another scale, so it
    is an error naming the folder rather than a row mixed into the tables.
    """
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if metrics is None:
        metrics = _read_json(folder / "metrics.json")
    if FAILED_KEY in metrics:
        raise RcpbError(f"{folder} holds a failed training ({metrics[FAILED_KEY]}): it has no "
                        "results row (collect lists it in its failed table).")
    paths = _read_json(folder / "paths.json")
    if "ceiling_stimuli" not in (metrics.get("test") or {}):
        raise RcpbError(
            f"{folder / 'metrics.json'} was written by an earlier rcpb whose noise ceiling took "
            "the first K trials of all stimuli (cc_norm2 on another scale than today's); delete "
            f"{folder} (and any other such folder) and rerun the workflow to retrain it.")

    row = _config_row(folder, config)
    row.update({"status": STATUS_OK, "failure": ""})

    test, val = metrics.get("test", {}), metrics.get("val", {})
    row.update({
        "test_cc_norm2": _number(test.get("cc_norm2")),
        "test_cc_raw": _number(test.get("cc_raw")),
        "test_cc_raw2": _number(test.get("cc_raw2")),
        "test_frac_negative_cc_raw": _number(test.get("frac_negative_cc_raw")),
        "test_loss": _number(test.get("loss")),
        "test_n_excluded": test.get("n_excluded"),
        "val_cc_norm2": _number(val.get("cc_norm2")),
        "val_cc_raw": _number(val.get("cc_raw")),
        "val_cc_raw2": _number(val.get("cc_raw2")),
        "val_frac_negative_cc_raw": _number(val.get("frac_negative_cc_raw")),
        "val_loss": _number(val.get("loss")),
        "val_n_excluded": val.get("n_excluded"),
        "split_source": metrics.get("split_source"),
        "ceiling_stimuli": test.get("ceiling_stimuli"),
        "n_params": metrics.get("n_params"),
        "n_conv_params": metrics.get("n_conv_params"),
        "n_train": metrics.get("n_train"),
        "wall_time_s": _number(metrics.get("wall_time_s")),
        "best_step": metrics.get("best_step"),
        **_convergence(metrics, config),
        "avg_path_length": _number(paths.get("avg_path_length")),
        "path_entropy": _number(paths.get("path_entropy")),
    })
    for length, p in (paths.get("path_p") or {}).items():
        row[f"path_p{int(length)}"] = _number(p)
    row.update(bin_columns(test))          # time-binned data (rcpb.metrics.bin_columns)
    if "bins" in test:
        row["val_profile_cc"] = _number(val.get("profile_cc"))

    return row, _neuron_rows(row["config_id"], test)


def _config_row(folder: Path, config: dict) -> dict:
    """The :data:`CONFIG_COLUMNS` of a results row from a model folder's config.json."""
    row = {key: config.get(key) for key in CONFIG_COLUMNS}
    if not row["config_id"]:
        row["config_id"] = folder.name
    pre = config.get("preprocess") or {}
    row.update(crop=_size(pre.get("crop")), downsample=pre.get("downsample"),
               neuron_scale=pre.get("neuron_scale"), input_size=_size(config.get("input_size")))
    # the recurrent cell: a config without the field is rcpb (rcpb.grid), empty for FF models
    row["cell"] = (config.get("cell") or "rcpb") if config.get("arch") != "ff" else None
    allowed = config.get("allowed_lengths")
    row["allowed_lengths"] = "" if not allowed else ",".join(str(int(d)) for d in allowed)
    return row


def failed_row(folder: str | Path, failure: dict) -> dict:
    """The results row of a failed training: its configuration (config.json; the folder's
    names when that is unreadable), ``status`` failed, ``failure`` the reason of ``failure``
    (:func:`read_failure`); no metric or path column (NaN in the table)."""
    folder = Path(folder)
    try:
        config = _read_json(folder / "config.json")
    except RcpbError:
        config = {}
    row = _config_row(folder, config)
    row.update(config_id=failure["config_id"], family=failure["family"],
               status=STATUS_FAILED, failure=failure["reason"])
    return row


def _time_columns(rows: list[dict]) -> list[str]:
    """The time-binned columns (rcpb.metrics.bin_columns) present in ``rows``, bin by bin."""
    present = {k for row in rows for k in row if k.startswith("test_bin") or
               k.endswith("_profile_cc")}
    bins = sorted({int(k[len("test_bin"):].split("_")[0]) for k in present
                   if k.startswith("test_bin")})
    order = [c for c in ("test_profile_cc", "val_profile_cc") if c in present]
    return order + [f"test_bin{b}_{name}" for b in bins for _, name in BIN_COLUMNS]


def _neuron_rows(config_id: str, test: dict):
    """A model's neuron rows from its test metrics, as columns (a few bytes a row; a dict per
    row took about 400)."""
    import numpy as np
    import pandas as pd

    norm2 = test.get("cc_norm2_per_neuron") or []
    raw = test.get("cc_raw_per_neuron") or []
    n = min(len(norm2), len(raw))
    ceiling = list(test.get("cc_max_per_neuron") or [])[:n]
    ceiling += [None] * (n - len(ceiling))

    def numbers(values):          # JSON null (how NaN is stored) -> NaN
        return np.array(values[:n], dtype=float)

    return pd.DataFrame({"config_id": config_id, "neuron": np.arange(n),
                         "test_cc_norm2": numbers(norm2), "test_cc_raw": numbers(raw),
                         "test_cc_max": numbers(ceiling)}, columns=NEURON_COLUMNS)


def _convergence(metrics: dict, config: dict) -> dict:
    """How the training ended: ``steps`` (all phases), ``phases``, and ``phases_stopped_early``,
    the phases that ended before their ``max_steps`` (on patience: early stopping decided)."""
    per_phase = metrics.get("steps_per_phase")
    max_steps = (config.get("train") or {}).get("max_steps")
    if not per_phase or max_steps is None:
        return {"steps": None, "phases": None, "phases_stopped_early": None}
    return {"steps": int(sum(per_phase)), "phases": len(per_phase),
            "phases_stopped_early": sum(1 for s in per_phase if s < max_steps)}


def collect(folders, aliases=None, warn=None, neurons_to=None) -> tuple:
    """Model folders -> (results, neurons, failed) DataFrames; columns as in the module doc.

    ``aliases``: list of alias dicts (:func:`read_aliases`); each adds rows copied from the model
    it is trained as (:func:`add_aliases`). A failed training (:func:`read_failure`) and the
    aliases trained as it have results rows with status failed (:func:`failed_row`) and no
    neuron rows; they are also the rows of ``failed``, and ``warn`` (a function of one line,
    e.g. print to stderr) is called once per failed training.
    ``neurons_to``: a function that receives the neuron table in parts, in its order (each
    model's rows, then the aliases' copies, model by model); neurons is then None, and no more
    than one model's rows are held at a time (a paper grid has millions of them).
    """
    import pandas as pd

    rows, parts, failed, read = [], [], [], []     # read: (row, folder) of trained models
    emit = parts.append if neurons_to is None else neurons_to
    for folder in folders:
        metrics = _read_json(Path(folder) / "metrics.json")
        failure = read_failure(folder, metrics)
        if failure is not None:
            failed.append(failure)
            rows.append(failed_row(folder, failure))
            if warn is not None:
                warn(f"warning: training {failure['config_id']} ({failure['family']}) failed: "
                     f"{failure['reason']}; its results row has status failed ({folder})")
            continue
        row, neurons = read_model(folder, metrics)
        rows.append(row)
        read.append((row, folder))
        emit(neurons)
    reasons = {f["config_id"]: f["reason"] for f in failed}
    lost = {a["config_id"]: f"trained as {a['trained_as']}, which failed: "
                            f"{reasons[a['trained_as']]}"
            for a in aliases or [] if a["trained_as"] in reasons}
    trained_ids = {row["config_id"] for row in rows}
    failed += [{"config_id": a["config_id"], "family": a["family"], "reason": lost[a["config_id"]]}
               for a in aliases or [] if a["config_id"] in lost]
    lengths = sorted({int(k[len("path_p"):]) for row in rows for k in row
                      if k.startswith("path_p")})
    path_columns = [f"path_p{d}" for d in range(1, max(lengths) + 1)] if lengths else []
    results = pd.DataFrame(rows, columns=CONFIG_COLUMNS + STATUS_COLUMNS + METRIC_COLUMNS
                           + path_columns + _time_columns(rows))
    results = results.astype({c: "Int64" for c in OPTIONAL_INT_COLUMNS})
    neurons = (None if neurons_to is not None else
               pd.concat(parts, ignore_index=True) if parts else
               pd.DataFrame(columns=NEURON_COLUMNS))
    results, neurons = add_aliases(results, neurons, aliases)
    # an alias of a failed training: its copied row says why (failed.csv's reason)
    is_lost = results["config_id"].isin(set(lost) - trained_ids)
    results.loc[is_lost, "failure"] = results.loc[is_lost, "config_id"].map(lost)
    if neurons_to is not None and aliases:
        # the aliases' neuron rows, copied from their trainings' (read again), in add_aliases'
        # order: model by model, each neuron's row once per alias (none for a failed training)
        aliases = [a for a in aliases if a["config_id"] not in trained_ids]
        sources = {a["trained_as"] for a in aliases}
        for row, folder in read:
            if row["config_id"] in sources:
                neurons_to(alias_neurons(read_model(folder)[1], aliases))
    return results, neurons, pd.DataFrame(failed, columns=FAILED_COLUMNS)


ALIAS_FIELDS = ("config_id", "family", "ablation", "allowed_lengths", "partner_id", "trained_as")


def add_aliases(results, neurons, aliases: list[dict]) -> tuple:
    """Append one results row (and the neuron rows) per alias, copied from its training.

    results, neurons: tables of :func:`collect`; aliases: dicts with at least
    :data:`ALIAS_FIELDS`. The copy gets the alias's ``config_id``, ``family``, ``ablation``,
    ``allowed_lengths`` (``"1,2"``) and ``partner_id``, and ``trained_as`` (a column appended to
    the results table, empty for trained models). An alias whose id is among the models
    (trained before it became an alias) keeps that model's own row. ``neurons`` None: the
    results rows only (the neuron rows' copies: :func:`alias_neurons`).
    """
    import pandas as pd

    results = results.assign(trained_as=None)
    if not aliases:
        return results, neurons
    position = {cid: i for i, cid in enumerate(results["config_id"])}
    aliases = [a for a in aliases if a["config_id"] not in position]
    missing = sorted({a["trained_as"] for a in aliases} - set(position))
    if missing:
        raise RcpbError(f"{len(missing)} model(s) that aliases are trained as are not among the "
                        f"model folders, e.g. {missing[0]}; aggregate every training of the "
                        f"dataset (the workflow's models.txt), or leave out --aliases.")
    copies = results.iloc[[position[a["trained_as"]] for a in aliases]].copy()
    copies["config_id"] = [a["config_id"] for a in aliases]
    copies["family"] = [a["family"] for a in aliases]
    copies["ablation"] = [a["ablation"] for a in aliases]
    copies["allowed_lengths"] = [",".join(str(int(d)) for d in a["allowed_lengths"] or [])
                                 for a in aliases]
    copies["partner_id"] = [a["partner_id"] for a in aliases]
    copies["trained_as"] = [a["trained_as"] for a in aliases]
    results = pd.concat([results, copies], ignore_index=True)

    if neurons is not None:
        neurons = pd.concat([neurons, alias_neurons(neurons, aliases)], ignore_index=True)
    return results, neurons


def alias_neurons(neurons, aliases: list[dict]):
    """The neuron rows of ``aliases``: each row of ``neurons`` once per alias trained as its
    model (in the rows' order), with the alias's ``config_id``."""
    import pandas as pd

    pairs = pd.DataFrame({"config_id": [a["trained_as"] for a in aliases],
                          "_alias": [a["config_id"] for a in aliases]})
    extra = neurons.merge(pairs, on="config_id")
    extra["config_id"] = extra.pop("_alias")
    return extra[list(neurons.columns)]


def read_aliases(path: str | Path) -> list[dict]:
    """The aliases of a dataset from ``path`` (a JSON list of alias dicts, rcpb.grid)."""
    try:
        with open(path, encoding="utf-8") as f:
            aliases = json.load(f)
    except OSError as exc:
        raise RcpbError(f"cannot read the aliases file {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise RcpbError(f"{path} is not valid JSON ({exc}); rerun the workflow to rewrite "
                        f"it.") from None
    if not isinstance(aliases, list) or not all(isinstance(a, dict) for a in aliases):
        raise RcpbError(f"{path}: expected a JSON list of aliases (objects with "
                        f"{', '.join(ALIAS_FIELDS)}).")
    for alias in aliases:
        lacking = [k for k in ALIAS_FIELDS if k not in alias]
        if lacking:
            raise RcpbError(f"{path}: alias {alias.get('config_id', '?')} has no "
                            f"{', '.join(lacking)}; rerun the workflow to rewrite the file.")
    return aliases


def read_folder_list(path: str | Path) -> list[str]:
    """Model folders listed one per line in ``path`` (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RcpbError(f"cannot read the list of model folders {path}: {exc.strerror}.") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_tables(folders, results_csv: str | Path, neurons_csv: str | Path,
                 aliases=None, failed_csv: str | Path | None = None,
                 warn=None) -> tuple[int, int, int]:
    """Collect ``folders`` (and ``aliases``, see :func:`collect`) and write the CSV files
    atomically (the failed table only when ``failed_csv`` is given); returns (results rows,
    neuron rows, failed rows). The neuron table is written as it is read, a model at a time."""
    import pandas as pd

    n_neurons = 0
    with atomic_path(neurons_csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        pd.DataFrame(columns=NEURON_COLUMNS).to_csv(f, index=False)      # the header

        def write(part):
            nonlocal n_neurons
            part.to_csv(f, header=False, index=False)
            n_neurons += len(part)

        results, _, failed = collect(folders, aliases, warn=warn, neurons_to=write)
    tables = [(results, results_csv)]
    if failed_csv is not None:
        tables.append((failed, failed_csv))
    for table, path in tables:
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    return len(results), n_neurons, len(failed)


def main(argv=None) -> int:
    """``python -m analysis.aggregate``: model folders -> results.csv and neurons.csv."""
    ap = argparse.ArgumentParser(prog="python -m analysis.aggregate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", metavar="FOLDER", help="model folders")
    ap.add_argument("--models", metavar="FILE", help="file listing model folders, one per line")
    ap.add_argument("--aliases", metavar="JSON",
                    help="aliases of the dataset (ablation names trained as another model); "
                         "each gets a row copied from that model")
    ap.add_argument("--results", required=True, metavar="CSV", help="output: one row per model")
    ap.add_argument("--neurons", required=True, metavar="CSV",
                    help="output: one row per model and neuron")
    ap.add_argument("--failed", metavar="CSV",
                    help="output: one row per failed (diverged) training and per alias trained "
                         "as one: config_id, family, reason (a header alone when none failed)")
    args = ap.parse_args(argv)
    try:
        folders = list(args.folders)
        if args.models:
            folders += read_folder_list(args.models)
        if not folders:
            raise RcpbError("no model folders given; pass FOLDER arguments or --models FILE.")
        aliases = read_aliases(args.aliases) if args.aliases else []
        n_rows, n_neuron_rows, n_failed = write_tables(
            folders, args.results, args.neurons, aliases, failed_csv=args.failed,
            warn=lambda line: print(line, file=sys.stderr))
    except RcpbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = (f"; {n_failed} failed (status failed, no metrics)"
              + (f" -> {args.failed}" if args.failed else ""))
    print(f"aggregate: {len(folders)} model folders -> {n_rows} rows (models and aliases) in "
          f"{args.results}{failed if n_failed else ''}; {n_neuron_rows} neuron rows -> "
          f"{args.neurons}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
