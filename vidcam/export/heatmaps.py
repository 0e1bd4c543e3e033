"""Per-frame heatmaps from a batch's ``NAME.maps.npz``, as the annotated MP4 shows them.

The MP4's pass 2 (:func:`vidcam.video.map_pass.blended` then the pipeline's ``_panels``) is
redone from the saved window maps and time supports (:meth:`RawMaps.supports`): the
video-level :class:`~vidcam.video.scale.DisplayScale` (its reference read from the maps' shown
slices, as pass 2 reads it from the spool), every window scaled as it is loaded, the windows
blended at each source frame's time
(:class:`~vidcam.video.to_source.MapBlender`), the display gamma, ``to_u8``, and the crop
placed on the source grid (:meth:`~vidcam.video.to_source.SourcePlacer.place_u8`) — here a
reduced grid of the source's aspect. Where the MP4 leaves the source pixels untouched (the
renderer's :func:`~vidcam.video.scale.opacity` is 0 there: heat below ``COLD``, or below
``RAMP[0]`` of the frame's peak) the level is 0, and FiftyOne draws nothing where a heatmap is
0; elsewhere it is the MP4's heat level (FiftyOne draws it at one opacity, the MP4 ramps it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vidcam.batch.maps_io import RawMaps
from vidcam.video.preprocess import Geometry
from vidcam.video.render import to_u8
from vidcam.video.scale import DisplayScale, opacity
from vidcam.video.to_source import MapBlender, SourcePlacer


@dataclass(frozen=True)
class FrameHeat:
    """One source frame: ``maps`` {method id: (H', W') uint8 display heat on the reduced
    source grid}, the ``window`` weighing most on it (-1: none — a frame held across a shot cut
    shows no heat) and its ``importance`` in [0, 1]."""

    index: int
    maps: dict[str, np.ndarray]
    window: int
    importance: float


class _SpoolView:
    """The spool interface :class:`DisplayScale` reads (``len``, ``get(i)`` -> {id: (T, h, w)})."""

    def __init__(self, panels: dict[str, np.ndarray]) -> None:
        self.panels = panels
        self._n = len(next(iter(panels.values()))) if panels else 0

    def __len__(self) -> int:
        return self._n

    def get(self, i: int) -> dict[str, torch.Tensor]:
        # a copy: DisplayScale.window scales in place
        return {k: torch.from_numpy(np.array(v[i], np.float32)) for k, v in self.panels.items()}


def heat_ids(raw: RawMaps) -> list[str]:
    """The heat panels' method ids (guided panels are images, not heatmaps)."""
    return [k for k, v in raw.panels.items() if v.dtype != np.uint8]


def reduced_size(source: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(H, W) scaled so its longer side is at most ``max_side`` (never enlarged)."""
    h, w = source
    f = min(1.0, max_side / max(h, w))
    return max(1, int(round(h * f))), max(1, int(round(w * f)))


def frame_heatmaps(
    raw: RawMaps, *, normalize: str = "video", max_side: int = 256
) -> Iterator[FrameHeat]:
    """Every source frame's heat per heat panel (see the module docstring), in frame order."""
    ids = heat_ids(raw)
    panels = {k: raw.panels[k] for k in ids}
    if not ids or not len(raw.window_times):
        return
    view = _SpoolView(panels)
    sups = raw.supports()
    scale = DisplayScale.from_spool(view, ids, normalize, supports=sups)
    blender = MapBlender(
        sups,
        lambda i: {k: scale.window(k, v, sups[i]) for k, v in view.get(i).items()},
        cuts=raw.cut_times,
    )
    g = raw.geometry
    small = Geometry(reduced_size(g.source, max_side), g.resized, g.crop, g.offset)
    placer = SourcePlacer(small, tuple(panels[ids[0]].shape[-2:]), fill=0.0)
    for i, t in enumerate(raw.times):
        maps, weights = blender.at(float(t))
        out = {}
        for k in ids:
            level = placer.place_u8(to_u8(scale.frame(maps[k]).numpy()))
            level[opacity(1.0, int(level.max()))[level] == 0] = 0  # untouched in the MP4
            out[k] = level
        window = max(weights, key=weights.get) if weights else -1
        yield FrameHeat(i, out, window, float(raw.importance[i]))
