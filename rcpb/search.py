"""Cell search: an Optuna TPE study over recurrent cells, judged on validation data (docs/search.md).

``rcpb search CONFIG --dataset NAME --trials N`` (:mod:`rcpb.commands.search`) runs
:func:`run_search`, then :func:`run_comparison`. Everything lives in the study folder,
``results/search/<dataset>/`` by default:

- ``study.log``      Optuna's storage (``JournalStorage`` on a ``JournalFileBackend``): every
                     trial's parameters, state and value, appended as they happen;
- ``trials/<config_id>/``  one folder per distinct trial configuration, trained by the project's
                     own pack runner (:func:`rcpb.pack.run.run_pack`: ``config.json``,
                     ``log.csv``, ``best.pt``, ``paths.json`` and, last, ``metrics.json``);
- ``trainings.log``  one line each time a training starts or ends (``start``/``end`` and the
                     config id): what was trained when, and how often;
- ``trials.csv``     the study's trials (parameters, state, validation value, config id);
- ``final/<config_id>/``  the seeds of the best cell, the RCPB baseline and the FF baselines;
- ``final.csv``      their validation and test performance per seed, and
  ``search_summary.json`` the study's facts the comparison's text quotes;
- ``comparison.csv`` / ``comparison.md``  the paired statistics on test (units: seeds);
- ``lock``           held (``flock``) while a search runs, so that two runs never share a study.

The search space (:data:`SPACE`, reasons in docs/search.md): the cell (:data:`rcpb.cell_kinds.
CELLS`), the activation, the number of iterations T and the channel count. Every other field of
a trial's configuration is the *baseline*'s (:func:`baseline_config`): the dataset's first
recurrent configuration of its grid, at ``model_seed`` 0 and with the rcpb cell, trained with
the config's ``training`` budget. A trial's configuration is made like a grid configuration
(family ``recurrent``, :func:`rcpb.grid.config_id`), so the trial that asks for the baseline's
values has the baseline's id, and two trials that ask for the same values share one folder and
one training.

Objective: the validation performance of the trial's model (``val`` of its ``metrics.json``):
``cc_norm2`` (mean over neurons with a defined noise ceiling), or ``cc_raw`` when the data
have no ceiling (the measure is fixed by the first finished trial and stored in the study).
Test data are never read during the search: the test metrics the pack runner writes into a
trial's folder are left unread, and ``trials.csv`` has none.

Resuming. A trial's folder holds ``metrics.json`` only once its training finished, and the pack
runner leaves such a folder alone. A run killed at any point leaves the trials it was training
in the RUNNING state in ``study.log``; the next run (holding the lock, so no other process owns
them) trains those trials' configurations again from scratch and tells their values to the same
trial numbers, then asks for new trials until ``N`` trials are finished (COMPLETE, or FAIL for a
training that diverged: a failure counts against the budget, since asking again would give TPE
the same point). Finished trials are never retrained; a trial whose configuration was trained
before (by an earlier trial) is told the stored value without training.

Comparison (:func:`run_comparison`): the best trial (highest validation value; ties: lowest
trial number) is retrained with model seeds ``1 .. S`` (``--seeds S``), together with the
baseline and its size-matched FF partner (``2L + 1`` blocks, :func:`rcpb.grid.partner_config`)
and, when the best cell's channels or activation differ from the baseline's, the best cell's own
size-matched FF partner, all at the same seeds. Seeds from 1: seed 0 is the model the best cell
was chosen by, so no model of the comparison took part in the choice. Each pair of roles is
compared on TEST with the project's paired statistics by the workflow's ``python -m
analysis.search`` (``analysis.tables._paired_columns``, i.e. ``analysis.stats.paired_comparison``;
pairs matched on ``model_seed``, the seeds being the units), run as a subprocess: rcpb does not
import the workflow's ``analysis``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import sys
import time
from pathlib import Path

from rcpb import cell_kinds, grid
from rcpb.errors import RcpbError

#: The search space: name -> ("categorical", choices) or ("int", low, high, step).
#: docs/search.md says why these and not more.
SPACE = {
    "cell": ("categorical", cell_kinds.CELLS),
    "act": ("categorical", ("relu", "softplus")),
    "iterations": ("int", 2, 6, 1),
    "channels": ("int", 4, 16, 4),
}
#: bumped when SPACE changes: a study made with another space is not resumed
SPACE_VERSION = 1

STUDY_FILE = "study.log"
TRAININGS_LOG = "trainings.log"
TRIALS_DIR = "trials"
FINAL_DIR = "final"
LOCK_FILE = "lock"
METRICS = ("cc_norm2", "cc_raw")
#: the final seeds start here: seed 0 is the one every trial was trained with
FIRST_FINAL_SEED = 1

TRIAL_COLUMNS = ["number", "state", "value", "metric", *SPACE, "config_id", "n_params",
                 "trained_as", "note"]
FINAL_COLUMNS = ["role", "config_id", "model_seed", "cell", "act", "iterations", "channels",
                 "blocks", "n_params", "val_perf", "test_perf", "metric"]
#: the roles of the comparison's models (analysis.search describes them)
ROLES = ("best", "rcpb", "ff", "best_ff")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- configurations


def baseline_config(config: dict, dataset: str) -> dict:
    """The baseline of ``dataset`` in the (validated) workflow ``config``: its grid's first
    recurrent configuration with ``model_seed`` 0 and the rcpb cell (``cell`` absent)."""
    expanded = grid.expand(config)
    if dataset not in expanded:
        raise RcpbError(f"--dataset {dataset}: not a dataset of the config (datasets: "
                        f"{', '.join(expanded) or 'none'}).")
    recurrent = [c for c in expanded[dataset] if c["family"] == "recurrent"]
    if not recurrent:
        raise RcpbError(f"dataset {dataset}: its grid has no recurrent configuration; the search "
                        "starts from the grid's first one (add a 'recurrent' family).")
    first = recurrent[0]
    values = {k: first[k] for k in grid.COMMON_AXES + grid.RECURRENT_AXES}
    values["model_seed"] = 0
    return _make_recurrent(first, values)


def _base(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("dataset", "dataset_file", "preprocess", "train")}


def _make_recurrent(like: dict, values: dict) -> dict:
    """A recurrent configuration with the data and training of ``like`` and the axes
    ``values`` (``cell`` optional: rcpb), its id made as the grid makes it."""
    cfg = grid._make("recurrent", _base(like), values)
    return grid.training_config(cfg)


def trial_config(baseline: dict, params: dict, model_seed: int = 0) -> dict:
    """The baseline with a trial's ``params`` (:data:`SPACE`) and ``model_seed``."""
    unknown = sorted(set(params) - set(SPACE))
    if unknown:
        raise RcpbError(f"unknown search parameter(s) {', '.join(unknown)}")
    values = {k: baseline[k] for k in grid.COMMON_AXES + grid.RECURRENT_AXES}
    values.update({k: v for k, v in params.items() if k != "cell"})
    values["cell"] = params.get("cell", baseline.get("cell") or cell_kinds.DEFAULT_CELL)
    values["model_seed"] = int(model_seed)
    return _make_recurrent(baseline, values)


