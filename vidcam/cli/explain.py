"""``vidcam explain INPUT -o OUTPUT``: an annotated video of where and when the model looks.

``--preview PATH.png`` adds a contact sheet (or, without ``-o``, writes only the sheet);
``--report PAGE.html`` an HTML page (:mod:`vidcam.report`) that links the other files, or
carries them inside with ``--report-embed``. When the page cannot be written, the video, JSON
and sheet of the run are removed again (nothing half-committed).
Everything that can be checked before the work starts is checked first (input, outputs'
directories, extensions, overwrite, colormap, alpha, device, and --clip-len / --stride /
--batch-size against the model, the video's length and the free memory); the input file is only
ever read. torch and the pipeline are imported inside :func:`run`, so ``--help`` and argument
errors answer at once (the parser's choices come from :mod:`vidcam.cli.choices`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidcam.cli.choices import (
    DEFAULT_METHOD,
    DEFAULT_NORMALIZE,
    METHOD_IDS,
    NORMALIZE,
    SPATIAL,
    VALID_EXTENSIONS,
    VIDEO_GAMMA,
    VIDEO_PERCENTILE,
    one_line_errors,
)
from vidcam.cli.model_args import add_model_arguments, model_options
from vidcam.errors import VidcamError

if TYPE_CHECKING:
    from vidcam.video.options import ExplainOptions

SIDE_BY_SIDE = "--side-by-side"
#: the subcommands whose parser has --side-by-side
_SIDE_BY_SIDE_COMMANDS = ("explain", "batch")


class _SideBySide(argparse.Action):
    """``--side-by-side`` alone or with an empty value (``--side-by-side=``): True (the
    default pair); with method ids: the string, checked in ``run``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        empty = values is None or (isinstance(values, str) and not values.strip())
        setattr(namespace, self.dest, True if empty else values)


def _is_method_list(value: str) -> bool:
    ids = [i.strip().lower() for i in value.split(",") if i.strip()]
    return bool(ids) and all(i in METHOD_IDS for i in ids)


def _is_input(value: str) -> bool:
    """Not method ids but an existing path, or one that looks like a path (a suffix or a
    folder in it): what --side-by-side must not swallow."""
    if not value.strip() or value.startswith("-") or _is_method_list(value):
        return False
    p = Path(value)
    return p.exists() or bool(p.suffix) or "/" in value or os.sep in value


