r"""Spatiotemporal extremal perturbation (Fong et al., ICCV 2019; video: STEP, Li et al. 2021).

For each (sample, target) one smooth mask is optimised: its parameters θ ∈ [0, 1] live on a
low-resolution grid (t, h, w), are smoothed by a Gaussian of ``smooth`` cells and upsampled
(trilinear) to the clip, M = up(G ∗ θ). The preserved clip ``M·x + (1 − M)·fill`` should keep
the class score high while M keeps exactly a fraction a of the T·H·W voxels. As in Fong et al.
the area is imposed by a ranking loss: the mask's values sorted in decreasing order are pulled
toward the step vector r_a of a·V ones followed by zeros (V = T·H·W)::

    loss = − (S(M·x + (1 − M)·fill) − S(fill)) / |S(x) − S(fill)| + λ_s · ‖sort↓(M) − r_a‖² / V

with S the class score (logit by default, as Fong et al.'s reward) measured relative to the clip
and its fill (one more forward per batch), so that λ means the same on any model's logit
scale, and λ_s growing geometrically from ``area_weight`` to 10 · ``area_weight`` over the
steps (the score is free to shape the mask first, the area is enforced at the end). θ starts at 0.5 and
takes ``steps`` Adam steps, clamped to [0, 1] after each. Nothing is random: the result is a
function of the clip and the options. Gradients are taken with ``torch.autograd.grad`` with
respect to θ only, so the model's parameters' ``.grad`` are never touched. The (sample, target)
pairs are optimised ``batch`` at a time (their losses are independent, so batching changes no
result); each step is one forward and one backward of the batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidcam.cam.maps import upsample
from vidcam.cam.perturbation import (
    Perturbation,
    PerturbationResult,
    class_scores,
    grid_for,
    make_fill,
    smooth,
)
from vidcam.errors import VidcamError

#: the default grid: ceil(T / 2) × ceil(H / 8) × ceil(W / 8) (14×14 per frame at 112 px)
GRID_DIVISORS: tuple[int, int, int] = (2, 8, 8)
#: the area loss' weight grows by this factor over the steps
AREA_WEIGHT_GROWTH = 10.0


def area_target(voxels: int, area: float, device: torch.device) -> torch.Tensor:
    """Fong et al.'s step vector r_a (V,): round(a·V) ones, then zeros."""
    ones = min(voxels, max(1, round(area * voxels)))
    r = torch.zeros(voxels, dtype=torch.float32, device=device)
    r[:ones] = 1.0
    return r


def mask_from(theta: torch.Tensor, sigma: float, size: tuple[int, int, int]) -> torch.Tensor:
    """Parameters (B, 1, t, h, w) -> (smoothed grid (B, 1, t, h, w), mask (B, 1, T, H, W))."""
    low = smooth(theta, (sigma, sigma, sigma))
    return low, upsample(low, size)


def extremal(
    model: nn.Module,
    x5: torch.Tensor,
    image: bool,
    indices: torch.Tensor,
    opts: Perturbation,
    batch: int,
) -> PerturbationResult:
    """Extremal perturbation of clips ``x5`` (N, C, T, H, W) for classes ``indices`` (N, K).

    Returns ``raw`` (N, K, t, h, w) the smoothed mask parameters, ``full`` (N, K, T, H, W) the
    mask, ``weights`` (N, K, 2): the preserved clip's score and the mask's mean; ``forwards`` =
    (steps + 2) · ceil(N·K / batch) (each of the ``steps`` with a backward; one forward scores
    the clips and their fills, one the final masks), ``clips`` = the clips scored.
    """
    if torch.is_inference_mode_enabled():
        raise VidcamError(
            "extremal perturbation optimises a mask with autograd; call it outside "
            "torch.inference_mode() (torch.no_grad() around it is fine)"
        )
    n, k = indices.shape
    size: tuple[int, int, int] = tuple(x5.shape[2:])  # type: ignore[assignment]
    grid = grid_for(size, opts.grid, GRID_DIVISORS)
    x5 = x5.detach().clone() if x5.is_inference() else x5.detach()
    fill = make_fill(x5, opts.fill)
    sample = torch.arange(n, device=x5.device).repeat_interleave(k)  # pair -> sample
    cls = indices.reshape(-1)
    raws, fulls, weights = [], [], []
    forwards = clips = 0
    for start in range(0, n * k, batch):
        s = sample[start : start + batch]
        low, full, w = _optimise(
            model, x5[s], fill[s], image, cls[start : start + batch], grid, opts
        )
        raws.append(low)
        fulls.append(full)
        weights.append(w)
        forwards += opts.steps + 2
        clips += (opts.steps + 3) * int(s.numel())
    raw = torch.cat(raws)[:, 0].unflatten(0, (n, k))
    full = torch.cat(fulls)[:, 0].unflatten(0, (n, k))
    w = torch.cat(weights).unflatten(0, (n, k))
    chunks = math.ceil(n * k / batch)
    return PerturbationResult(raw, full, w, forwards, clips, backwards=opts.steps * chunks)


def _optimise(
    model: nn.Module,
    x: torch.Tensor,
    fill: torch.Tensor,
    image: bool,
    cls: torch.Tensor,
    grid: tuple[int, int, int],
    opts: Perturbation,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Optimise B masks for clips ``x`` (B, C, T, H, W) and classes ``cls`` (B,) -> (smoothed
    grid (B, 1, t, h, w), mask (B, 1, T, H, W), (B, 2) final score and mean of the mask)."""
    size: tuple[int, int, int] = tuple(x.shape[2:])  # type: ignore[assignment]
    voxels = math.prod(size)
    ref = area_target(voxels, opts.area, x.device)
    score = opts.score or "logit"
    delta = x - fill
    with torch.no_grad():  # the score's scale: the clip against its fill (one forward)
        ends = class_scores(model, torch.cat([x, fill]), image, score)
        ends = ends.gather(1, cls.repeat(2)[:, None])[:, 0].unflatten(0, (2, -1))
        base, span = ends[1], (ends[0] - ends[1]).abs().clamp_min(1e-6)
    theta = torch.full((x.shape[0], 1, *grid), 0.5, device=x.device, requires_grad=True)
    adam = torch.optim.Adam([theta], lr=opts.lr)
    with torch.enable_grad():
        for step in range(opts.steps):
            weight = opts.area_weight * AREA_WEIGHT_GROWTH ** (step / max(1, opts.steps - 1))
            _, m = mask_from(theta, opts.smooth, size)
            kept = fill + m.to(x.dtype) * delta
            sc = class_scores(model, kept, image, score).gather(1, cls[:, None])[:, 0]
            ranked = m.flatten(1).sort(dim=1, descending=True).values
            area = (ranked - ref).pow(2).mean(dim=1)
            loss = (weight * area - (sc - base) / span).sum()
            (theta.grad,) = torch.autograd.grad(loss, [theta])
            adam.step()
            theta.grad = None
            with torch.no_grad():
                theta.clamp_(0.0, 1.0)
    with torch.no_grad():
        low, m = mask_from(theta.detach(), opts.smooth, size)
        kept = fill + m.to(x.dtype) * delta
        sc = class_scores(model, kept, image, score).gather(1, cls[:, None])[:, 0]
        w = torch.stack([sc, m.flatten(1).mean(1)], dim=1)
    return low, m, w
