"""Faults: diverged trainings in the results table, a full disk or an unwritable folder while
writing results, and truncated result files.

- A failed training (metrics.json with ``"failed"``) has a results row with ``status`` failed
  and its reason; the tables and figures read only the rows with status ok and say how many
  they left out.
- Writing metrics.json, best.pt, results.csv on a full disk or into a read-only folder stops
  with one RcpbError naming the file and the cause, and leaves neither the file nor a
  temporary one. A full disk is real here: the temporary file is a link to ``/dev/full``,
  where every write fails with ENOSPC. A read-only folder is ``chmod 0o555`` where that binds
  (not for root, who may write anyway); otherwise the rename fails with the errno it would get.
- A truncated metrics.json, best.pt or results.csv is an RcpbError naming the file and the
  fix, not numbers read from half a file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_aggregate import fail, t4_grid, write_model
from test_train import _cli_config, dataset_file  # noqa: F401  (a fixture)

from analysis import tables
from analysis.aggregate import FAILED_COLUMNS, collect, main as aggregate_main, write_tables
from analysis.load import failed_note, n_failed, normalise, read_results
from rcpb import grid
from rcpb.atomic_files import (
    load_torch_file, read_csv_file, read_json, save_atomic, write_csv_atomic,
    write_json_atomic, write_text_atomic,
)
from rcpb.cli import main as rcpb_main
from rcpb.config import validate_config
from rcpb.errors import RcpbError

pytestmark = pytest.mark.usefixtures("one_thread")

#: an absurd learning rate: the first steps overflow the parameters, the loss becomes NaN
DIVERGING_LR = 1e30


def seeds_grid(seeds=(0, 1, 2)):
    """Recurrent L = 1, T = 2 (2-avg) and their size-matched FF partners, one per seed."""
    config = {
        "datasets": {"d": {"file": "d.h5", "grid": "g"}},
        "grids": {"g": {
            "common": {"train_fraction": [1.0], "channels": [8], "act": ["relu"],
                       "first_block_order": ["bn_act"], "loss": ["mse"],
                       "model_seed": list(seeds)},
            "recurrent": {"recurrent_layers": [1], "iterations": [2], "readout": ["2-avg"]},
        }},
    }
    validate_config(config)
    return grid.expand(config)["d"]


def write_folders(root: Path, configs) -> list[Path]:
    """A finished model folder per config; performance differs per model (0.2 + 0.05 i)."""
    folders = []
    for i, cfg in enumerate(configs):
        folder = root / cfg["family"] / cfg["config_id"]
        lengths = cfg["allowed_lengths"] or [1, 2, 3, 4]
        write_model(folder, grid.training_config(cfg), 0.2 + 0.05 * i,
                    {str(d): 1 / len(lengths) for d in lengths})
        folders.append(folder)
    return folders


def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writers left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if ".tmp." in p.name)


def full_disk_at(target: Path) -> Path:
    """Make the next atomic write of ``target`` (by this process) hit a full disk: its
    temporary file is a link to /dev/full, where every write fails with ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    link = target.with_name(f"{target.name}.tmp.{os.getpid()}")
    link.symlink_to("/dev/full")
    return link


def chmod_binds() -> bool:
    """Whether a 0o555 folder refuses this process's writes (not for root)."""
    return os.geteuid() != 0


# --------------------------------------------------------------------------- status column


