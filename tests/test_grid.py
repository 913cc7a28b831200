"""Grid expansion (rcpb.grid): paper counts, stable ids, partners, config errors."""

import copy
import hashlib
import re
from pathlib import Path

import pytest

from rcpb import grid
from rcpb.errors import RcpbError
from rcpb.config import load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "fixtures" / "demo_config.yaml"   # a richer grid than config.yaml
ID_RE = re.compile(r"^[A-Za-z0-9_.-]+-[0-9a-f]{8}$")


def counts_by_family(configs, split_seed=None):
    out = {}
    for cfg in configs:
        if split_seed is None or cfg["split_seed"] == split_seed:
            out[cfg["family"]] = out.get(cfg["family"], 0) + 1
    return out


@pytest.fixture(scope="module")
def paper_ns():
    return grid.expand(load_config(ROOT / "configs" / "paper_ns2250.yaml"))["ns2250"]


@pytest.fixture(scope="module")
def paper_imagenet():
    return grid.expand(load_config(ROOT / "configs" / "paper_imagenet8k.yaml"))["imagenet8k"]


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
    validate_config(config)
    return config


# ----------------------------------------------------------------------------- paper counts


# SPEC 8 names 6,912 le/ge ablations: 128 variants (4 readouts x 2 channels x 16) x 54 names
# (le1..leT, ge1..geT for T = 2..7). Per variant 18 names keep the lengths of another training:
# at T = 7 (lengths 1..7, where the rm grid removes 1, 2 or 3 adjacent lengths) le4, le5, le6 =
# rm5-7, rm6-7, rm7; ge2, ge3, ge4 = rm1, rm1-2, rm1-3; le7 = ge1 = every length; at T = 2..6
# only leT = ge1 = every length (the rm grid has T = 7 only). 128 x 36 = 4,608 trained,
# 128 x 18 = 2,304 aliases.
PAPER_LEGE = {"trained": 4608, "aliases": 2304}


def test_paper_ns2250_counts_match_spec(paper_ns):
    # SPEC 8: 288 FF, 6,912 recurrent, 6,912 multi-path, 2,304 rm and 6,912 le/ge ablations
    # (of which 2,304 are trained as another configuration)
    assert counts_by_family(paper_ns) == {"ff": 288, "recurrent": 6912, "multipath": 6912,
                                          "ablation_rm": 2304,
                                          "ablation_lege": PAPER_LEGE["trained"]}
    assert not any(c.get("added_as_partner") for c in paper_ns)
    aliases = grid.expand_aliases(load_config(ROOT / "configs" / "paper_ns2250.yaml"))
    assert counts_by_family(aliases["ns2250"]) == {"ablation_lege": PAPER_LEGE["aliases"]}
    assert PAPER_LEGE["trained"] + PAPER_LEGE["aliases"] == 6912


def test_paper_imagenet8k_counts_match_spec(paper_imagenet):
    # SPEC 8 main grid (split 0); appendix H: FF and recurrent, 100 % data, on split 1
    assert counts_by_family(paper_imagenet, split_seed=0) == {
        "ff": 480, "recurrent": 11520, "multipath": 6912, "ablation_rm": 2304,
        "ablation_lege": PAPER_LEGE["trained"]}
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
    assert t3 == {"le1", "le2", "ge2", "ge3"}  # le3 and ge1 keep every length: aliases
    t7 = {c["ablation"] for c in lege if c["iterations"] == 7}
    assert t7 == {"le1", "le2", "le3", "ge5", "ge6", "ge7"}
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


# SHA-256 (first 16 hex digits) of the sorted config ids of the paper configs, stored when the
# cell axis and the controls were added: new axes and families leave every existing id as it was
PAPER_ID_DIGESTS = {"paper_ns2250": "a20115d0e4aea4fb", "paper_imagenet8k": "3be4af89bdeab962"}