def unswallow_side_by_side(argv: Sequence[str]) -> list[str]:
    """``argv`` where a ``--side-by-side`` placed before an input no longer takes that input
    as its method list: ``explain --side-by-side clip.mp4 -o o.mp4`` is read as
    ``explain --side-by-side= clip.mp4 -o o.mp4`` (the default pair). A comma list of known
    method ids (or any other word) stays its value."""
    out = list(argv)
    command = next((i for i, a in enumerate(out) if not a.startswith("-")), None)
    if command is None or out[command] not in _SIDE_BY_SIDE_COMMANDS:
        return out
    for i in range(command + 1, len(out) - 1):
        token = out[i]
        if token == "--":
            break
        if len(token) >= len("--side") and SIDE_BY_SIDE.startswith(token) and _is_input(out[i + 1]):
            out[i] = SIDE_BY_SIDE + "="
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    one_line_errors(parser)
    parser.add_argument("input", help="video file to explain (any format FFmpeg reads)")
    parser.add_argument(
        "-o",
        "--output",
        help=f"annotated video to write ({', '.join(VALID_EXTENSIONS)}); optional with --preview",
    )
    parser.add_argument(
        "--preview",
        metavar="PATH.png",
        help="also write a contact sheet: 3x4 frames spread over the video, each with its "
        "heat, time and top label (without -o: only the sheet)",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--method",
        choices=list(METHOD_IDS),
        default=DEFAULT_METHOD,
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
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="windows per model call (default: auto: on a GPU as many as an input budget and "
        "the free memory allow; on a CPU one or two, whichever the first windows measure "
        "faster; I3D's 64-frame windows go one at a time)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.6,
        help="opacity of full heat in [0, 1] (default: 0.6); it grows with the heat, so cold "
        "regions stay the source pixels",
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
        SIDE_BY_SIDE,
        nargs="?",
        const=True,
        default=False,
        action=_SideBySide,
        metavar="M1,M2,...",
        help="panels side by side: alone, Grad-CAM | Grad-CAM++ (or CAM | guided product, or "
        "Grad-CAM++ | the method); with a list of method ids, those panels "
        "(e.g. gradcam,layercam,eigencam). Followed by a file or folder instead of method "
        "ids, it takes no list and that path stays the input",
    )
    parser.add_argument(
        "--normalize",
        choices=NORMALIZE,
        default=DEFAULT_NORMALIZE,
        help=f"heatmap scale: video (default: one robust scale for the whole video, its "
        f"{VIDEO_PERCENTILE:g}th percentile = high, gamma {VIDEO_GAMMA:g}: the hottest regions "
        "show in every frame with heat, and brightness follows WHEN the model looks), clip "
        "(one scale per window volume) or frame (every frame on its own: WHERE in every "
        "frame, nothing about when)",
    )
    parser.add_argument(
        "--spatial",
        choices=SPATIAL,
        default="auto",
        help="where the model looks: full frame (fully convolutional), tiles (overlapping "
        "crops, for fixed-size models), center (the centre crop only); auto (default): full "
        "when the model allows it",
    )
    parser.add_argument(
        "--report",
        metavar="PAGE.html",
        help="also write an HTML page: the annotated video beside its source, a timeline of "
        "class probabilities and temporal importance, settings (needs -o). It links the "
        "video, source and sheet by relative path: keep them where they are relative to it, "
        "or add --report-embed",
    )
    parser.add_argument(
        "--report-embed",
        action="store_true",
        help="put the video, source and sheet inside the --report page (data: URIs), so it "
        "needs no other file: at most 24 MiB a file, 64 MiB in all (a source over that is "
        "refused before any work; an annotated video over it fails the run, and nothing of "
        "it is kept)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="accept a damaged or truncated input of which much less than its header announces "
        "decodes (default: refuse it)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output")


def explain_options(args: argparse.Namespace) -> ExplainOptions:
    """The run's :class:`~vidcam.video.options.ExplainOptions` from ``vidcam explain``'s (or
    ``vidcam batch``'s) parsed arguments, validated (``--side-by-side``'s method ids too); the
    model options stay strings and paths (:func:`~vidcam.cli.model_args.model_options`), so
    the object pickles to Ray actors."""
    from vidcam.video.options import ExplainOptions

    return ExplainOptions(
        **model_options(args),
        method=args.method,
        softmax=args.softmax,
        target=args.target,
        clip_len=args.clip_len,
        stride=args.stride,
        device=args.device,
        progress=not args.quiet,
        side_by_side=args.side_by_side,
        batch_size=args.batch_size,
        normalize=args.normalize,
        spatial=args.spatial,
    )


def run(args: argparse.Namespace) -> int:
    if not args.output and not args.preview:
        raise VidcamError("nothing to write: give -o OUTPUT and/or --preview PATH.png")
    if not args.output and args.json:
        raise VidcamError("--json needs -o OUTPUT")
    from vidcam.cam.methods import panel_ids
    from vidcam.report import check_report_args
    from vidcam.video import resolve_device, write_explained_video, write_preview

    panel_ids(args.side_by_side)  # method ids checked before any work
    device = resolve_device(args.device)  # paths, colormap and alpha are checked first below
    check_report_args(args)
    started = time.perf_counter()
    look = dict(overwrite=args.overwrite, alpha=args.alpha, colormap=args.colormap)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warning
        info = _check_window(args, device)  # with the video's length: before the options'
        options = explain_options(args)
        o = options.with_model(_open(args, options, device, info))
        if args.output:
            result = write_explained_video(
                args.input,
                args.output,
                json_path=args.json,
                preview=args.preview,
                allow_partial=args.allow_partial,
                options=o,
                **look,
            )
        else:
            result = write_preview(
                args.input, args.preview, allow_partial=args.allow_partial, options=o, **look
            )
    _report_or_undo(args, result, options)
    if not args.quiet:
        took = time.perf_counter() - started
        wrote = ", ".join(p for p in (args.output, args.preview, args.report) if p)
        print(
            f"wrote {wrote}: {_frames_written(result)} frames, "
            f"{len(result.windows)} windows, "
            f"{result.model} / {result.method}, {took:.1f} s",
            file=sys.stderr,
        )
    return 0


