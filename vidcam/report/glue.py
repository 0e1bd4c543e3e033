"""``vidcam explain ... --report PAGE.html [--report-embed]``: the command line's two calls
into the report.

:func:`check_report_args` runs before any work (the page path, its distinctness from the other
outputs), :func:`report_from_args` after the video is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidcam.errors import VidcamError
from vidcam.paths import check_distinct, check_output
from vidcam.report.media import check_embed, probe_media
from vidcam.report.video_page import write_video_report


def settings_from_args(args: Any) -> dict[str, str]:
    """The run's settings as shown on the page, from ``vidcam explain``'s parsed arguments."""
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    if get("weights"):
        weights = f"file {get('weights')}"
    elif get("random_weights"):
        weights = "random (no checkpoint)"
    else:
        weights = "the registry's pretrained weights"
    layers = get("layer")
    out = {
        "model": get("model"),
        "weights": weights,
        "layer": ", ".join(layers) if layers else "the model's registered layer(s)",
        "method": get("method"),
        "softmax": "yes" if get("softmax") else "no",
        "target": get("target"),
        "clip length": get("clip_len") or "the model's",
        "stride": get("stride") or "half a clip",
        "spatial (asked)": get("spatial"),
        "normalize": get("normalize"),
        "alpha": get("alpha"),
        "colormap": get("colormap"),
        "side_by_side": "yes" if get("side_by_side") else "no",
        "device": get("device"),
        "labels file": get("labels"),
        "model card": get("card"),
    }
    return {k: str(v) for k, v in out.items() if v is not None}


def check_report_args(args: Any) -> None:
    """Before any work: ``--report`` needs ``-o`` and a writable page path of its own; with
    ``--report-embed`` (``args.report_embed``) a playable source must fit the embedding
    limit (:func:`vidcam.report.media.check_embed`)."""
    if not getattr(args, "report", None):
        if getattr(args, "report_embed", False):
            raise VidcamError("--report-embed needs --report PAGE.html: it puts files inside it")
        return
    if not args.output:
        raise VidcamError("--report needs -o OUTPUT.mp4: the page shows the annotated video")
    check_output("--report", args.report, inputs=[args.input], overwrite=args.overwrite)
    check_distinct(
        [
            ("the output video", args.output),
            ("--json", getattr(args, "json", None)),
            ("--preview", getattr(args, "preview", None)),
            ("--report", args.report),
        ]
    )
    if getattr(args, "report_embed", False):  # the source is known now: refuse it early
        source = probe_media(args.input)
        if source.playable:
            check_embed([("the source video", source.path)])


def report_from_args(args: Any, result: Any) -> Path | None:
    """After the run: write ``args.report`` for ``result`` (a VideoExplanation), or nothing."""
    if not getattr(args, "report", None):
        return None
    return write_video_report(
        args.report,
        explanation=result.to_json(),
        video=args.output,
        source=args.input,
        preview=getattr(args, "preview", None),
        settings=settings_from_args(args),
        overwrite=bool(getattr(args, "overwrite", False)),
        embed=bool(getattr(args, "report_embed", False)),
    )