def test_paper_ids_are_unchanged(paper_ns, paper_imagenet):
    for name, configs in (("paper_ns2250", paper_ns), ("paper_imagenet8k", paper_imagenet)):
        text = "\n".join(sorted(c["config_id"] for c in configs))
        assert hashlib.sha256(text.encode()).hexdigest()[:16] == PAPER_ID_DIGESTS[name], name


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


def test_square_crops_keep_their_ids_and_rectangular_crops_record_both_sides():
    def ids(crop):
        cfg = small_config()
        cfg["datasets"]["d"]["preprocess"] = {"crop": crop}
        validate_config(cfg)
        return {c["config_id"]: c for c in grid.expand(cfg)["d"]}

    square = ids(36)
    assert set(ids([36, 36])) == set(square)       # [s, s] is the square s: the same models
    wide, tall = ids([36, 64]), ids([64, 36])
    assert not set(wide) & set(square) and not set(wide) & set(tall)
    assert all(c["preprocess"]["crop"] == [36, 64] for c in wide.values())
    for bad in ([36], [36, 0], [36, 64, 2], "36x64"):
        cfg = small_config()
        cfg["datasets"]["d"]["preprocess"] = {"crop": bad}
        with pytest.raises(Exception, match="crop"):
            validate_config(cfg)


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


# ----------------------------------------------------------------------------- aliases


def t4_config(**families):
    """small_config with 1 layer, T = 4 (lengths 1..4), 2-avg, and the given ablation entries."""
    cfg = small_config()
    cfg["grids"]["g"]["recurrent"] = {"recurrent_layers": [1], "iterations": [4],
                                      "readout": ["2-avg"]}
    del cfg["grids"]["g"]["ff"]
    for family, entry in families.items():
        cfg["grids"]["g"][family] = dict(entry)
    validate_config(cfg)
    return cfg


def by_name(configs, family):
    return {c["ablation"]: c for c in configs if c["family"] == family}


def test_t4_aliases_hand_worked():
    """T = 4, rm of 1 or 2 adjacent lengths plus le/ge: le2 = rm3-4, le3 = rm4, ge2 = rm1,
    ge3 = rm1-2; le4 = ge1 = every length = the multi-path partner; le1, ge4 are trained."""
    aliases = {}
    configs = grid.expand(t4_config(ablation_rm={"remove_adjacent": [1, 2]},
                                    ablation_lege={}), aliases=aliases)["d"]
    rm = by_name(configs, "ablation_rm")
    assert sorted(rm) == sorted(["rm1", "rm2", "rm3", "rm4", "rm1-2", "rm2-3", "rm3-4"])
    assert sorted(by_name(configs, "ablation_lege")) == ["ge4", "le1"]
    (mp,) = [c for c in configs if c["family"] == "multipath"]
    shared = by_name(aliases["d"], "ablation_lege")
    assert {name: a["trained_as"] for name, a in shared.items()} == {
        "le2": rm["rm3-4"]["config_id"], "le3": rm["rm4"]["config_id"],
        "ge2": rm["rm1"]["config_id"], "ge3": rm["rm1-2"]["config_id"],
        "le4": mp["config_id"], "ge1": mp["config_id"]}
    assert shared["le2"]["allowed_lengths"] == [1, 2]
    assert shared["le4"]["allowed_lengths"] == [1, 2, 3, 4]
    ids = {c["config_id"] for c in configs}
    for alias in shared.values():
        # the id it would have had as a training, never one of the trainings
        assert alias["config_id"] == grid.config_id(
            {k: v for k, v in alias.items() if k != "trained_as"})
        assert alias["config_id"] not in ids
        assert alias["partner_id"] == mp["config_id"]
        assert alias["family"] == "ablation_lege"
    assert len(aliases["d"]) == 6


