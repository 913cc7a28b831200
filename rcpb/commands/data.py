"""``rcpb data``: validate, summarise, import and simulate dataset files (SPEC 2).

    rcpb data validate FILE [--loss poisson] [--clip-negative TOL]
    rcpb data summary FILE [--json]
    rcpb data import SRC --out OUT.h5 --images NAME --responses NAME [--images-axes nhw]
                     [--responses-axes stn] [--split NAME] [--neuron-ids NAME] [--name NAME]
                     [--bin-ms MS --stim-bins ON OFF]   (time-binned: --responses-axes stnb)
    rcpb data import SESSION.nwb --out OUT.h5 [--presentations LABEL] [--image-column COL]
                     [--template LABEL] [--template-axes hw] [--responses-from roi|units]
                     [--roi-series LABEL] [--window START STOP] [--name NAME]
    rcpb data simulate --circuit recurrent|feedforward|recurrent_teacher|feedforward_teacher
                       --out FILE [--images FILE] [--neurons 34] [--trials 8] [--seed 0]
                       [--input-size N] [--crop N|HxW --downsample F]
                       [--time-bins 25 [--on-bins 10] [--latency 2] [--bin-ms 10]]
"""

from __future__ import annotations

import argparse
import json

from rcpb.data.simulate import CIRCUITS, DEFAULT_IMAGES, DYNAMICS_DEFAULTS
from rcpb.sizes import parse_size


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="validate, summarise, import or simulate dataset files",
        description="Dataset files (HDF5: images [stimuli, H, W], responses "
                    "[stimuli, trials, neurons] or, time-binned, [stimuli, trials, neurons, "
                    "bins], optional split).")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("validate", help="check a dataset file and print its summary",
                       description="Check a dataset file; exit 0 if valid, 2 with the problem "
                                   "otherwise. Nothing is written.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--loss", choices=["mse", "poisson"], default=None,
                   help="also check what this loss needs (poisson: non-negative responses)")
    p.add_argument("--clip-negative", type=float, default=None, metavar="TOL",
                   help="set negative responses within TOL of zero to 0 (float noise), as the "
                        "config's preprocess.clip_negative does; the summary counts them")

    p = sub.add_parser("summary", help="print facts about a dataset file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser(
        "import", help="convert .npz, MATLAB .mat (v5, v7.3) or NWB data into a dataset file",
        description="Convert named arrays of a .npz or .mat file, or an NWB session (.nwb, "
                    "needs pip install -e '.[nwb]'), into a dataset file. Axis letters "
                    "describe the array as shown by its program (NumPy shape, MATLAB "
                    "size()); v7.3 transposition is undone automatically. Options: "
                    "docs/data.md.")
    p.add_argument("src", metavar="SRC")
    p.add_argument("--out", required=True, help="output dataset file (.h5)")
    p.add_argument("--images", default=None, help="name of the image array in SRC (.npz/.mat)")
    p.add_argument("--responses", default=None,
                   help="name of the response array in SRC (.npz/.mat)")
    p.add_argument("--images-axes", default=None,
                   help="axis letters of the image array: n stimuli, h rows, w columns "
                        "(default nhw; e.g. hwn)")
    p.add_argument("--responses-axes", default=None,
                   help="axis letters of the response array: s stimuli, t trials, n neurons, "
                        "b time bins (default stn, or sn for 2-D single-trial arrays, stnb for "
                        "4-D arrays; with b give --bin-ms and --stim-bins)")
    p.add_argument("--split", default=None,
                   help="name of a split array in SRC (0 train, 1 validation, 2 test)")
    p.add_argument("--neuron-ids", default=None, help="name of a neuron id array in SRC")
    p.add_argument("--name", default=None, help="dataset name stored in the file's attrs")
    p.add_argument("--loss", choices=["mse", "poisson"], default=None,
                   help="also check what this loss needs before writing")
    p.add_argument("--bin-ms", type=float, default=None, metavar="MS",
                   help="time-binned responses (a b axis): the bin width in ms")
    p.add_argument("--stim-bins", type=int, nargs=2, default=None, metavar=("ON", "OFF"),
                   help="time-binned responses: the first bin with the image on and the first "
                        "bin after it is off (0-based; OFF = the number of bins when it stays "
                        "on)")
    nwb = p.add_argument_group("NWB sources (.nwb)")
    nwb.add_argument("--presentations", default=None, metavar="LABEL",
                     help="IndexSeries in stimulus/ or table in intervals/ giving the image "
                          "shown at each onset (default: the only one)")
    nwb.add_argument("--image-column", default=None, metavar="COL",
                     help="the table's column with the template index or image name "
                          "(default: the one of image_index, image_id, image_name, frame)")
    nwb.add_argument("--template", default=None, metavar="LABEL",
                     help="images in stimulus_template/ (default: the IndexSeries' linked "
                          "images, else the only template)")
    nwb.add_argument("--template-axes", choices=["hw", "wh"], default=None,
                     help="template images stored [rows, columns] (hw, default) or "
                          "transposed (wh)")
    nwb.add_argument("--responses-from", choices=["roi", "units"], default=None,
                     help="mean of a RoiResponseSeries or spike counts of the units table in "
                          "the window (default: the only kind in the file)")
    nwb.add_argument("--roi-series", default=None, metavar="LABEL",
                     help="the RoiResponseSeries, e.g. DfOverF/plane0 (default: the only one)")
    nwb.add_argument("--window", nargs=2, type=float, default=None, metavar=("START", "STOP"),
                     help="response window in seconds after each onset, [START, STOP) "
                          "(default 0 0.5)")

    p = sub.add_parser("simulate", help="simulate trial responses of a model V1 circuit",
                       description="Turn an image set into a dataset file with responses of a "
                                   "seeded ground-truth circuit (SPEC 2.4).")
    p.add_argument("--circuit", choices=CIRCUITS, default="recurrent",
                   help="the ground truth (docs/ground_truth.md): a circuit or a teacher network")
    p.add_argument("--out", required=True, help="output dataset file (.h5)")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help=f"HDF5 file with 'images' [stimuli, H, W] (default {DEFAULT_IMAGES})")
    p.add_argument("--neurons", type=int, default=34)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-size", type=int, default=None,
                   help="image size (px) the circuit sees; default: the simulator's choice")
    p.add_argument("--crop", type=parse_size, default=None, metavar="N|HxW",
                   help="teachers: central crop (px) of the model input, as the dataset's "
                        "preprocess.crop")
    p.add_argument("--downsample", type=int, default=1,
                   help="teachers: downsampling factor of the model input, as the dataset's "
                        "preprocess.downsample")
    dyn = p.add_argument_group(
        "dynamics", "time-binned responses [stimuli, trials, neurons, bins]: each iteration of "
                    "a recurrent ground truth is a bin (docs/ground_truth.md, Dynamics)")
    dyn.add_argument("--time-bins", type=int, default=None, metavar="N",
                     help="simulate N time bins (default: no time axis)")
    dyn.add_argument("--on-bins", type=int, default=None, metavar="N",
                     help=f"bins the image is on, then gray (default "
                          f"{DYNAMICS_DEFAULTS['on_bins']})")
    dyn.add_argument("--latency", type=int, default=None, metavar="N",
                     help=f"bins before the response starts (default "
                          f"{DYNAMICS_DEFAULTS['latency']})")
    dyn.add_argument("--bin-ms", type=float, default=None, metavar="MS",
                     help=f"bin width in ms (default {DYNAMICS_DEFAULTS['bin_ms']:g})")

    parser.set_defaults(run=run)


