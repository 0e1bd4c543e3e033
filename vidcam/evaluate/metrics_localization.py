"""Localization of a map against ground-truth boxes (or masks) and the action interval.

``heat``: (T, H, W) map in [0, 1] on the clip's grid (the whole window the maps cover: the
frame, the tiles' band or the centre crop). ``inst``: (T, I, H, W) bool, one mask per acting
instance per frame (all False where the instance has no box, e.g. outside the action
interval); ``union = inst.any(1)``. ``gt_frames``: (T,) bool, the frames that have boxes.
``interval``: (T,) bool, the sampled frames inside the action interval. Results are fractions in
[0, 1] (Python floats) or None when the ground truth gives nothing to measure.

The pointing game with a tolerance (Zhang et al. 2016, used for video attribution since) counts
a hit when the map's maximum lies within ``tolerance`` pixels of a box: :func:`dilate` grows
the union by that radius once per clip and :func:`pointing_game` is run on the grown union.
:func:`localize` computes every metric from per-frame boxes without materialising one mask per
instance (memory stays at one (T, H, W) mask however many boxes a frame has).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: IoU threshold on the map (maps are min-max normalised to [0, 1] per clip).
IOU_THRESHOLD = 0.5
#: a local peak is the maximum of its PEAK_WINDOW×PEAK_WINDOW neighbourhood (in one frame), is
#: strictly above that neighbourhood's minimum (no flat plateau), and is >= PEAK_MIN.
PEAK_WINDOW = 5
PEAK_MIN = 0.5
#: the pointing game's tolerance, in annotation (source-frame) pixels
POINTING_TOLERANCE = 15.0


def _pixel_bounds(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """[x0, y0, x1, y1] (half-open, fractional) -> integer (xa, ya, xb, yb), rounded outward and
    clipped to the frame (empty when xb <= xa or yb <= ya)."""
    x0, y0, x1, y1 = box
    xa, ya = max(0, math.floor(x0)), max(0, math.floor(y0))
    xb, yb = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    return xa, ya, xb, yb


def box_union(
    boxes: Sequence[Sequence[Sequence[float]]],
    height: int,
    width: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-frame box lists (as :func:`box_masks`) -> (T, H, W) bool, the union of each frame's
    boxes."""
    out = torch.zeros(len(boxes), height, width, dtype=torch.bool, device=device)
    for ti, frame_boxes in enumerate(boxes):
        for b in frame_boxes:
            xa, ya, xb, yb = _pixel_bounds(b, height, width)
            if xb > xa and yb > ya:
                out[ti, ya:yb, xa:xb] = True
    return out


def dilate(union: torch.Tensor, radius: float) -> torch.Tensor:
    """(T, H, W) bool -> the pixels whose centre lies within ``radius`` pixels (Euclidean,
    between pixel centres) of a True pixel of the same frame."""
    if radius <= 0:
        return union
    out = np.zeros(tuple(union.shape), dtype=bool)
    src = union.cpu().numpy()
    for t, frame in enumerate(src):
        if frame.any():
            outside = (~frame).astype(np.uint8)  # distanceTransform: distance to the nearest 0
            dist = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            out[t] = dist <= radius + 1e-6
    return torch.from_numpy(out).to(union.device)


