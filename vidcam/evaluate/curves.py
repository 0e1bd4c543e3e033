"""Deletion and insertion curves (Petsiuk et al., RISE, 2018) for video saliency maps.

Voxel curves rank the T×H×W voxels of a map (most important first) and, over ``steps`` equal
steps, replace the top ``k/steps`` share with the baseline (deletion) or reveal it on top of the
baseline (insertion). Frame curves do the same with whole frames, ranked by the map's mean per
frame (``min(steps, T)`` steps). Ties in a map (e.g. the all-ones map) are broken by a seeded random
order, so a constant map behaves like a random ranking. The curve holds the model's score (softmax
probability of the target) at each step, ``steps + 1`` points from 0 to 1; the AUC is the
trapezoidal mean. All masked clips for one map are scored in batches of ``batch`` clips.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.masking import blend

#: ``score_fn(clips (B, 3, T, H, W) in [0, 1]) -> (B, num_classes)`` probabilities.
ScoreFn = Callable[[torch.Tensor], torch.Tensor]
UNITS: tuple[str, ...] = ("voxel", "frame")


def rank(importance: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rank of each element of a 1D ``importance`` (0 = most important); ties in random order.

    ``generator`` must live on ``importance``'s device.
    """
    n = importance.numel()
    perm = torch.randperm(n, generator=generator, device=importance.device)
    order = perm[torch.argsort(importance[perm], descending=True, stable=True)]
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(n, device=importance.device)
    return ranks


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under ``curve`` (..., S+1) sampled at 0, 1/S, ..., 1."""
    s = curve.shape[-1] - 1
    if s < 1:
        raise VidcamError("a curve needs at least 2 points")
    return (curve[..., 1:].sum(-1) + curve[..., :-1].sum(-1)) / (2 * s)


def keep_masks(
    heat: torch.Tensor,
    unit: str,
    steps: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Deletion keep-masks for a (T, H, W) map: (S+1, 1, T, H, W) bool; step k removes the
    ``round(k·n/S)`` top-ranked units (n voxels, or n = T frames with S = min(steps, T)).

    Insertion masks are their complement. Returns the masks and S.
    """
    if steps < 1:
        raise VidcamError(f"steps must be >= 1, got {steps}")
    t, h, w = heat.shape
    if unit == "voxel":
        r = rank(heat.reshape(-1), generator).view(1, 1, t, h, w)
        n = t * h * w
    elif unit == "frame":
        r = rank(heat.reshape(t, -1).mean(1), generator).view(1, 1, t, 1, 1)
        n, steps = t, min(steps, t)
    else:
        raise VidcamError(f"unit {unit!r} is not one of {', '.join(UNITS)}")
    counts = torch.tensor([round(k * n / steps) for k in range(steps + 1)], device=heat.device)
    return (r >= counts.view(-1, 1, 1, 1, 1)).expand(-1, -1, t, h, w), steps


@torch.no_grad()
def score_masked(
    score_fn: ScoreFn,
    clip: torch.Tensor,
    baseline: torch.Tensor,
    keep: torch.Tensor,
    target: int,
    batch: int = 16,
) -> torch.Tensor:
    """Target probability for each mask: clip (1,3,T,H,W), keep (M,1,T,H,W) -> (M,)."""
    if keep.shape[0] == 0:  # a one-step curve has no inner points
        return torch.zeros(0, dtype=clip.dtype, device=clip.device)
    out = []
    for i in range(0, keep.shape[0], batch):
        x = blend(clip, baseline, keep[i : i + batch])
        out.append(score_fn(x)[:, target])
    return torch.cat(out)


def deletion_insertion(
    score_fn: ScoreFn,
    clip: torch.Tensor,
    baseline: torch.Tensor,
    heat: torch.Tensor,
    target: int,
    *,
    unit: str = "voxel",
    steps: int = 16,
    batch: int = 16,
    generator: torch.Generator | None = None,
    full_score: float | torch.Tensor | None = None,
    base_score: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (S+1,) for one clip (1,3,T,H,W) and map (T,H,W).

    ``full_score`` / ``base_score``: the target's score on the clip / on the baseline, when already
    known (they are the curves' end points and are the same for every map of a clip).
    """
    keep, s = keep_masks(heat, unit, steps, generator)
    inner = keep[1:-1]
    masks = torch.cat([inner, ~inner]) if s > 1 else inner
    scores = score_masked(score_fn, clip, baseline, masks, target, batch)
    ends = []
    for known, x in ((full_score, clip), (base_score, baseline)):
        if known is None:
            known = score_fn(x)[0, target]
        ends.append(torch.as_tensor(known, dtype=scores.dtype, device=scores.device).view(1))
    full, base = ends
    mid_del, mid_ins = scores[: s - 1], scores[s - 1 :]
    deletion = torch.cat([full, mid_del, base])
    insertion = torch.cat([base, mid_ins, full])
    return deletion, insertion
