"""One video's report page: the annotated video over its source, the timeline, the contact
sheet, the run's settings, metrics and warnings (:func:`write_video_report`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vidcam.cam.methods import METHODS
from vidcam.errors import VidcamError
from vidcam.paths import check_output, write_text
from vidcam.report.charts import timeline
from vidcam.report.env import existing_file, link, render
from vidcam.report.media import Media, check_embed, data_uri, probe_media
from vidcam.report.reading import SETTING_HELP, flat_metrics, fmt, metric_help


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


@dataclass(frozen=True)
class Shown:
    """A file as the page shows it: its probe, the href (a relative link or a data: URI),
    the path the reader sees (relative to the page) and whether the page carries it."""

    media: Media
    role: str
    href: str | None
    rel: str
    embedded: bool = False

    @property
    def style(self) -> str:
        """CSS custom properties with the display size (empty when unknown)."""
        m = self.media
        return f"--fw: {m.width}; --fh: {m.height}" if m.width and m.height else ""


def _shown(here: Path, role: str, path: Path, embed: bool, media: Media | None = None) -> Shown:
    media = media or probe_media(path)
    rel = os.path.relpath(path.resolve(), here.resolve())
    rel = Path(rel).as_posix()
    if embed and media.playable:
        return Shown(media, role, data_uri(media), rel, embedded=True)
    return Shown(media, role, None if embed else link(here, path), rel)


def media_context(
    here: Path, video: Path, source: Path | None, preview: Path | None, embed: bool
) -> dict[str, object]:
    """The page's files: probed, checked against the embedding limits when ``embed``,
    then linked or embedded (``main``, ``source``, ``sheet``, ``files``)."""
    probed = {"video": probe_media(video)}
    if source is not None:
        probed["source"] = probe_media(source)
    if preview is not None:
        probed["sheet"] = probe_media(preview)
    roles = {
        "video": "the annotated video",
        "source": "the source video",
        "sheet": "the contact sheet",
    }
    if embed:
        check_embed([(roles[k], m.path) for k, m in probed.items() if m.playable])
    shown = {k: _shown(here, roles[k], m.path, embed, m) for k, m in probed.items()}
    return {
        "main": shown["video"],
        "source": shown.get("source"),
        "sheet": shown.get("sheet"),
        "files": list(shown.values()),
        "embed": embed,
    }


def page_context(
    explanation: Mapping, files: Mapping[str, object], settings: Mapping, metrics: Mapping | None
) -> dict[str, object]:
    """The video page's template context: ``files`` (:func:`media_context`) plus the panels,
    timeline, settings, metrics, windows and warnings of ``explanation``."""
    main = files["main"].media
    tl = timeline(explanation)
    return {
        "title": Path(str(explanation.get("input", main.path))).name,
        "info": {
            "model": fmt(explanation.get("model")),
            "layers": fmt(explanation.get("layers")),
            "spatial": fmt(explanation.get("spatial")),
            "frames": fmt(explanation.get("frames")),
            "duration": tl.duration,
        },
        **files,
        "panels": panel_titles(explanation, settings, main.width if main.kind == "video" else None),
        "timeline": tl,
        "settings": run_settings(explanation, settings),
        "metrics": [(k, fmt(v), metric_help(k)) for k, v in flat_metrics(metrics or {})],
        "has_metrics": metrics is not None,
        "windows": window_rows(explanation),
        "warnings": [str(w) for w in explanation.get("warnings", [])],
        "script_data": {"duration": tl.duration, "x0": tl.x0, "x1": tl.x1},
    }


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
    embed: bool = False,
) -> Path:
    """Write the HTML page of one explained video to ``page`` (atomically) and return it.

    By default the page links its files (video, source, sheet) by relative path: it shows
    them only while they stay where they are relative to it, and it lists them under
    "Files". With ``embed`` it carries them inside as ``data:`` URIs and needs no other
    file (at most :data:`~vidcam.report.media.EMBED_FILE_LIMIT` per file and
    :data:`~vidcam.report.media.EMBED_TOTAL_LIMIT` in all, else a VidcamError before
    anything is written; a source no browser plays is named, not embedded).

    Args:
        page: the .html file to write; links to the other files are relative to its folder.
        explanation: the explain JSON dict (``VideoExplanation.to_json()``).
        video: the annotated video (H.264 MP4; a GIF is shown as an image).
        source: the source video, shown beside the annotated one or blended over it; one a
            browser cannot play (read with PyAV: e.g. MPEG-4 part 2) gets a note instead.
        preview: the contact sheet image.
        settings: the run's settings (model, weights source, layer, method, ...), shown as is.
        metrics: flat (or nested) numbers from ``vidcam evaluate``, each with how to read it.
        overwrite: replace an existing page.
        embed: carry the video, source and sheet inside the page (``--report-embed``).
    """
    if not isinstance(explanation, Mapping) or "windows" not in explanation:
        raise VidcamError("explanation: give the explain JSON dict (VideoExplanation.to_json())")
    inputs = [p for p in (video, source, preview) if p is not None]
    out = check_output("the report page", page, inputs=inputs, overwrite=overwrite)
    video = existing_file("the annotated video", video)
    source = existing_file("the source video", source) if source is not None else None
    preview = existing_file("the contact sheet", preview) if preview is not None else None
    here = out.parent if str(out.parent) else Path(".")
    files = media_context(here, video, source, preview, bool(embed))
    context = page_context(explanation, files, dict(settings or {}), metrics)
    return write_text(out, render("video.html.j2", context), overwrite=overwrite)
