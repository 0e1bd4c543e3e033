"""How big is a map? The numbers that explain why Average Drop ranks broad maps first.

``E = map ⊙ clip`` keeps a share of the clip that grows with the map's mass: a map whose mean
value is 0.9 keeps most of every voxel, one whose mean is 0.05 blacks out nearly everything. So
Average Drop and Increase in Confidence reward broad maps whatever they point at (the all-ones
map scores a perfect 0 % drop). Every table prints these beside them. ``heat``: a (T, H, W) map
in [0, 1] (vidcam's maps are min-max normalised per clip).
"""

from __future__ import annotations

import math

import torch

#: the threshold of the "area" measure (the same as the IoU threshold of the localization)
AREA_THRESHOLD = 0.5
#: the top share of voxels whose share of the map's mass measures peakedness
PEAK_SHARE = 0.01

SIZE_METRICS: dict[str, str] = {
    "map_mean": "mean map value over T×H×W (the share of the clip that E = map ⊙ clip keeps)",
    "map_area50": f"share of voxels with map >= {AREA_THRESHOLD}",
    "map_peak1": f"share of the map's mass in its top {PEAK_SHARE * 100:g} % of voxels "
    "(peakedness; 0.01 for a flat map)",
}


def map_size(heat: torch.Tensor) -> dict[str, float]:
    """Mean value, area at or above :data:`AREA_THRESHOLD` and top-1 % mass share of a map."""
    h = heat.detach().double().reshape(-1)
    n = h.numel()
    total = float(h.sum())
    top = max(1, math.ceil(PEAK_SHARE * n))
    peak = float(torch.topk(h, top).values.sum()) / total if total > 0 else 0.0
    return {
        "map_mean": total / n,
        "map_area50": float((h >= AREA_THRESHOLD).double().mean()),
        "map_peak1": peak,
    }
