"""Input-space perturbation methods: what they share (options, the fill, the score, batching).

Two methods explain a clip by masking the INPUT and scoring the masked clips, with no layer:

- ``rise``: Video RISE (:mod:`vidcam.cam.rise`) — random low-resolution T×H×W masks, each
  weighted by the class score of the clip it preserves;
- ``extremal``: spatiotemporal extremal perturbation (:mod:`vidcam.cam.extremal`) — one smooth
  T×H×W mask per target optimised for the class score at a fixed area.

A mask M ∈ [0, 1] preserves ``M·x + (1 − M)·fill``: the fill is a *natural* one by default,
a per-frame Gaussian blur of the clip (sigma = short side / 16 px), so a removed region keeps
its colours and coarse shape, not a black hole (black clips are out of distribution for video
models). The blur is linear and sums to 1, so blurring the model's normalised input is the same
as normalising the blurred pixels. Each method returns its map at its own grid (t, h, w) as
``raw`` and at the clip's size as ``maps``, and what it cost in forwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidcam.errors import VidcamError

Fill = Literal["blur", "zero"]
Score = Literal["prob", "logit"]

#: fills of the perturbation methods: a blurred copy of the clip, or the input's zeros (the
#: model's normalisation mean, for a normalised input)
FILLS: tuple[str, ...] = ("blur", "zero")
SCORES: tuple[str, ...] = ("prob", "logit")


@dataclass(frozen=True)
class Perturbation:
    """Options of the perturbation methods (``Explainer(..., perturbation=Perturbation(...))``).

    Attributes:
        masks: RISE's number of random masks per clip.
        p: RISE's probability that a grid cell is kept.
        grid: the masks' low resolution (t, h, w); None: (T/4, H/16, W/16) for RISE and
            (T/2, H/8, W/8) for extremal perturbation, rounded up, at least 1, at most the clip.
        fill: "blur" (a per-frame Gaussian blur of the clip, sigma = short side / 16) or
            "zero" (the input's zeros).
        score: "prob" (softmax probability) or "logit" of the class; None: RISE "prob" (as
            in Petsiuk et al.), extremal "logit" (as in Fong et al.: no saturation).
        centred: RISE with a control variate (the default): Σ_i (S_i − S̄)·M_i / (N·p) + S̄
            with S̄ the mean score; False: the paper's Σ_i S_i·M_i / (N·p). The same
            expectation (E[M] = p), without the noise S̄·Σ_i M_i / (N·p) that swamps the
            signal with a few hundred masks (on the sample benchmark, remove 20 % under ROAD:
            0.24 centred, 0.80 uncentred, 0.38 Grad-CAM; docs/perturbation.md).
        seed: seed of RISE's masks (a ``torch.Generator`` on the CPU: the same masks on every
            device). Extremal perturbation draws nothing at random.
        area: extremal perturbation's preserved fraction a of the clip's T·H·W voxels.
        steps: extremal perturbation's Adam steps (each one forward + one backward).
        lr: extremal perturbation's Adam learning rate on the mask parameters in [0, 1].
        smooth: extremal perturbation's Gaussian smoothing of the parameters, in grid cells.
        area_weight: weight λ of the area loss against the score (relative to the clip's and
            the fill's); it grows geometrically to 10·λ over the steps.
    """

    masks: int = 500
    p: float = 0.5
    grid: tuple[int, int, int] | None = None
    fill: Fill = "blur"
    score: Score | None = None
    centred: bool = True
    seed: int = 0
    area: float = 0.1
    steps: int = 60
    lr: float = 0.1
    smooth: float = 1.0
    area_weight: float = 10.0

    def __post_init__(self) -> None:
        _int("masks", self.masks, 1)
        _int("steps", self.steps, 1)
        _int("seed", self.seed, 0)
        _unit("p", self.p)
        _unit("area", self.area)
        for name in ("lr", "area_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise VidcamError(f"perturbation {name}={v!r}: give a number > 0")
        if isinstance(self.smooth, bool) or not isinstance(self.smooth, int | float):
            raise VidcamError(f"perturbation smooth={self.smooth!r}: give a number >= 0")
        if not self.smooth >= 0:
            raise VidcamError(f"perturbation smooth={self.smooth!r}: give a number >= 0")
        if not isinstance(self.centred, bool):
            raise VidcamError(f"perturbation centred={self.centred!r}: give True or False")
        if self.fill not in FILLS:
            raise VidcamError(f"perturbation fill={self.fill!r}: use one of {', '.join(FILLS)}")
        if self.score is not None and self.score not in SCORES:
            raise VidcamError(
                f"perturbation score={self.score!r}: use one of {', '.join(SCORES)} or None"
            )
        if self.grid is not None:
            g = tuple(self.grid) if isinstance(self.grid, tuple | list) else ()
            if len(g) != 3 or any(isinstance(v, bool) or not isinstance(v, int) for v in g):
                raise VidcamError(f"perturbation grid={self.grid!r}: give three ints (t, h, w)")
            if min(g) < 1:
                raise VidcamError(f"perturbation grid={self.grid!r}: every size must be >= 1")


def _int(name: str, v: object, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise VidcamError(f"perturbation {name}={v!r}: give an int >= {lo}")


def _unit(name: str, v: object) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
        raise VidcamError(f"perturbation {name}={v!r}: give a number strictly between 0 and 1")


@dataclass(frozen=True)
class PerturbationResult:
    """One perturbation method's output for a batch: ``raw`` (N, K, t, h, w) at its grid,
    ``full`` (N, K, T, H, W) at the clip's size (not normalised), ``weights`` (see
    :class:`~vidcam.cam.explainer.Explanation`), ``forwards`` model calls over ``clips``
    masked clips, ``backwards`` backward passes to the input."""

    raw: torch.Tensor
    full: torch.Tensor
    weights: torch.Tensor
    forwards: int
    clips: int
    backwards: int = 0


def grid_for(
    size: tuple[int, int, int], grid: tuple[int, int, int] | None, divisors: tuple[int, ...]
) -> tuple[int, int, int]:
    """The mask grid (t, h, w) for a clip of ``size`` (T, H, W): ``grid`` clipped to the
    clip, or ceil(size / divisors)."""
    if grid is None:
        grid = tuple(max(1, math.ceil(s / d)) for s, d in zip(size, divisors, strict=True))
    return tuple(min(int(g), s) for g, s in zip(grid, size, strict=True))  # type: ignore[return-value]


def _gauss_1d(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian smoothing of ``x`` along ``dim`` (edges reflected, or repeated if too short)."""
    n = x.shape[dim]
    radius = min(int(math.ceil(3 * sigma)), 4 * n)
    if sigma <= 0 or radius < 1 or n < 2:
        return x
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, 1, n)
    mode = "reflect" if radius < n else "replicate"
    padded = F.pad(flat, (radius, radius), mode=mode)
    out = F.conv1d(padded, kernel.view(1, 1, -1)).reshape(moved.shape)
    return out.movedim(-1, dim)


def smooth(x: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Separable Gaussian smoothing of the last ``len(sigmas)`` axes of ``x`` (sigma per axis,
    in samples; 0 leaves an axis as it is)."""
    for i, sigma in enumerate(sigmas):
        x = _gauss_1d(x, float(sigma), x.dim() - len(sigmas) + i)
    return x


def make_fill(x5: torch.Tensor, fill: str) -> torch.Tensor:
    """The fill of ``x5`` (N, C, T, H, W): a per-frame Gaussian blur (sigma = short side / 16
    px) or zeros."""
    if fill == "zero":
        return torch.zeros_like(x5)
    sigma = min(x5.shape[-2:]) / 16.0
    return smooth(x5.float(), (sigma, sigma)).to(x5.dtype)


def class_scores(model: nn.Module, x5: torch.Tensor, image: bool, score: str) -> torch.Tensor:
    """Every class's score of the masked clips ``x5`` (B, C, T, H, W) -> (B, classes) float32
    probabilities or logits."""
    out = model(x5[:, :, 0] if image else x5)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x5.shape[0]:
        raise VidcamError("rise and extremal need a model whose output is (N, classes) scores")
    out = out.float()
    return out.softmax(dim=1) if score == "prob" else out