def ff_partner(cfg: dict) -> dict:
    """The size-matched FF model of a recurrent configuration (``2L + 1`` blocks, its channels,
    activation and seed)."""
    return grid.training_config(grid.partner_config({**cfg, "family": "recurrent"}))


def baseline_params(baseline: dict) -> dict:
    """The baseline's point of the search space (the first trial asks for it)."""
    return {"cell": baseline.get("cell") or cell_kinds.DEFAULT_CELL, "act": baseline["act"],
            "iterations": baseline["iterations"], "channels": baseline["channels"]}


def in_space(params: dict) -> bool:
    for name, spec in SPACE.items():
        value = params[name]
        if spec[0] == "categorical" and value not in spec[1]:
            return False
        if spec[0] == "int" and (value < spec[1] or value > spec[2]
                                 or (value - spec[1]) % spec[3]):
            return False
    return True


def suggest(trial) -> dict:
    """A trial's parameters, drawn from :data:`SPACE`."""
    params = {}
    for name, spec in SPACE.items():
        if spec[0] == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec[1]))
        else:
            params[name] = trial.suggest_int(name, spec[1], spec[2], step=spec[3])
    return params


# ----------------------------------------------------------------------------- study


def _optuna():
    try:
        import optuna
    except ModuleNotFoundError:
        raise RcpbError("rcpb search needs optuna: pip install -e . (it is a dependency)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(study_dir: Path, baseline: dict, sampler_seed: int = 0):
    """The study of ``study_dir`` (created if new); RcpbError if it was made for another
    baseline or search space."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(study_dir / STUDY_FILE)))
    name = f"search-{baseline['dataset']}"
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=5,
                                         constant_liar=True)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    made = study.user_attrs
    want = {"baseline_id": baseline["config_id"], "space_version": SPACE_VERSION}
    if not made:
        for key, value in want.items():
            study.set_user_attr(key, value)
        study.set_user_attr("space", json.loads(json.dumps(SPACE)))
        if in_space(baseline_params(baseline)):
            study.enqueue_trial(baseline_params(baseline))   # trial 0: the RCPB baseline
    else:
        for key, value in want.items():
            if made.get(key) != value:
                raise RcpbError(
                    f"{study_dir / STUDY_FILE} holds a study of another {key.replace('_', ' ')} "
                    f"({made.get(key)!r}, now {value!r}): the config or the search space "
                    "changed. Use another --study-dir, or delete that folder to start over.")
    return study


@contextlib.contextmanager
def study_lock(study_dir: Path):
    """Hold ``study_dir/lock`` (``flock``, released by the OS when the process dies)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    with open(study_dir / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RcpbError(f"another rcpb search is running on {study_dir} (it holds "
                            f"{study_dir / LOCK_FILE}); wait for it or stop it.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: note of a trial killed before all its parameters were drawn (failed, not counted)
INTERRUPTED_NOTE = "interrupted before its parameters were drawn"


def _finished(trial) -> bool:
    """COMPLETE, or FAIL for a training that failed (counted against the budget)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("note") != INTERRUPTED_NOTE)


def _trainings_log(study_dir: Path, event: str, folders) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with open(study_dir / TRAININGS_LOG, "a", encoding="utf-8") as f:
        for folder in folders:
            f.write(f"{stamp} {event} {Path(folder).name}\n")
        f.flush()


def train_members(members: list[tuple[dict, Path]], *, device: str | None, threads: int | None,
                  study_dir: Path, slots: int | None = None) -> dict[str, str]:
    """Train ``(configuration, folder)`` pairs in one pack (the project's pack runner; finished
    folders are left alone); ``trainings.log`` gets a start and an end line per training."""
    import torch

    from rcpb.commands.train import _torch_settings, resolve_config
    from rcpb.pack.run import run_pack

    unique: dict[str, tuple[dict, Path]] = {}
    for cfg, out in members:
        unique.setdefault(str(out), (cfg, Path(out)))
    resolved = [(resolve_config(cfg, device=device, threads=threads), out)
                for cfg, out in unique.values()]
    todo = [out for _, out in resolved if not (out / "metrics.json").exists()]
    if not todo:
        return {str(out): "done-before" for _, out in resolved}
    device = resolved[0][0]["device"]
    if device == "cuda":
        from rcpb.process.gpu_slot import claim_gpu

        claim_gpu()
        if not torch.cuda.is_available():
            raise RcpbError("device cuda: no CUDA device is available; use --device cpu")
    _trainings_log(study_dir, "start", todo)
    with _torch_settings(torch, resolved[0][0]["threads"], device):
        status = run_pack(resolved, slots=slots)
    errors = [out for out, s in status.items() if s == "error"]
    if errors:
        raise RcpbError(f"{len(errors)} training(s) hit an error after training (see the log "
                        f"above): {', '.join(errors)}; rerun to retry them.")
    _trainings_log(study_dir, "end", [out for out in todo if status.get(str(out)) != "done-before"])
    return status


def read_metrics(folder: Path) -> dict:
    from rcpb.atomic_files import read_json

    return read_json(folder / "metrics.json")


def validation_value(metrics: dict, metric: str) -> float:
    """The search's objective from a ``metrics.json``: ``val[metric]`` (NaN when failed)."""
    if "val" not in metrics:
        return math.nan
    value = metrics["val"].get(metric)
    return math.nan if value is None else float(value)


def choose_metric(metrics: dict) -> str:
    """``cc_norm2`` when the validation data have a noise ceiling, else ``cc_raw``."""
    value = validation_value(metrics, "cc_norm2")
    return "cc_norm2" if math.isfinite(value) else "cc_raw"


def run_search(config: dict, dataset: str, trials: int, study_dir: Path, *,
               sampler_seed: int = 0, batch: int = 1, device: str | None = None,
               threads: int | None = None, progress=_say):
    """Run the study until ``trials`` trials are finished (see the module doc); returns it.

    ``batch``: trials asked at once and trained as one pack (``constant_liar`` keeps TPE from
    proposing the same point for each; default 1: one trial per training call).
    """
    if trials < 1:
        raise RcpbError(f"--trials {trials}: must be >= 1")
    if batch < 1:
        raise RcpbError(f"--batch {batch}: must be >= 1")
    _optuna()
    from optuna.trial import TrialState

    baseline = baseline_config(config, dataset)
    if not Path(baseline["dataset_file"]).exists():
        raise RcpbError(f"dataset file {baseline['dataset_file']} not found; the workflow makes "
                        f"a simulated one (snakemake -c1 {baseline['dataset_file']}).")
    study = open_study(study_dir, baseline, sampler_seed)
    trials_dir = study_dir / TRIALS_DIR

    # trials a killed run left RUNNING: nobody else holds the lock, so they are ours to redo
    pending = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in [t for t in pending if set(t.params) != set(SPACE)]:
        # killed between ask and its last draw: no configuration to retry; not counted
        study._storage.set_trial_user_attr(t._trial_id, "note", INTERRUPTED_NOTE)
        study.tell(t.number, state=TrialState.FAIL)
    pending = [t for t in pending if set(t.params) == set(SPACE)]
    for t in pending:
        study._storage.set_trial_user_attr(t._trial_id, "config_id",
                                           trial_config(baseline, t.params)["config_id"])
    if pending:
        progress(f"rcpb search: resuming; {len(pending)} interrupted trial(s) "
                 f"({', '.join(str(t.number) for t in pending)}) are trained again")
    while True:
        done = sum(1 for t in study.get_trials(deepcopy=False) if _finished(t))
        if done >= trials and not pending:
            break
        asked = []
        while done + len(pending) + len(asked) < trials and len(pending) + len(asked) < batch:
            trial = study.ask()
            params = suggest(trial)
            trial.set_user_attr("config_id", trial_config(baseline, params)["config_id"])
            asked.append((trial.number, trial._trial_id, params))
        todo = [(t.number, t._trial_id, dict(t.params)) for t in pending] + asked
        pending = []
        if not todo:
            break
        members = []
        for number, trial_id, params in todo:
            cfg = trial_config(baseline, params)
            members.append((number, trial_id, cfg, trials_dir / cfg["config_id"]))
        fresh = sorted({m[2]["config_id"] for m in members
                        if not (m[3] / "metrics.json").exists()})
        progress(f"rcpb search: trial(s) {', '.join(str(m[0]) for m in members)}: "
                 + "; ".join(_params_text(p) for _, _, p in todo)
                 + f" ({len(fresh)} to train)")
        train_members([(cfg, out) for _, _, cfg, out in members], device=device,
                      threads=threads, study_dir=study_dir)
        for number, trial_id, cfg, out in members:
            metrics = read_metrics(out)
            metric = study.user_attrs.get("metric")
            if metric is None and "val" in metrics:
                metric = choose_metric(metrics)
                study.set_user_attr("metric", metric)
            value = validation_value(metrics, metric or "cc_norm2")
            if "failed" in metrics or not math.isfinite(value):
                why = metrics.get("failed") or f"validation {metric} is not finite"
                study._storage.set_trial_user_attr(trial_id, "note", f"failed: {why}")
                study.tell(number, state=TrialState.FAIL)
                progress(f"rcpb search: trial {number} failed ({why})")
            else:
                study.tell(number, value)
                best = study.best_trial
                progress(f"rcpb search: trial {number}: val {metric} {value:.4f} "
                         f"(best so far: trial {best.number}, {best.value:.4f})")
        write_trials_csv(study, study_dir)
    write_trials_csv(study, study_dir)
    return study


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} {params[k]}" for k in SPACE if k in params)


def write_trials_csv(study, study_dir: Path) -> None:
    from rcpb.atomic_files import write_csv_atomic

    metric = study.user_attrs.get("metric") or ""
    seen: set[str] = set()
    rows = []
    for t in study.get_trials(deepcopy=False):
        cid = t.user_attrs.get("config_id", "")
        n_params = ""
        folder = study_dir / TRIALS_DIR / cid
        if cid and (folder / "metrics.json").exists():
            n_params = read_metrics(folder).get("n_params", "")
        rows.append({
            "number": t.number, "state": t.state.name,
            "value": "" if t.value is None else t.value, "metric": metric,
            **{k: t.params.get(k, "") for k in SPACE}, "config_id": cid, "n_params": n_params,
            "trained_as": "" if cid not in seen else "an earlier trial's training",
            "note": t.user_attrs.get("note", ""),
        })
        if t.state.name == "COMPLETE":
            seen.add(cid)
    write_csv_atomic(study_dir / "trials.csv", rows, TRIAL_COLUMNS)


def best_trial(study):
    """The COMPLETE trial with the highest value (ties: the lowest number)."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        raise RcpbError("the study has no complete trial: nothing to compare (every trial "
                        "failed; see trials.csv)")
    return max(complete, key=lambda t: (t.value, -t.number))


# ----------------------------------------------------------------------------- comparison


def final_members(baseline: dict, best_params: dict, seeds: int) -> list[tuple[str, dict]]:
    """``(role, configuration)`` of every model of the comparison (:data:`ROLES`), seeds
    ``FIRST_FINAL_SEED .. FIRST_FINAL_SEED + seeds - 1``."""
    out = []
    for seed in range(FIRST_FINAL_SEED, FIRST_FINAL_SEED + seeds):
        best = trial_config(baseline, best_params, seed)
        rcpb_ = trial_config(baseline, baseline_params(baseline), seed)
        ff = ff_partner(rcpb_)
        out += [("best", best), ("rcpb", rcpb_), ("ff", ff)]
        best_ff = ff_partner(best)
        if best_ff["config_id"] != ff["config_id"]:
            out.append(("best_ff", best_ff))
    return out


def final_rows(members: list[tuple[str, dict]], folders: dict[str, Path], metric: str
               ) -> list[dict]:
    """One row per (role, model): validation and test ``metric`` from its ``metrics.json``."""
    rows = []
    for role, cfg in members:
        metrics = read_metrics(folders[cfg["config_id"]])
        perf = {}
        for split in ("val", "test"):
            value = (metrics.get(split) or {}).get(metric)
            perf[split] = math.nan if value is None else float(value)
        rows.append({
            "role": role, "config_id": cfg["config_id"], "model_seed": cfg["model_seed"],
            "cell": cfg.get("cell") or (cell_kinds.DEFAULT_CELL if cfg["arch"] != "ff" else ""),
            "act": cfg["act"], "iterations": cfg.get("iterations") or "",
            "channels": cfg["channels"], "blocks": cfg.get("blocks") or "",
            "n_params": metrics.get("n_params", ""), "val_perf": perf["val"],
            "test_perf": perf["test"], "metric": metric,
        })
    return rows


def run_comparison(config: dict, dataset: str, study, study_dir: Path, seeds: int, *,
                   device: str | None = None, threads: int | None = None,
                   progress=_say) -> Path:
    """Retrain the best cell and the baselines with ``seeds`` seeds, write ``final.csv`` and
    ``search_summary.json``, and have the workflow's ``python -m analysis.search`` write
    ``comparison.csv`` and ``comparison.md`` (see the module doc); returns the csv's path."""
    import os
    import subprocess

    from rcpb.atomic_files import write_csv_atomic, write_json_atomic
    from optuna.trial import TrialState

    if seeds < 1:
        raise RcpbError(f"--seeds {seeds}: must be >= 1")
    baseline = baseline_config(config, dataset)
    best = best_trial(study)
    metric = study.user_attrs.get("metric") or "cc_norm2"
    members = final_members(baseline, dict(best.params), seeds)
    folders = {cfg["config_id"]: study_dir / FINAL_DIR / cfg["config_id"] for _, cfg in members}
    progress(f"rcpb search: best trial {best.number} ({_params_text(best.params)}, val {metric} "
             f"{best.value:.4f}); training {len(folders)} models for the comparison "
             f"(seeds {FIRST_FINAL_SEED}..{FIRST_FINAL_SEED + seeds - 1})")
    train_members([(cfg, folders[cfg["config_id"]]) for _, cfg in members], device=device,
                  threads=threads, study_dir=study_dir)
    write_csv_atomic(study_dir / "final.csv", final_rows(members, folders, metric),
                     FINAL_COLUMNS)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    write_json_atomic(study_dir / "search_summary.json", {
        "dataset": dataset, "metric": metric, "complete_trials": len(complete),
        "distinct_configurations": len({t.user_attrs.get("config_id") for t in complete}),
        "best_trial": best.number, "best_params": dict(best.params), "best_value": best.value,
        "seeds": [FIRST_FINAL_SEED, FIRST_FINAL_SEED + seeds - 1]})
    # the statistics are the workflow's (analysis/, next to rcpb in the checkout installed with
    # pip install -e .), run as the workflow's jobs run them: rcpb does not import analysis
    root = Path(__file__).resolve().parents[1]
    if not (root / "analysis" / "search.py").exists():
        raise RcpbError(f"cannot find the workflow's analysis/ next to rcpb at {root}; run rcpb "
                        "search from a checkout installed with 'pip install -e .'.")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    out = study_dir / "comparison.csv"
    done = subprocess.run([sys.executable, "-m", "analysis.search", str(study_dir / "final.csv"),
                           "--summary", str(study_dir / "search_summary.json"),
                           "--csv", str(out), "--md", str(study_dir / "comparison.md")],
                          env=env)
    if done.returncode != 0:
        raise RcpbError(f"python -m analysis.search failed (exit {done.returncode}); the "
                        f"models are trained: rerun to retry the comparison alone")
    return out
