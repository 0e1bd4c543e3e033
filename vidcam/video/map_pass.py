"""Pass 2, map back to source: decode again; every source frame gets its windows' maps.

:func:`blended` gives each frame the maps of the windows around it, blended in crop space
(:class:`~vidcam.video.to_source.MapBlender`), with the window that weighs most on it (its
predictions label the frame). :class:`Placers` puts a panel's crop-space map onto the
source pixel grid; :func:`explained_frames` does both for the Python API.

The display scale (``normalize``, :class:`~vidcam.video.scale.DisplayScale`) is applied here:
its video-level reference is read from the spool before the first frame, each window's maps
are scaled as they are loaded, and every blended frame gets the display gamma.

Shot cuts: a held slice never crosses one (:mod:`vidcam.video.to_source`). Unless pass 1 found
the cuts (``analysis.cuts``), this pass finds them as it decodes (a
:class:`~vidcam.video.shots.CutDetector` on every frame) and holds each frame back until every
cut that decides its maps is settled: up to the latest trusted sample it shows ahead of itself
(a frame before a window's trusted slices shows the first of them) and ``FLASH`` frames more.
A frame no window explains shows no heat and its window's ``note`` says so.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from vidcam.progress import Progress
from vidcam.video.decode import DecodedFrame
from vidcam.video.results import UNEXPLAINED, ExplainedFrame, VideoAnalysis, WindowResult
from vidcam.video.scale import DEFAULT_NORMALIZE, DisplayScale
from vidcam.video.shots import CutDetector
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import MapBlender, SourcePlacer, TimeSupport


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
    space, blended over the windows covering it, and the window weighing most on it; on a
    frame no window explains (scene cut), no heat and the nearest window with its ``note``).
    ``scale``: a :class:`DisplayScale` or a ``normalize`` name."""
    for frame, maps, weights, window in _blend(analysis, scale, progress):
        yield frame, maps, window if weights else dataclasses.replace(window, note=UNEXPLAINED)


def _blend(
    analysis: VideoAnalysis, scale: DisplayScale | str, progress: bool
) -> Iterator[tuple[DecodedFrame, dict[str, torch.Tensor], dict[int, float], WindowResult]]:
    """Per source frame: (frame, maps, {window: weight} (empty: unexplained), the window
    weighing most on it or, unexplained, the nearest)."""
    dev = analysis.model.device
    if isinstance(scale, str):
        scale = display_scale(analysis, scale)
    sups = analysis.supports
    times = np.asarray(analysis.times, dtype=np.float64)
    cuts = () if analysis.cuts is None else times[list(analysis.cuts)]
    blender = MapBlender(
        sups,
        lambda i: {
            k: scale.window(k, v.to(dev), sups[i]) for k, v in analysis.spool.get(i).items()
        },
        cuts=cuts,
    )
    n = len(times)
    bar = Progress(n, unit="frames", desc="rendering", enabled=progress)
    decoded = Prefetch(analysis.source.frames(warn=False))
    frames = decoded if analysis.cuts is not None else _with_cuts(decoded, sups, times, blender)
    try:
        for frame in frames:
            if frame.index >= n:
                break
            t = float(frame.time)
            maps, weights = blender.at(t)
            maps = {k: scale.frame(v) for k, v in maps.items()}
            j = max(weights, key=weights.get) if weights else _nearest(sups, t)
            yield frame, maps, weights, analysis.windows[j]
            bar.update(1)
    finally:
        decoded.close()
        bar.close()


def _nearest(supports: list[TimeSupport], t: float) -> int:
    """The window whose blend weight at ``t`` is largest (inside any support), else the
    window whose support ends closest to ``t``."""
    return max(
        range(len(supports)),
        key=lambda i: supports[i].weight(t)[0] - max(supports[i].start - t, t - supports[i].end, 0),
    )


def _with_cuts(
    frames: Iterable[DecodedFrame],
    supports: list[TimeSupport],
    times: np.ndarray,
    blender: MapBlender,
) -> Iterator[DecodedFrame]:
    """``frames`` (indices 0, 1, ... of ``times``), each once every cut that decides its maps
    is settled; cuts go to ``blender`` as they are found. Holds back the frames up to the
    latest one a frame waits for (:func:`shows_ahead`), plus ``FLASH``."""
    need = np.searchsorted(times, shows_ahead(supports, times), side="right") - 1
    det = CutDetector()
    waiting: deque[DecodedFrame] = deque()
    for frame in frames:
        if frame.index >= len(times):
            break
        for c in det.push(frame.image):
            blender.add_cut(float(times[c]))
        waiting.append(frame)
        while waiting and need[waiting[0].index] < det.settled:
            yield waiting.popleft()
    for c in det.finish():
        blender.add_cut(float(times[c]))
    yield from waiting


def shows_ahead(supports: list[TimeSupport], times: np.ndarray) -> np.ndarray:
    """(F,) per frame time, the latest time whose content decides its maps: its own, or later
    where a window it reads holds its first trusted slice (the frame lies before it); a frame
    before every window reads the first one."""
    ahead = np.asarray(times, dtype=np.float64).copy()
    for sup in supports:
        lo = int(np.searchsorted(times, sup.start, side="left")) if sup is not supports[0] else 0
        hi = int(np.searchsorted(times, sup.end, side="right"))
        if hi > lo:
            ahead[lo:hi] = np.maximum(ahead[lo:hi], sup.hold(times[lo:hi]))
    return ahead


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
    for frame, maps, weights, window in _blend(analysis, scale, progress):
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
            importance=float(analysis.importance[frame.index]) if weights else 0.0,
            window=window if weights else dataclasses.replace(window, note=UNEXPLAINED),
            method=analysis.method.id,
            explained=bool(weights),
        )
