"""``vidcam explain ... --report PAGE.html [--report-embed]``: the command line's two calls
into the report.

:func:`check_report_args` runs before any work (the page path, its distinctness from the other
outputs), :func:`report_from_args` after the video is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vidcam.errors import VidcamError
from vidcam.paths import check_distinct, check_output
from vidcam.report.media import check_embed, probe_media
from vidcam.report.video_page import write_video_report
from vidcam.video.options import ExplainOptions


def run_settings(o: ExplainOptions, *, alpha: object, colormap: object) -> dict[str, str]:
    """The run's settings as shown on the page: the :class:`ExplainOptions` ``o`` (its model
    as named, not opened), the overlay's ``alpha`` and ``colormap``."""
    if o.weights:
        weights = f"file {o.weights}"
    elif not o.pretrained:
        weights = "random (no checkpoint)"
    else:
        weights = "the registry's pretrained weights"
    layers = [o.layer] if isinstance(o.layer, str) else o.layer
    out = {
        "model": o.model,
        "weights": weights,
        "layer": ", ".join(map(str, layers)) if layers else "the model's registered layer(s)",
        "method": o.method,
        "softmax": "yes" if o.softmax else "no",
        "target": o.target,
        "clip length": o.clip_len or "the model's",
        "stride": o.stride or "half a clip",
        "spatial (asked)": o.spatial,
        "normalize": o.normalize,
        "alpha": alpha,
        "colormap": colormap,
        "side_by_side": "yes" if o.side_by_side else "no",
        "device": o.device,
        "labels file": o.labels,
        "model card": o.card,
    }
    return {k: str(v) for k, v in out.items() if v is not None}


def settings_from_args(args: Any) -> dict[str, str]:
    """:func:`run_settings` from ``vidcam explain``'s parsed arguments (not validated)."""
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    fields = {f.name: get(f.name, f.default) for f in dataclasses.fields(ExplainOptions)}
    fields["pretrained"] = not get("random_weights")
    o = SimpleNamespace(**fields)  # the values as given: a page shows, it does not judge
    return run_settings(o, alpha=get("alpha"), colormap=get("colormap"))  # type: ignore[arg-type]


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


def report_from_args(args: Any, result: Any, options: ExplainOptions | None = None) -> Path | None:
    """After the run: write ``args.report`` for ``result`` (a VideoExplanation), or nothing;
    the settings shown are ``options`` (the run's, as built from ``args``) when given."""
    if not getattr(args, "report", None):
        return None
    return write_video_report(
        args.report,
        explanation=result.to_json(),
        video=args.output,
        source=args.input,
        preview=getattr(args, "preview", None),
        settings=settings_from_args(args)
        if options is None
        else run_settings(options, alpha=args.alpha, colormap=args.colormap),
        overwrite=bool(getattr(args, "overwrite", False)),
        embed=bool(getattr(args, "report_embed", False)),
    )
