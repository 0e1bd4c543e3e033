"""``vidcam batch INPUTS... -o OUT_DIR``: explain a whole dataset, resumably.

The model, method and rendering options are ``vidcam explain``'s own (its argument
definitions are reused, minus the single-file ones). Exit status: 0 when every input is done
(or was done by an earlier run), 1 when any failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys

from vidcam.cli import explain as explain_cli
from vidcam.cli.choices import DEFAULT_VIDEO_TIMEOUT, DEMUXERS_ENV
from vidcam.errors import VidcamError

_NOT_FOR_BATCH = {
    "input", "-o", "--preview", "--json", "--report", "--report-embed", "--overwrite", "--quiet",
}  # fmt: skip


class _ExplainOptionsOnly:
    """Stands in for the parser while ``vidcam explain`` defines its options: forwards them
    (except the single-file ones) to an argument group, everything else to the parser."""

    def __init__(self, parser: argparse.ArgumentParser, group) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_group", group)

    def add_argument(self, *names: str, **kwargs):
        if names and names[0] in _NOT_FOR_BATCH:
            return None
        return self._group.add_argument(*names, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._parser, name, value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Per video (layout mirrors the inputs): NAME.mp4, NAME.json, NAME.maps.npz, "
        "NAME.preview.png, NAME.html (+ NAME.metrics.json); per run: index.jsonl, "
        "summary.csv, index.html. A rerun skips videos whose outputs are complete and "
        "verified. Exit status: 0 all done, 1 if any input failed, 2 usage error. "
        f"Environment: {DEMUXERS_ENV}=NAME[,NAME...] allows FFmpeg demuxers vidcam refuses "
        "because they make FFmpeg open other files: list formats such as concat (an FFmpeg "
        "concat list), hls and dash (playlists) and image2 (image sequences). Unless named "
        f"there, an input in such a format is a failed row (e.g. {DEMUXERS_ENV}=concat "
        "vidcam batch list.ffconcat -o out); it is passed on to the Ray workers (and "
        "VIDCAM_OFFLINE with it)."
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders, or manifests (.csv / .jsonl: path, optional label, gt, "
        "target, start, end in seconds; paths relative to the manifest)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--recursive", action="store_true", help="scan folders' sub-folders too")
    parser.add_argument(
        "--evaluate", action="store_true", help="per-clip metrics (NAME.metrics.json)"
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="redo inputs that failed in an earlier run"
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local (default: in-process, one model load) or ray (pip install 'vidcam[ray]')",
    )
    parser.add_argument("--ray-address", help="Ray cluster to join (default: a local one)")
    parser.add_argument(
        "--workers",
        type=int,
        help="Ray model actors (default: one per GPU, else 2 CPU actors)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="let outputs replace existing files that no earlier run of that video wrote "
        "(never an input of the run)",
    )
    parser.add_argument(
        "--video-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one video may take (reading, explaining and writing it; checked as its "
        "frames are read) before it becomes a failed row and the batch goes on with the next "
        f"(default: {DEFAULT_VIDEO_TIMEOUT:g}, one hour; 0: no limit); --retry-failed tries "
        "it again. With --executor ray, a worker still busy 50%% (at least 60 s) past the "
        "limit is stopped",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    group = parser.add_argument_group("explain options")
    explain_cli.add_arguments(_ExplainOptionsOnly(parser, group))


def run(args: argparse.Namespace) -> int:
    from vidcam.batch import run as run_batch
    from vidcam.models.sources import check_ref

    check_ref(args.model)  # a missing file or an unknown name: refused before any work
    # the model's options as strings and paths: they pickle to Ray actors, which open the model
    explain = explain_cli.explain_options(args)
    timeout = {} if args.video_timeout is None else {"video_timeout": _timeout(args.video_timeout)}
    rows = run_batch(
        args.inputs,
        args.output,
        recursive=args.recursive,
        alpha=args.alpha,
        colormap=args.colormap,
        evaluate=args.evaluate,
        allow_partial=args.allow_partial,
        retry_failed=args.retry_failed,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        progress=not args.quiet,
        overwrite=args.overwrite,
        explain=explain,
        **timeout,
    )
    failed = [r for r in rows if r["status"] == "failed"]
    if not args.quiet:
        skipped = sum(r["status"] == "skipped" for r in rows)
        print(
            f"vidcam batch: {len(rows) - len(failed) - skipped} done, {skipped} skipped "
            f"(done earlier), {len(failed)} failed; index: {args.output}/index.jsonl",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _timeout(seconds: float) -> float | None:
    """--video-timeout: seconds > 0, or 0 for no limit (None)."""
    if seconds == 0:
        return None
    if not seconds > 0 or seconds == float("inf"):
        raise VidcamError(f"--video-timeout must be seconds > 0 (0: no limit), got {seconds:g}")
    return seconds
