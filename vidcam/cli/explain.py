"""``vidcam explain INPUT -o OUTPUT``: an annotated video of where and when the model looks.

Everything that can be checked before the work starts is checked first (input, output
directory, extension, overwrite, colormap, alpha, device); the input file is only ever read.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from vidcam.video import METHODS, resolve_device, write_explained_video
from vidcam.video.encode import VALID_EXTENSIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="video file to explain (any format FFmpeg reads)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help=f"annotated video to write ({', '.join(VALID_EXTENSIONS)})",
    )
    parser.add_argument(
        "--model", default="i3d", help="registered model name (see 'vidcam models'; default: i3d)"
    )
    parser.add_argument("--weights", help="local checkpoint file for the model")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="use random weights (no checkpoint needed; for trying the pipeline)",
    )
    parser.add_argument(
        "--layer",
        action="append",
        help="layer to explain (dotted name; repeat to fuse several; "
        "default: the model's registered layer)",
    )
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        default="gradcam++",
        help="explanation method (default: gradcam++)",
    )
    parser.add_argument(
        "--softmax", action="store_true", help="Grad-CAM++ on softmax scores instead of exp(logit)"
    )
    parser.add_argument(
        "--target", default="top1", help="top1 (default), topk:K, a class name or a class index"
    )
    parser.add_argument(
        "--clip-len", type=int, help="frames per model window (default: the model's)"
    )
    parser.add_argument(
        "--stride", type=int, help="window hop in model frames (default: clip-len/2, 50%% overlap)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="compute device (default: auto = cuda if available)",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="windows per model call")
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="heatmap opacity in [0, 1] (default: 0.5)"
    )
    parser.add_argument(
        "--colormap",
        default="jet",
        help="OpenCV colormap name: jet, turbo, inferno, viridis, ... (default: jet)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write per-window predictions and per-frame importance"
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="two panels: Grad-CAM | Grad-CAM++ (or CAM | guided product)",
    )
    parser.add_argument(
        "--normalize",
        choices=("clip", "frame"),
        default="clip",
        help="heatmap scale: one per window volume (default; shows WHEN the model looks) or "
        "one per frame (shows WHERE in every frame, also when the map peaks in time)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output")


def run(args: argparse.Namespace) -> int:
    resolve_device(args.device)  # paths, colormap and alpha are checked first thing below
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warning
        result = write_explained_video(
            args.input,
            args.output,
            overwrite=args.overwrite,
            alpha=args.alpha,
            colormap=args.colormap,
            json_path=args.json,
            progress=not args.quiet,
            model=args.model,
            weights=args.weights,
            pretrained=not args.random_weights,
            layer=(args.layer[0] if len(args.layer) == 1 else args.layer) if args.layer else None,
            method=args.method,
            softmax=args.softmax,
            target=args.target,
            clip_len=args.clip_len,
            stride=args.stride,
            device=args.device,
            side_by_side=args.side_by_side,
            batch_size=args.batch_size,
            normalize=args.normalize,
        )
    if not args.quiet:
        took = time.perf_counter() - started
        print(
            f"wrote {args.output}: {result.frames} frames, {len(result.windows)} windows, "
            f"{result.model} / {result.method}, {took:.1f} s",
            file=sys.stderr,
        )
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"vidcam explain: warning: {message}", file=sys.stderr)