def _print_summary(path, ds) -> None:
    from rcpb.data.validate import format_summary, summarize_dataset

    print(format_summary(summarize_dataset(ds), path))


NWB_OPTIONS = ("presentations", "image_column", "template", "template_axes", "responses_from",
               "roi_series", "window")
ARRAY_OPTIONS = ("images", "responses", "images_axes", "responses_axes", "split", "neuron_ids",
                 "bin_ms", "stim_bins")


def _import(args: argparse.Namespace):
    """Run the importer for the source's kind (.nwb: rcpb.data.nwb, else .npz/.mat)."""
    from pathlib import Path

    from rcpb.errors import RcpbError

    def flags(names):
        return ", ".join("--" + n.replace("_", "-") for n in names
                         if getattr(args, n) is not None)

    if Path(args.src).suffix.lower() == ".nwb":
        if flags(ARRAY_OPTIONS):
            raise RcpbError(f"{flags(ARRAY_OPTIONS)}: array options of .npz/.mat sources; an "
                            f".nwb source takes --presentations, --template, --responses-from, "
                            f"--window ... (docs/data.md).")
        from rcpb.data.nwb import DEFAULT_WINDOW, import_nwb

        return import_nwb(args.src, args.out, presentations=args.presentations,
                          template=args.template, image_column=args.image_column,
                          template_axes=args.template_axes or "hw",
                          responses_from=args.responses_from, roi_series=args.roi_series,
                          window=args.window or DEFAULT_WINDOW, name=args.name, loss=args.loss)
    if flags(NWB_OPTIONS):
        raise RcpbError(f"{flags(NWB_OPTIONS)}: options of .nwb sources only; {args.src} is "
                        f"read as .npz/.mat (name its arrays with --images and --responses).")
    missing = [n for n in ("images", "responses") if getattr(args, n) is None]
    if missing:
        raise RcpbError(f"{args.src}: name the arrays with "
                        f"{' and '.join('--' + n + ' NAME' for n in missing)} (.npz/.mat "
                        f"sources).")
    from rcpb.data.importers import import_dataset

    return import_dataset(args.src, args.out, images=args.images, responses=args.responses,
                          images_axes=args.images_axes or "nhw",
                          responses_axes=args.responses_axes, split=args.split,
                          neuron_ids=args.neuron_ids, name=args.name, loss=args.loss,
                          bin_ms=args.bin_ms,
                          stim_bins=None if args.stim_bins is None else tuple(args.stim_bins))


