"""Write one figure (PNG + PDF) and the numbers it shows (CSV) from the results table.

``python -m analysis.figures NAME --results results/D/results.csv --split S [--fraction F]
[--metric M] [--baselines results/D/baselines.csv] [--neurons results/D/neurons.csv] --png OUT.png
--pdf OUT.pdf --csv OUT.csv``

NAME (paper figure numbers; appendix versions are the same figure for another dataset,
fraction or split seed):

==========  ========  ==================================================================
name        fraction  what
==========  ========  ==================================================================
fig3a       no        recurrent vs matched FF, 24 panels, coloured by fraction (fig 3a, 9, 10, 26)
fig3d       yes       performance vs T per readout mode, FF lines, every FF depth (fig 3d-f, 11, 27)
fig4cd      yes       multi-path vs recurrent: performance and path length (fig 4c-d, 12, 13)
fig6ab      yes       performance vs T for 1 and 2 recurrent layers (fig 6a-b, 14, 15, 18-20)
fig6cd      yes       performance vs average path length (fig 6c-d, 16, 17, 21-23)
fig6ef      yes       path-length distributions of example types (fig 6e-f)
fig6gi      yes       removing 1, 2, 3 adjacent path lengths (fig 6g-i, 24, 25)
lege        yes       keeping lengths <= k or >= k
neurons     yes       per neuron: best recurrent cell vs its size-matched FF, share improved
cells_controls yes    each recurrent cell type vs its size-matched, wider, deeper FF and
                      minimally unrolled controls (analysis.controls)
dynamics    yes       time-binned data: performance per bin, mean temporal profile, paired
                      effects on the time profile (analysis.dynamics)
==========  ========  ==================================================================

``--fraction`` is the training fraction in percent (25, 50, 100). ``--metric`` is the performance
measure (``auto``: CC_norm^2 when some model has a noise ceiling, else CC_raw; see
analysis.load.choose_metric); axis labels name it and the CSV has it in a ``metric`` column.
Models whose performance is NaN are left out of what is drawn and the figure says so (panel
text, title and the CSV's ``note`` column). When the models a figure needs are absent, or none
of them has a finite value to draw, the PNG/PDF say so and the CSV has only the columns
``note`` and ``metric``. ``--baselines``: the dataset's non-model predictors (the truth ceiling,
the drive-only predictor; analysis.load.read_baselines), drawn as labelled horizontal lines in
fig3a, fig3d and fig6ab next to the size-matched and the best FF; a missing or empty file draws
none. ``--neurons``: the per-neuron table (analysis.aggregate), which the ``neurons`` figure
draws (analysis.plots.neurons); without it that figure is a placeholder saying so.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from analysis.labels import parse_fraction_label
from analysis.load import (METRIC_CHOICES, failed_note, metric_of, read_baselines, read_results,
                           study_rows)
from analysis.plots.ablation import fig6gi, fig_lege
from analysis.plots.common import NoData, NoFinite, placeholder, save, write_csv
from analysis.plots.compare import fig3a, fig3d, fig6ab
from analysis.plots.controls import fig_controls
from analysis.plots.dynamics import fig_dynamics
from analysis.plots.neurons import fig_neurons
from analysis.plots.path_figures import fig4cd, fig6cd, fig6ef
from rcpb.errors import RcpbError

#: figures comparing recurrent with feed-forward performance: they draw the baselines
WITH_BASELINES = ("fig3a", "fig3d", "fig6ab", "dynamics")
#: figures drawn from the per-neuron table (results/{dataset}/neurons.csv)
WITH_NEURONS = ("neurons",)

# name -> (function, takes a fraction)
FIGURES = {
    "fig3a": (fig3a, False),
    "fig3d": (fig3d, True),
    "fig4cd": (fig4cd, True),
    "fig6ab": (fig6ab, True),
    "fig6cd": (fig6cd, True),
    "fig6ef": (fig6ef, True),
    "fig6gi": (fig6gi, True),
    "lege": (fig_lege, True),
    "neurons": (fig_neurons, True),
    "cells_controls": (fig_controls, True),
    "dynamics": (fig_dynamics, True),
}
#: figures of every recurrent cell type; the others show the study's RCPB cell
ALL_CELLS = ("cells_controls", "dynamics")


def render(name: str, df: pd.DataFrame, split: int, fraction: float | None,
           png: str | None = None, pdf: str | None = None, csv: str | None = None,
           baselines: pd.DataFrame | None = None, neurons: pd.DataFrame | None = None) -> str:
    """Draw figure ``name`` and write PNG/PDF/CSV; returns the headline (or the reason it is
    empty). ``baselines`` (analysis.load.read_baselines) are drawn by the WITH_BASELINES figures,
    ``neurons`` (the per-neuron table, :func:`read_neurons`) by the WITH_NEURONS figures."""
    if name not in FIGURES:
        raise RcpbError(f"figure {name!r}: unknown; use one of {', '.join(FIGURES)}.")
    func, needs_fraction = FIGURES[name]
    if needs_fraction and fraction is None:
        raise RcpbError(f"figure {name!r} needs --fraction (training fraction in percent, e.g. 100).")
    if name not in ALL_CELLS:
        df = study_rows(df)
    try:
        kw = {"baselines": baselines} if name in WITH_BASELINES else {}
        if name in WITH_NEURONS:
            kw["neurons"] = neurons
        fig, data, headline = (func(df, split, fraction, **kw) if needs_fraction
                               else func(df, split, **kw))
    except NoData as e:
        headline = str(e) if isinstance(e, NoFinite) else f"{e} (results table has no such models)"
        fig = placeholder(headline)
        data = pd.DataFrame({"note": [headline], "metric": [metric_of(df)]})
    save(fig, png, pdf)
    write_csv(data, csv)
    return headline


def read_neurons(path: str | None) -> pd.DataFrame | None:
    """The per-neuron table (analysis.aggregate's neurons.csv); None without a path. Raises
    RcpbError naming the file when it is missing or lacks its key columns."""
    if path is None:
        return None
    try:
        neurons = pd.read_csv(path)
    except FileNotFoundError:
        raise RcpbError(f"{path}: per-neuron table not found; run the aggregation first "
                        "(`snakemake results/<dataset>/neurons.csv`).") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["config_id", "neuron"])
    missing = [c for c in ("config_id", "neuron") if c not in neurons.columns]
    if missing:
        raise RcpbError(f"{path}: missing column(s) {', '.join(missing)}; the table must be "
                        "written by `python -m analysis.aggregate`.")
    neurons["config_id"] = neurons["config_id"].astype(str)
    return neurons


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.figures",
                                 description="Write one figure (PNG, PDF) and its numbers (CSV).")
    ap.add_argument("name", choices=sorted(FIGURES))
    ap.add_argument("--results", required=True, help="results/{dataset}/results.csv")
    ap.add_argument("--split", type=int, default=0, help="split seed")
    ap.add_argument("--fraction", default=None, help="training fraction in percent (25, 50, 100)")
    ap.add_argument("--metric", choices=METRIC_CHOICES, default="auto",
                    help="performance measure (default auto: cc_norm2 when some model has a noise "
                         "ceiling, else cc_raw)")
    ap.add_argument("--baselines", default=None,
                    help="results/{dataset}/baselines.csv: drawn as reference lines in "
                         f"{', '.join(WITH_BASELINES)} (optional; missing or empty: none)")
    ap.add_argument("--neurons", default=None,
                    help="results/{dataset}/neurons.csv: the per-neuron table drawn by "
                         f"{', '.join(WITH_NEURONS)} (other figures ignore it)")
    ap.add_argument("--png")
    ap.add_argument("--pdf")
    ap.add_argument("--csv")
    args = ap.parse_args(argv)
    try:
        df = read_results(args.results, metric=args.metric)
        frac = parse_fraction_label(args.fraction) if args.fraction is not None else None
        baselines = read_baselines(args.baselines, metric_of(df))
        neurons = read_neurons(args.neurons) if args.name in WITH_NEURONS else None
        headline = render(args.name, df, args.split, frac, args.png, args.pdf, args.csv, baselines,
                          neurons)
    except RcpbError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: {headline}" + (f" ({failed_note(df)})" if failed_note(df) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
