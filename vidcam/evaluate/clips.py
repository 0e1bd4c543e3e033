"""Evaluation inputs: video lists, one clip per video, and its ground truth on the clip's grid.

Each video gives ONE clip: the middle one of the non-overlapping windows that
:mod:`vidcam.video.sample` plans for the model's :class:`~vidcam.models.spec.InputSpec` (for a
video exactly one clip long, the whole video). Frames are decoded with
:mod:`vidcam.video.decode` and resized and cropped with :mod:`vidcam.video.preprocess` to the
window the spatial mode covers (the centre crop, the whole frame or the tiles' band); the ground
truth (:mod:`vidcam.evaluate.gt`: boxes or masks) is mapped through the same sampled frame
indices, resize and crop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.gt import GroundTruth, check_json_gt, load_gt  # noqa: F401 (re-exported)
from vidcam.evaluate.metrics_localization import box_union
from vidcam.models.spec import InputSpec
from vidcam.video.decode import iter_frames, probe
from vidcam.video.preprocess import Geometry, Preprocessor
from vidcam.video.sample import ClipSampler, plan_windows
from vidcam.video_files import VIDEO_SUFFIXES, scan_folder


def list_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Video files named in ``inputs`` (files, or folders expanded by
    :func:`vidcam.video_files.scan_folder`, non-recursively: the files ``vidcam batch DIR``
    picks), in order."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = scan_folder(p)
            if not found:
                raise VidcamError(f"folder {str(p)!r} holds no video ({', '.join(VIDEO_SUFFIXES)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise VidcamError(f"input {str(p)!r} does not exist; give video files or folders")
    if not out:
        raise VidcamError("no input videos given")
    return out


@dataclass
class Clip:
    """One evaluation clip: ``pixels`` (1, 3, T, h, w) float in [0, 1] on the device (before
    normalisation); ``frames[j]``: source frame index of sample j; ``geometry``: resize/crop."""

    path: Path
    pixels: torch.Tensor
    frames: tuple[int, ...]
    geometry: Geometry


def read_clip(
    path: str | Path,
    spec: InputSpec,
    device: torch.device | str,
    geometry: Geometry | Callable[[int, int], Geometry] | None = None,
) -> Clip:
    """Decode ``path`` and return its middle clip per ``spec`` (see module docstring).

    ``geometry``: the window of each frame the clip covers (default: the centre crop), or a
    function of the video's (height, width) that gives it (e.g. a spatial plan's).
    """
    info = probe(path)
    if callable(geometry):
        geometry = geometry(info.height, info.width)
    pre = Preprocessor(spec, info.height, info.width, torch.device(device), geometry)
    crops, times = [], []
    for f in iter_frames(info.path, info):
        crops.append(pre.frame(f.image))
        times.append(f.time)
    windows = plan_windows(times, ClipSampler.from_spec(spec, hop=spec.clip_len))
    w = windows[(len(windows) - 1) // 2]
    x = pre.clip([crops[i] for i in w.frames])  # (1, 3, T, h, w), normalised
    pixels = pre.normalization.undo(x).clamp_(0.0, 1.0)  # [0, 1] pixels: masking happens there
    return Clip(info.path, pixels, tuple(w.frames), pre.geometry)


def find_gt(video: Path, gt_dir: str | Path | None) -> Path | None:
    """``<gt_dir>/<stem>.json`` when ``gt_dir`` is given, else ``<stem>.json`` next to the video."""
    p = (Path(gt_dir) / f"{video.stem}.json") if gt_dir is not None else video.with_suffix(".json")
    return p if p.is_file() else None


@dataclass
class ClipTruth:
    """Ground truth on the clip's grid. ``boxes[j]``: sample j's boxes [x0, y0, x1, y1] in
    model-input pixels (None for mask ground truth); ``mask``: (T, H, W) bool (mask ground
    truth, else None); ``interval`` (T,) bool: sample j's source frame lies in the action;
    ``px_per_unit``: (y, x) model-input pixels per annotation pixel (the pointing tolerance
    is in annotation pixels)."""

    label: str | None
    boxes: list[list[list[float]]] | None
    interval: torch.Tensor
    mask: torch.Tensor | None = None
    px_per_unit: tuple[float, float] = (1.0, 1.0)

    def union(self, height: int, width: int) -> torch.Tensor:
        """(T, H, W) bool: the pixels inside any box (or the mask)."""
        if self.mask is not None:
            return self.mask
        return box_union(self.boxes or [], height, width, self.interval.device)


def _scales(gt: GroundTruth, g: Geometry) -> tuple[float, float]:
    """(y, x) model-input pixels per annotation pixel."""
    src_h, src_w = g.source
    ah, aw = gt.size if gt.size is not None else (src_h, src_w)
    sy, sx = g.scale
    return src_h / float(ah) * sy, src_w / float(aw) * sx


def map_truth(gt: GroundTruth, clip: Clip) -> ClipTruth:
    """Map ``gt`` (source frames, annotation pixels) through the clip's frame sampling,
    resize and crop."""
    g = clip.geometry
    py, px = _scales(gt, g)
    top, left = g.offset
    device = clip.pixels.device
    boxes = mask = None
    if gt.masks is not None:
        mask = torch.from_numpy(_mask_to_clip(gt.masks(clip.frames), g)).to(device)
        present = mask.flatten(1).any(1)
    else:
        src = gt.boxes or []
        boxes = [
            [
                [x0 * px - left, y0 * py - top, x1 * px - left, y1 * py - top]
                for x0, y0, x1, y1 in (src[i] if 0 <= i < len(src) else [])
            ]
            for i in clip.frames
        ]
        present = torch.tensor([bool(b) for b in boxes], device=device)
    if gt.interval is not None:
        t0, t1 = gt.interval
        inside = torch.tensor([t0 <= i < t1 for i in clip.frames], device=device)
    else:
        inside = present
    return ClipTruth(gt.label, boxes, inside, mask, (py, px))


def map_gt(gt: dict, clip: Clip) -> ClipTruth:
    """Map a vidcam ground-truth JSON object (see :func:`map_truth`)."""
    return map_truth(check_json_gt(gt, "(object)")[1], clip)


def _mask_to_clip(masks: np.ndarray, g: Geometry) -> np.ndarray:
    """(T, h_a, w_a) bool on the annotation grid -> (T, h, w) bool on the clip's window: the
    whole annotated frame resized to the resized frame (area share >= 1/2), then cropped."""
    rh, rw = g.resized
    ch, cw = g.crop
    top, left = g.offset
    out = np.zeros((masks.shape[0], ch, cw), dtype=bool)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(rh, top + ch), min(rw, left + cw)
    for i, m in enumerate(masks):
        shrink = rh * rw < m.shape[0] * m.shape[1]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_NEAREST
        r = cv2.resize(m.astype(np.float32), (rw, rh), interpolation=interp) >= 0.5
        if y1 > y0 and x1 > x0:
            out[i, y0 - top : y1 - top, x0 - left : x1 - left] = r[y0:y1, x0:x1]
    return out
