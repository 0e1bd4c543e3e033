"""``vidcam evaluate``: how faithful and how well-localized are a model's explanations?

For every video (one clip each, sampled per the model's input spec) it compares the explanation
methods (``--methods``; default every cheap one, all from one forward and one backward per clip),
a seeded random map and the all-ones map, and RANKS them per metric (mean ± std over clips, the
rank in each column, the mean rank over keep/remove). The headline: the model's confidence
(relative to the whole clip) after removing the map's top k % voxels, or keeping only them,
under natural fills (``--fill``: ROAD noisy linear imputation over T×H×W, a blurred copy), with
the map's size (mean value, area ≥ 0.5) beside it. Then Average Drop %, % Increase in Confidence
and Win % (Chattopadhyay et al. 2018) on E = map ⊙ clip against ``--baseline``, deletion/insertion
AUC over voxels and over whole frames under that baseline, and, when ground truth is found
(``<stem>.json`` next to the video or in ``--gt``), pointing games, instance coverage, temporal
energy and IoU. Every masked forward runs batched (``--batch``) under inference mode. Prints the
tables; writes ``--json`` / ``--plot`` / ``--markdown``. torch loads only inside :func:`run`
(the parser's constants come from :mod:`vidcam.evaluate.choices`), so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import (
    BASELINE_HELP,
    BASELINES,
    DEFAULT_METHODS,
    ENGINE_METHODS,
    FILL_HELP,
    FILLS,
    NATURAL_FILLS,
    SLOW_METHODS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    parser.add_argument("--model", default="sample", help="registered model name (default: sample)")
    parser.add_argument("--weights", help="local checkpoint file for the model")
    parser.add_argument(
        "--no-pretrained", action="store_true", help="random weights (a sanity check)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default: auto)")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        metavar="M[,M...]",
        help=f"methods compared and ranked: {', '.join(ENGINE_METHODS)} or all (default: every "
        f"cheap one, {','.join(DEFAULT_METHODS)}: one forward + one backward per clip for all; "
        f"{', '.join(SLOW_METHODS)} costs a masked forward per channel); the random and "
        "all-ones references are always added",
    )
    parser.add_argument("--gt", metavar="DIR", help="folder of ground-truth <stem>.json files")
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default="black",
        help="baseline of the paper's metrics (E = map ⊙ clip) and of the classic curves: "
        + "; ".join(f"{k}: {v}" for k, v in BASELINE_HELP.items())
        + " (default: black, as the paper's E = map ⊙ clip)",
    )
    parser.add_argument(
        "--fill",
        default=",".join(NATURAL_FILLS),
        metavar="F[,F...]",
        help="fills of the keep/remove scores and relative curves, the first is the headline's: "
        + "; ".join(f"{k}: {FILL_HELP[k]}" for k in FILLS)
        + f" (default: {','.join(NATURAL_FILLS)})",
    )
    parser.add_argument(
        "--fractions",
        default="10,20,50",
        metavar="P[,P...]",
        help="percentages of the map's top voxels removed / kept (default: 10,20,50)",
    )
    parser.add_argument(
        "--fill-steps",
        type=int,
        default=0,
        metavar="N",
        help="equal steps added to the fills' curves (default 0: only 0, the fractions and 1; "
        "each step costs 8 masked forwards per clip and fill, and 8 ROAD solves for road)",
    )
    parser.add_argument(
        "--units",
        default="voxel,frame",
        help="units of the classic deletion/insertion curves under --baseline: voxel, frame, "
        "both (default) or none (fastest: keep/remove scores and the paper's metrics only)",
    )
    parser.add_argument(
        "--target",
        choices=("pred", "gt"),
        default="pred",
        help="class to explain: the model's top-1 prediction (default) or the ground-truth label",
    )
    parser.add_argument(
        "--steps", type=int, default=16, help="steps of the classic deletion/insertion curves"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=16,
        help="masked clips per forward pass (default 16; lower it for large models on little "
        "memory, e.g. 4 for I3D at 64×224×224)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random map and tie-breaks")
    parser.add_argument("--limit", type=int, help="evaluate only the first N videos")
    parser.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    parser.add_argument("--plot", metavar="PATH.png", help="write the mean curves as a PNG")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to a file")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing --json/--markdown/--plot files"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vidcam.evaluate.clips import list_videos
    from vidcam.evaluate.fills import parse_fills
    from vidcam.evaluate.report import format_table, format_timing, plot_curves, write_json
    from vidcam.evaluate.run import (
        EvalOptions,
        evaluate,
        parse_fractions,
        parse_methods,
        parse_units,
    )
    from vidcam.models.open import open_model
    from vidcam.paths import check_distinct, check_output, write_text

    if args.limit is not None and args.limit < 1:
        raise VidcamError(f"--limit must be >= 1, got {args.limit}")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise VidcamError(f"--plot {args.plot!r}: the plot is a PNG; give a path ending in .png")
    if args.gt and not Path(args.gt).is_dir():
        raise VidcamError(f"--gt {args.gt!r} is not a folder")
    fills = parse_fills(args.fill)  # option errors before any decoding or model loading
    fractions = parse_fractions(args.fractions)
    units = parse_units(args.units)
    methods = parse_methods(args.methods)
    if args.fill_steps < 0:
        raise VidcamError(f"--fill-steps must be >= 0, got {args.fill_steps}")
    videos = list_videos(args.inputs)[: args.limit]
    outputs = [("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)]
    for flag, value in outputs:
        if value:  # checked before the (long) run, not after it
            check_output(flag, value, inputs=videos, overwrite=args.overwrite)
    check_distinct(outputs)
    em = open_model(
        args.model,
        weights=args.weights,
        pretrained=not args.no_pretrained,
        device=args.device,
        progress=not args.quiet,
    )
    opts = EvalOptions(
        baseline=args.baseline,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        target=args.target,
        gt_dir=args.gt,
        quiet=args.quiet,
        fills=fills,
        fractions=fractions,
        fill_steps=args.fill_steps,
        units=units,
        methods=methods,
    )
    result = evaluate(videos, em, opts)
    table = format_table(result)
    sys.stdout.write(table)
    if not args.quiet:
        sys.stderr.write(format_timing(result))
    if args.markdown:
        write_text(args.markdown, table)
    if args.json:
        write_json(result, args.json)
    if args.plot:
        plot_curves(result, args.plot)
    return 0
