"""Grid expansion (rcpb.grid): paper counts, stable ids, partners, config errors."""

import copy
import re
from pathlib import Path

import pytest

from rcpb import grid
from rcpb.errors import RcpbError

ROOT = Path(__file__).resolve().parents[1]
ID_RE = re.compile(r"^[A-Za-z0-9_.-]+-[0-9a-f]{8}$")


def counts_by_family(configs, split_seed=None):
    out = {}
    for cfg in configs:
        if split_seed is None or cfg["split_seed"] == split_seed:
            out[cfg["family"]] = out.get(cfg["family"], 0) + 1
    return out


@pytest.fixture(scope="module")
def paper_ns():
    return grid.expand(grid.load_config(ROOT / "configs" / "paper_ns2250.yaml"))["ns2250"]


@pytest.fixture(scope="module")
def paper_imagenet():
    return grid.expand(grid.load_config(ROOT / "configs" / "paper_imagenet8k.yaml"))["imagenet8k"]


def small_config(**common):
    """A minimal valid workflow config (defaults filled by the schema)."""
    axes = {"train_fraction": [1.0], "channels": [8], "act": ["relu"],
            "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0]}
    axes.update(common)
    config = {
        "datasets": {"d": {"file": "d.h5", "grid": "g"}},
        "grids": {"g": {"common": axes, "ff": {"blocks": [3, 5]},
                        "recurrent": {"recurrent_layers": [1, 2], "iterations": [2, 4],
                                      "readout": ["no-avg", "2-avg"]}}},
    }
    grid.validate_config(config)
    return config


# ----------------------------------------------------------------------------- paper counts


def test_paper_ns2250_counts_match_spec(paper_ns):
    # SPEC 8: 288 FF, 6,912 recurrent, 6,912 multi-path, 2,304 rm and 6,912 le/ge ablations
    assert counts_by_family(paper_ns) == {"ff": 288, "recurrent": 6912, "multipath": 6912,
                                          "ablation_rm": 2304, "ablation_lege": 6912}
    assert not any(c.get("added_as_partner") for c in paper_ns)


def test_paper_imagenet8k_counts_match_spec(paper_imagenet):
    # SPEC 8 main grid (split 0); appendix H: FF and recurrent, 100 % data, on split 1
    assert counts_by_family(paper_imagenet, split_seed=0) == {
        "ff": 480, "recurrent": 11520, "multipath": 6912, "ablation_rm": 2304,
        "ablation_lege": 6912}
    assert counts_by_family(paper_imagenet, split_seed=1) == {"ff": 160, "recurrent": 3840}
    split1 = [c for c in paper_imagenet if c["split_seed"] == 1]
    assert {c["train_fraction"] for c in split1} == {1.0}
    assert not any(c.get("added_as_partner") for c in paper_imagenet)


def test_paper_grid_axes(paper_ns, paper_imagenet):
    mp = [c for c in paper_imagenet if c["family"] == "multipath"]
    assert {c["channels"] for c in mp} == {8, 16, 32}
    rm = [c for c in paper_ns if c["family"] == "ablation_rm"]
    assert {c["channels"] for c in rm} == {16, 32}
    assert {c["iterations"] for c in rm} == {7}
    # 7 single lengths + 6 pairs + 5 triples of adjacent lengths out of 1..7
    assert len({c["ablation"] for c in rm}) == 18
    assert {"rm1", "rm7", "rm1-2", "rm6-7", "rm1-3", "rm5-7"} <= {c["ablation"] for c in rm}
    lege = [c for c in paper_ns if c["family"] == "ablation_lege"]
    t3 = {c["ablation"] for c in lege if c["iterations"] == 3}
    assert t3 == {"le1", "le2", "le3", "ge1", "ge2", "ge3"}
    # every configuration carries the paper's training budget
    assert {c["train"]["max_steps"] for c in paper_ns} == {40000}
    assert {c["train"]["eval_every"] for c in paper_ns} == {50}


# ----------------------------------------------------------------------------- ids


def test_ids_are_unique_and_well_formed(paper_ns):
    ids = [c["config_id"] for c in paper_ns]
    assert len(set(ids)) == len(ids)
    assert all(ID_RE.match(i) for i in ids)
    c = next(c for c in paper_ns if c["family"] == "recurrent" and c["iterations"] == 4
             and c["recurrent_layers"] == 1 and c["readout"] == "2-avg")
    assert c["config_id"].startswith("rec-L1-T4-2avg-c")


def test_same_config_same_id_and_id_is_hash_of_config():
    a = grid.expand(small_config())["d"]
    b = grid.expand(small_config())["d"]
    assert [c["config_id"] for c in a] == [c["config_id"] for c in b]
    for cfg in a:
        assert grid.config_id(cfg) == cfg["config_id"]


def test_changed_value_changes_id_and_new_value_keeps_old_ids():
    base = {c["config_id"] for c in grid.expand(small_config())["d"]}
    # a different training budget is a different model: every id changes
    cfg = small_config()
    cfg["training"]["max_steps"] = 100
    changed = {c["config_id"] for c in grid.expand(cfg)["d"]}
    assert not base & changed
    # a new seed adds configurations and keeps the existing ones (exactly the new jobs)
    more = {c["config_id"] for c in grid.expand(small_config(model_seed=[0, 1]))["d"]}
    assert base < more
    assert len(more) == 2 * len(base)


def test_execution_settings_and_file_location_do_not_change_ids():
    base = {c["config_id"] for c in grid.expand(small_config())["d"]}
    cfg = small_config()
    cfg["device"], cfg["threads"] = "cuda", 8
    cfg["datasets"]["d"]["file"] = "elsewhere/d.h5"
    assert {c["config_id"] for c in grid.expand(cfg)["d"]} == base


def test_integer_and_float_fractions_give_the_same_id():
    a = {c["config_id"] for c in grid.expand(small_config(train_fraction=[1]))["d"]}
    b = {c["config_id"] for c in grid.expand(small_config(train_fraction=[1.0]))["d"]}
    assert a == b


# ----------------------------------------------------------------------------- partners


def test_partners_exist_and_match(paper_ns):
    by_id = {c["config_id"]: c for c in paper_ns}
    common = ("split_seed", "train_fraction", "channels", "act", "first_block_order", "loss",
              "model_seed")
    for cfg in paper_ns:
        if cfg["family"] == "ff":
            assert cfg["partner_id"] is None
            continue
        partner = by_id[cfg["partner_id"]]
        assert all(partner[k] == cfg[k] for k in common)
        if cfg["family"] == "recurrent":
            assert partner["family"] == "ff"
            assert partner["blocks"] == 2 * cfg["recurrent_layers"] + 1
        else:
            expected = "recurrent" if cfg["family"] == "multipath" else "multipath"
            assert partner["family"] == expected
            assert partner["ablation"] is None
            assert (partner["recurrent_layers"], partner["iterations"], partner["readout"]) == (
                cfg["recurrent_layers"], cfg["iterations"], cfg["readout"])


def test_missing_partners_are_added_and_counted():
    cfg = small_config()
    del cfg["grids"]["g"]["ff"]
    cfg["grids"]["g"]["ablation_rm"] = {"recurrent_layers": [1], "iterations": [4],
                                        "remove_adjacent": [1], "readout": ["2-avg"]}
    configs = grid.expand(cfg)["d"]
    ids = {c["config_id"] for c in configs}
    assert all(c["partner_id"] in ids for c in configs if c["family"] != "ff")
    counts = grid.count(configs)
    # FF partners of 1- and 2-layer models: blocks 3 and 5, all added
    assert counts[("ff", 0)] == {"total": 2, "added": 2}
    # the ablations (T=4, rm1..rm4) need the unablated multi-path model, which needs nothing new
    assert counts[("ablation_rm", 0)] == {"total": 4, "added": 0}
    assert counts[("multipath", 0)] == {"total": 1, "added": 1}
    assert counts[("recurrent", 0)]["added"] == 0


def test_multipath_inherits_recurrent_axes_and_overrides():
    cfg = small_config(channels=[8, 16])
    cfg["grids"]["g"]["multipath"] = {"channels": [8]}
    configs = grid.expand(cfg)["d"]
    mp = [c for c in configs if c["family"] == "multipath"]
    rec = [c for c in configs if c["family"] == "recurrent"]
    assert len(rec) == 2 * 2 * 2 * 2  # layers x T x readout x channels
    assert len(mp) == len(rec) // 2
    assert {c["channels"] for c in mp} == {8}


def test_training_config_has_contract_fields():
    cfg = grid.expand(small_config())["d"][-1]
    fields = {"config_id", "family", "arch", "dataset", "dataset_file", "preprocess",
              "split_seed", "train_fraction", "channels", "act", "first_block_order", "loss",
              "model_seed", "blocks", "recurrent_layers", "iterations", "readout", "ablation",
              "allowed_lengths", "partner_id", "train"}
    assert fields <= set(grid.training_config(cfg))
    assert "added_as_partner" not in grid.training_config(cfg)
    assert set(cfg["train"]) == {"batch_size", "lr", "lr_decay", "phases", "eval_every",
                                 "patience", "max_steps", "readout_l1", "smoothness",
                                 "data_seed"}


def test_ablation_allowed_lengths():
    cfg = small_config()
    cfg["grids"]["g"]["ablation_rm"] = {"recurrent_layers": [1], "iterations": [4],
                                        "readout": ["2-avg"], "sets": ["rm1,3"],
                                        "remove_adjacent": [2]}
    rm = {c["ablation"]: c["allowed_lengths"] for c in grid.expand(cfg)["d"]
          if c["family"] == "ablation_rm"}
    assert rm == {"rm1-2": [3, 4], "rm2-3": [1, 4], "rm3-4": [1, 2], "rm1,3": [2, 4]}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["grids"]["g"]["recurrent"].update(readout=["mean-avg"]), ["readout", "mean-avg"]),
    (lambda c: c["grids"]["g"]["common"].update(channels=[-8]), ["channels", "-8"]),
    (lambda c: c["grids"]["g"]["recurrent"].update(readouts=["no-avg"]), ["readouts"]),
    (lambda c: c["training"].update(max_step=10), ["max_step"]),
])
def test_schema_errors_name_the_field(edit, words):
    cfg = copy.deepcopy(small_config())
    edit(cfg)
    with pytest.raises(RcpbError) as info:
        grid.validate_config(cfg)
    assert all(w in str(info.value) for w in words)


