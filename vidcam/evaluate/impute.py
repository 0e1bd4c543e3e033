"""ROAD noisy linear imputation (Rong et al., ICML 2022) for video volumes T×H×W, in pure torch.

Every removed voxel is made the weighted mean of its in-volume neighbours (known neighbours go to
the right-hand side); then Gaussian noise of std ``noise`` is added to the removed voxels only.

Weights. ``neighbours=26`` uses the binomial kernel [1,2,1]⊗[1,2,1]⊗[1,2,1] without its centre:
face 4, edge 2, corner 1 (normalised 1/14, 1/28, 1/56). Inside one frame this is ROAD's 2D stencil
exactly (direct 1/6, diagonal 1/12), and it is separable, so the fixed 3×3×3 convolution runs as
three 1D [1,2,1] passes (shift-adds: no im2col, same result as ``conv3d``). ``neighbours=6`` uses
the 6 face neighbours, weight 1 each. Neighbours outside the volume are dropped: the normaliser
D_i is the sum of in-volume weights of voxel i.

System. Multiplying the row of voxel i by D_i turns x_i = Σ_j K_ij u_j / D_i into
(D − K) x = K v on the removed voxels (v: known values), a Dirichlet weighted graph Laplacian,
the same form as ROAD's sparse system: symmetric (K is), and positive-definite when every removed
component touches a known voxel (irreducible diagonal dominance). The 6- and 26-grids are
connected, so the only component without a known voxel is a clip with *everything* removed; such
a clip is filled with :data:`EMPTY_FILL` (0.5, mid-grey: there is no known mean) and skipped.

Solver. All N×C systems at once, matrix-free, by preconditioned conjugate gradients, warm-started
from a push-pull fill (pyramid of normalised 2×2×2 sums, trilinearly pulled back). Plain
Jacobi needs ~hole-diameter iterations (95 at 16×112×112 with a 90 % blob), so the preconditioner
is one symmetric multigrid V(1,1)-cycle (hence SPD, as CG needs): damped Jacobi (ω = 0.8)
smoothing, 2×2×2 sum restriction and its transpose (piecewise-constant prolongation, scaled by
1.5/2^(k−1), k = halved axes), the same stencil re-discretised on coarse grids whose owned voxels
are the blocks removed *entirely* (so scattered holes stay with Jacobi), Jacobi sweeps on the
coarsest (≤ 4 per side) grid. Each system stops at ‖r‖₂ ≤ tol·‖b‖₂ (tol 1e-5 gives ~1e-4 max
error in [0, 1] pixels), all stop after ``max_iter`` iterations.

A function linear in (t, h, w) is reproduced exactly at removed voxels off the volume border (the
stencil is symmetric); at the border the dropped neighbours bias it.

Timings (2 CPU cores, float32, noise 0, tol 1e-5; "iid" = random voxels, "blob" = ROAD-style top-k
of a smooth saliency map, i.e. large connected holes), seconds (CG iterations):

============================  =========  =========  =========
clip, mask                    10 %       50 %       90 %
============================  =========  =========  =========
1×3×16×112×112, iid           TODO
1×3×16×112×112, blob
1×3×64×224×224, iid
1×3×64×224×224, blob
============================  =========  =========  =========
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError

#: Value of every voxel of a clip whose voxels are all removed (nothing known to interpolate).
EMPTY_FILL = 0.5

_SPACE = (-3, -2, -1)
_CENTRE = {26: 8, 6: 6}  # centre weight of _stencil: 2·2·2 (three tents) or 2+2+2 (sum of tents)
_COARSEST = 4  # multigrid levels halve the grid until every side is <= this
_OMEGA = 0.8  # Jacobi damping; D⁻¹(D − K) has spectrum in (0, 8/7] (26) or (0, 2) (6)


def _tent(u: torch.Tensor, dim: int, out: torch.Tensor) -> torch.Tensor:
    """``out`` = [1, 2, 1] along ``dim`` of ``u`` with zero padding (``out`` must not be ``u``)."""
    torch.mul(u, 2, out=out)
    n = u.shape[dim]
    if n > 1:
        out.narrow(dim, 1, n - 1).add_(u.narrow(dim, 0, n - 1))
        out.narrow(dim, 0, n - 1).add_(u.narrow(dim, 1, n - 1))
    return out


def _stencil(
    u: torch.Tensor, neighbours: int, out: torch.Tensor, tmp: torch.Tensor
) -> torch.Tensor:
    """``out`` = Σ_j K_ij u_j + _CENTRE·u_i, in place, with ``tmp`` as scratch; all same shape."""
    if neighbours == 26:
        return _tent(_tent(_tent(u, -3, out), -2, tmp), -1, out)
    _tent(u, -3, out)
    return out.add_(_tent(u, -2, tmp)).add_(_tent(u, -1, tmp))


def neighbour_sum(u: torch.Tensor, neighbours: int = 26) -> torch.Tensor:
    """Σ_j K_ij u_j over the in-volume neighbours j of every voxel i; (..., T, H, W) -> same.

    Equals ``conv3d`` with zero padding and the 3×3×3 kernel (centre 0; 26: face 4, edge 2,
    corner 1; 6: face 1, others 0).
    """
    out = _stencil(u, neighbours, torch.empty_like(u), torch.empty_like(u))
    return out.sub_(u, alpha=_CENTRE[neighbours])


def _halve(u: torch.Tensor, k: list[int], pair=torch.add) -> torch.Tensor:
    """Combine 2-blocks with ``pair`` along the axes of (N, C, T, H, W) ``u`` where ``k`` is 2
    (an odd last voxel stays alone): a 2×2×2 sum (or min) pooling, faster than ``avg_pool3d``."""
    for dim, kk in zip((2, 3, 4), k, strict=True):
        n = u.shape[dim]
        if kk == 2:
            two = u.narrow(dim, 0, n - n % 2).unflatten(dim, (n // 2, 2))
            out = pair(two.select(dim + 1, 0), two.select(dim + 1, 1))
            u = torch.cat([out, u.narrow(dim, n - 1, 1)], dim) if n % 2 else out
    return u


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-system inner product of (N, C, T, H, W) tensors -> (N, C, 1, 1, 1)."""
    return torch.einsum("ncl,ncl->nc", a.flatten(2), b.flatten(2))[..., None, None, None]


