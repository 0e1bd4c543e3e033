r"""Video RISE (Petsiuk et al., BMVC 2018) over T×H×W: random masks weighted by the class score.

N binary grids of size (t, h, w), each cell kept with probability p, are upsampled
(trilinear) to ((t+1)·c_t, (h+1)·c_h, (w+1)·c_w) with c = ceil(size / grid) the cell size,
and cropped to the clip (T, H, W) at a random shift in [0, c) per axis — RISE's smooth masks
with sub-cell positions (an axis whose grid is as fine as the clip, c = 1, is used as drawn:
per-voxel Bernoulli masks). Each mask M_i preserves ``M_i·x + (1 − M_i)·fill`` and

    saliency_c = Σ_i score_c(masked_i) · M_i / (N · p)

(Monte-Carlo estimate of E[score_c(masked) · M] / p; ``centred=False``). By default
(``centred=True``) the mean score S̄ is taken out first, Σ_i (S_i − S̄)·M_i / (N·p) + S̄: a
control variate with the same expectation, without the term S̄ · Σ_i M_i / (N·p), whose
voxel-to-voxel noise swamps the signal with a few hundred masks. For a linear score S(x) = Σ_v w_v x_v
and per-voxel masks, its expectation is p·S(x) + (1 − p)·S(fill) + (1 − p)·w ⊙ (x − fill): the
weight map (times what the fill removes) plus a constant; smooth masks blur it by their
correlation. Grids and shifts are drawn up front from a seeded CPU ``torch.Generator`` (the
same masks on every device and for any batch size); masked clips go through the model in
batches of ``batch`` (memory bounded by the batch), all K targets of a sample from the same
forwards, without autograd, on the clip's device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidcam.cam.perturbation import (
    Perturbation,
    PerturbationResult,
    class_scores,
    grid_for,
    make_fill,
)

#: the default grid: ceil(T / 4) × ceil(H / 16) × ceil(W / 16) (7×7 per frame at 112 px)
GRID_DIVISORS: tuple[int, int, int] = (4, 16, 16)


def cell_sizes(size: tuple[int, ...], grid: tuple[int, ...]) -> tuple[int, ...]:
    """RISE's cell size per axis, ceil(size / grid)."""
    return tuple(math.ceil(s / g) for s, g in zip(size, grid, strict=True))


def draw_masks(
    n: int, grid: tuple[int, int, int], size: tuple[int, int, int], p: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """RISE's random draws on the CPU: binary cells (n, t, h, w) float32 (1 = kept, with
    probability ``p``) and shifts (n, 3) long, each in [0, cell size) of its axis."""
    gen = torch.Generator().manual_seed(int(seed))
    cells = (torch.rand((n, *grid), generator=gen) < p).float()
    cs = cell_sizes(size, grid)
    shifts = torch.stack([torch.randint(0, c, (n,), generator=gen) for c in cs], dim=1)
    return cells, shifts


def upsample_masks(
    cells: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int, int]
) -> torch.Tensor:
    """Cells (B, t, h, w) and shifts (B, 3) -> smooth masks (B, T, H, W) in [0, 1]: trilinear
    upsampling to (grid + 1) cells, cropped at the shift (axes with cell size 1: as drawn)."""
    grid = tuple(cells.shape[1:])
    cs = cell_sizes(size, grid)
    big = tuple(s if c == 1 else (g + 1) * c for s, g, c in zip(size, grid, cs, strict=True))
    up = cells[:, None]
    if big != grid:
        up = F.interpolate(up, size=big, mode="trilinear", align_corners=False)
    up = up[:, 0]
    t, h, w = size
    return torch.stack(
        [up[b, s0 : s0 + t, s1 : s1 + h, s2 : s2 + w] for b, (s0, s1, s2) in enumerate(shifts)]
    )


@torch.no_grad()
def rise(
    model: nn.Module,
    x5: torch.Tensor,
    image: bool,
    indices: torch.Tensor,
    opts: Perturbation,
    batch: int,
) -> PerturbationResult:
    """Video RISE of clips ``x5`` (N, C, T, H, W) for classes ``indices`` (N, K).

    Returns ``raw`` (N, K, t, h, w) (the saliency averaged over each grid cell), ``full``
    (N, K, T, H, W) the saliency, ``weights`` (N, K, masks) every masked clip's score;
    ``forwards`` = N · ceil(masks / batch), ``clips`` = N · masks.
    """
    n, k = indices.shape
    size: tuple[int, int, int] = tuple(x5.shape[2:])  # type: ignore[assignment]
    grid = grid_for(size, opts.grid, GRID_DIVISORS)
    cells, shifts = draw_masks(opts.masks, grid, size, opts.p, opts.seed)
    score = opts.score or "prob"
    fill = make_fill(x5, opts.fill)
    delta = x5 - fill
    acc = torch.float64  # sums of many masks; the centring subtracts two large terms
    sal = torch.zeros((n, k, *size), dtype=acc, device=x5.device)
    weights = torch.zeros((n, k, opts.masks), dtype=torch.float32, device=x5.device)
    total = torch.zeros(size, dtype=acc, device=x5.device)  # Σ_i M_i
    forwards = 0
    for start in range(0, opts.masks, batch):
        stop = min(start + batch, opts.masks)
        m = upsample_masks(cells[start:stop].to(x5.device), shifts[start:stop], size)
        m64 = m.to(acc)
        total += m64.sum(0)
        mx = m[:, None].to(x5.dtype)  # (B, 1, T, H, W)
        for s in range(n):
            masked = fill[s : s + 1] + mx * delta[s : s + 1]  # (B, C, T, H, W)
            sc = class_scores(model, masked, image, score)[:, indices[s]]  # (B, K)
            sal[s] += torch.einsum("bk,bthw->kthw", sc.to(acc), m64)
            weights[s, :, start:stop] = sc.transpose(0, 1)
            forwards += 1
    if opts.centred:  # Σ (S_i − S̄) M_i = Σ S_i M_i − S̄ Σ M_i; S̄ added back as a constant
        mean = weights.to(acc).mean(dim=2)  # (N, K)
        sal -= mean[:, :, None, None, None] * total
        sal += mean[:, :, None, None, None] * (opts.masks * opts.p)
    sal /= opts.masks * opts.p
    sal = sal.float()
    raw = F.adaptive_avg_pool3d(sal, grid)
    return PerturbationResult(raw, sal, weights, forwards, n * opts.masks)
