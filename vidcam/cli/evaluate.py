"""``vidcam evaluate``: how faithful and how well-localized are a model's explanations?

For every video (one clip each, sampled per the model's input spec) it compares Grad-CAM,
Grad-CAM++, a seeded random map and the all-ones map: Average Drop %, % Increase in Confidence
and Win % (Chattopadhyay et al. 2018), deletion/insertion AUC over voxels and over whole frames,
and, when ground truth is found (``<stem>.json`` next to the video or in ``--gt``), pointing
games, instance coverage, temporal energy and IoU. Prints a table; writes ``--json`` / ``--plot``.
"""

from __future__ import annotations

import argparse
import sys

from vidcam.errors import VidcamError
from vidcam.evaluate.masking import BASELINE_HELP, BASELINES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    parser.add_argument("--model", default="sample", help="registered model name (default: sample)")
    parser.add_argument("--weights", help="local checkpoint file for the model")
    parser.add_argument(
        "--no-pretrained", action="store_true", help="random weights (a sanity check)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default: auto)")
    parser.add_argument("--gt", metavar="DIR", help="folder of ground-truth <stem>.json files")
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default="black",
        help="what masked voxels become: "
        + "; ".join(f"{k}: {v}" for k, v in BASELINE_HELP.items())
        + " (default: black, as the paper's E = map ⊙ clip)",
    )
    parser.add_argument(
        "--target",
        choices=("pred", "gt"),
        default="pred",
        help="class to explain: the model's top-1 prediction (default) or the ground-truth label",
    )
    parser.add_argument("--steps", type=int, default=16, help="voxel deletion/insertion steps")
    parser.add_argument("--batch", type=int, default=16, help="masked clips per forward pass")
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
    from vidcam.evaluate.report import format_table, plot_curves, write_json
    from vidcam.evaluate.run import EvalOptions, evaluate
    from vidcam.models.record import resolve_model
    from vidcam.paths import check_distinct, check_output, write_text

    if args.limit is not None and args.limit < 1:
        raise VidcamError(f"--limit must be >= 1, got {args.limit}")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise VidcamError(f"--plot {args.plot!r}: the plot is a PNG; give a path ending in .png")
    if args.gt and not Path(args.gt).is_dir():
        raise VidcamError(f"--gt {args.gt!r} is not a folder")
    videos = list_videos(args.inputs)[: args.limit]
    outputs = [("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)]
    for flag, value in outputs:
        if value:  # checked before the (long) run, not after it
            check_output(flag, value, inputs=videos, overwrite=args.overwrite)
    check_distinct(outputs)
    em = resolve_model(
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
    )
    result = evaluate(videos, em, opts)
    table = format_table(result)
    sys.stdout.write(table)
    if args.markdown:
        write_text(args.markdown, table)
    if args.json:
        write_json(result, args.json)
    if args.plot:
        plot_curves(result, args.plot)
    return 0
