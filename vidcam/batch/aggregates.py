"""Per-video numbers for the index row: video-level top-k, temporal profile, centre energy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidcam.video.preprocess import Geometry
from vidcam.video.results import WindowResult, class_namer

PROFILE_BINS = 20


def video_top(
    windows: Sequence[WindowResult], labels: Sequence[str] | None, k: int = 5
) -> list[dict]:
    """Top ``k`` classes of the mean probability over windows. Each window keeps only its own
    top 5, so a class absent from a window counts 0 there (a lower bound)."""
    if not windows:
        return []
    total: dict[int, float] = {}
    for w in windows:
        for c, p, _ in w.top:
            total[c] = total.get(c, 0.0) + p
    name = class_namer(labels)
    ranked = sorted(total.items(), key=lambda cp: (-cp[1], cp[0]))[:k]
    return [{"label": name(c), "index": c, "prob": round(p / len(windows), 6)} for c, p in ranked]


def temporal_profile(importance: np.ndarray, bins: int = PROFILE_BINS) -> list[float]:
    """(F,) per-frame importance in [0, 1] -> ``bins`` means over equal spans of the frames
    (frame i belongs to bin floor(i * bins / F)); with F < bins, the profile is interpolated
    at the bins' centres."""
    v = np.asarray(importance, np.float64)
    f = v.shape[0]
    if f == 0:
        return [0.0] * bins
    if f >= bins:
        which = (np.arange(f) * bins) // f
        out = np.bincount(which, weights=v, minlength=bins) / np.bincount(which, minlength=bins)
    else:
        centres = (np.arange(bins) + 0.5) * f / bins - 0.5
        out = np.interp(centres, np.arange(f), v)
    return [round(float(x), 6) for x in np.clip(out, 0.0, 1.0)]


def centre_energy(heat: np.ndarray, geometry: Geometry, model_crop: tuple[int, int]) -> float:
    """Share of the map energy inside the central ``model_crop`` square of the resized frame.

    ``heat``: (..., h, w) non-negative maps covering ``geometry.crop`` at ``geometry.offset``
    in the resized frame (summed over the leading axes). Map pixels straddling the square's
    edge count by their overlap. Returns 0.0 for an all-zero map.
    """
    e = np.asarray(heat, np.float64)
    e = e.reshape(-1, *e.shape[-2:]).sum(0)
    total = float(e.sum())
    if total <= 0:
        return 0.0
    h, w = e.shape
    wy = _overlap(h, geometry.crop[0], geometry.offset[0], geometry.resized[0], model_crop[0])
    wx = _overlap(w, geometry.crop[1], geometry.offset[1], geometry.resized[1], model_crop[1])
    return round(float(wy @ e @ wx) / total, 6)


def _overlap(n: int, span: int, offset: int, full: int, box: int) -> np.ndarray:
    """(n,) share of each of ``n`` map pixels (covering [offset, offset + span) of a ``full``
    long axis) inside the centred interval of length ``box``."""
    edges = offset + np.arange(n + 1) * (span / n)
    lo, hi = (full - box) / 2.0, (full + box) / 2.0
    inside = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return inside / (span / n)