def test_failed_training_has_a_status_failed_row_with_its_reason(tmp_path):
    configs, aliases = t4_grid()
    folders = write_folders(tmp_path / "models", configs)
    (mp,) = [c for c in configs if c["family"] == "multipath"]
    fail(tmp_path / "models" / "multipath" / mp["config_id"], reason="loss is nan", step=7)
    out = tmp_path / "out"
    n_rows, n_neurons, n_failed_rows = write_tables(
        folders, out / "results.csv", out / "neurons.csv", aliases,
        failed_csv=out / "failed.csv")
    results = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    lost = sorted(a["config_id"] for a in aliases if a["trained_as"] == mp["config_id"])
    assert len(lost) == 2

    # every training and alias has a row; the failed one and the aliases trained as it are failed
    assert n_rows == len(configs) + len(aliases) == len(results)
    by_id = results.set_index("config_id")
    assert by_id.loc[mp["config_id"], "status"] == "failed"
    assert by_id.loc[mp["config_id"], "failure"] == "loss is nan (step 7)"
    for alias in lost:
        assert by_id.loc[alias, "status"] == "failed"
        assert by_id.loc[alias, "failure"].startswith(f"trained as {mp['config_id']}, which "
                                                      "failed: loss is nan")
    failed_ids = {mp["config_id"], *lost}
    ok = results[~results["config_id"].isin(failed_ids)]
    assert (ok["status"] == "ok").all() and ok["failure"].isna().all()

    # its configuration is in the row, every metric and path column is empty
    row = by_id.loc[mp["config_id"]]
    training = grid.training_config(mp)
    for key in ("family", "arch", "readout", "act", "loss"):
        assert row[key] == training[key], key
    for key in ("iterations", "recurrent_layers", "channels", "model_seed"):
        assert row[key] == training[key], key
    metric_columns = [c for c in results.columns
                      if c.startswith(("test_", "val_", "path_p")) or c in ("n_params",
                                                                             "avg_path_length")]
    assert metric_columns and row[metric_columns].isna().all()
    assert not ok[["test_cc_norm2", "val_cc_norm2", "n_params"]].isna().any().any()

    # no neuron rows for them; failed.csv as before: one row each, same columns
    neurons = pd.read_csv(out / "neurons.csv")
    assert not set(neurons["config_id"]) & failed_ids
    assert n_neurons == len(neurons) == 2 * len(ok)
    failed = pd.read_csv(out / "failed.csv")
    assert list(failed.columns) == FAILED_COLUMNS
    assert sorted(failed["config_id"]) == sorted(failed_ids) and n_failed_rows == 3


def test_tables_leave_failed_trainings_out_and_count_them(tmp_path):
    configs = seeds_grid()
    folders = write_folders(tmp_path / "models", configs)
    (victim,) = [c for c in configs if c["family"] == "recurrent" and c["model_seed"] == 2]
    victim_folder = tmp_path / "models" / "recurrent" / victim["config_id"]
    fail(victim_folder, reason="diverged: training loss nan")

    with_failed, without = tmp_path / "with", tmp_path / "without"
    write_tables(folders, with_failed / "results.csv", with_failed / "neurons.csv")
    write_tables([f for f in folders if f != victim_folder], without / "results.csv",
                 without / "neurons.csv")
    raw = pd.read_csv(with_failed / "results.csv")
    assert (raw["status"] == "failed").sum() == 1

    df = read_results(str(with_failed / "results.csv"))
    assert victim["config_id"] not in set(df["config_id"]) and len(df) == len(raw) - 1
    assert n_failed(df) == 1 and "Left out: 1 failed training " in failed_note(df)
    reference = read_results(str(without / "results.csv"))
    assert n_failed(reference) == 0 and failed_note(reference) == ""

    for name in ("table1", "recurrent_vs_ff"):
        outputs = {}
        for label, folder in (("with", with_failed), ("without", without)):
            csv, md = folder / f"{name}.csv", folder / f"{name}.md"
            assert tables.main([name, "--results", str(folder / "results.csv"),
                                "--csv", str(csv), "--md", str(md)]) == 0
            outputs[label] = (pd.read_csv(csv), md.read_text())
        # the other models' numbers are those of the table made without the failed folder
        pd.testing.assert_frame_equal(outputs["with"][0], outputs["without"][0])
        assert "Left out: 1 failed training" in outputs["with"][1]
        assert "Left out" not in outputs["without"][1]
    # the recurrent models that remain: the two seeds that trained
    t = outputs["with"][0]
    assert t["n_pairs"].max() == 2


def test_status_values_are_checked_and_old_tables_keep_every_row():
    configs = seeds_grid(seeds=(0,))
    rows = [{"config_id": c["config_id"], "family": c["family"], "split_seed": 0,
             "train_fraction": 1.0, "model_seed": 0, "partner_id": c["partner_id"] or "",
             "test_cc_norm2": 0.3} for c in configs]
    old = normalise(pd.DataFrame(rows))          # written before the status column
    assert len(old) == len(rows) and n_failed(old) == 0
    with pytest.raises(RcpbError, match="status.*'done'"):
        normalise(pd.DataFrame([{**r, "status": "done"} for r in rows]))