def test_le_ge_alone_only_full_sets_are_aliases():
    """Without rm sets the le/ge names are distinct, except le4 = ge1 = the partner, which is
    added to the multi-path family when the grid does not list it."""
    aliases = grid.expand_aliases(t4_config(ablation_lege={}))["d"]
    configs = grid.expand(t4_config(ablation_lege={}))["d"]
    assert sorted(by_name(configs, "ablation_lege")) == sorted(
        ["le1", "le2", "le3", "ge2", "ge3", "ge4"])
    (mp,) = [c for c in configs if c["family"] == "multipath"]
    assert mp.get("added_as_partner")
    assert {a["ablation"]: a["trained_as"] for a in aliases} == {"le4": mp["config_id"],
                                                                 "ge1": mp["config_id"]}


def test_rm_family_keeps_its_trainings_whatever_the_grid_order():
    """Two grids, le/ge in the first, rm in the second: rm3-4 is still the one trained."""
    cfg = t4_config()
    cfg["grids"]["h"] = copy.deepcopy(cfg["grids"]["g"])
    cfg["grids"]["g"]["ablation_lege"] = {}
    cfg["grids"]["h"]["ablation_rm"] = {"remove_adjacent": [2]}
    cfg["datasets"]["d"]["grid"] = ["g", "h"]
    aliases = {}
    configs = grid.expand(cfg, aliases=aliases)["d"]
    rm = by_name(configs, "ablation_rm")
    assert sorted(rm) == ["rm1-2", "rm2-3", "rm3-4"]
    shared = {a["ablation"]: a["trained_as"] for a in aliases["d"]}
    assert shared["le2"] == rm["rm3-4"]["config_id"]
    assert shared["ge3"] == rm["rm1-2"]["config_id"]
    assert "le1" in by_name(configs, "ablation_lege")


def test_rm_names_of_the_same_set_are_trained_once():
    """rm1,2 (listed under sets) removes what rm1-2 (remove_adjacent) removes."""
    aliases = {}
    configs = grid.expand(t4_config(ablation_rm={"remove_adjacent": [2], "sets": ["rm1,2"]}),
                          aliases=aliases)["d"]
    rm = by_name(configs, "ablation_rm")
    assert sorted(rm) == ["rm1-2", "rm2-3", "rm3-4"]
    assert [(a["ablation"], a["trained_as"]) for a in aliases["d"]] == [
        ("rm1,2", rm["rm1-2"]["config_id"])]


def test_aliases_need_every_other_field_equal():
    """le2 of another model seed or readout is not rm3-4 of seed 0: each is trained."""
    configs = grid.expand(t4_config(ablation_rm={"sets": ["rm3-4"], "model_seed": [0]},
                                    ablation_lege={"model_seed": [0, 1]}))["d"]
    le2 = [c for c in configs if c["ablation"] == "le2"]
    assert [c["model_seed"] for c in le2] == [1]


def test_example_config_training_counts_by_hand():
    """The demo fixture, sim_recurrent: 8 FF (2 sizes x 2 fractions x 2 seeds), 64 recurrent
    (2 layers x 2 T x 4 readouts x 2 fractions x 2 seeds), 8 multi-path (1 layer x 2 T x
    2 readouts x 2 seeds), 7 rm (T = 4: rm1..rm4 and rm1-2, rm2-3, rm3-4) and of the 8 le/ge
    names only le1 and ge4 (the other 6 as in test_t4_aliases_hand_worked): 89 trainings,
    95 before aliases. sim_feedforward: 2 FF + 8 recurrent."""
    aliases = {}
    expanded = grid.expand(load_config(DEMO), aliases=aliases)
    assert counts_by_family(expanded["sim_recurrent"]) == {
        "ff": 8, "recurrent": 64, "multipath": 8, "ablation_rm": 7, "ablation_lege": 2}
    assert len(expanded["sim_recurrent"]) == 89
    assert len(expanded["sim_recurrent"]) + len(aliases["sim_recurrent"]) == 95
    assert counts_by_family(aliases["sim_recurrent"]) == {"ablation_lege": 6}
    assert len(expanded["sim_feedforward"]) == 10 and aliases["sim_feedforward"] == []


