"""Localization of a map against ground-truth boxes and the action interval.

``heat``: (T, H, W) map in [0, 1] at the model's input resolution. ``inst``: (T, I, H, W) bool,
one mask per acting instance per frame (all False where the instance has no box, e.g. outside the
action interval); ``union = inst.any(1)``. ``gt_frames``: (T,) bool, the frames that have boxes.
``interval``: (T,) bool, the sampled frames inside the action interval. Results are fractions in
[0, 1] (Python floats) or None when the ground truth gives nothing to measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: IoU threshold on the map (maps are min-max normalised to [0, 1] per clip).
IOU_THRESHOLD = 0.5
#: a local peak is the maximum of its PEAK_WINDOW×PEAK_WINDOW neighbourhood (in one frame), is
#: strictly above that neighbourhood's minimum (no flat plateau), and is >= PEAK_MIN.
PEAK_WINDOW = 5
PEAK_MIN = 0.5


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
        for i, (x0, y0, x1, y1) in enumerate(frame_boxes):
            xa, ya = max(0, int(x0 // 1)), max(0, int(y0 // 1))
            xb, yb = min(width, int(-(-x1 // 1))), min(height, int(-(-y1 // 1)))
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


def localization(
    heat: torch.Tensor, inst: torch.Tensor, interval: torch.Tensor
) -> dict[str, float | None]:
    """All localization metrics for one map; keys as in :data:`LOCALIZATION_METRICS`."""
    union = inst.any(1) if inst.shape[1] else torch.zeros_like(heat, dtype=torch.bool)
    gt_frames = union.flatten(1).any(1)
    return {
        "energy_pg": energy_pointing(heat, union, gt_frames),
        "pointing": pointing_game(heat, union, gt_frames),
        "coverage": instance_coverage(heat, inst),
        "temporal": temporal_energy(heat, interval),
        "iou": iou(heat, union),
    }


LOCALIZATION_METRICS: dict[str, str] = {
    "energy_pg": "energy pointing game: share of map energy inside the boxes (mean over frames)",
    "pointing": "pointing game: the frame's map maximum lies inside a box (mean over frames)",
    "coverage": f"instance coverage: share of instance boxes holding a local map peak "
    f"({PEAK_WINDOW}x{PEAK_WINDOW} window, value >= {PEAK_MIN})",
    "temporal": "share of the map's energy on frames inside the action interval",
    "iou": f"IoU of (map >= {IOU_THRESHOLD}) with the union of boxes over T×H×W",
}