def _dynamics(args: argparse.Namespace) -> dict | None:
    """The simulator's ``dynamics`` from --time-bins, --on-bins, --latency, --bin-ms (None
    without --time-bins; the others then are an error)."""
    from rcpb.errors import RcpbError

    given = {k: getattr(args, k) for k in ("on_bins", "latency", "bin_ms")
             if getattr(args, k) is not None}
    if args.time_bins is None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise RcpbError(f"{flags}: options of time-binned simulation; add --time-bins N "
                            f"(e.g. --time-bins 25) or leave them out.")
        return None
    return {"bins": args.time_bins, **given}


def run(args: argparse.Namespace) -> int:
    from rcpb.data.validate import format_summary, load_dataset, summarize_file

    cmd = args.data_command
    if cmd == "validate":
        ds = load_dataset(args.file, loss=args.loss, clip_negative=args.clip_negative)
        _print_summary(args.file, ds)
        from rcpb.data.validate import training_warnings

        for text in training_warnings(ds):
            print(f"warning: {text}")
    elif cmd == "summary":       # in blocks: the workflow runs it on every dataset
        summary = summarize_file(args.file)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print(format_summary(summary, args.file))
    elif cmd == "import":
        ds = _import(args)
        print(f"wrote {args.out}")
        _print_summary(args.out, ds)
    elif cmd == "simulate":
        from pathlib import Path

        from rcpb.data.simulate import simulate_file
        from rcpb.errors import RcpbError

        if not Path(args.images).exists():
            raise RcpbError(
                f"{args.images}: image file not found (--images). Run from the project "
                f"directory for the default {DEFAULT_IMAGES}, or give an HDF5 file with "
                f"'images' [stimuli, H, W].")
        dynamics = _dynamics(args)
        simulate_file(images_file=args.images, out=args.out, circuit=args.circuit,
                      n_neurons=args.neurons, n_trials=args.trials, seed=args.seed,
                      input_size=args.input_size, teacher_input=(args.crop, args.downsample),
                      **({} if dynamics is None else {"dynamics": dynamics}))
        print(f"wrote {args.out}")
        _print_summary(args.out, load_dataset(args.out))
    return 0
