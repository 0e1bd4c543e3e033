"""The video pipeline's entry points: explain a file, stream its frames, or write a video.

Both passes stream (see :mod:`vidcam.video` for the whole data path): pass 1
(:func:`~vidcam.video.explain_pass.analyze`) explains every window and spools its maps; pass 2
decodes again and maps them back onto each source frame, which :func:`write_explained_video`
renders and encodes while :func:`explain_video` collects them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from vidcam.paths import check_distinct, check_output
from vidcam.video.decode import check_input
from vidcam.video.encode import VideoEncoder, check_output_extension
from vidcam.video.explain_pass import analyze
from vidcam.video.render import Panel, Renderer, check_alpha, colormap_lut, to_u8
from vidcam.video.results import TITLES, ExplainedFrame, VideoExplanation
from vidcam.video.threads import WriteBehind


def iter_explained_frames(path: str | Path, **kwargs: Any) -> Iterator[ExplainedFrame]:
    """Stream every frame of ``path`` with its explanation (arguments of
    :func:`explain_video`); memory stays bounded however long the video is."""
    progress = kwargs.get("progress", True)
    with analyze(path, **kwargs) as analysis:
        yield from analysis.frames(progress=progress)


def explain_video(path: str | Path, **kwargs: Any) -> VideoExplanation:
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

    All but ``path`` are keyword-only (:class:`~vidcam.video.explain_pass.ExplainOptions`). The
    heatmaps of all frames are collected as uint8 (F, H, W): for long videos use
    :func:`iter_explained_frames` or :func:`write_explained_video`, which stream.
    """
    with analyze(path, **kwargs) as analysis:
        collected: dict[str, list[torch.Tensor]] = {t: [] for t in analysis.titles}
        for fr in analysis.frames(progress=kwargs.get("progress", True)):
            for title, v in fr.panels.items():
                collected[title].append(v.mul(255).round_().to(torch.uint8).cpu())
        result = analysis.summary()
    result.panels = {t: torch.stack(v) for t, v in collected.items() if v}
    heat = [t for t, v in result.panels.items() if v.dim() == 3]
    requested = TITLES[result.method.removeprefix("guided-")]
    result.heatmaps = result.panels.get(requested, result.panels[heat[0]] if heat else None)
    return result


def check_paths(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    json_path: str | Path | None = None,
) -> tuple[Path, Path]:
    """Validate input and output(s) before any work; returns (input, output) paths."""
    src = check_input(path)
    out = Path(output)
    check_output_extension(out)
    check_output("output", out, inputs=[src], overwrite=overwrite)
    if json_path:
        check_output("--json", json_path, inputs=[src], overwrite=overwrite)
    check_distinct([("the output video", out), ("--json", json_path)])
    return src, out


def write_explained_video(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    alpha: float = 0.5,
    colormap: str = "jet",
    json_path: str | Path | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> VideoExplanation:
    """Explain ``path`` and write the annotated video to ``output`` (.mp4/.mov/.mkv/.gif),
    plus, with ``json_path``, the per-window predictions and per-frame importance as JSON.

    Streams both passes; ``output`` appears only when complete. Other keyword arguments as in
    :func:`explain_video`. Returns the explanation without per-frame heatmaps.
    """
    src, out = check_paths(path, output, overwrite=overwrite, json_path=json_path)
    colormap_lut(colormap)
    check_alpha(alpha)
    with analyze(src, progress=progress, **kwargs) as analysis:
        info = analysis.info
        renderer = Renderer(
            info.height,
            info.width,
            colormap=colormap,
            alpha=alpha,
            importance=analysis.importance,
            times=analysis.times,
            crop_box=analysis.geometry.crop_box(),
        )
        with (
            VideoEncoder(
                out,
                width=info.width * len(analysis.titles),
                height=info.height,
                fps=info.fps,
                time_base=info.time_base,
                audio_from=src if info.has_audio else None,
                audio_offset=info.start,
            ) as enc,
            WriteBehind(enc.write) as write,
        ):
            for frame, maps, window in analysis.blended(progress=progress):
                panels = []
                for title in analysis.titles:
                    m = to_u8(maps[title].cpu().numpy())
                    is_image = m.ndim == 3  # guided product (h, w, 3)
                    placed = analysis.placer(title, m.shape[:2], is_image).place_u8(m)
                    panels.append(
                        Panel(title, image=placed) if is_image else Panel(title, heat=placed)
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