def test_built_in_example_counts_by_hand():
    """config.yaml: on each teacher 18 FF (depths 1, 2, 3 x 6 seeds) and 12 recurrent (T = 4 x
    no-avg, 2-avg x 6 seeds); on the positive control also 2 multi-path twins (the 2 readouts,
    seed 0), 4 rm ablations of the 2-avg twin (rm1..rm4) and of the 8 le/ge names le1, le2,
    ge3, ge4 (le3 = rm4 and ge2 = rm1 keep the same lengths, le4 = ge1 = the full model)."""
    aliases = {}
    expanded = grid.expand(load_config(ROOT / "config.yaml"), aliases=aliases)
    assert counts_by_family(expanded["teacher_recurrent"]) == {
        "ff": 18, "recurrent": 12, "multipath": 2, "ablation_rm": 4, "ablation_lege": 4}
    assert counts_by_family(expanded["teacher_feedforward"]) == {"ff": 18, "recurrent": 12}
    assert counts_by_family(aliases["teacher_recurrent"]) == {"ablation_lege": 4}
    for configs in expanded.values():
        assert not any(c.get("added_as_partner") for c in configs)
        recurrent = [c for c in configs if c["family"] == "recurrent"]
        assert {c["model_seed"] for c in recurrent} == set(range(6))   # 6 pairs per cell


def test_grid_command_counts_aliases(capsys):
    from rcpb.cli import main

    assert main(["grid", str(DEMO)]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines()
               if line.startswith("sim_recurrent") and "ablation_lege" in line)
    assert row[2:] == ["0", "2", "0", "6"]  # split seed, trainings, added, aliases
    assert "aliases" in out


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
        validate_config(cfg)
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
    expanded = grid.expand(load_config(DEMO))
    families = {c["family"] for c in expanded["sim_recurrent"]}
    # the controls: tests/test_controls.py
    assert families == set(grid.FAMILIES) - set(grid.CONTROL_FAMILIES)
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


# ----------------------------------------------------------------------------- packs


