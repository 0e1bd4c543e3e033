"""Raw maps on disk: every window's spooled maps as float16 ``.npz`` with what maps them back.

Arrays in ``NAME.maps.npz`` (W windows of T slices, maps h × w in the model window's space):

- ``panel_ids`` (P,) str: the method id of each panel ("gradcam++", "guided-gradcam", ...).
- ``panel_J`` (W, T, h, w) float16 in [0, 1] for heat panels (divide-out of ``peak_J``, so
  half precision keeps 3 significant digits whatever the CAM's units) or (W, T, h, w, 3) uint8
  for guided images; ``peak_J`` (W,) float32: CAM units = ``panel_J * peak_J``.
- ``window_times`` (W, T) float64 seconds of the sampled frames, ``window_frames`` (W, T)
  int64 their source frame indices, ``margin`` (W,) float64: how far (s) a window's influence
  reaches past its first / last sample (:class:`~vidcam.video.to_source.TimeSupport`);
  ``window_keep`` (W, 2) int64 each window's trusted samples a..b (inclusive; the outer slices
  see the network's temporal padding) and ``window_scale`` (W, T) float64 its per-slice factor
  (the inverse position gain); both optional (files of earlier versions: all slices, factor 1).
- ``times`` (F,) float64 every source frame's time; ``importance`` (F,) float32 in [0, 1];
  ``cuts`` (C,) int64 the frames where a new shot starts (a held map never crosses one;
  optional: files of earlier versions have none).
- ``source``, ``resized``, ``crop``, ``offset`` (2,) int64: the
  :class:`~vidcam.video.preprocess.Geometry` (source (H, W) -> resized -> the window the maps
  cover, at ``offset`` (top, left) in the resized frame); ``model_crop`` (2,): the model's
  input crop.
- ``meta``: a JSON string (input, model, method, layers, spatial, fps, start offset).

:func:`load_maps` reads it back as :class:`RawMaps`, whose :meth:`RawMaps.blender` gives the
same per-frame crop-space maps as the pipeline's pass 2 (``to_source`` places them on pixels).
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.paths import atomic_write
from vidcam.video.preprocess import Geometry
from vidcam.video.results import VideoAnalysis
from vidcam.video.to_source import MapBlender, TimeSupport

FORMAT = "vidcam-maps/1"


def save_maps(
    path: str | Path, analysis: VideoAnalysis, *, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``analysis``'s spooled window maps (see the module docstring) atomically."""
    ids = [p.id for p in analysis.panels]
    per: dict[str, list[np.ndarray]] = {i: [] for i in ids}
    for w in range(len(analysis.spool)):
        maps = analysis.spool.get(w)
        for i in ids:
            per[i].append(
                maps[i].float().numpy() if maps[i].is_floating_point() else maps[i].numpy()
            )
    g = analysis.geometry
    arrays: dict[str, np.ndarray] = {"panel_ids": np.array(ids, dtype=str)}
    for j, i in enumerate(ids):
        stack = np.stack(per[i]) if per[i] else np.zeros((0,), np.float16)
        if stack.dtype == np.uint8:
            arrays[f"panel_{j}"] = stack
            arrays[f"peak_{j}"] = np.ones(stack.shape[0], np.float32)
        else:
            peak = stack.reshape(stack.shape[0], -1).max(1) if stack.size else np.zeros(0)
            safe = np.where(peak > 0, peak, 1.0)
            arrays[f"panel_{j}"] = (stack / safe[:, None, None, None]).astype(np.float16)
            arrays[f"peak_{j}"] = peak.astype(np.float32)
    arrays |= {
        "window_times": np.array([s.times for s in analysis.supports], np.float64),
        "window_frames": np.array([w.frames for w in analysis.windows], np.int64),
        "window_keep": np.array([s.keep for s in analysis.supports], np.int64),
        "window_scale": np.array([s.scale for s in analysis.supports], np.float64),
        "margin": np.array([s.margin for s in analysis.supports], np.float64),
        "times": np.asarray(analysis.times, np.float64),
        "importance": np.asarray(analysis.importance, np.float32),
        "cuts": np.asarray(analysis.cuts or (), np.int64),
        "source": np.array(g.source, np.int64),
        "resized": np.array(g.resized, np.int64),
        "crop": np.array(g.crop, np.int64),
        "offset": np.array(g.offset, np.int64),
        "model_crop": np.array(analysis.model.input.crop, np.int64),
        "meta": np.array(json.dumps({"format": FORMAT, **(meta or {})})),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


@dataclass(frozen=True)
class RawMaps:
    """A loaded ``.maps.npz``: ``panels`` {method id: (W, T, h, w) float32 in CAM units, or
    (W, T, h, w, 3) uint8 guided images}, the windows' time supports and the geometry."""

    panels: dict[str, np.ndarray]
    window_times: np.ndarray
    window_frames: np.ndarray
    margin: np.ndarray
    times: np.ndarray
    importance: np.ndarray
    geometry: Geometry
    model_crop: tuple[int, int]
    meta: dict[str, Any]
    window_keep: np.ndarray | None = None
    window_scale: np.ndarray | None = None
    cuts: np.ndarray | None = None

    @property
    def cut_times(self) -> list[float]:
        """The times of the first frames of shots (what :class:`MapBlender` takes)."""
        return [] if self.cuts is None else [float(self.times[int(i)]) for i in self.cuts]

    @property
    def heat(self) -> np.ndarray | None:
        """(W, T, h, w) the first heat panel in CAM units (None for a guided-only run)."""
        for v in self.panels.values():
            if v.dtype != np.uint8:
                return v
        return None

    def supports(self) -> list[TimeSupport]:
        """The windows' time supports, exactly as pass 2 blended them."""
        n = len(self.window_times)
        keep = self.window_keep if self.window_keep is not None else [None] * n
        scale = self.window_scale if self.window_scale is not None else [None] * n
        return [
            TimeSupport(list(t), float(m), None if k is None else (int(k[0]), int(k[1])), s)
            for t, m, k, s in zip(self.window_times, self.margin, keep, scale, strict=True)
        ]

    def blender(self, device: torch.device | str = "cpu") -> MapBlender:
        """Per source frame time (increasing), ``.at(t)`` -> ({id: blended crop-space map},
        window weights): the pipeline's pass-2 blending, in CAM units (no display scale)."""

        def load(i: int) -> dict[str, torch.Tensor]:
            return {
                k: torch.from_numpy(np.ascontiguousarray(v[i])).to(device)
                for k, v in self.panels.items()
            }

        return MapBlender(self.supports(), load, cuts=self.cut_times)


def load_maps(path: str | Path) -> RawMaps:
    """Read a ``.maps.npz`` written by :func:`save_maps` (a :class:`VidcamError` when it is not one)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        meta = json.loads(str(a["meta"]))
        ids = [str(x) for x in a["panel_ids"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise VidcamError(f"maps file {str(p)!r} cannot be read: {exc}") from None
    if meta.get("format") != FORMAT:
        raise VidcamError(f"maps file {str(p)!r} is not a {FORMAT} file")
    panels = {}
    for j, i in enumerate(ids):
        v = a[f"panel_{j}"]
        panels[i] = (
            v if v.dtype == np.uint8 else v.astype(np.float32) * a[f"peak_{j}"][:, None, None, None]
        )
    geometry = Geometry(
        source=_pair(a["source"]),
        resized=_pair(a["resized"]),
        crop=_pair(a["crop"]),
        offset=_pair(a["offset"]),
    )
    return RawMaps(
        panels=panels,
        window_times=a["window_times"],
        window_frames=a["window_frames"],
        window_keep=a.get("window_keep"),
        window_scale=a.get("window_scale"),
        margin=a["margin"],
        times=a["times"],
        importance=a["importance"],
        cuts=_cuts(a.get("cuts"), len(a["times"]), p),
        geometry=geometry,
        model_crop=_pair(a["model_crop"]),
        meta=meta,
    )


def _cuts(a: np.ndarray | None, frames: int, p: Path) -> np.ndarray | None:
    """``cuts`` checked: increasing frame indices inside the video (a damaged file is refused,
    not indexed out of range)."""
    if a is None:
        return None
    ok = a.ndim == 1 and a.dtype.kind in "iu" and ((a >= 0) & (a < frames)).all()
    if not ok or (np.diff(a) <= 0).any():
        raise VidcamError(f"maps file {str(p)!r} has a damaged 'cuts' array")
    return a.astype(np.int64)


def _pair(a: np.ndarray) -> tuple[int, int]:
    return int(a[0]), int(a[1])
