"""The cell axis and the control families of the grid (rcpb.grid, "Cells" and "Controls"):
closed-form conv counts of the wider and deeper controls, the minimally unrolled T, partner ids,
aliases, unchanged ids of existing configurations, schema and grid errors, counts and packs."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from rcpb import cell_kinds, grid
from rcpb.config import validate_config
from rcpb.errors import RcpbError

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = ("ff_wider", "ff_deeper", "ff_depth", "min_unrolled")


def config_with(recurrent=None, controls=CONTROLS, ff=(3, 5), **common):
    """A small valid workflow config: one dataset, a grid with ff, recurrent and controls."""
    axes = {"train_fraction": [1.0], "channels": [8], "act": ["relu"],
            "first_block_order": ["bn_act"], "loss": ["mse"], "model_seed": [0]}
    axes.update(common)
    g = {"common": axes,
         "recurrent": recurrent or {"recurrent_layers": [1, 2], "iterations": [2, 4],
                                    "readout": ["no-avg", "2-avg"],
                                    "cell": list(cell_kinds.CELLS)}}
    if ff:
        g["ff"] = {"blocks": list(ff)}
    for family in controls:
        g[family] = {}
    config = {"datasets": {"d": {"file": "d.h5", "grid": "g"}}, "grids": {"g": g}}
    validate_config(config)
    return config


def expand(config):
    aliases = {}
    configs = grid.expand(config, aliases=aliases)["d"]
    return configs, aliases["d"]


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("cell", cell_kinds.CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("c", [8, 16, 32])
def test_wider_and_deeper_are_within_one_channels_worth_of_the_target(cell, layers, c):
    target = grid.recurrent_conv_params(cell, c, layers)
    assert target == 81 * c + layers * cell_kinds.layer_conv_params(cell, c)
    blocks = 2 * layers + 1

    c_w = grid.wider_channels(target, blocks)
    def wide(n):
        return grid.ff_conv_params(n, blocks)
    assert abs(wide(c_w) - target) <= wide(c_w + 1) - wide(c_w)
    # the closest integer channel count, ties to the smaller
    assert abs(wide(c_w) - target) < abs(wide(c_w + 1) - target)
    if c_w > 1:
        assert abs(wide(c_w) - target) <= abs(wide(c_w - 1) - target)

    b_d = grid.deeper_blocks(target, c, blocks)
    assert b_d >= blocks
    def deep(b):
        return grid.ff_conv_params(c, b)
    assert abs(deep(b_d) - target) <= deep(b_d + 1) - deep(b_d) == 9 * c * c
    assert abs(deep(b_d) - target) < abs(deep(b_d + 1) - target)
    if b_d > blocks:
        assert abs(deep(b_d) - target) <= abs(deep(b_d - 1) - target)

    if cell in ("rcpb", "vanilla"):   # 18 c^2 per layer = two Conv(3) blocks: the size-matched FF
        assert (c_w, b_d, target) == (c, blocks, grid.ff_conv_params(c, blocks))


def test_closest_breaks_ties_towards_the_smaller():
    # FF with 1 block: 81 c; a target halfway between c = 2 and c = 3
    assert grid.wider_channels(81 * 2 + 40, 1) == 2
    assert grid.wider_channels(81 * 2 + 41, 1) == 3
    assert grid.wider_channels(81 * 2 + 40.5, 1) == 2     # exactly halfway: the smaller
    assert grid.wider_channels(1, 3) == 1                   # never below 1 channel
    assert grid.deeper_blocks(0, 8, 3) == 3                 # never below 2L+1 blocks


def test_deeper_and_wider_by_hand():
    # convlstm, L = 1, c = 8: 81*8 + 72*64 + 4*8 = 5,288 conv parameters
    assert grid.recurrent_conv_params("convlstm", 8, 1) == 5288
    # FF3 at 15 channels: 81*15 + 18*225 = 5,265; at 16: 5,904
    assert grid.wider_channels(5288, 3) == 15
    # 8 channels: 648 + (b - 1) 576; b = 9: 5,256, b = 10: 5,832
    assert grid.deeper_blocks(5288, 8, 3) == 9
    # rgc, L = 2, c = 16: 81*16 + 2*45*256 = 24,336; FF5 36 c^2 + 81 c: c = 25 gives 24,525
    assert grid.recurrent_conv_params("rgc", 16, 2) == 24336
    assert grid.wider_channels(24336, 5) == 25
    assert grid.deeper_blocks(24336, 16, 5) == 11           # 1296 + 10*2304 = 24,336 exactly


@pytest.mark.parametrize("cell, t_min", [("rcpb", 2), ("vanilla", 2), ("convlstm", 2),
                                         ("rgc", 3)])
@pytest.mark.parametrize("layers", [1, 2])
def test_minimally_unrolled_t_per_cell_and_layer_count(cell, layers, t_min):
    assert cell_kinds.minimal_iterations(cell, layers) == t_min
    config = config_with(recurrent={"recurrent_layers": [layers], "iterations": [1, 2, 3, 5],
                                    "readout": ["2-avg"], "cell": [cell]},
                         controls=("min_unrolled",))
    configs, aliases = expand(config)
    by_id = {c["config_id"]: c for c in configs + aliases}
    controls = [c for c in configs + aliases if c["family"] == "min_unrolled"]
    # one control per recurrent configuration unrolled longer than T_min, none for the others
    partners = sorted(by_id[c["partner_id"]]["iterations"] for c in controls)
    assert partners == [t for t in (1, 2, 3, 5) if t > t_min]
    for ctl in controls:
        rec = by_id[ctl["partner_id"]]
        assert ctl["iterations"] == t_min
        assert ctl["arch"] == "recurrent" and ctl.get("cell") == rec.get("cell")
        same = ("recurrent_layers", "readout", "channels", "train", "preprocess", "model_seed")
        assert all(ctl[k] == rec[k] for k in same)
        assert ctl["matched_conv_params"] == grid.recurrent_conv_params(cell, 8, layers)
        # T_min is a recurrent configuration of this grid: the control is its alias
        assert ctl["trained_as"] == next(c["config_id"] for c in configs
                                         if c["family"] == "recurrent"
                                         and c["iterations"] == t_min)


def test_minimally_unrolled_is_trained_when_no_recurrent_configuration_has_t_min():
    config = config_with(recurrent={"recurrent_layers": [1], "iterations": [4, 6],
                                    "readout": ["2-avg"]}, controls=("min_unrolled",))
    configs, aliases = expand(config)
    trained = [c for c in configs if c["family"] == "min_unrolled"]
    assert len(trained) == 1 and trained[0]["iterations"] == 2
    assert trained[0]["config_id"].startswith("min-L1-T2-2avg-")
    # the T = 6 model's control is the same model: an alias of the T = 4 model's control
    assert [a["trained_as"] for a in aliases] == [trained[0]["config_id"]]
    assert {trained[0]["partner_id"], aliases[0]["partner_id"]} == {
        c["config_id"] for c in configs if c["family"] == "recurrent"}


# ----------------------------------------------------------------------------- the grid


@pytest.fixture(scope="module")
def all_cells():
    return expand(config_with())


def test_every_recurrent_configuration_has_one_control_per_family(all_cells):
    configs, aliases = all_cells
    recurrent = {c["config_id"]: c for c in configs if c["family"] == "recurrent"}
    assert len(recurrent) == 2 * 2 * 2 * 4   # layers x T x readout x cells
    everything = configs + aliases
    for family in CONTROLS:
        controls = [c for c in everything if c["family"] == family]
        partners = [c["partner_id"] for c in controls]
        assert len(partners) == len(set(partners))
        if family == "min_unrolled":   # T = 4 (> T_min) only; rgc: T_min = 3
            assert set(partners) == {i for i, c in recurrent.items() if c["iterations"] == 4}
        else:
            assert set(partners) == set(recurrent)
    ids = [c["config_id"] for c in everything]
    assert len(ids) == len(set(ids))


def test_controls_match_their_partner(all_cells):
    configs, aliases = all_cells
    by_id = {c["config_id"]: c for c in configs + aliases}
    for ctl in configs + aliases:
        if ctl["family"] not in CONTROLS:
            continue
        rec = by_id[ctl["partner_id"]]
        cell = rec.get("cell", "rcpb")
        L, c, T = rec["recurrent_layers"], rec["channels"], rec["iterations"]
        target = grid.recurrent_conv_params(cell, c, L)
        assert ctl["matched_conv_params"] == target
        # the partner is part of the hash (an alias's trained_as is not)
        hashed = {k: v for k, v in ctl.items() if k != "trained_as"}
        assert grid.config_id(hashed) == ctl["config_id"]
        assert grid.config_id({**hashed, "partner_id": "x"}) != ctl["config_id"]
        if ctl["family"] != "min_unrolled":
            assert ctl["arch"] == "ff" and "cell" not in ctl
            assert ctl["recurrent_layers"] is None and ctl["iterations"] is None
        expected = {"ff_wider": (grid.wider_channels(target, 2 * L + 1), 2 * L + 1),
                    "ff_deeper": (c, grid.deeper_blocks(target, c, 2 * L + 1)),
                    "ff_depth": (c, 1 + L * T),
                    "min_unrolled": (c, None)}[ctl["family"]]
        assert (ctl["channels"], ctl["blocks"]) == expected


def test_conv_counts_are_those_of_the_built_models(all_cells):
    """matched_conv_params is the recurrent model's conv count, ff_conv_params the FF's."""
    from rcpb.models import build
    from rcpb.models.build import count_conv_parameters

    configs, aliases = all_cells
    by_id = {c["config_id"]: c for c in configs + aliases}
    seen = set()
    for ctl in configs + aliases:
        if ctl["family"] not in ("ff_wider", "ff_deeper"):
            continue
        rec = by_id[ctl["partner_id"]]
        key = (rec.get("cell"), rec["recurrent_layers"], ctl["family"])
        if key in seen:
            continue
        seen.add(key)
        sizes = {"input_size": 20, "n_neurons": 3}
        assert count_conv_parameters(build({**rec, **sizes})) == ctl["matched_conv_params"]
        assert count_conv_parameters(build({**ctl, **sizes})) == grid.ff_conv_params(
            ctl["channels"], ctl["blocks"])
    assert len(seen) == len(cell_kinds.CELLS) * 2 * 2


def test_rcpb_wider_and_deeper_are_aliases_of_the_size_matched_ff(all_cells):
    configs, aliases = all_cells
    ids = {c["config_id"] for c in configs}
    by_id = {c["config_id"]: c for c in configs + aliases}
    for alias in aliases:
        assert alias["config_id"] not in ids and alias["trained_as"] in ids
        training = by_id[alias["trained_as"]]
        assert training["arch"] == alias["arch"]
        fields = grid.COMMON_AXES + ("blocks",) + grid.RECURRENT_AXES + ("cell",)
        assert all(training.get(k) == alias.get(k) for k in fields)
    for rec in configs:
        if rec["family"] != "recurrent" or rec.get("cell") not in (None, "vanilla"):
            continue
        mine = [a for a in aliases if a["partner_id"] == rec["config_id"]
                and a["family"] in ("ff_wider", "ff_deeper")]
        # the recurrent model's own partner: the size-matched FF (2L+1 blocks)
        assert [a["trained_as"] for a in mine] == [rec["partner_id"]] * 2
    # T_min = 2 is a recurrent configuration of the grid; rgc's T_min = 3 is not: trained
    trained = [c for c in configs if c["family"] == "min_unrolled"]
    assert {(c["cell"], c["iterations"]) for c in trained} == {("rgc", 3)}
    assert len(trained) == 2 * 2                          # layers x readout
    # the FF controls of models that differ only in readout are one training
    depth = [c for c in configs + aliases if c["family"] == "ff_depth" and c["blocks"] == 9]
    assert len(depth) == 2 * 4                            # L = 2, T = 4: readouts x cells
    assert len({c.get("trained_as", c["config_id"]) for c in depth}) == 1


def test_controls_that_are_the_same_model_are_trained_once(all_cells):
    configs, _ = all_cells
    keys = [grid._model_key(c) for c in configs]
    assert len(keys) == len(set(keys))


def test_ff_depth_only_when_asked_and_aliased_to_listed_ff():
    configs, aliases = expand(config_with(
        recurrent={"recurrent_layers": [1, 2], "iterations": [2, 4], "readout": ["2-avg"]},
        controls=("ff_depth",)))
    assert not any(c["family"] in ("ff_wider", "ff_deeper", "min_unrolled")
                   for c in configs + aliases)
    depth = [c for c in configs + aliases if c["family"] == "ff_depth"]
    assert {c["blocks"] for c in depth} == {3, 5, 9}   # 1 + L T for L, T in {1, 2} x {2, 4}
    trained = {c["blocks"] for c in configs if c["family"] == "ff_depth"}
    assert trained == {9}                               # 3 and 5 are ff configurations


def test_control_block_overrides_recurrent_axes_and_adds_partners():
    config = config_with(controls=())
    config["grids"]["g"]["ff_wider"] = {"cell": ["convlstm"], "channels": [16],
                                        "iterations": [3]}
    configs, aliases = expand(config)
    wider = [c for c in configs + aliases if c["family"] == "ff_wider"]
    by_id = {c["config_id"]: c for c in configs}
    assert len(wider) == 2 * 2                         # layers x readout
    for ctl in wider:
        rec = by_id[ctl["partner_id"]]
        assert (rec["cell"], rec["channels"], rec["iterations"]) == ("convlstm", 16, 3)
        assert rec["added_as_partner"]                 # not in the recurrent grid
        assert by_id[rec["partner_id"]]["family"] == "ff"   # with its own FF partner
    counts = grid.count(configs)
    assert counts[("recurrent", 0)]["added"] == 4


def test_partner_listed_by_a_later_grid_is_not_counted_as_added():
    axes = {"recurrent_layers": [1], "iterations": [2], "readout": ["2-avg"]}
    config = config_with(recurrent=axes, controls=())
    config["grids"]["h"] = copy.deepcopy(config["grids"]["g"])
    config["grids"]["g"]["ff_wider"] = dict(axes)
    del config["grids"]["g"]["recurrent"]
    config["datasets"]["d"]["grid"] = ["g", "h"]
    validate_config(config)
    configs, aliases = expand(config)
    rec = [c for c in configs if c["family"] == "recurrent"]
    assert len(rec) == 1 and not rec[0].get("added_as_partner")
    assert [a["partner_id"] for a in aliases] == [rec[0]["config_id"]]
    config["datasets"]["d"]["grid"] = ["g"]   # alone, g adds it as the control's partner
    assert [c.get("added_as_partner") for c in expand(config)[0]
            if c["family"] == "recurrent"] == [True]


# ----------------------------------------------------------------------------- ids


def test_cell_field_only_for_other_cells_and_rcpb_ids_unchanged():
    plain = config_with(recurrent={"recurrent_layers": [1, 2], "iterations": [2, 4],
                                   "readout": ["no-avg", "2-avg"]}, controls=())
    plain["grids"]["g"]["multipath"] = {}
    with_cells = copy.deepcopy(plain)
    with_cells["grids"]["g"]["recurrent"]["cell"] = list(cell_kinds.CELLS)
    explicit = copy.deepcopy(plain)
    explicit["grids"]["g"]["recurrent"]["cell"] = ["rcpb"]
    before = {c["config_id"] for c in expand(plain)[0]}
    assert {c["config_id"] for c in expand(explicit)[0]} == before
    after = expand(with_cells)[0]
    assert before <= {c["config_id"] for c in after}
    for cfg in after:
        if cfg["config_id"] in before:
            assert "cell" not in cfg
        else:
            assert cfg["family"] == "recurrent" and cfg["cell"] in ("vanilla", "convlstm", "rgc")
            assert cfg["config_id"].startswith(f"rec-{cfg['cell']}-L")
    # multi-path models stay rcpb: other cells get no multi-path twin
    assert len([c for c in after if c["family"] == "multipath"]) == 8
    assert all("cell" not in c for c in after if c["arch"] != "recurrent")


def test_example_block_of_the_paper_config_keeps_every_paper_id():
    """configs/paper_ns2250.yaml's commented example (cells and controls), uncommented: every
    configuration of the paper grid keeps its id, and the new ones are cells and controls."""
    from rcpb.config import load_config

    text = (ROOT / "configs" / "paper_ns2250.yaml").read_text()
    example = re.sub(r"(?m)^      # (cell: \[[a-z, ]+\]).*$", r"      \1", text)
    example = re.sub(r"(?m)^    # ((ff_wider|ff_deeper|ff_depth|min_unrolled): \{\}).*$",
                     r"    \1", example)
    assert re.findall(r"(?m)^ *cell: \[(.*)\]", example) == ["rcpb, vanilla, convlstm, rgc"]
    assert all(re.search(rf"(?m)^    {f}: {{}}", example) for f in CONTROLS)
    paper = load_config(ROOT / "configs" / "paper_ns2250.yaml")
    config = yaml.safe_load(example)
    validate_config(config)
    old = {c["config_id"] for c in grid.expand(paper)["ns2250"]}
    aliases = {}
    new = grid.expand(config, aliases=aliases)["ns2250"]
    new_ids = {c["config_id"] for c in new}
    assert old <= new_ids
    added = [c for c in new if c["config_id"] not in old]
    assert all(c.get("cell") or c["family"] in CONTROLS for c in added)
    counts = {f: sum(1 for c in new if c["family"] == f) for f in grid.FAMILIES}
    assert counts["recurrent"] == 4 * 6912
    assert counts["multipath"] == 6912
    n_aliases = {f: sum(1 for a in aliases["ns2250"] if a["family"] == f) for f in CONTROLS}
    # one control per recurrent configuration (min_unrolled: T > T_min only)
    assert counts["ff_wider"] + n_aliases["ff_wider"] == 4 * 6912
    assert counts["min_unrolled"] + n_aliases["min_unrolled"] == 6912 * (3 * 5 + 4) // 6


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("edit, words", [
    (lambda g: g["recurrent"].update(cell=["lstm"]), ["cell", "lstm"]),
    (lambda g: g.update(multipath={"cell": ["convlstm"]}), ["multipath", "cell"]),
    (lambda g: g["common"].update(cell=["rcpb"]), ["common", "cell"]),
    (lambda g: g.update(ff_wider={"blocks": [3]}), ["ff_wider", "blocks"]),
    (lambda g: g.update(ff_wider={"kinds": ["wider"]}), ["ff_wider", "kinds"]),
    (lambda g: g.update(ff_widest={}), ["ff_widest"]),
    (lambda g: g.update(min_unrolled={"cell": []}), ["min_unrolled", "cell"]),
])
def test_schema_errors_name_the_field(edit, words):
    cfg = config_with(controls=())
    edit(cfg["grids"]["g"])
    with pytest.raises(RcpbError) as info:
        validate_config(cfg)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_grid_errors_without_the_schema():
    cfg = config_with(controls=())
    cfg["grids"]["g"]["multipath"] = {"cell": ["convlstm"]}
    with pytest.raises(RcpbError, match="multipath: multi-path models are defined for the "
                                        "rcpb cell only"):
        grid.expand(cfg)
    cfg = config_with(controls=())
    cfg["grids"]["g"]["recurrent"]["cell"] = ["gru"]
    with pytest.raises(RcpbError, match=r"recurrent\.cell: unknown cell 'gru'"):
        grid.expand(cfg)
    cfg = config_with(controls=())
    del cfg["grids"]["g"]["recurrent"]
    cfg["grids"]["g"]["ff_deeper"] = {}
    with pytest.raises(RcpbError, match="family 'ff_deeper' has no value for axis "
                                        "recurrent_layers"):
        grid.expand(cfg)


# ----------------------------------------------------------------------------- workflow


def test_grid_command_counts_controls(tmp_path, capsys):
    from rcpb.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config_with()))
    assert main(["grid", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()
            if line.startswith("d ")}
    configs, aliases = expand(config_with())
    for family in CONTROLS:
        n = sum(1 for c in configs if c["family"] == family)
        a = sum(1 for c in aliases if c["family"] == family)
        assert rows[family] == ["0", str(n), "0", str(a)]
    assert "control aliases" in out
    alias = aliases[0]
    assert main(["grid", str(path), "--show", alias["config_id"]]) == 0
    captured = capsys.readouterr()
    assert "is the same model" in captured.err
    assert json.loads(captured.out)["trained_as"] == alias["trained_as"]


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_controls_pack_like_any_configuration(all_cells, device):
    from rcpb.pack.kinds import pack_key

    configs, _ = all_cells
    packs = grid.packs(configs, 4, device)
    members = [c["config_id"] for chunk in packs.values() for c in chunk]
    assert sorted(members) == sorted(c["config_id"] for c in configs)
    if device == "cuda":
        for chunk in packs.values():
            assert len({pack_key(c) for c in chunk}) == 1
            assert len({c.get("cell") for c in chunk}) == 1


def test_aggregation_gives_a_control_alias_the_row_of_its_ff_training(tmp_path):
    from analysis.aggregate import collect
    from test_aggregate import write_model

    configs, aliases = expand(config_with(
        recurrent={"recurrent_layers": [1], "iterations": [4], "readout": ["2-avg"],
                   "cell": ["rcpb", "convlstm"]}, ff=()))
    folders = []
    for i, cfg in enumerate(configs):
        folder = tmp_path / cfg["family"] / cfg["config_id"]
        write_model(folder, grid.training_config(cfg), 0.1 * (i + 1), {"1": 1.0})
        folders.append(folder)
    results, neurons, failed = collect(folders, json.loads(json.dumps(aliases)))
    assert len(results) == len(configs) + len(aliases) and failed.empty
    rows = results.set_index("config_id")
    for alias in aliases:
        row, training = rows.loc[alias["config_id"]], rows.loc[alias["trained_as"]]
        assert row["family"] == alias["family"] and row["partner_id"] == alias["partner_id"]
        assert row["trained_as"] == alias["trained_as"]
        assert row["test_cc_norm2"] == training["test_cc_norm2"]
        assert (row["arch"], row["blocks"], row["channels"]) == (
            training["arch"], training["blocks"], training["channels"])
    # the cell column: rcpb for recurrent models without the field, empty for FF models
    cells = results.groupby("arch")["cell"].apply(lambda s: set(s.fillna("")))
    assert cells["ff"] == {""}
    assert cells["recurrent"] == {"rcpb", "convlstm"}
    # rcpb: wider and deeper are its FF partner; ff_depth (5 blocks) and min_unrolled trained
    rcpb_rec = next(c for c in configs if c["family"] == "recurrent" and "cell" not in c)
    mine = results[results["partner_id"] == rcpb_rec["config_id"]]
    assert set(mine["family"]) == set(CONTROLS)
    by_family = mine.set_index("family")["trained_as"]
    assert by_family["ff_wider"] == by_family["ff_deeper"] == rcpb_rec["partner_id"]
