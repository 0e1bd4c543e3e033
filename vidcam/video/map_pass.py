"""Pass 2, map back to source: decode again; every source frame gets its windows' maps.

:func:`blended` gives each frame the maps of the windows around it, blended in crop space
(:class:`~vidcam.video.to_source.MapBlender`), with the window that weighs most on it (its
predictions label the frame). :class:`Placers` puts a panel's crop-space map onto the
source pixel grid; :func:`explained_frames` does both for the Python API.

The display scale (``normalize``, :class:`~vidcam.video.scale.DisplayScale`) is applied here:
its video-level reference is read from the spool before the first frame, each window's maps
are scaled as they are loaded, and every blended frame gets the display gamma.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from vidcam.progress import Progress
from vidcam.video.decode import DecodedFrame
from vidcam.video.results import ExplainedFrame, VideoAnalysis, WindowResult
from vidcam.video.scale import DEFAULT_NORMALIZE, DisplayScale
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import MapBlender, SourcePlacer


class Placers:
    """One crop -> source mapping per panel (guided images are mid grey outside the crop)."""

    def __init__(self, analysis: VideoAnalysis) -> None:
        self.analysis = analysis
        self._placers: dict[str, SourcePlacer] = {}

    def __call__(self, panel: str, map_size: tuple[int, int], image: bool) -> SourcePlacer:
        if panel not in self._placers:
            self._placers[panel] = SourcePlacer(
                self.analysis.geometry,
                map_size,
                fill=0.5 if image else 0.0,
                device=self.analysis.model.device,
            )
        return self._placers[panel]


def display_scale(analysis: VideoAnalysis, normalize: str = DEFAULT_NORMALIZE) -> DisplayScale:
    """The display scale of ``analysis``'s heat panels (one cheap pass over the spool)."""
    heat = [p.id for p in analysis.panels if not p.guided]
    return DisplayScale.from_spool(
        analysis.spool, heat, normalize, device=analysis.model.device, supports=analysis.supports
    )


def blended(
    analysis: VideoAnalysis,
    scale: DisplayScale | str = DEFAULT_NORMALIZE,
    *,
    progress: bool = False,
) -> Iterator[tuple[DecodedFrame, dict[str, torch.Tensor], WindowResult]]:
    """Per source frame: ({method id: (h, w) display heat in [0, 1] | (h, w, 3) image} in crop
    space, blended over the windows covering it, and the window weighing most on it).
    ``scale``: a :class:`DisplayScale` or a ``normalize`` name."""
    dev = analysis.model.device
    if isinstance(scale, str):
        scale = display_scale(analysis, scale)
    sups = analysis.supports
    blender = MapBlender(
        sups,
        lambda i: {
            k: scale.window(k, v.to(dev), sups[i]) for k, v in analysis.spool.get(i).items()
        },
    )
    n = len(analysis.times)
    bar = Progress(n, unit="frames", desc="rendering", enabled=progress)
    decoded = Prefetch(analysis.source.frames(warn=False))
    try:
        for frame in decoded:
            if frame.index >= n:
                break
            maps, weights = blender.at(float(frame.time))
            maps = {k: scale.frame(v) for k, v in maps.items()}
            yield frame, maps, analysis.windows[max(weights, key=weights.get)]
            bar.update(1)
    finally:
        decoded.close()
        bar.close()


def explained_frames(
    analysis: VideoAnalysis,
    scale: DisplayScale | str = DEFAULT_NORMALIZE,
    *,
    progress: bool = False,
) -> Iterator[ExplainedFrame]:
    """Every frame with its maps on the source grid (torch, on the model's device). With the
    ``frame`` scale every heatmap's maximum on the source grid is exactly 1."""
    place = Placers(analysis)
    if isinstance(scale, str):
        scale = display_scale(analysis, scale)
    for frame, maps, window in blended(analysis, scale, progress=progress):
        panels: dict[str, torch.Tensor] = {}
        for p in analysis.panels:
            m = maps[p.id]
            image = m.dim() == 3
            placer = place(p.id, tuple(m.shape[:2]), image)
            if image:  # guided product (h, w, 3)
                panels[p.id] = placer(m.permute(2, 0, 1)).permute(1, 2, 0)
            else:
                heat = placer(m).clamp_(0, 1)
                if scale.normalize == "frame":  # bilinear placement may shave the peak
                    top = heat.max()
                    heat = heat / top if bool(top > 0) else heat
                panels[p.id] = heat
        yield ExplainedFrame(
            index=frame.index,
            time=frame.time,
            image=frame.image,
            panels=panels,
            importance=float(analysis.importance[frame.index]),
            window=window,
            method=analysis.method.id,
        )
