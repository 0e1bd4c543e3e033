"""The video pipeline's entry points: explain a file, stream its frames, or write a video.

Both passes stream (see :mod:`vidcam.video` for the whole data path): pass 1
(:func:`~vidcam.video.explain_pass.explain_pass`) explains every window and spools its maps;
pass 2 (:mod:`vidcam.video.map_pass`) decodes again and maps them back onto each source frame,
which :func:`write_explained_video` renders and encodes while :func:`explain_video` collects
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vidcam.video.decode import VideoSource
from vidcam.video.encode import VideoEncoder
from vidcam.video.explain_pass import explain_pass
from vidcam.video.map_pass import Placers, blended, explained_frames
from vidcam.video.render import Panel, Renderer, check_alpha, colormap_lut, to_u8
from vidcam.video.results import ExplainedFrame, VideoAnalysis, VideoExplanation
from vidcam.video.setup import ExplainOptions, check_paths
from vidcam.video.threads import WriteBehind

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from vidcam.video.setup import ExplainKwargs


def analyze(path: str | Path, **options: Unpack[ExplainKwargs]) -> VideoAnalysis:
    """Pass 1 only: the :class:`VideoAnalysis` record (close it, or use ``with``)."""
    o = ExplainOptions(**options)
    return explain_pass(VideoSource(path), o)


def iter_explained_frames(
    path: str | Path, **options: Unpack[ExplainKwargs]
) -> Iterator[ExplainedFrame]:
    """Stream every frame of ``path`` with its explanation (options of :func:`explain_video`);
    memory stays bounded however long the video is."""
    o = ExplainOptions(**options)
    with explain_pass(VideoSource(path), o) as analysis:
        yield from explained_frames(analysis, progress=o.progress)


def explain_video(path: str | Path, **options: Unpack[ExplainKwargs]) -> VideoExplanation:
    """Explain a video file: per-frame heatmaps at the source resolution, per-window predictions,
    per-frame importance.

    Args:
        path: the video file.
        model: a registered model name (``vidcam models``; default "i3d") or an ``nn.Module``
            (then ``spec`` is required; ``labels`` optional).
        spec: how to feed the model (overrides the registered model's).
        labels: class names (default: the registered model's).
        layer: layer(s) to explain (default: the model's registered layers, else automatic).
        method: "gradcam", "gradcam++" (default), "guided-gradcam" or "guided-gradcam++".
        softmax: Grad-CAM++'s softmax-score variant.
        target: "top1" (default; each window's own top class), "topk:K" (maps of the K top
            classes, combined by their per-pixel maximum), a class index or a class name.
        clip_len: samples per window (default: the model's).
        stride: window hop in samples (default: clip_len // 2, i.e. 50 % overlap).
        device: "auto" (default), "cpu" or "cuda".
        weights, pretrained: passed to the model registry.
        progress: progress lines on stderr (default True).
        side_by_side: also compute the companion panel (Grad-CAM | Grad-CAM++, or the CAM next
            to the guided product).
        batch_size: windows per engine call (default 1).
        normalize: "clip" (default: one heatmap scale per window volume) or "frame" (every
            frame's map min-max normalised on its own).

    All but ``path`` are keyword-only (:class:`~vidcam.video.setup.ExplainOptions`). The
    heatmaps of all frames are collected as uint8 (F, H, W): for long videos use
    :func:`iter_explained_frames` or :func:`write_explained_video`, which stream.
    """
    o = ExplainOptions(**options)
    with explain_pass(VideoSource(path), o) as analysis:
        collected: dict[str, list[torch.Tensor]] = {p.id: [] for p in analysis.panels}
        for fr in explained_frames(analysis, progress=o.progress):
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
    alpha: float = 0.5,
    colormap: str = "jet",
    json_path: str | Path | None = None,
    **options: Unpack[ExplainKwargs],
) -> VideoExplanation:
    """Explain ``path`` and write the annotated video to ``output`` (.mp4/.mov/.mkv/.gif),
    plus, with ``json_path``, the per-window predictions and per-frame importance as JSON.

    Streams both passes; ``output`` appears only when complete. Other keyword arguments as in
    :func:`explain_video`. Returns the explanation without per-frame heatmaps.
    """
    src, out = check_paths(path, output, overwrite=overwrite, json_path=json_path)
    colormap_lut(colormap)
    check_alpha(alpha)
    o = ExplainOptions(**options)
    source = VideoSource(src)
    with explain_pass(source, o) as analysis:
        info = source.info
        renderer = Renderer(
            info.height,
            info.width,
            colormap=colormap,
            alpha=alpha,
            importance=analysis.importance,
            times=analysis.times,
            crop_box=analysis.geometry.crop_box(),
        )
        place = Placers(analysis)
        with (
            VideoEncoder(
                out,
                width=info.width * len(analysis.panels),
                height=info.height,
                fps=info.fps,
                time_base=info.time_base,
                audio_from=src if info.has_audio else None,
                audio_offset=info.start,
            ) as enc,
            WriteBehind(enc.write) as write,
        ):
            for frame, maps, window in blended(analysis, progress=o.progress):
                panels = []
                for p in analysis.panels:
                    m = to_u8(maps[p.id].cpu().numpy())
                    is_image = m.ndim == 3  # guided product (h, w, 3)
                    placed = place(p.id, m.shape[:2], is_image).place_u8(m)
                    panels.append(
                        Panel(p.title, image=placed) if is_image else Panel(p.title, heat=placed)
                    )
                image = renderer(
                    frame.image,
                    panels,
                    time=float(frame.time),
                    frame=frame.index,
                    lines=window.caption(analysis.model.labels),
                )
                write(image, frame.time)
        result = analysis.summary()
    if json_path:
        result.write_json(Path(json_path))
    return result
