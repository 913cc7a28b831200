"""The cell search (rcpb.search, rcpb search): its configurations, the comparison table on
synthetic metrics, and a tiny search that is killed after its first trial and resumed."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rcpb import grid, search
from rcpb.atomic_files import write_json_atomic
from rcpb.data.format import write_dataset

optuna = pytest.importorskip("optuna")

REPO = Path(__file__).resolve().parents[1]


def _config(max_steps=4):
    return {
        "threads": 1,
        "training": {"batch_size": 16, "phases": 1, "eval_every": 2, "patience": 50,
                     "max_steps": max_steps},
        "datasets": {"tiny": {"file": "d.h5", "grid": "g"}},
        "grids": {"g": {
            "common": {"train_fraction": [1.0], "channels": [4], "act": ["relu"],
                       "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0, 1]},
            "ff": {"blocks": [1]},
            "recurrent": {"recurrent_layers": [1], "iterations": [2], "readout": ["2-avg"]},
        }},
    }


def _write_setup(folder: Path, make_dataset, max_steps=4) -> Path:
    write_dataset(folder / "d.h5", make_dataset(n=60, h=12, w=12, trials=3, neurons=4))
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(_config(max_steps)))
    return path


def test_trial_configurations_are_grid_configurations():
    from rcpb.config import validate_config

    config = _config()
    validate_config(config)
    base = search.baseline_config(config, "tiny")
    rec = [c for c in grid.expand(config)["tiny"] if c["family"] == "recurrent"]
    # the baseline is the grid's first recurrent configuration at seed 0: the same id
    assert base["config_id"] == rec[0]["config_id"]
    assert "cell" not in base
    same = search.trial_config(base, search.baseline_params(base))
    assert same["config_id"] == base["config_id"]
    other = search.trial_config(base, {"cell": "rgc", "act": "softplus", "iterations": 3,
                                       "channels": 8}, model_seed=2)
    assert (other["cell"], other["act"], other["iterations"], other["channels"],
            other["model_seed"], other["readout"]) == ("rgc", "softplus", 3, 8, 2, "2-avg")
    assert other["config_id"].startswith("rec-rgc-L1-T3-2avg-c8-softplus-")
    ff = search.ff_partner(other)
    assert (ff["arch"], ff["blocks"], ff["channels"], ff["act"], ff["model_seed"]) == \
        ("ff", 3, 8, "softplus", 2)
    # the final models: seeds 1..S, the best cell's own FF when it differs from the baseline's
    members = search.final_members(base, {"cell": "rgc", "act": "softplus", "iterations": 3,
                                          "channels": 8}, seeds=2)
    assert sorted({role for role, _ in members}) == ["best", "best_ff", "ff", "rcpb"]
    assert sorted({cfg["model_seed"] for _, cfg in members}) == [1, 2]
    assert search.in_space(search.baseline_params(base))


def _metrics(val, test):
    return {"val": {"cc_norm2": val, "cc_raw": 0.5}, "test": {"cc_norm2": test, "cc_raw": 0.5},
            "n_params": 10}


def test_comparison_table_on_synthetic_metrics(tmp_path):
    config = _config()
    from rcpb.config import validate_config

    validate_config(config)
    base = search.baseline_config(config, "tiny")
    best = {"cell": "convlstm", "act": "relu", "iterations": 2, "channels": 4}
    members = search.final_members(base, best, seeds=6)
    # same channels and activation: the best cell's FF is the baseline's, no best_ff role
    assert sorted({role for role, _ in members}) == ["best", "ff", "rcpb"]
    # test values per seed 1..6; best - rcpb = 0.10, 0.12, 0.08, 0.10, 0.11, 0.09 (mean 0.10)
    test = {"best": [0.60, 0.62, 0.58, 0.61, 0.60, 0.59],
            "rcpb": [0.50, 0.50, 0.50, 0.51, 0.49, 0.50],
            "ff": [0.40, 0.41, 0.39, 0.40, 0.40, 0.40]}
    folders = {}
    for role, cfg in members:
        folder = tmp_path / cfg["config_id"]
        value = test[role][cfg["model_seed"] - 1]
        write_json_atomic(folder / "metrics.json", _metrics(value - 0.01, value))
        folders[cfg["config_id"]] = folder
    rows = search.final_rows(members, folders, "cc_norm2")
    final = tmp_path / "final.csv"
    pd.DataFrame(rows, columns=search.FINAL_COLUMNS).to_csv(final, index=False)
    # the table rcpb search has the workflow's analysis write (python -m analysis.search)
    from analysis import search as analysis_search

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"dataset": "tiny", "metric": "cc_norm2", "complete_trials": 3,
                                   "distinct_configurations": 3, "best_trial": 1,
                                   "best_params": best, "best_value": 0.5, "seeds": [1, 6]}))
    out = {"csv": tmp_path / "comparison.csv", "md": tmp_path / "comparison.md"}
    assert analysis_search.main([str(final), "--summary", str(summary), "--csv", str(out["csv"]),
                                 "--md", str(out["md"])]) == 0
    table = {r["comparison"]: r for r in pd.read_csv(out["csv"]).to_dict("records")}
    assert set(table) == {"best_vs_rcpb", "best_vs_ff", "rcpb_vs_ff"}
    r = table["best_vs_rcpb"]
    assert r["n_pairs"] == 6 and r["unit"] == analysis_search.UNIT
    assert r["diff_mean"] == pytest.approx(0.10)
    assert r["treat_mean"] == pytest.approx(0.60) and r["ref_mean"] == pytest.approx(0.50)
    assert r["paired_gain_pct"] == pytest.approx(20.0)
    assert r["diff_ci_low"] < 0.10 < r["diff_ci_high"] and r["p"] < 0.001
    assert table["best_vs_ff"]["diff_mean"] == pytest.approx(0.20)
    assert table["rcpb_vs_ff"]["diff_mean"] == pytest.approx(0.10)
    assert table["best_vs_rcpb"]["treat_model"] == "convlstm T2, c4, relu"
    assert table["best_vs_ff"]["ref_model"] == "FF 3 blocks, c4, relu"
    assert "| best_vs_rcpb | convlstm T2, c4, relu | rcpb T2, c4, relu | 0.6000 | 0.5000 | " \
        "0.1000 [" in out["md"].read_text()


def _study(folder: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / search.STUDY_FILE)))
    return optuna.load_study(study_name="search-tiny", storage=storage)


def _starts(folder: Path) -> list[str]:
    log = folder / search.TRAININGS_LOG
    if not log.exists():
        return []
    return [line.split()[2] for line in log.read_text().splitlines() if line.split()[1] == "start"]


def _ends(folder: Path) -> list[str]:
    log = folder / search.TRAININGS_LOG
    if not log.exists():
        return []
    return [line.split()[2] for line in log.read_text().splitlines() if line.split()[1] == "end"]


def test_killed_search_resumes_without_retraining(tmp_path, make_dataset):
    config = _write_setup(tmp_path, make_dataset, max_steps=60)
    study_dir = tmp_path / "results" / "search" / "tiny"
    cmd = [sys.executable, "-m", "rcpb", "search", str(config), "--dataset", "tiny",
           "--trials", "4", "--seeds", "1", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # kill once the first trial's training ended and the next one started
    while time.time() < deadline and proc.poll() is None:
        if _ends(study_dir) and len(_starts(study_dir)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the search ended before it could be killed: " + \
        proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first, interrupted = _starts(study_dir)[:2]
    assert _ends(study_dir) == [first]
    assert not (study_dir / "trials" / interrupted / "metrics.json").exists()
    states = [t.state.name for t in _study(study_dir).get_trials()]
    assert states[0] == "COMPLETE" and "RUNNING" in states

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming; 1 interrupted trial(s)" in done.stderr
    starts = _starts(study_dir)
    assert starts.count(first) == 1                     # the finished trial was not retrained
    assert starts.count(interrupted) == 2               # the interrupted one was, from scratch
    assert (study_dir / "trials" / interrupted / "metrics.json").exists()
    trials = _study(study_dir).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4   # same numbers, none lost
    assert all(math.isfinite(t.value) for t in trials)
    lines = (study_dir / "trials.csv").read_text().splitlines()
    assert len(lines) == 5 and "test" not in lines[0]   # no test metric in the search's table
    table = (study_dir / "comparison.csv").read_text()
    assert "best_vs_rcpb" in table and "best_vs_ff" in table
    assert (study_dir / "comparison.md").exists()

    # a third run finds everything finished: nothing is trained
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _starts(study_dir) == starts


def test_study_of_another_config_is_not_resumed(tmp_path):
    from rcpb.config import validate_config
    from rcpb.errors import RcpbError

    config = _config()
    validate_config(config)
    base = search.baseline_config(config, "tiny")
    search.open_study(tmp_path, base)
    search.open_study(tmp_path, base)          # the same config: resumed
    other = search.trial_config(base, {**search.baseline_params(base), "channels": 8})
    with pytest.raises(RcpbError, match="another baseline id"):
        search.open_study(tmp_path, other)


def test_lock_refuses_a_second_search(tmp_path):
    with search.study_lock(tmp_path):
        code = ("import sys; from pathlib import Path; from rcpb import search\n"
                "try:\n    search.study_lock(Path(sys.argv[1])).__enter__()\n"
                "except Exception as e:\n    print(type(e).__name__)")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert out.stdout.strip() == "RcpbError"
    with search.study_lock(tmp_path):          # released: can be taken again
        pass


def test_trial_killed_before_its_draws_is_not_counted(tmp_path, make_dataset, monkeypatch):
    from rcpb.config import load_config

    config = load_config(_write_setup(tmp_path, make_dataset))
    monkeypatch.chdir(tmp_path)
    study_dir = tmp_path / "s"
    base = search.baseline_config(config, "tiny")
    study = search.open_study(study_dir, base)
    study.ask()                        # killed right after ask: no parameter drawn
    study = search.run_search(config, "tiny", 2, study_dir, threads=1, progress=lambda _: None)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[0].user_attrs["note"] == search.INTERRUPTED_NOTE
