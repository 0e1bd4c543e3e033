"""``vidcam export fiftyone BATCH_DIR --dataset NAME``: a batch output as a FiftyOne dataset.

FiftyOne (``pip install 'vidcam[fiftyone]'``), torch and the pipeline are imported only inside
:func:`run`, so ``--help`` and argument errors answer at once. Exit status: 0 exported, 2 a
usage error (not a batch output, a batch still running, missing files, FiftyOne missing, a
dataset of another origin without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import sys

from vidcam.cli.choices import NORMALIZE, one_line_errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    one_line_errors(parser)
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    help_text = "a finished vidcam batch folder as a FiftyOne dataset (video samples)"
    p = sub.add_parser("fiftyone", help=help_text, description=help_text)
    one_line_errors(p)
    p.epilog = (
        "One video sample per explained clip: per-frame heatmaps (one field per method), "
        "window top-1 per frame, video top-1, ground truth, every --evaluate metric, links to "
        "the annotated MP4 and its page. Failed rows are skipped and counted. Exporting again "
        'updates the dataset in place (no duplicates). Then: python -c "import fiftyone as '
        "fo; fo.launch_app(fo.load_dataset('NAME')).wait()\""
    )
    p.add_argument("batch_dir", metavar="BATCH_DIR", help="the -o folder of a vidcam batch run")
    p.add_argument("--dataset", required=True, metavar="NAME", help="FiftyOne dataset name")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild the dataset (also one that is not this batch's export)",
    )
    p.add_argument(
        "--normalize",
        choices=NORMALIZE,
        help="heatmap scale (default: as the batch rendered it, else video)",
    )
    p.add_argument("--colormap", help="colour map of the heatmaps (default: the batch's, else jet)")
    p.add_argument("--alpha", type=float, help="heatmap opacity in the App (default: 0.6)")
    p.add_argument(
        "--heatmaps",
        choices=("png", "array"),
        default="png",
        help="png: image files in BATCH_DIR/fiftyone-maps (default); array: in the database",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=256,
        metavar="PX",
        help="heatmaps' longer side in pixels (default 256; never above the video's)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from vidcam.export import to_fiftyone

    s = to_fiftyone(
        args.batch_dir,
        args.dataset,
        overwrite=args.overwrite,
        normalize=args.normalize,
        colormap=args.colormap,
        alpha=args.alpha,
        heatmaps=args.heatmaps,
        max_side=args.max_side,
        progress=not args.quiet,
    )
    if not args.quiet:
        fields = ", ".join(f"{f} ({m})" for f, m in s.heat_fields.items()) or "none"
        print(
            f"vidcam export: dataset {s.dataset!r}: {s.samples} video samples ({s.added} new, "
            f"{s.updated} updated, {s.removed} removed), {s.frames} frames, heatmap fields: "
            f"{fields}; {len(s.failed)} failed batch row(s) skipped; {s.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0