def _stamp(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _report_or_undo(args: argparse.Namespace, result: object, options: ExplainOptions) -> None:
    """Write ``--report``; when that fails (or is interrupted), remove the video, JSON and
    preview this run committed, each only while it is still the file written (same inode,
    size and mtime), so nothing half-committed stays behind; then the error goes on."""
    if not args.report:
        return
    from vidcam.report import report_from_args

    written = {p: _stamp(p) for p in (args.output, args.json, args.preview) if p}
    try:
        report_from_args(args, result, options)
    except BaseException as exc:
        removed, failed = [], []
        for p, stamp in written.items():
            if stamp is None or _stamp(p) != stamp:
                continue  # not ours any more: someone replaced or removed it
            try:
                os.unlink(p)
                removed.append(p)
            except OSError as err:
                failed.append(f"{p} ({err.strerror})")
        if failed:
            raise VidcamError(f"{exc}; and could not remove {', '.join(failed)}") from exc
        if isinstance(exc, VidcamError) and removed:
            raise VidcamError(f"{exc} (removed this run's {', '.join(removed)})") from exc
        raise


def _frames_written(result: object) -> int:
    """The frames the written video holds (the encoder's count), else those explained (a
    preview-only run, or a pipeline that does not count)."""
    return getattr(result, "frames_written", 0) or result.frames


def _check_window(args: argparse.Namespace, device: object) -> object:
    """Paths, colormap and alpha first, then the model reference (a missing file, an unknown
    name), then --clip-len / --stride / --batch-size against a registered model's clip, the
    video's length and the free memory (:func:`vidcam.video.memory.check_window`), before any
    model is built; returns the video's info."""
    from vidcam.models.sources import check_ref
    from vidcam.paths import check_distinct
    from vidcam.video.decode import check_input, probe
    from vidcam.video.options import check_paths
    from vidcam.video.preview import check_preview
    from vidcam.video.render import check_alpha, colormap_lut

    if args.output:
        check_paths(args.input, args.output, overwrite=args.overwrite, json_path=args.json)
    if args.preview:
        check_preview(args.preview, inputs=[check_input(args.input)], overwrite=args.overwrite)
        check_distinct(
            [("the output video", args.output), ("--json", args.json), ("--preview", args.preview)]
        )
    colormap_lut(args.colormap)
    check_alpha(args.alpha)
    check_ref(args.model)
    info = probe(args.input)
    spec = _registered_input(args.model)
    if spec is not None:
        _check_clip(args, spec, info, device)
    return info


def _registered_input(model: str) -> object:
    """A registered model's input spec (known without building it), else None."""
    from vidcam.models.registry import MODELS
    from vidcam.models.sources import kind_of

    if kind_of(model) != "name":
        return None
    entry = MODELS.get(model) or MODELS.get(model.strip().lower().replace("-", "_"))
    return entry.input if entry is not None else None


def _check_clip(args: argparse.Namespace, spec: object, info: object, device: object) -> None:
    from vidcam.video.memory import check_window

    check_window(
        spec,
        clip_len=args.clip_len,
        stride=args.stride,
        batch_size=args.batch_size,
        info=info,
        spatial=args.spatial,
        device=device,
    )


def _open(args: argparse.Namespace, o: ExplainOptions, device: object, info: object) -> object:
    """Open the model once (every --model form, with --card / --labels / --layer), then check
    the window options against its input spec; the pipeline gets the handle."""
    from vidcam.models import open as open_mod

    handle = open_mod.open_model(o.model, **o.model_keywords(), device=device, progress=o.progress)
    _check_clip(args, handle.input, info, device)
    return handle


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"vidcam explain: warning: {message}", file=sys.stderr)
