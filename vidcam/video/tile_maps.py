"""A window's maps and prediction from one engine call, whole or as tiles.

The tiles of a window (:func:`~vidcam.video.spatial.split_tiles`) all explain the same
class(es): the target resolved on the window's prediction, the mean of its tiles' probabilities
(:func:`tile_targets`). Their maps are stitched on the CAM's own scale
(:func:`~vidcam.video.spatial.stitch`) and re-normalised per window (:func:`window_maps`); the
window's logits and probabilities are its tiles' averages (:func:`window_prediction`). A plan
that is not ``"tiles"`` passes the engine's results through.
"""

from __future__ import annotations

import torch

from vidcam.cam.explanation import Explanation
from vidcam.cam.hooks import eval_mode
from vidcam.cam.maps import normalize_maps, upsample
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError
from vidcam.video.spatial import SpatialPlan, stitch


def tile_targets(
    plan: SpatialPlan, tiles: torch.Tensor, target: Target, windows: int
) -> torch.Tensor:
    """(windows, K) classes to explain in every tile of a window, from its (windows * n, C, T,
    h, w) ``tiles``: ``target`` resolved on the window's prediction (its tiles' mean
    probability; one no-grad forward) — a fixed class index needs no forward."""
    if isinstance(target, int):
        return torch.full((windows, 1), target, dtype=torch.long, device=tiles.device)
    with eval_mode(plan.module), torch.no_grad():
        logits = plan.module(tiles)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise VidcamError("tiles need a model whose output is (N, classes) scores")
    probs = logits.float().softmax(1).unflatten(0, (windows, -1)).mean(1)
    indices = resolve_targets(probs.requires_grad_(True), target)[1]
    if indices is None:
        raise VidcamError("tiles need class-index targets (top1, topk:K or a class)")
    return indices


def per_tile(chosen: torch.Tensor, plan: SpatialPlan) -> torch.Tensor:
    """(windows, K) classes -> (windows * n, K): each window's classes for each of its tiles."""
    return chosen.repeat_interleave(len(plan.offsets), dim=0)


def window_maps(
    res: Explanation, plan: SpatialPlan
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(maps (B, K, T, H, W) in [0, 1], peaks (B, K), heat (B, K, t, h, w) in CAM units)
    over the whole window. Tiles: each tile's map in CAM units (the upsampled raw CAM, or
    for fused layers the normalised map times its raw peak), stitched, re-normalised."""
    peaks = res.first_layer_raw.flatten(2).amax(2)
    if plan.mode != "tiles":
        return res.maps, peaks, res.first_layer_raw
    if len(res.raw_per_layer) == 1:
        tile = upsample(res.first_layer_raw, tuple(res.maps.shape[2:]))
    else:
        tile = res.maps * peaks[:, :, None, None, None]
    heat = stitch(tile, plan)
    return normalize_maps(heat)[0], heat.flatten(2).amax(2), heat


def window_prediction(
    res: Explanation, plan: SpatialPlan, windows: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(logits, probs), each (windows, classes) or None: the engine's, or with tiles the
    tiles' mean logits and mean probabilities (softmax per tile, then the mean)."""
    logits, probs = res.logits, res.probs
    if plan.mode == "tiles" and logits is not None:
        logits = logits.float().unflatten(0, (windows, len(plan.offsets)))
        probs = logits.softmax(dim=2).mean(1)
        logits = logits.mean(1)
    return logits, probs
