"""The video pipeline's entry points: explain a file, stream its frames, or write a video.

Both passes stream (see :mod:`vidcam.video` for the whole data path): pass 1
(:func:`~vidcam.video.explain_pass.explain_pass`) explains every window and spools its maps;
pass 2 (:mod:`vidcam.video.map_pass`) decodes again and maps them back onto each source frame,
which :func:`write_explained_video` renders and encodes while :func:`explain_video` collects
them; :func:`write_preview` renders only a contact sheet (:mod:`vidcam.video.preview`).

``normalize`` (the display scale, :mod:`vidcam.video.scale`) is a pass-2 choice, like
``alpha`` and ``colormap``: pass 1 spools maps in the CAM's own units, whatever the scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.paths import AtomicFile, check_distinct, commit_all, file_stamp
from vidcam.video.decode import VideoSource
from vidcam.video.encode import VideoEncoder
from vidcam.video.explain_pass import explain_pass
from vidcam.video.map_pass import Placers, blended, display_scale, explained_frames
from vidcam.video.options import ExplainOptions, check_paths
from vidcam.video.preview import ContactSheet, check_preview
from vidcam.video.render import Panel, Renderer, check_alpha, colormap_lut, to_u8
from vidcam.video.results import ExplainedFrame, VideoAnalysis, VideoExplanation
from vidcam.video.scale import DEFAULT_NORMALIZE, DisplayScale
from vidcam.video.threads import WriteBehind, torch_threads

#: torch's CPU threads in pass 2 (one frame's small maps at a time; see ``torch_threads``)
_PASS2_THREADS = 1


def _options(options: ExplainOptions | None, kwargs: dict[str, Any]) -> ExplainOptions:
    """The run's one :class:`ExplainOptions`: ``options`` with the keyword arguments applied,
    or built from them (validated either way)."""
    if options is None:
        return ExplainOptions(**kwargs)
    return options.replace(**kwargs) if kwargs else options


def analyze(
    path: str | Path,
    *,
    allow_partial: bool = False,
    options: ExplainOptions | None = None,
    **kwargs: Any,
) -> VideoAnalysis:
    """Pass 1 only: the :class:`VideoAnalysis` record (close it, or use ``with``); pass 2:
    :func:`~vidcam.video.map_pass.explained_frames` (with the ``normalize`` of your choice).
    Options as in :func:`explain_video`."""
    return explain_pass(_source(path, allow_partial), _options(options, kwargs))


def iter_explained_frames(
    path: str | Path,
    *,
    allow_partial: bool = False,
    options: ExplainOptions | None = None,
    **kwargs: Any,
) -> Iterator[ExplainedFrame]:
    """Stream every frame of ``path`` with its explanation (options of :func:`explain_video`);
    memory stays bounded however long the video is."""
    o = _options(options, kwargs)
    with explain_pass(_source(path, allow_partial), o) as analysis:
        check_unchanged(analysis)
        yield from explained_frames(analysis, o.normalize, progress=o.progress)


def explain_video(
    path: str | Path,
    *,
    allow_partial: bool = False,
    options: ExplainOptions | None = None,
    **kwargs: Any,
) -> VideoExplanation:
    """Explain a video file: per-frame heatmaps at the source resolution, per-window predictions,
    per-frame importance.

    The options are the fields of :class:`~vidcam.video.options.ExplainOptions` (documented
    there), given as keyword arguments (``explain_video(path, model="sample",
    method="layercam")``), as ``options=ExplainOptions(...)``, or both (the keywords then
    replace those fields). ``allow_partial`` accepts a damaged or truncated input of which
    less than 90 % of the announced frames (or duration) decodes (default: a VidcamError;
    lost frames are always reported in a warning). The heatmaps of all frames are collected
    as uint8 (F, H, W): for long videos use :func:`iter_explained_frames` or
    :func:`write_explained_video`, which stream.
    """
    o = _options(options, kwargs)
    with (
        explain_pass(_source(path, allow_partial), o) as analysis,
        torch_threads(_PASS2_THREADS),
    ):
        check_unchanged(analysis)
        collected: dict[str, list[torch.Tensor]] = {p.id: [] for p in analysis.panels}
        for fr in explained_frames(analysis, o.normalize, progress=o.progress):
            for pid, v in fr.panels.items():
                collected[pid].append(v.mul(255).round_().to(torch.uint8).cpu())
        result = analysis.summary()
    result.panels = {p: torch.stack(v) for p, v in collected.items() if v}
    heat = [p for p, v in result.panels.items() if v.dim() == 3]
    requested = analysis.method.cam
    result.heatmaps = result.panels.get(requested, result.panels[heat[0]] if heat else None)
    return result


def write_explained_video(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    alpha: float = 0.6,
    colormap: str = "jet",
    json_path: str | Path | None = None,
    preview: str | Path | None = None,
    allow_partial: bool = False,
    options: ExplainOptions | None = None,
    **kwargs: Any,
) -> VideoExplanation:
    """Explain ``path`` and write the annotated video to ``output`` (.mp4/.mov/.mkv/.gif),
    plus, with ``json_path``, the per-window predictions and per-frame importance as JSON, and
    with ``preview``, a contact sheet PNG (:func:`write_preview`).

    ``alpha`` is the opacity of full heat (cold pixels stay the source's). Streams both passes;
    every output appears only when complete, and without ``overwrite`` never replaces a file
    (also one another run created meanwhile: then a VidcamError). Other keyword arguments as
    in :func:`explain_video`. Returns the explanation without per-frame heatmaps;
    ``frames_written`` counts the frames in the written video.
    """
    src, out = check_paths(path, output, overwrite=overwrite, json_path=json_path)
    if preview is not None:
        check_preview(preview, inputs=[src], overwrite=overwrite)
        check_distinct([("the output video", out), ("--json", json_path), ("--preview", preview)])
    colormap_lut(colormap)
    check_alpha(alpha)
    o = _options(options, kwargs)
    # every output is written to its own temporary name and renamed only when all are
    # complete: a late failure (a full disk at the JSON) leaves none of them
    staged = {k: AtomicFile(p, overwrite=overwrite) for k, p in _named(out, json_path, preview)}
    try:
        with explain_pass(_source(src, allow_partial), o) as analysis:
            result = render_analysis(
                analysis,
                staged["video"].tmp,
                normalize=o.normalize,
                alpha=alpha,
                colormap=colormap,
                preview=staged["preview"].tmp if "preview" in staged else None,
                progress=o.progress,
            )
        if "json" in staged:
            result.write_json(staged["json"].tmp)
    except BaseException:
        for f in staged.values():
            f.discard()
        raise
    commit_all(list(staged.values()))
    return result


def _named(out: Path, json_path, preview) -> list[tuple[str, Path]]:
    named = [("video", out), ("json", json_path), ("preview", preview)]
    return [(k, Path(p)) for k, p in named if p]


def render_analysis(
    analysis: VideoAnalysis,
    output: str | Path,
    *,
    normalize: str | DisplayScale = DEFAULT_NORMALIZE,
    alpha: float = 0.6,
    colormap: str = "jet",
    preview: str | Path | None = None,
    progress: bool = False,
    overwrite: bool = True,
) -> VideoExplanation:
    """Pass 2 of :func:`write_explained_video` on a pass-1 record (e.g. from :func:`analyze`;
    the same analysis can be rendered with several scales and looks). Paths are not checked;
    ``overwrite=False``: fail rather than replace an existing output. Warnings of this pass
    (GIF frame rate, a changed input) are added to the result's ``warnings``."""
    check_unchanged(analysis)
    scale = normalize if isinstance(normalize, DisplayScale) else display_scale(analysis, normalize)
    renderer = _renderer(analysis, scale, alpha, colormap)
    sheet = _sheet(analysis, scale, renderer) if preview is not None else None
    with warnings.catch_warnings(record=True) as caught, torch_threads(_PASS2_THREADS):
        warnings.simplefilter("always")
        written = _encode(analysis, output, scale, renderer, sheet, progress, overwrite)
    result = analysis.summary()
    result.frames_written = written
    for w in caught:
        result.warnings.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if sheet is not None:
        sheet.write(preview, overwrite=overwrite)
    return result


def _encode(
    analysis: VideoAnalysis,
    output: str | Path,
    scale: DisplayScale,
    renderer: Renderer,
    sheet: ContactSheet | None,
    progress: bool,
    overwrite: bool,
) -> int:
    """Render and encode every frame (pass 2); returns the encoder's frame count."""
    info = analysis.info
    n = 0
    with (
        VideoEncoder(
            output,
            width=info.width * len(analysis.panels),
            height=info.height,
            fps=info.fps,
            time_base=info.time_base,
            audio_from=info.path if info.has_audio else None,
            audio_offset=info.start,
            overwrite=overwrite,
        ) as enc,
        WriteBehind(enc.write) as write,
    ):
        for frame, panels, window in _panels(analysis, scale, progress):
            if sheet is not None and sheet.wants(frame.index):
                _add_to_sheet(sheet, analysis, renderer, frame, panels, window)
            image = renderer(
                frame.image,
                panels,
                time=float(frame.time),
                frame=frame.index,
                lines=window.caption(analysis.model.labels),
            )
            write(image, frame.time)
            n += 1
        if n < len(analysis.times):
            warnings.warn(
                f"{info.path.name} changed while vidcam ran: the second pass decoded {n} of "
                f"{len(analysis.times)} frames; only those are in the output",
                stacklevel=3,
            )
    return enc.frames


def write_preview(
    path: str | Path,
    preview: str | Path,
    *,
    overwrite: bool = False,
    alpha: float = 0.6,
    colormap: str = "jet",
    rows: int = 3,
    cols: int = 4,
    allow_partial: bool = False,
    options: ExplainOptions | None = None,
    **kwargs: Any,
) -> VideoExplanation:
    """Explain ``path`` and write only its contact sheet to ``preview`` (.png/.jpg): ``rows ×
    cols`` frames spread over the video, each with its heat, time, top label and importance
    (:mod:`vidcam.video.preview`). Written atomically; the path is checked before any work.
    Options as in :func:`write_explained_video`."""
    from vidcam.video.decode import check_input

    src = check_input(path)
    check_preview(preview, inputs=[src], overwrite=overwrite)
    colormap_lut(colormap)
    check_alpha(alpha)
    o = _options(options, kwargs)
    with explain_pass(_source(src, allow_partial), o) as analysis:
        scale = display_scale(analysis, o.normalize)
        renderer = _renderer(analysis, scale, alpha, colormap)
        sheet = _sheet(analysis, scale, renderer, rows=rows, cols=cols)
        with torch_threads(_PASS2_THREADS):
            check_unchanged(analysis)
            for frame, panels, window in _panels(analysis, scale, o.progress, only=sheet.picks):
                _add_to_sheet(sheet, analysis, renderer, frame, panels, window)
        result = analysis.summary()
    sheet.write(preview, overwrite=overwrite)
    return result


def _renderer(analysis: VideoAnalysis, scale: DisplayScale, alpha: float, colormap: str):
    info = analysis.info
    return Renderer(
        info.height,
        info.width,
        colormap=colormap,
        alpha=alpha,
        importance=analysis.importance,
        times=analysis.times,
        crop_box=analysis.geometry.crop_box(),
        legend=scale.legend,
    )


def _sheet(
    analysis: VideoAnalysis, scale: DisplayScale, renderer: Renderer, rows: int = 3, cols: int = 4
) -> ContactSheet:
    title = " | ".join(p.title for p in analysis.panels)
    return ContactSheet(
        len(analysis.times),
        rows=rows,
        cols=cols,
        title=f"{analysis.info.path.name}  -  {analysis.model.name}, {title}",
        legend=f"{scale.legend}; {scale.note}",
        lut=renderer.lut,
        importance=analysis.importance,
        times=analysis.times,
        tile_width=360 * len(analysis.panels),
    )


def _source(path: str | Path, allow_partial: bool) -> VideoSource:
    """The input, probed, with its :func:`~vidcam.paths.file_stamp` taken before pass 1."""
    source = VideoSource(path, allow_partial=allow_partial)
    source.stamp = file_stamp(source.path)  # type: ignore[attr-defined]
    return source


def check_unchanged(analysis: VideoAnalysis) -> None:
    """Before pass 2: the input is still the file pass 1 explained (size, mtime, first and
    last bytes), else a VidcamError: an output rendered from another video is never written."""
    before = getattr(analysis.source, "stamp", None)
    if before is None:  # a source not opened here (explain_pass called directly)
        return
    path = analysis.source.path
    try:
        now = file_stamp(path)
    except OSError as exc:
        now = (exc.strerror,)
    if now != before:
        raise VidcamError(
            f"input {str(path)!r} changed while vidcam ran (its size, time or bytes differ "
            "from the first pass); nothing is written from it: run again"
        )


def _panels(analysis: VideoAnalysis, scale: DisplayScale, progress: bool, only=None):
    """Per frame (or only the frames ``only``): (frame, [Panel] on the source grid, window)."""
    place = Placers(analysis)
    wanted = None if only is None else set(only)
    for frame, maps, window in blended(analysis, scale, progress=progress):
        if wanted is not None and frame.index not in wanted:
            if frame.index > max(wanted, default=-1):
                break
            continue
        panels = []
        for p in analysis.panels:
            m = to_u8(maps[p.id].cpu().numpy())
            is_image = m.ndim == 3  # guided product (h, w, 3)
            placed = place(p.id, m.shape[:2], is_image).place_u8(m)
            panels.append(Panel(p.title, image=placed) if is_image else Panel(p.title, heat=placed))
        yield frame, panels, window


def _add_to_sheet(sheet, analysis, renderer, frame, panels, window) -> None:
    tiles = [renderer.tile(frame.image, p) for p in panels]
    caption = window.caption(analysis.model.labels)
    sheet.add(
        frame.index,
        tiles[0] if len(tiles) == 1 else np.concatenate(tiles, axis=1),
        time=float(frame.time),
        label=caption[0] if caption else "",
        importance=float(analysis.importance[frame.index]),
    )
