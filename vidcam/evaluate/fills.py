"""Fills: what a *removed* voxel becomes when a map's top voxels are deleted (or all but them).

A fill is prepared once per clip (:func:`make_fill`) and then applied to any number of removal
masks. Two kinds:

- **constant** fills (``black``, ``mean``, ``blur``): one replacement clip, computed once per clip;
  applying a mask is a blend, ``keep·clip + (1 − keep)·replacement``. ``blur`` is a per-frame
  Gaussian blur of the clip (sigma = short side / 16), so a removed region keeps its colours and
  coarse shape but loses its detail — a *natural* fill, unlike black.
- **road**: ROAD's noisy linear imputation (Rong et al., ICML 2022) over T×H×W
  (:func:`vidcam.evaluate.impute.noisy_linear_impute`): every removed voxel becomes the weighted
  mean of its spatio-temporal neighbours, solved as one sparse linear system per mask, plus
  Gaussian noise of std :data:`ROAD_NOISE`. The fill depends on the mask, so it is recomputed per
  mask (one CG solve, the costly part), never per curve step that does not need it.

Black pixels (the paper's ``E = map ⊙ clip``) are out of distribution for a video model: the
model's confidence collapses whichever voxels are blacked out, so black-fill scores mostly
measure *how much* of the clip a map keeps. The natural fills remove information while keeping
the clip's statistics.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import (  # noqa: F401 (re-exported)
    FILL_HELP,
    FILLS,
    NATURAL_FILLS,
    ROAD_NOISE,
)
from vidcam.evaluate.masking import BASELINES, make_baseline

#: relative residual at which ROAD's linear solve stops. Measured with the multigrid-CG solver on
#: 16×112×112 and 64×224×224 clips with ROAD-style top-10/20 % holes and keep-10 % masks: against
#: tol 1e-5 the fill differs by 0.0002–0.0007 on average (max 0.005 and 0.014, i.e. 1–4 8-bit
#: grey levels, on a few voxels), far below the noise ROAD adds (std 0.01), and the solve takes
#: 40–70 % of the time (64×224×224: 3.7–6.9 s instead of 6.7–11.2 s per mask on 2 cores).
ROAD_TOL = 1e-3


def parse_fills(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"blur,road"`` (or a sequence) -> validated, de-duplicated names in the given order;
    ``"none"``: no fill (no keep/remove scores: ``vidcam evaluate`` then measures localization
    and the paper's metrics only)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    if {str(v).strip().lower() for v in items if str(v).strip()} == {"none"}:
        return ()
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in FILLS:
            raise VidcamError(f"fill {name!r} is not one of {', '.join(FILLS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise VidcamError(f"give at least one fill ({', '.join(FILLS)}) or none")
    return tuple(out)


class Fill:
    """A fill prepared for one clip (1, 3, T, H, W) in [0, 1] pixel space."""

    name: str = ""
    #: False when the fill depends on the mask (then a fill costs a solve per mask)
    constant: bool = True

    def __call__(
        self, clip: torch.Tensor, remove: torch.Tensor, keys: Sequence[object] | None = None
    ) -> torch.Tensor:
        """The clip with ``remove`` (B, 1, T, H, W) bool voxels filled -> (B, 3, T, H, W).

        ``keys`` (one per mask) name the masks, for fills that draw noise per mask.
        """
        raise NotImplementedError


class ConstantFill(Fill):
    """Removed voxels take the values of one replacement clip, computed once (see module)."""

    def __init__(self, name: str, replacement: torch.Tensor) -> None:
        self.name = name
        self.replacement = replacement
        self._diff: tuple[torch.Tensor, torch.Tensor] | None = None  # (clip, clip − replacement)

    def __call__(self, clip, remove, keys=None):
        # replacement + keep·(clip − replacement): one fused pass per batch, the difference
        # computed once per clip (the same as blend(clip, replacement, ~remove))
        if self._diff is None or self._diff[0] is not clip:
            self._diff = (clip, clip - self.replacement)
        keep = (~remove).to(clip.dtype)
        return torch.addcmul(self.replacement, keep, self._diff[1])


def stable_seed(*parts: object) -> int:
    """A seed from ``parts`` that is the same in every process (unlike ``hash``)."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


class RoadFill(Fill):
    """ROAD noisy linear imputation per mask (see the module docstring).

    The linear part is solved by :func:`~vidcam.evaluate.impute.noisy_linear_impute` for up to
    :attr:`chunk` masks at once (its memory grows with the masks solved together); the noise is
    drawn per mask from a generator seeded by (``seed``, the mask's key), so a mask's fill does
    not depend on which other masks share its batch.
    """

    constant = False

    def __init__(
        self,
        seed: int = 0,
        noise: float = ROAD_NOISE,
        *,
        tol: float = ROAD_TOL,
        voxels_per_solve: int = 2**25,
    ) -> None:
        self.name = "road"
        self.tol = tol
        self.seed = seed
        self.noise = noise
        self.voxels_per_solve = voxels_per_solve
        self.solves = 0  # masks imputed (for the speed report)

    def __call__(self, clip, remove, keys=None):
        from vidcam.evaluate.impute import noisy_linear_impute

        b = remove.shape[0]
        chunk = max(1, self.voxels_per_solve // clip[0].numel())
        out = []
        for i in range(0, b, chunk):
            r = remove[i : i + chunk]
            x = clip.expand(r.shape[0], -1, -1, -1, -1)
            out.append(noisy_linear_impute(x, r, noise=0.0, tol=self.tol))
        filled = torch.cat(out)
        self.solves += b
        if self.noise > 0:
            for j in range(b):
                key = keys[j] if keys is not None else j
                g = torch.Generator().manual_seed(stable_seed(self.seed, key))
                eps = torch.randn(clip.shape[1:], generator=g).to(clip.device, clip.dtype)
                filled[j].add_(eps.mul_(self.noise).mul_(remove[j]))
        return filled.clamp_(0.0, 1.0)  # pixels stay pixels (noise may cross 0 or 1)


def make_fill(
    name: str,
    clip: torch.Tensor,
    mean: Sequence[float],
    seed: int = 0,
    *,
    baseline: tuple[str, torch.Tensor] | None = None,
) -> Fill:
    """Prepare fill ``name`` for ``clip``; ``baseline`` = (kind, tensor) already computed for this
    clip is reused when ``name`` is the same kind (no second blur)."""
    if name == "road":
        return RoadFill(seed)
    if name in BASELINES:
        if baseline is not None and baseline[0] == name:
            return ConstantFill(name, baseline[1])
        return ConstantFill(name, make_baseline(clip, name, mean))
    raise VidcamError(f"fill {name!r} is not one of {', '.join(FILLS)}")
