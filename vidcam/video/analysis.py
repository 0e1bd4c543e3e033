"""The result of pass 1 (explain) and the iterators of pass 2 (map back to source).

:class:`VideoAnalysis` holds what the explain pass produced: every window's predictions
(:class:`~vidcam.video.results.WindowResult`), its per-sample energies, its maps spooled to disk, and
the video's per-frame importance. :meth:`VideoAnalysis.blended` decodes the video again and
gives every source frame its windows' maps blended in crop space; :meth:`VideoAnalysis.frames`
also places them on the source pixel grid.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vidcam.progress import Progress
from vidcam.video.decode import DecodedFrame, VideoInfo, iter_frames
from vidcam.video.preprocess import Geometry
from vidcam.video.results import TITLES, ExplainedFrame, VideoExplanation, WindowResult
from vidcam.video.setup import PipelineModel
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import MapBlender, MapSpool, SourcePlacer, TimeSupport, frame_importance


class VideoAnalysis:
    """Pass 1 result: windows, per-frame importance, spooled maps; :meth:`frames` is pass 2.

    Close it (or use ``with``) to delete the spool file.
    """

    def __init__(
        self,
        info: VideoInfo,
        geometry: Geometry,
        device: torch.device,
        model: PipelineModel,
        method: str,
        layers: tuple[str, ...],
        titles: list[str],
        margin: float,
    ) -> None:
        self.info = info
        self.geometry = geometry
        self.device = device
        self.model = model
        self.method = method
        self.layers = layers
        self.titles = titles
        self.margin = margin
        self.windows: list[WindowResult] = []
        self.energies: list[torch.Tensor] = []
        self.times = np.zeros(0)
        self.importance = np.zeros(0)
        self.warnings: list[str] = []
        self.spool = MapSpool()
        self._placers: dict[str, SourcePlacer] = {}

    @property
    def supports(self) -> list[TimeSupport]:
        return [TimeSupport(w.times, self.margin) for w in self.windows]

    def finish(self, times: list[float]) -> None:
        """End of pass 1: the frame times; importance = blended energy / the video's peak."""
        self.times = np.asarray(times, dtype=np.float64)
        raw = frame_importance(self.supports, self.energies, self.times)
        peak = float(raw.max()) if raw.size else 0.0
        self.importance = (raw / peak if peak > 0 else raw).astype(np.float32)

    def summary(self) -> VideoExplanation:
        return VideoExplanation(
            path=self.info.path,
            model=self.model.name,
            method=self.method,
            layers=self.layers,
            labels=self.model.labels,
            fps=float(self.info.fps),
            width=self.info.width,
            height=self.info.height,
            times=self.times,
            importance=self.importance,
            windows=self.windows,
            warnings=list(self.warnings),
        )

    def placer(self, title: str, map_size: tuple[int, int], image: bool) -> SourcePlacer:
        """The panel's crop -> source mapping (guided images are mid grey outside the crop)."""
        if title not in self._placers:
            self._placers[title] = SourcePlacer(
                self.geometry, map_size, fill=0.5 if image else 0.0, device=self.device
            )
        return self._placers[title]

    def blended(
        self, *, progress: bool = False
    ) -> Iterator[tuple[DecodedFrame, dict[str, torch.Tensor], WindowResult]]:
        """Pass 2 core: decode again; per frame, the windows' maps blended in crop space
        ({title: (h, w) heat | (h, w, 3) image}) and the window weighing most on it."""
        dev = self.device
        blender = MapBlender(
            self.supports,
            lambda i: {k: _as_float(v.to(dev)) for k, v in self.spool.get(i).items()},
        )
        n = len(self.times)
        bar = Progress(n, unit="frames", desc="rendering", enabled=progress)
        decoded = Prefetch(iter_frames(self.info.path, self.info, warn=False))
        try:
            for frame in decoded:
                if frame.index >= n:
                    break
                maps, weights = blender.at(float(frame.time))
                yield frame, maps, self.windows[max(weights, key=weights.get)]
                bar.update(1)
        finally:
            decoded.close()
            bar.close()

    def frames(self, *, progress: bool = False) -> Iterator[ExplainedFrame]:
        """Pass 2 for the API: every frame with its maps on the source grid (torch)."""
        for frame, maps, window in self.blended(progress=progress):
            panels: dict[str, torch.Tensor] = {}
            for title in self.titles:
                m = maps[title]
                image = m.dim() == 3
                place = self.placer(title, tuple(m.shape[:2]), image)
                if image:  # guided product (h, w, 3)
                    panels[title] = place(m.permute(2, 0, 1)).permute(1, 2, 0)
                else:
                    panels[title] = place(m).clamp_(0, 1)
            yield ExplainedFrame(
                index=frame.index,
                time=frame.time,
                image=frame.image,
                panels=panels,
                importance=float(self.importance[frame.index]),
                window=window,
                method_title=TITLES[self.method.removeprefix("guided-")],
            )

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> VideoAnalysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_float(v: torch.Tensor) -> torch.Tensor:
    return v.float().div_(255.0) if v.dtype == torch.uint8 else v.float()