def test_packs_cover_every_configuration_once_in_groups_of_one_structure():
    from rcpb.pack.kinds import pack_key

    configs = grid.expand(load_config(DEMO))["sim_recurrent"]
    packs = grid.packs(configs, 3, "cuda")
    members = [c["config_id"] for pack in packs.values() for c in pack]
    assert sorted(members) == sorted(c["config_id"] for c in configs)  # each exactly once
    per_key = {}
    for cfg in configs:
        per_key[pack_key(cfg)] = per_key.get(pack_key(cfg), 0) + 1
    for pack_id, pack in packs.items():
        keys = {pack_key(c) for c in pack}
        assert len(keys) == 1 and 1 <= len(pack) <= 3
        (key,) = keys
        # id: the key's readable head, then 8 hex digits of the members' ids
        text = "\n".join(c["config_id"] for c in pack)
        assert pack_id == (key.rsplit("-", 1)[0] + "-"
                           + hashlib.sha256(text.encode()).hexdigest()[:8])
        assert [c["config_id"] for c in pack] == sorted(c["config_id"] for c in pack)
    # a structure with n trainings fills ceil(n / 3) packs, all full but the last
    assert len(packs) == sum(-(-n // 3) for n in per_key.values())
    # the example's 4 feed-forward models of 3 blocks: one pack of 3 and one of 1
    ff3 = sorted(len(p) for p in packs.values() if p[0]["family"] == "ff" and p[0]["blocks"] == 3)
    assert ff3 == [1, 3]


def test_cpu_packs_group_by_architecture_and_size():
    from rcpb.pack.kinds import job_key

    configs = grid.expand(load_config(DEMO))["sim_recurrent"]
    packs = grid.packs(configs, 8)     # device cpu: the loop engine takes any structures
    assert sorted(c["config_id"] for p in packs.values() for c in p) == sorted(
        c["config_id"] for c in configs)
    per_key = {}
    for cfg in configs:
        per_key[job_key(cfg)] = per_key.get(job_key(cfg), 0) + 1
    assert len(packs) == sum(-(-n // 8) for n in per_key.values())
    for pack in packs.values():
        sizes = {(c["arch"], c["channels"], c.get("blocks"), c.get("recurrent_layers"))
                 for c in pack}
        assert len(sizes) == 1
    # fewer, fuller jobs than grouping by structure
    assert len(packs) < len(grid.packs(configs, 8, "cuda"))


def test_packs_are_the_same_for_the_same_grid_in_any_order():
    configs = grid.expand(load_config(DEMO))["sim_recurrent"]
    first = grid.packs(configs, 4, "cuda")
    again = grid.packs(list(reversed(configs)), 4, "cuda")
    assert list(first) == list(again)
    assert {k: [c["config_id"] for c in v] for k, v in first.items()} == {
        k: [c["config_id"] for c in v] for k, v in again.items()}


def test_new_structure_keeps_every_pack_id_and_new_seed_changes_only_its_kinds():
    base = small_config()
    before = grid.packs(grid.expand(base)["d"], 2)

    # new channel width: new structures only, every existing pack keeps its id and members
    wider = small_config(channels=[8, 16])
    after = grid.packs(grid.expand(wider)["d"], 2)
    assert set(before) < set(after)
    new_members = {c["config_id"] for p in set(after) - set(before) for c in after[p]}
    assert new_members == ({c["config_id"] for c in grid.expand(wider)["d"]}
                           - {c["config_id"] for c in grid.expand(base)["d"]})

    # a second fraction for the feed-forward models only: the recurrent packs keep their ids
    more_ff = copy.deepcopy(base)
    more_ff["grids"]["g"]["ff"]["train_fraction"] = [0.5, 1.0]
    changed = grid.packs(grid.expand(more_ff)["d"], 2)
    kept = {p for p in before if before[p][0]["family"] == "recurrent"}
    assert kept and kept <= set(changed)
    assert all(before[p][0]["family"] == "ff" for p in set(before) - set(changed))


def test_pack_size_one_is_one_job_per_training():
    configs = grid.expand(small_config())["d"]
    packs = grid.packs(configs, 1)
    assert len(packs) == len(configs) and all(len(p) == 1 for p in packs.values())


def test_paper_grid_packs_are_far_fewer_jobs_than_trainings(paper_ns):
    packs = grid.packs(paper_ns, 64)
    assert sum(map(len, packs.values())) == len(paper_ns)
    assert max(map(len, packs.values())) <= 64
    assert len(packs) < len(paper_ns) / 3


def test_pack_settings_device_defaults_and_values():
    config = small_config()
    assert grid.pack_settings(config) == (grid.PACK_DEFAULTS["cpu"]["pack_size"],
                                          grid.PACK_DEFAULTS["cpu"]["pack_slots"])
    config["device"] = "cuda"
    assert grid.pack_settings(config) == (grid.PACK_DEFAULTS["cuda"]["pack_size"],
                                          grid.PACK_DEFAULTS["cuda"]["pack_slots"])
    config.update(pack_size=5, pack_slots=2)
    assert grid.pack_settings(config) == (5, 2)
    for key in ("pack_size", "pack_slots"):
        with pytest.raises(RcpbError, match=key):
            grid.pack_settings({**config, key: 0})
    with pytest.raises(RcpbError, match="pack_size"):
        grid.packs([], 0)


@pytest.mark.parametrize("key, value", [("pack_size", 0), ("pack_slots", -1),
                                        ("pack_size", 2.5), ("pack_slots", "8")])
def test_pack_settings_must_be_positive_integers(key, value):
    config = copy.deepcopy(small_config())
    config[key] = value
    with pytest.raises(RcpbError, match=key):
        validate_config(config)


def test_example_and_paper_configs_set_pack_settings():
    for path in ("config.yaml", "configs/paper_ns2250.yaml", "configs/paper_imagenet8k.yaml",
                 "configs/ground_truths.yaml"):
        config = load_config(ROOT / path)
        size, slots = grid.pack_settings(config)
        assert size >= 1 and slots >= 1, path
        assert config["pack_size"] == size and config["pack_slots"] == slots, path
