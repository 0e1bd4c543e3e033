"""What the video pipeline returns: per-window predictions, per-frame maps, the whole video.

:class:`WindowResult` (one explained window), :class:`ExplainedFrame` (one source frame with its
maps), :class:`VideoExplanation` (the whole video) and their JSON form (``--json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcam.cam.methods import Method
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.paths import write_text
from vidcam.video.decode import VideoInfo, VideoSource
from vidcam.video.preprocess import Geometry
from vidcam.video.spool import MapSpool
from vidcam.video.to_source import TimeSupport

#: the note on a frame that no window explains (its held map would cross a scene cut)
UNEXPLAINED = "no heat: scene cut, no window explains this frame"


def class_namer(labels: Sequence[str] | None) -> Callable[[int], str]:
    """Class index -> its label, or ``"class N"`` when there is none."""

    def name(c: int) -> str:
        return labels[c] if labels and 0 <= c < len(labels) else f"class {c}"

    return name


@dataclass(frozen=True)
class WindowResult:
    """One explained window.

    Attributes:
        index: window number.
        frames: source frame index of each of the clip's samples.
        times: their times (seconds from the first frame).
        padded: the video was shorter than the clip; the last frame fills the rest.
        top: the model's top predictions ``(class index, probability, logit)``.
        targets: the explained class indices (empty when the model output has no classes).
        pad: how many of the last samples repeat the last frame (their maps are never shown).
        note: a line shown under the predictions on a rendered frame (pass 2 sets it on the
            frames no window explains: :data:`UNEXPLAINED`); not in the JSON.
    """

    index: int
    frames: tuple[int, ...]
    times: tuple[float, ...]
    padded: bool
    top: tuple[tuple[int, float, float], ...]
    targets: tuple[int, ...]
    pad: int = 0
    note: str = ""

    def to_json(self, labels: Sequence[str] | None) -> dict[str, Any]:
        name = class_namer(labels)
        return {
            "index": self.index,
            "start": round(self.times[0], 6),
            "end": round(self.times[-1], 6),
            "frames": list(self.frames),
            "padded": self.padded,
            "top": [
                {"index": c, "label": name(c), "prob": round(p, 6), "logit": round(s, 6)}
                for c, p, s in self.top
            ],
            "targets": [{"index": c, "label": name(c)} for c in self.targets],
        }

    def caption(self, labels: Sequence[str] | None) -> list[str]:
        """Text lines for the rendered frame: the top class, the other explained ones, the
        ``note``."""
        if not self.top:
            return [self.note] if self.note else []
        name = class_namer(labels)
        c, p, _ = self.top[0]
        lines = [f"{name(c)} {p:.0%}"]
        probs = {ci: pi for ci, pi, _ in self.top}
        others = [t for t in self.targets if t != c]
        if others:
            shown = ", ".join(
                f"{name(t)}" + (f" {probs[t]:.0%}" if t in probs else "") for t in others[:3]
            )
            lines.append(f"explaining: {shown}")
        return [*lines, self.note] if self.note else lines


@dataclass(frozen=True)
class ExplainedFrame:
    """One source frame with its explanation.

    Attributes:
        index, time: frame number and time (seconds from the first frame).
        image: (H, W, 3) uint8 RGB source frame (upright).
        panels: method id -> (H, W) heatmap in [0, 1] or (H, W, 3) image in [0, 1] (guided),
            float32 on the pipeline's device (side by side: Grad-CAM, then Grad-CAM++).
        method: the requested method's id (its heatmap is :attr:`heatmap`).
        importance: the frame's importance in [0, 1] (1 = the video's most important frame).
        window: the window weighing most on this frame (its predictions label the frame); on a
            frame no window explains, the nearest one, with its ``note`` set.
        explained: False where no window explains the frame: every window reaching it would
            show it a slice held across a scene cut (:mod:`vidcam.video.shots`); then its
            heatmaps are 0 and its importance 0.
    """

    index: int
    time: Fraction
    image: np.ndarray
    panels: dict[str, torch.Tensor]
    importance: float
    window: WindowResult
    method: str = ""
    explained: bool = True

    @property
    def heatmap(self) -> torch.Tensor:
        """(H, W) the heatmap of the requested method (the first heatmap panel otherwise)."""
        requested = self.panels.get(self.method.removeprefix("guided-")) if self.method else None
        if requested is not None and requested.dim() == 2:
            return requested
        for v in self.panels.values():
            if v.dim() == 2:
                return v
        raise VidcamError("this explanation has no heatmap panel (guided method only)")


@dataclass
class VideoExplanation:
    """A whole video's explanation.

    Attributes:
        heatmaps: (F, H, W) uint8 (value × 255) of the requested method's heatmap, or None when not
            collected (``write_explained_video``).
        panels: method id -> (F, H, W) uint8 heatmaps / (F, H, W, 3) uint8 images (all panels).
        times: (F,) frame times in seconds; importance: (F,) in [0, 1] (0 on a frame no window
            explains: a held map does not cross a shot cut).
        cuts: the frames where a new shot starts (:class:`~vidcam.video.shots.CutDetector`).
        windows: per-window predictions and sampled frames.
        spatial: the spatial mode that ran ("full", "tiles" or "center";
            :mod:`vidcam.video.spatial`); with "tiles" a window's predictions are the average
            of its tiles' probabilities.
        frames_written: frames in the written video (the encoder's count: fewer than
            :attr:`frames` when the input changed during the run, or for a GIF of a source
            above 50 fps); 0 when no video was written.
        cost: per method id, what explaining every window cost: model ``forwards``,
            ``masked_clips`` scored (Score-CAM, RISE) and ``backwards`` to the input
            (extremal perturbation), summed over the engine's calls.
    """

    path: Path
    model: str
    method: str
    layers: tuple[str, ...]
    labels: Sequence[str] | None
    fps: float
    width: int
    height: int
    times: np.ndarray
    importance: np.ndarray
    windows: list[WindowResult]
    warnings: list[str] = field(default_factory=list)
    heatmaps: torch.Tensor | None = None
    panels: dict[str, torch.Tensor] = field(default_factory=dict)
    spatial: str = "center"
    frames_written: int = 0
    cost: dict[str, dict[str, int]] = field(default_factory=dict)
    cuts: tuple[int, ...] = ()

    @property
    def frames(self) -> int:
        """Frames of the input that were explained (pass 1)."""
        return int(self.times.shape[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "input": str(self.path),
            "model": self.model,
            "method": self.method,
            "layers": list(self.layers),
            "spatial": self.spatial,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "frames_written": self.frames_written,
            "duration": float(self.times[-1]) + 1 / self.fps if self.frames else 0.0,
            "windows": [w.to_json(self.labels) for w in self.windows],
            "times": [round(float(t), 6) for t in self.times],
            "importance": [round(float(v), 6) for v in self.importance],
            "cuts": list(self.cuts),
            "warnings": list(self.warnings),
            "cost": {m: dict(c) for m, c in self.cost.items()},
        }

    def write_json(self, path: Path, *, overwrite: bool = True) -> None:
        """Write :meth:`to_json` to ``path`` atomically (a temporary file, then a rename;
        ``overwrite=False``: fail rather than replace a file that appeared meanwhile)."""
        write_text(path, json.dumps(self.to_json(), indent=1), overwrite=overwrite)


@dataclass
class VideoAnalysis:
    """What pass 1 computed, as data: pass 2 (:mod:`vidcam.video.map_pass`) reads it.

    Attributes:
        source: the video (probed once); geometry: source -> model crop.
        model: the explained model; method: the requested method; panels: the methods shown.
        layers: the explained layer names.
        windows: per-window predictions; supports: each window's time support (blending).
        times: (F,) frame times in seconds; importance: (F,) in [0, 1].
        spool: every window's maps, keyed by method id (on disk). Close the analysis (or
            use ``with``) to delete it.
        cuts: the frames where a new shot starts (:class:`~vidcam.video.shots.CutDetector`),
            when pass 1 found them (its importance then honours them); None: pass 2 finds
            them as it decodes.
        spatial: the spatial mode that ran ("full", "tiles" or "center"); ``geometry``
            is then the whole frame, the band the tiles cover, or the crop.
    """

    source: VideoSource
    geometry: Geometry
    model: ModelHandle
    method: Method
    panels: tuple[Method, ...]
    layers: tuple[str, ...]
    windows: list[WindowResult]
    supports: list[TimeSupport]
    times: np.ndarray
    importance: np.ndarray
    spool: MapSpool
    warnings: list[str] = field(default_factory=list)
    spatial: str = "center"
    cost: dict[str, dict[str, int]] = field(default_factory=dict)
    cuts: tuple[int, ...] | None = None

    @property
    def info(self) -> VideoInfo:
        return self.source.info

    def summary(self) -> VideoExplanation:
        """The whole-video result (without per-frame maps)."""
        info = self.source.info
        return VideoExplanation(
            path=info.path,
            model=self.model.name,
            method=self.method.id,
            layers=self.layers,
            labels=self.model.labels,
            fps=float(info.fps),
            width=info.width,
            height=info.height,
            times=self.times,
            importance=self.importance,
            windows=self.windows,
            warnings=list(self.warnings),
            spatial=self.spatial,
            cost=self.cost,
            cuts=tuple(self.cuts or ()),
        )

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> VideoAnalysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