def box_masks(
    boxes: Sequence[Sequence[Sequence[float]]],
    height: int,
    width: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-frame lists of ``[x0, y0, x1, y1]`` boxes (model-input pixels, half-open) ->
    (T, I, H, W) bool, I = most boxes in one frame. Bounds are rounded outward, then clipped."""
    t = len(boxes)
    n_inst = max((len(b) for b in boxes), default=0)
    out = torch.zeros(t, n_inst, height, width, dtype=torch.bool, device=device)
    for ti, frame_boxes in enumerate(boxes):
        for i, b in enumerate(frame_boxes):
            xa, ya, xb, yb = _pixel_bounds(b, height, width)
            if xb > xa and yb > ya:
                out[ti, i, ya:yb, xa:xb] = True
    return out


def energy_pointing(
    heat: torch.Tensor, union: torch.Tensor, gt_frames: torch.Tensor
) -> float | None:
    """Mean over frames with boxes of (map energy inside the boxes) / (map energy in the frame).

    A frame whose map is all zero scores 0.
    """
    if not bool(gt_frames.any()):
        return None
    h, u = heat[gt_frames].double(), union[gt_frames]
    total = h.sum((1, 2))
    inside = (h * u).sum((1, 2))
    share = torch.where(total > 0, inside / total.clamp(min=1e-300), torch.zeros_like(total))
    return float(share.mean())


def pointing_game(heat: torch.Tensor, union: torch.Tensor, gt_frames: torch.Tensor) -> float | None:
    """Mean over frames with boxes of 1[the frame's map maximum lies inside a box].

    When several pixels share the maximum, the frame scores the share of them inside a box (the
    expected hit of a random tie-break), so a constant map scores the boxes' area share.
    """
    if not bool(gt_frames.any()):
        return None
    h, u = heat[gt_frames], union[gt_frames]
    is_max = h == h.amax((1, 2), keepdim=True)
    hits = (is_max & u).sum((1, 2)).double() / is_max.sum((1, 2)).double()
    return float(hits.mean())


def local_peaks(
    heat: torch.Tensor, window: int = PEAK_WINDOW, min_value: float = PEAK_MIN
) -> torch.Tensor:
    """(T, H, W) bool: per-frame local maxima (see :data:`PEAK_WINDOW`, :data:`PEAK_MIN`)."""
    x = heat.unsqueeze(1).float()
    pad = window // 2
    hi = F.max_pool2d(x, window, stride=1, padding=pad)
    lo = -F.max_pool2d(-x, window, stride=1, padding=pad)
    return ((x == hi) & (x > lo) & (x >= min_value)).squeeze(1)


def instance_coverage(heat: torch.Tensor, inst: torch.Tensor) -> float | None:
    """Share of (frame, instance) boxes that hold a local peak of that frame's map."""
    valid = inst.flatten(2).any(2)  # (T, I)
    if not bool(valid.any()):
        return None
    peaks = local_peaks(heat).unsqueeze(1)  # (T, 1, H, W)
    covered = (peaks & inst).flatten(2).any(2)
    return float(covered[valid].double().mean())


def temporal_energy(heat: torch.Tensor, interval: torch.Tensor) -> float | None:
    """Share of the map's total energy that falls on frames inside the action interval."""
    if not bool(interval.any()):
        return None
    per_frame = heat.double().sum((1, 2))
    total = per_frame.sum()
    return float(per_frame[interval].sum() / total) if total > 0 else 0.0


def iou(heat: torch.Tensor, union: torch.Tensor, threshold: float = IOU_THRESHOLD) -> float | None:
    """IoU over the whole T×H×W volume of ``heat >= threshold`` with the union of boxes."""
    if not bool(union.any()):
        return None
    m = heat >= threshold
    inter = (m & union).sum().double()
    return float(inter / (m | union).sum().double())


def box_coverage(heat: torch.Tensor, boxes: Sequence[Sequence[Sequence[float]]]) -> float | None:
    """:func:`instance_coverage` from per-frame box lists (boxes outside the window skipped)."""
    peaks = local_peaks(heat).cpu().numpy()
    t, h, w = peaks.shape
    hits = total = 0
    for ti, frame_boxes in enumerate(boxes[:t]):
        for b in frame_boxes:
            xa, ya, xb, yb = _pixel_bounds(b, h, w)
            if xb > xa and yb > ya:
                total += 1
                hits += bool(peaks[ti, ya:yb, xa:xb].any())
    return hits / total if total else None


def localization(
    heat: torch.Tensor,
    inst: torch.Tensor,
    interval: torch.Tensor,
    *,
    near: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """All localization metrics for one map from instance masks; keys as in
    :data:`LOCALIZATION_METRICS`. ``near``: the union grown by the pointing tolerance
    (:func:`dilate`); None: no tolerance (``pointing_tol`` = ``pointing``)."""
    union = inst.any(1) if inst.shape[1] else torch.zeros_like(heat, dtype=torch.bool)
    out = _common(heat, union, interval, near)
    out["coverage"] = instance_coverage(heat, inst)
    return _ordered(out)


def localize(
    heat: torch.Tensor,
    union: torch.Tensor,
    interval: torch.Tensor,
    *,
    boxes: Sequence[Sequence[Sequence[float]]] | None = None,
    near: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """:func:`localization` from the union (T, H, W) and the per-frame ``boxes`` (instance
    coverage; None for mask ground truth, whose one mask per frame is one instance)."""
    out = _common(heat, union, interval, near)
    out["coverage"] = (
        box_coverage(heat, boxes)
        if boxes is not None
        else (instance_coverage(heat, union.unsqueeze(1)))
    )
    return _ordered(out)


def _common(heat, union, interval, near) -> dict[str, float | None]:
    gt_frames = union.flatten(1).any(1)
    return {
        "energy_pg": energy_pointing(heat, union, gt_frames),
        "pointing": pointing_game(heat, union, gt_frames),
        "pointing_tol": pointing_game(heat, union if near is None else near, gt_frames),
        "temporal": temporal_energy(heat, interval),
        "iou": iou(heat, union),
    }


def _ordered(out: dict[str, float | None]) -> dict[str, float | None]:
    return {k: out[k] for k in LOCALIZATION_METRICS}


LOCALIZATION_METRICS: dict[str, str] = {
    "energy_pg": "energy in box (energy pointing game): share of the map's energy inside the "
    "boxes (mean over frames with boxes)",
    "pointing": "pointing game: the frame's map maximum lies inside a box (mean over frames)",
    "pointing_tol": f"pointing game with tolerance: the maximum lies within "
    f"{POINTING_TOLERANCE:g} source pixels of a box (mean over frames; the literature's rule)",
    "coverage": f"instance coverage: share of instance boxes holding a local map peak "
    f"({PEAK_WINDOW}x{PEAK_WINDOW} window, value >= {PEAK_MIN})",
    "temporal": "share of the map's energy on frames inside the action interval",
    "iou": f"IoU of (map >= {IOU_THRESHOLD}) with the union of boxes over T×H×W",
}