@dataclass
class _Level:
    """One multigrid grid: owned voxels ``m`` (N, 1, T, H, W) 0/1 and (D − K) restricted to them."""

    m: torch.Tensor
    neighbours: int
    channels: int

    def __post_init__(self) -> None:
        d = neighbour_sum(torch.ones_like(self.m[:1]), self.neighbours)  # (1, 1, T, H, W): D
        self.w_inv_d = self.m * torch.where(d > 0, _OMEGA / d, 0.0)
        self.mdc, self.neg_m = self.m * (d + _CENTRE[self.neighbours]), -self.m
        shape = (self.m.shape[0], self.channels, *self.m.shape[2:])
        self.out, self.tmp = self.m.new_empty(shape), self.m.new_empty(shape)

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """(D − K) u on the owned voxels (``u`` is 0 off them), in the scratch buffer ``out``."""
        return (
            _stencil(u, self.neighbours, self.out, self.tmp).mul_(self.neg_m).addcmul_(self.mdc, u)
        )

    def residual(self, r: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """r − (D − K) u, in ``out``."""
        return torch.sub(r, self.apply(u), out=self.out)


def _vcycle(levels: list[_Level], r: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric V(1,1)-cycle: approximate (D − K)⁻¹ r for ``levels[0]``, into ``e`` if given."""
    lv = levels[0]
    e = torch.mul(r, lv.w_inv_d, out=e)
    if len(levels) == 1:
        for _ in range(8):
            e.addcmul_(lv.w_inv_d, lv.residual(r, e))
        return e
    size, coarse = r.shape[2:], levels[1].m.shape[2:]
    k = [2 if c < s else 1 for s, c in zip(size, coarse, strict=True)]
    halved = sum(kk == 2 for kk in k)
    rc = _halve(lv.residual(r, e), k)
    ec = F.interpolate(_vcycle(levels[1:], rc), size=size, mode="nearest")
    e.addcmul_(lv.m, ec, value=1.5 / 2 ** (halved - 1))
    return e.addcmul_(lv.w_inv_d, lv.residual(r, e))


def _push_pull(v: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Warm start: a pyramid average of the known voxels of ``v`` (N, C, T, H, W) at removed ones
    (``known`` (N, 1, T, H, W) 0/1), 0 at known ones; :data:`EMPTY_FILL` if nothing is known."""
    nums, dens = [v * known], [known]
    while max(dens[-1].shape[2:]) > 1:
        k = [2 if s > 1 else 1 for s in dens[-1].shape[2:]]
        nums.append(_halve(nums[-1], k))
        dens.append(_halve(dens[-1], k))
    fill = torch.full_like(nums[-1], EMPTY_FILL)
    for num, den in zip(reversed(nums), reversed(dens), strict=True):
        up = F.interpolate(fill, size=num.shape[2:], mode="trilinear", align_corners=False)
        fill = torch.where(den > 0, num / den.clamp_min(1e-30), up)
    return fill * (1 - known)


def _solve(
    v: torch.Tensor, known: torch.Tensor, neighbours: int, tol: float, its: int
) -> torch.Tensor:
    """Multigrid-PCG solution at removed voxels (0 at known) of (D − K) x = K v; ``v`` (N, C, T,
    H, W) is 0 at removed voxels, ``known`` (N, 1, T, H, W) is 0/1."""
    m = (1 - known) * known.flatten(1).amax(1).view(-1, 1, 1, 1, 1)  # clips with a known voxel
    levels = [_Level(m, neighbours, v.shape[1])]
    while max(m.shape[2:]) > _COARSEST:
        k = [2 if s > 1 else 1 for s in m.shape[2:]]
        m = _halve(m, k, torch.minimum)  # a coarse voxel is owned if its whole block is
        levels.append(_Level(m, neighbours, v.shape[1]))
    fine, x = levels[0], _push_pull(v, known)
    r = _stencil(v, neighbours, torch.empty_like(v), fine.tmp).mul_(fine.m)  # b = K v
    limit = tol**2 * _dot(r, r)
    r.sub_(fine.apply(x))
    z = _vcycle(levels, r)
    p, rz = z.clone(), _dot(r, z)
    for _ in range(its):
        active = _dot(r, r) > limit
        if not bool(active.any()):
            break
        ap = fine.apply(p)
        pap = _dot(p, ap)
        alpha = torch.where(active & (pap > 0), rz / pap, 0.0)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        rz_new = _dot(r, _vcycle(levels, r, z))
        p.mul_(torch.where(active, rz_new / rz, 0.0)).add_(z)
        rz = rz_new
    return x


def _check(clip: torch.Tensor, remove: torch.Tensor, neighbours: int, noise: float) -> torch.Tensor:
    """Validated ``remove`` as (N, 1, T, H, W) bool."""
    if not isinstance(clip, torch.Tensor) or clip.ndim != 5 or not clip.is_floating_point():
        got = f"{tuple(clip.shape)} {clip.dtype}" if isinstance(clip, torch.Tensor) else type(clip)
        raise VidcamError(f"clip must be a floating (N, C, T, H, W) tensor, got {got}")
    if not isinstance(remove, torch.Tensor) or remove.dtype != torch.bool:
        got = remove.dtype if isinstance(remove, torch.Tensor) else type(remove)
        raise VidcamError(f"remove must be a bool tensor (True = removed voxel), got {got}")
    n, _, t, h, w = clip.shape
    mask = remove.unsqueeze(1) if remove.ndim == 4 else remove
    if mask.shape != (n, 1, t, h, w):
        raise VidcamError(
            f"remove must be (N, 1, T, H, W) or (N, T, H, W) = {(n, 1, t, h, w)} or "
            f"{(n, t, h, w)} for clip {tuple(clip.shape)}, got {tuple(remove.shape)}"
        )
    if mask.device != clip.device:
        raise VidcamError(f"remove is on {mask.device} but clip is on {clip.device}")
    if neighbours not in (6, 26):
        raise VidcamError(f"neighbours must be 6 or 26, got {neighbours!r}")
    if not noise >= 0:
        raise VidcamError(f"noise must be a standard deviation >= 0, got {noise!r}")
    return mask


def noisy_linear_impute(
    clip: torch.Tensor,
    remove: torch.Tensor,
    *,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    tol: float = 1e-5,
    max_iter: int = 500,
    neighbours: int = 26,
) -> torch.Tensor:
    """ROAD noisy linear imputation of ``clip`` (N, C, T, H, W) at ``remove`` (N, [1,] T, H, W).

    Returns a new tensor of ``clip``'s shape and dtype: known voxels bitwise equal to ``clip``
    (whose removed voxels are ignored, NaN allowed), removed ones imputed plus N(0, noise²) noise
    drawn with ``generator``. Computes in float64 for float64 input, else float32, on clip's device.
    """
    mask = _check(clip, remove, neighbours, noise)
    if not tol > 0 or int(max_iter) != max_iter or max_iter < 0:
        raise VidcamError(f"tol must be > 0 and max_iter an int >= 0, got {tol!r}, {max_iter!r}")
    work = torch.float64 if clip.dtype == torch.float64 else torch.float32
    known = (~mask).to(work)
    x = _solve(torch.where(mask, 0.0, clip.to(work)), known, neighbours, tol, int(max_iter))
    x = torch.where(known.flatten(1).amax(1).view(-1, 1, 1, 1, 1) > 0, x, EMPTY_FILL)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=work)
    return torch.where(mask, x.to(clip.dtype), clip)
