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
(``<stem>.json`` / ``<stem>.npz`` next to the video or in the ``--gt`` folder, or an
action-detection annotation pickle given as ``--gt``), energy in box, the pointing game (exact
and with a tolerance), instance coverage, temporal energy and IoU — beside the reference maps,
the centre prior among them. ``--spatial`` explains and scores the window ``vidcam explain``
renders (default ``auto``: the whole frame where the model allows it). Every masked forward
runs batched (``--batch``) under inference mode. Prints the tables; writes ``--json`` /
``--plot`` / ``--markdown``. torch loads only inside :func:`run` (the parser's constants come
from :mod:`vidcam.evaluate.choices`), so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from vidcam.cli.model_args import add_model_arguments, model_options
from vidcam.errors import VidcamError
from vidcam.evaluate.choices import (
    BASELINE_HELP,
    BASELINES,
    DEFAULT_METHODS,
    ENGINE_METHODS,
    FILL_HELP,
    FILLS,
    NATURAL_FILLS,
    PERTURBATION_METHODS,
    POINTING_TOLERANCE,
    REFERENCES,
    SLOW_METHOD_COSTS,
    SPATIAL,
)

if TYPE_CHECKING:
    from vidcam.evaluate.options import EvalOptions
    from vidcam.evaluate.result import EvalResult

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_inputs(parser)
    _add_faithfulness(parser)
    _add_outputs(parser)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """Videos, model, device, spatial mode, methods, ground truth and reference maps."""
    parser.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    add_model_arguments(parser, default="sample")
    parser.add_argument(  # the older spelling of --random-weights
        "--no-pretrained", dest="random_weights", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default: auto)")
    parser.add_argument(
        "--spatial",
        choices=SPATIAL,
        default="auto",
        help="which part of each frame is explained and scored, as in 'vidcam explain': the "
        "whole frame (full: the model run fully convolutionally), tiles of the model's size "
        "across it, the model's centre crop, or auto (full where the model allows it; "
        "default) — localization is measured over that window",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        metavar="M[,M...]",
        help=f"methods compared and ranked: {', '.join(ENGINE_METHODS)} or all (default: every "
        f"cheap one, {','.join(DEFAULT_METHODS)}: one forward + one backward per clip for all; "
        f"slow ones cost more — {SLOW_METHOD_COSTS}); the reference maps "
        "(--references) are added",
    )
    parser.add_argument(
        "--gt",
        metavar="PATH",
        help="ground truth: a folder of <stem>.json (boxes) or <stem>.npz (per-frame masks) "
        "files, an action-detection annotation pickle (UCF101-24 pyannot.pkl, JHMDB/UCF "
        "*-GT.pkl; videos matched by file name; read without running code), or one .json/.npz "
        "file for one video (default: <stem>.json / .npz next to each video)",
    )
    parser.add_argument(
        "--pointing-tolerance",
        type=float,
        default=POINTING_TOLERANCE,
        metavar="PX",
        help=f"the pointing game's tolerance in source pixels (default {POINTING_TOLERANCE:g}, "
        "as in the literature); the exact pointing game is reported too",
    )
    parser.add_argument(
        "--references",
        default=",".join(REFERENCES),
        metavar="R[,R...]",
        help=f"reference maps scored beside the methods: {', '.join(REFERENCES)} or none "
        "(default: all; random is at the explained layer's resolution, random_voxel white "
        "noise, centre a centred Gaussian — the centre prior)",
    )


def _add_faithfulness(parser: argparse.ArgumentParser) -> None:
    """Baseline, fills, fractions, curves, target, batch and seed."""
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
        + f" (default: {','.join(NATURAL_FILLS)}); none: no keep/remove scores (localization "
        "and the paper's metrics only: fastest)",
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
    _add_perturbation(parser)


def _add_perturbation(parser: argparse.ArgumentParser) -> None:
    """The cost knobs of the perturbation methods (rise, extremal)."""
    parser.add_argument(
        "--rise-masks",
        type=int,
        default=500,
        metavar="N",
        help="RISE's random masks per clip (default 500; each is a masked forward)",
    )
    parser.add_argument(
        "--extremal-steps",
        type=int,
        default=60,
        metavar="N",
        help="extremal perturbation's optimisation steps per clip (default 60; each is a "
        "forward and a backward of its masked clips)",
    )


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="evaluate only the first N videos")
    parser.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    parser.add_argument("--plot", metavar="PATH.png", help="write the mean curves as a PNG")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to a file")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing --json/--markdown/--plot files"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Check every option and output, read the ground truth, load the model, evaluate, then
    print the tables (from the result's typed records) and write ``--json`` / ``--markdown`` /
    ``--plot``."""
    from vidcam.evaluate.clips import list_videos
    from vidcam.evaluate.gt import ground_truths
    from vidcam.evaluate.pipeline import evaluate
    from vidcam.models.open import open_model
    from vidcam.paths import check_distinct, check_output

    opts = _options(args)
    videos = list_videos(args.inputs)[: args.limit]
    outputs = [("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)]
    for flag, value in outputs:
        if value:  # checked before the (long) run, not after it
            check_output(flag, value, inputs=videos, overwrite=args.overwrite)
    check_distinct(outputs)
    truths = ground_truths(args.gt, videos)  # every ground truth read before the model loads
    engine = _engine_options(opts, args)
    em = open_model(**model_options(args), device=args.device, progress=not args.quiet)
    _write(evaluate(videos, em, opts, truths=truths, engine=engine), args)
    return 0


def _engine_options(opts: EvalOptions, args: argparse.Namespace) -> dict[str, Any]:
    """The engine's extra keywords: the perturbation methods' cost knobs when one is run."""
    if not set(opts.methods) & set(PERTURBATION_METHODS):
        return {}
    from vidcam.cam.perturbation import Perturbation

    # Perturbation checks them: one line each
    return {"perturbation": Perturbation(masks=args.rise_masks, steps=args.extremal_steps)}


def _write(result: EvalResult, args: argparse.Namespace) -> None:
    """Print the tables (and, unless ``--quiet``, the timing line); write the files asked for."""
    from vidcam.evaluate.outputs import format_table, format_timing, plot_curves, write_json
    from vidcam.paths import write_text

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


def _options(args: argparse.Namespace) -> EvalOptions:
    """The run's :class:`~vidcam.evaluate.options.EvalOptions`, every option checked (before
    any decoding or model loading)."""
    from pathlib import Path

    from vidcam.evaluate.options import EvalOptions

    if args.limit is not None and args.limit < 1:
        raise VidcamError(f"--limit must be >= 1, got {args.limit}")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise VidcamError(f"--plot {args.plot!r}: the plot is a PNG; give a path ending in .png")
    if args.gt and not Path(args.gt).exists():
        raise VidcamError(f"--gt {args.gt!r} does not exist; give a folder or an annotation file")
    if not _DEVICE.match(str(args.device).lower()):
        raise VidcamError(f"--device {args.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
    if args.fill_steps < 0:
        raise VidcamError(f"--fill-steps must be >= 0, got {args.fill_steps}")
    opts = EvalOptions(
        baseline=args.baseline,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        target=args.target,
        gt_dir=args.gt,
        quiet=args.quiet,
        fills=args.fill,
        fractions=args.fractions,
        fill_steps=args.fill_steps,
        units=args.units,
        methods=args.methods,
        references=args.references,
        spatial=args.spatial,
        tolerance=args.pointing_tolerance,
    )
    opts.check()  # parses the lists (fills, fractions, units, methods, references)
    return opts
