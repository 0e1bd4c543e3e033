"""Reference maps: what a method's map must beat, scored exactly like the methods' maps.

- ``random``: uniform noise at the explained layer's feature resolution (t, h, w), upsampled
  trilinearly to the clip and min-max normalised, as the CAMs are (several layers: one noise
  per layer at its resolution, normalised and averaged, as the maps are fused). Its smoothness
  matches the maps': removing its top k % removes blobs of a feature cell's size, not pixels.
- ``random_voxel``: uniform noise per voxel (white noise over T×H×W). Removing its top k %
  punches isolated voxels out of every frame: a fill then makes a texture no video has, which
  moves the model for reasons no map could explain. It is shown to make that artefact visible,
  not as a fair reference.
- ``centre``: a centred Gaussian, constant in time (sigma = :data:`CENTRE_SIGMA` of each side
  of the window the maps cover). It knows nothing about the clip; actors in action datasets
  are mostly central, so it is the localization baseline a map must beat.
- ``ones``: the all-ones map (the whole clip; Average Drop's perfect score).

All are (T, H, W) in [0, 1]; the random ones are seeded by (seed, clip, map).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: the centre prior's standard deviation, as a share of each side (height, width)
CENTRE_SIGMA = 0.25

REFERENCE_HELP: dict[str, str] = {
    "random": "uniform noise at the explained layer's resolution, upsampled like the maps "
    "(smoothness-matched)",
    "random_voxel": "uniform noise per voxel (white noise: its removal leaves an "
    "out-of-distribution texture)",
    "centre": f"a centred Gaussian (sigma {CENTRE_SIGMA:g} of each side), constant in time: "
    "the centre prior",
    "ones": "the all-ones map (the whole clip)",
}


def _normalise(x: torch.Tensor) -> torch.Tensor:
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp(min=1e-12)


def random_map(
    raw_shape: Sequence[int] | Sequence[Sequence[int]],
    size: Sequence[int],
    gen: torch.Generator,
) -> torch.Tensor:
    """Uniform noise at feature resolution ``raw_shape`` (t, h, w) — or one such shape per
    fused layer — upsampled to ``size`` (T, H, W) trilinearly, min-max normalised (and, for
    several layers, averaged and normalised again)."""
    shapes = [raw_shape] if isinstance(raw_shape[0], int) else list(raw_shape)
    maps = []
    for shape in shapes:
        noise = torch.rand(*shape, generator=gen, device=gen.device)
        up = F.interpolate(
            noise[None, None], size=tuple(size), mode="trilinear", align_corners=False
        )
        maps.append(_normalise(up[0, 0]))
    return maps[0] if len(maps) == 1 else _normalise(torch.stack(maps).mean(0))


def voxel_noise_map(size: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    """Uniform noise per voxel, (T, H, W) in [0, 1)."""
    return torch.rand(*size, generator=gen, device=gen.device)


def centre_prior(
    size: Sequence[int],
    sigma: float = CENTRE_SIGMA,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A centred Gaussian on an (H, W) frame repeated over T: (T, H, W), peak 1 at the centre
    (sigma = ``sigma`` · side along each axis, measured between pixel centres)."""
    t, h, w = (int(v) for v in size)
    ys = (torch.arange(h, dtype=torch.float64, device=device) + 0.5 - h / 2) / (sigma * h)
    xs = (torch.arange(w, dtype=torch.float64, device=device) + 0.5 - w / 2) / (sigma * w)
    g = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    g = (g / g.max()).float()
    return g.expand(t, h, w).contiguous()
