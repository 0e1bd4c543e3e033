"""One video's report page: the annotated video over its source, the timeline, the contact
sheet, the run's settings, metrics and warnings (:func:`write_video_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import av

from vidcam.cam.methods import METHODS
from vidcam.errors import VidcamError
from vidcam.paths import check_output, write_text
from vidcam.report.charts import timeline
from vidcam.report.env import existing_file, link, render
from vidcam.report.reading import SETTING_HELP, flat_metrics, fmt, metric_help

#: what a browser's <video> element plays (H.264 / VP9 / AV1 in these containers)
PLAYABLE = {".mp4", ".m4v", ".mov", ".webm", ".ogv"}
IMAGE = {".gif", ".png", ".jpg", ".jpeg", ".webp"}


def panel_titles(explanation: Mapping, settings: Mapping, video_width: int | None) -> list[str]:
    """The methods shown side by side in the annotated video (one title per panel): the
    JSON's ``panels`` when it has them, else the companion panels of ``--side-by-side`` when
    the settings say so or the video is twice the source's width."""
    ids = explanation.get("panels")
    if not ids:
        method = METHODS.get(str(explanation.get("method", "")))
        side = str(settings.get("side_by_side", settings.get("side-by-side", ""))).lower()
        width = explanation.get("width")
        wide = bool(video_width and width and round(video_width / float(width)) == 2)
        if method is not None and (side in ("true", "yes", "1", "on") or wide):
            ids = [m.id for m in method.side_by_side()]
        else:
            ids = [explanation.get("method", "")]
    return [METHODS[i].title if i in METHODS else str(i) for i in ids]


def _width(video: Path) -> int | None:
    """The video's frame width (None when it cannot be read)."""
    try:
        with av.open(str(video)) as c:
            return int(c.streams.video[0].codec_context.width) if c.streams.video else None
    except (av.FFmpegError, OSError):
        return None


def run_settings(explanation: Mapping, settings: Mapping) -> list[tuple[str, str, str]]:
    """(name, value, how to read) rows: the caller's settings, then what the JSON holds."""
    rows: dict[str, str] = {str(k): fmt(v) for k, v in settings.items()}
    from_json = {
        "model": explanation.get("model"),
        "method": explanation.get("method"),
        "layers": explanation.get("layers"),
        "spatial": explanation.get("spatial"),
        "input": explanation.get("input"),
        "frames": explanation.get("frames"),
        "fps": explanation.get("fps"),
        "size": f"{explanation.get('width')}×{explanation.get('height')}",
        "windows": len(explanation.get("windows", [])),
    }
    if "frames_written" in explanation:
        from_json["frames written"] = explanation["frames_written"]
    for k, v in from_json.items():
        rows.setdefault(k, fmt(v))
    return [(k, v, SETTING_HELP.get(k, "")) for k, v in rows.items()]


def window_rows(explanation: Mapping) -> list[dict[str, object]]:
    """Per window: index, time span, top label and probability, explained targets."""
    out = []
    for w in explanation.get("windows", []):
        top = w.get("top") or [{}]
        out.append(
            {
                "index": w["index"],
                "start": float(w["start"]),
                "end": float(w["end"]),
                "label": top[0].get("label", "–"),
                "prob": float(top[0].get("prob", 0.0)),
                "targets": ", ".join(str(t.get("label", "")) for t in w.get("targets", [])),
            }
        )
    return out


def write_video_report(
    page: str | Path,
    *,
    explanation: Mapping,
    video: str | Path,
    source: str | Path | None = None,
    preview: str | Path | None = None,
    settings: Mapping[str, str] | None = None,
    metrics: Mapping | None = None,
    overwrite: bool = True,
) -> Path:
    """Write the HTML page of one explained video to ``page`` (atomically) and return it.

    Args:
        page: the .html file to write; links to the other files are relative to its folder.
        explanation: the explain JSON dict (``VideoExplanation.to_json()``).
        video: the annotated video (H.264 MP4; a GIF is shown as an image).
        source: the source video, shown beside the annotated one or blended over it.
        preview: the contact sheet image.
        settings: the run's settings (model, weights source, layer, method, ...), shown as is.
        metrics: flat (or nested) numbers from ``vidcam evaluate``, each with how to read it.
        overwrite: replace an existing page.
    """
    if not isinstance(explanation, Mapping) or "windows" not in explanation:
        raise VidcamError("explanation: give the explain JSON dict (VideoExplanation.to_json())")
    inputs = [p for p in (video, source, preview) if p is not None]
    out = check_output("the report page", page, inputs=inputs, overwrite=overwrite)
    video = existing_file("the annotated video", video)
    source = existing_file("the source video", source) if source is not None else None
    preview = existing_file("the contact sheet", preview) if preview is not None else None
    here = out.parent if str(out.parent) else Path(".")
    settings = dict(settings or {})
    titles = panel_titles(explanation, settings, _width(video))
    tl = timeline(explanation)
    context = {
        "title": Path(str(explanation.get("input", video))).name,
        "info": {
            "model": fmt(explanation.get("model")),
            "layers": fmt(explanation.get("layers")),
            "spatial": fmt(explanation.get("spatial")),
            "frames": fmt(explanation.get("frames")),
            "duration": tl.duration,
        },
        "video_href": link(here, video),
        "video_is_image": video.suffix.lower() in IMAGE,
        "source_href": link(here, source) if source is not None else None,
        "source_playable": source is not None and source.suffix.lower() in PLAYABLE,
        "source_name": source.name if source is not None else "",
        "preview_href": link(here, preview) if preview is not None else None,
        "panels": titles,
        "timeline": tl,
        "settings": run_settings(explanation, settings),
        "metrics": [(k, fmt(v), metric_help(k)) for k, v in flat_metrics(metrics or {})],
        "has_metrics": metrics is not None,
        "windows": window_rows(explanation),
        "warnings": [str(w) for w in explanation.get("warnings", [])],
        "script_data": {"duration": tl.duration, "x0": tl.x0, "x1": tl.x1},
    }
    return write_text(out, render("video.html.j2", context), overwrite=overwrite)