def test_a_diverging_training_is_recorded_as_failed(tmp_path, dataset_file):  # noqa: F811
    cfg = _cli_config(dataset_file, config_id="rec-diverges")
    cfg["train"] = {**cfg["train"], "lr": DIVERGING_LR}
    out = tmp_path / "recurrent" / "rec-diverges"
    # one configuration that failed: exit status 1, and the folder is a failed training
    assert rcpb_main(["train", json.dumps(cfg), "--out", str(out)]) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert "diverged" in metrics["failed"] and "test" not in metrics
    assert not (out / "best.pt").exists()

    results, neurons, failed = collect([out])
    (row,) = results.to_dict("records")
    assert row["status"] == "failed" and "diverged" in row["failure"]
    assert row["config_id"] == "rec-diverges" and row["family"] == "recurrent"
    assert row["iterations"] == cfg["iterations"] and math.isnan(row["test_cc_norm2"])
    assert neurons.empty and list(failed["config_id"]) == ["rec-diverges"]


# --------------------------------------------------------------------------- full disk, read-only


WRITERS = {
    "metrics.json": lambda path: write_json_atomic(path, {"test": {"cc_norm2": 0.5}}),
    "best.pt": lambda path: save_atomic({"w": torch.ones(4096)}, path),
    "results.csv": lambda path: write_csv_atomic(path, [{"a": i} for i in range(5000)], ["a"]),
    "report.md": lambda path: write_text_atomic(path, "x" * 100_000),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_full_disk_is_one_error_and_leaves_the_old_file(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"the previous version\n")
    full_disk_at(target)
    with pytest.raises(RcpbError) as info:
        WRITERS[name](target)
    message = str(info.value)
    assert f"cannot write {target}: no space left on device" in message
    assert "free space" in message
    assert target.read_bytes() == b"the previous version\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("code, cause", [(errno.ENOSPC, "no space left on device"),
                                         (errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only file system")])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_failed_rename_is_one_error_and_leaves_nothing(tmp_path, monkeypatch, name, code, cause):
    target = tmp_path / name

    def refuse(src, dst):
        raise OSError(code, os.strerror(code), str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(RcpbError, match=f"cannot write {target}: {cause}"):
        WRITERS[name](target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not chmod_binds(), reason="root writes into a 0o555 folder anyway")
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_read_only_folder_is_one_error_and_leaves_nothing(tmp_path, name):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(RcpbError, match=f"cannot write {folder / name}: permission denied"):
            WRITERS[name](folder / name)
        assert list(folder.iterdir()) == []
        # a folder that cannot be created below it
        with pytest.raises(RcpbError, match="permission denied"):
            WRITERS[name](folder / "sub" / name)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_errors_of_other_files_are_not_blamed_on_the_target(tmp_path):
    """A writer that fails reading its input raises that error, not a write error."""
    from rcpb.atomic_files import atomic_path

    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("partial")
            open(tmp_path / "missing-input.txt").read()
    assert list(tmp_path.iterdir()) == []


def test_aggregation_on_a_full_disk_or_read_only_folder(tmp_path, monkeypatch, capsys):
    configs, aliases = t4_grid()
    folders = write_folders(tmp_path / "models", configs)
    out = tmp_path / "out"
    out.mkdir()
    args = [*map(str, folders), f"--results={out / 'results.csv'}",
            f"--neurons={out / 'neurons.csv'}", f"--failed={out / 'failed.csv'}"]

    # full disk while writing results.csv (neurons.csv is written before it, whole)
    full_disk_at(out / "results.csv")
    assert aggregate_main(args) == 2
    err = capsys.readouterr().err
    assert f"error: cannot write {out / 'results.csv'}: no space left on device" in err
    assert not (out / "results.csv").exists() and leftovers(out) == []

    # an unwritable results folder: the first table written is refused, nothing is left
    for p in out.iterdir():
        p.unlink()
    if chmod_binds():
        out.chmod(0o555)
    else:
        def refuse(src, dst):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

        monkeypatch.setattr(os, "replace", refuse)
    try:
        assert aggregate_main(args) == 2
    finally:
        out.chmod(stat.S_IRWXU)
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and ": permission denied" in err
    assert f"cannot write {out / 'neurons.csv'}" in err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name", ["best.pt", "metrics.json"])
def test_training_on_a_full_disk_leaves_no_partial_results(
        tmp_path, dataset_file, capsys, name):  # noqa: F811
    out = tmp_path / "recurrent" / "rec-test"
    out.mkdir(parents=True)
    full_disk_at(out / name)
    assert rcpb_main(["train", json.dumps(_cli_config(dataset_file)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out / name}: no space left on device" in err
    # not finished: no metrics.json (a rerun trains it again), and no temporary file
    assert not (out / name).exists() and not (out / "metrics.json").exists()
    assert leftovers(out) == []


@pytest.mark.skipif(not chmod_binds(), reason="root writes into a 0o555 folder anyway")
def test_training_into_a_read_only_folder_is_one_error(
        tmp_path, dataset_file, capsys):  # noqa: F811
    out = tmp_path / "rec-test"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert rcpb_main(["train", json.dumps(_cli_config(dataset_file)), "--out", str(out)]) == 2
    finally:
        out.chmod(stat.S_IRWXU)
    err = capsys.readouterr().err
    assert f"cannot write {out / 'config.json'}: permission denied" in err
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- truncated files


def truncate(path: Path, n: int = 20) -> None:
    """Keep the first ``n`` bytes of ``path``."""
    path.write_bytes(path.read_bytes()[:n])


def test_truncated_metrics_json_names_the_file_and_the_fix(tmp_path):
    configs, aliases = t4_grid()
    folders = write_folders(tmp_path, configs)
    metrics = folders[1] / "metrics.json"
    truncate(metrics)
    with pytest.raises(RcpbError) as info:
        collect(folders, aliases)
    message = str(info.value)
    assert f"{metrics} is truncated or corrupted" in message
    assert f"delete {folders[1]} and rerun its target" in message
    assert f"rcpb train --from-grid {folders[1]}" in message
    # the helper alone, with its default fix
    with pytest.raises(RcpbError, match=f"delete {metrics} and rerun its target"):
        read_json(metrics)


def test_truncated_best_pt_names_the_file_and_the_fix(tmp_path):
    from rcpb.commands.path_stats import load_model

    best = tmp_path / "best.pt"
    state = {"w": torch.arange(1000, dtype=torch.float32)}
    save_atomic(state, best)
    assert torch.equal(load_torch_file(best, weights_only=True)["w"], state["w"])
    whole = best.read_bytes()
    for keep in (20, len(whole) // 2, len(whole) - 1):
        best.write_bytes(whole[:keep])
        with pytest.raises(RcpbError, match=f"{best} is truncated or corrupted.*delete {best} "
                                            "and rerun its target"):
            load_torch_file(best, weights_only=True)
    with pytest.raises(RcpbError, match=f"{tmp_path / 'nope.pt'} is missing"):
        load_torch_file(tmp_path / "nope.pt")

    # the reader of trained models (rcpb path-stats, the ablation and multi-path analyses)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    cfg = {**_cli_config("d.h5"), "input_size": 20, "n_neurons": 5}
    (model_dir / "config.json").write_text(json.dumps(cfg))
    best.replace(model_dir / "best.pt")
    with pytest.raises(RcpbError, match=str(model_dir / "best.pt")):
        load_model(model_dir)


def test_truncated_results_csv_names_the_file_and_the_fix(tmp_path, capsys):
    configs, aliases = t4_grid()
    folders = write_folders(tmp_path / "models", configs)
    results = tmp_path / "results.csv"
    write_tables(folders, results, tmp_path / "neurons.csv", aliases)
    whole = results.read_bytes()
    assert len(read_results(str(results))) == len(configs) + len(aliases)

    fix = f"delete {results} and rerun its target"
    for keep in (20, len(whole) // 2, len(whole) - 1):
        results.write_bytes(whole[:keep])
        with pytest.raises(RcpbError, match=f"{results} is truncated.*{fix}"):
            read_results(str(results))
    results.write_bytes(b"")
    with pytest.raises(RcpbError, match=f"{results}.*empty.*{fix}"):
        read_results(str(results))
    # the table command stops with that one error
    results.write_bytes(whole[:len(whole) // 2])
    assert tables.main(["table1", "--results", str(results), "--csv", str(tmp_path / "t.csv"),
                        "--md", str(tmp_path / "t.md")]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and fix in err and not (tmp_path / "t.csv").exists()


def test_csv_reader_takes_a_whole_file_unchanged(tmp_path):
    path = tmp_path / "t.csv"
    frame = pd.DataFrame({"a": np.arange(3), "b": ["x", "y,z", ""]})
    with open(path, "w", newline="") as f:
        frame.to_csv(f, index=False)
    pd.testing.assert_frame_equal(read_csv_file(path), pd.read_csv(path))
    with pytest.raises(RcpbError, match=f"{tmp_path / 'nope.csv'} is missing"):
        read_csv_file(tmp_path / "nope.csv")
