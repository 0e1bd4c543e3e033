"""Masking baselines: what a removed voxel is replaced with.

All tensors are in pixel space, *before* the model's normalisation: values in [0, 1],
shape (N, 3, T, H, W). ``blend(clip, baseline, keep)`` is ``keep·clip + (1 − keep)·baseline``;
with a heatmap as ``keep`` this is the paper's explanation map ``E = heatmap ⊙ clip`` (exactly so
for the black baseline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import BASELINE_HELP, BASELINES  # noqa: F401 (re-exported)


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(clip: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-frame separable Gaussian blur (reflect padding) of (N, C, T, H, W) -> same shape."""
    n, c, t, h, w = clip.shape
    k = _gaussian_kernel(sigma, clip.device, clip.dtype)
    r = k.numel() // 2
    x = clip.permute(0, 2, 1, 3, 4).reshape(n * t * c, 1, h, w)
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return x.reshape(n, t, c, h, w).permute(0, 2, 1, 3, 4).contiguous()


def make_baseline(clip: torch.Tensor, kind: str, mean: Sequence[float]) -> torch.Tensor:
    """The replacement clip for ``kind`` in :data:`BASELINES`; (N, 3, T, H, W) in [0, 1]."""
    if kind == "black":
        return torch.zeros_like(clip)
    if kind == "mean":
        m = torch.as_tensor(mean, dtype=clip.dtype, device=clip.device).view(1, -1, 1, 1, 1)
        return m.expand_as(clip).clone()
    if kind == "blur":
        return blur(clip, sigma=min(clip.shape[-2:]) / 16.0)
    raise VidcamError(f"baseline {kind!r} is not one of {', '.join(BASELINES)}")


def blend(clip: torch.Tensor, baseline: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``keep·clip + (1 − keep)·baseline``; ``keep`` broadcasts over channels, e.g. (B,1,T,H,W)."""
    keep = keep.to(clip.dtype)
    return baseline + keep * (clip - baseline)