def test_semantic_errors_name_the_problem():
    cfg = small_config()
    cfg["datasets"]["d"]["grid"] = "nope"
    with pytest.raises(RcpbError, match="no grid 'nope'"):
        grid.expand(cfg)

    cfg = small_config()
    cfg["datasets"]["d"]["simulate"] = {"circuit": "recurrent", "images": "x.h5"}
    with pytest.raises(RcpbError, match="exactly one of 'file'"):
        grid.expand(cfg)

    cfg = small_config()
    cfg["grids"]["g"]["ablation_rm"] = {"iterations": [2], "sets": ["rm5"]}
    with pytest.raises(RcpbError, match="ablation_rm.sets"):
        grid.expand(cfg)

    cfg = small_config()
    del cfg["grids"]["g"]["common"]["loss"]
    with pytest.raises(RcpbError, match="axis loss"):
        grid.expand(cfg)


def test_example_config_expands_with_every_family():
    expanded = grid.expand(grid.load_config(ROOT / "config.yaml"))
    families = {c["family"] for c in expanded["sim_recurrent"]}
    assert families == set(grid.FAMILIES)
    assert not any(c.get("added_as_partner") for cfgs in expanded.values() for c in cfgs)


def test_grid_file_round_trip_and_unchanged_rewrite(tmp_path, paper_ns):
    """Every configuration comes back by id, with the device added; an identical rewrite is a
    no-op that leaves the file's modification time alone."""
    configs = paper_ns[:50] + paper_ns[-50:]
    path = tmp_path / "results" / "ns2250" / grid.GRID_FILE
    assert grid.write_grid_file(path, configs, device="cuda") is True
    assert len(path.read_text().splitlines()) == len(configs)
    for cfg in configs[::7]:
        expected = dict(grid.training_config(cfg), device="cuda")
        assert grid.read_grid_entry(path, cfg["config_id"]) == expected
    mtime = path.stat().st_mtime_ns
    assert grid.write_grid_file(path, configs, device="cuda") is False
    assert path.stat().st_mtime_ns == mtime
    assert grid.write_grid_file(path, configs[:10], device="cuda") is True
    assert len(path.read_text().splitlines()) == 10


def test_grid_file_unknown_id_and_missing_file_name_the_problem(tmp_path, paper_ns):
    path = tmp_path / grid.GRID_FILE
    grid.write_grid_file(path, paper_ns[:3])
    # an id that is a prefix of a real id must not match it
    with pytest.raises(RcpbError, match="holds no configuration with id"):
        grid.read_grid_entry(path, paper_ns[0]["config_id"][:-1])
    with pytest.raises(RcpbError, match="cannot read the grid file"):
        grid.read_grid_entry(tmp_path / "missing.jsonl", paper_ns[0]["config_id"])
