r"""Distillation losses: the explanation loss (maps) and Hinton's KD loss (logits).

Explanation loss (Grad-CAM++ paper §5), per layer pair and sample::

    L_exp = ‖ n(M_s) − n(M_t) ‖²  summed over the common t×h×w grid, averaged over N and K

with ``M`` a (N, K, t, h, w) feature-level map resampled trilinearly to the grid, and
``n(M) = M / sqrt(Σ M² + eps)`` (L2 over t×h×w). The epsilon keeps n smooth at an all-zero map
(whose normalised map is then 0, its gradient bounded by 1/sqrt(eps)); for non-negative maps
L_exp lies in [0, 2] and is 2 − 2·cos(M_s, M_t) when eps is negligible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vidcam.cam.maps import upsample
from vidcam.errors import VidcamError

#: default epsilon of :func:`normalize_map` (in units of the map's squared L2 norm)
EPS = 1e-12


def normalize_map(maps: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """(N, K, t, h, w) -> the same, each (n, k) map divided by sqrt(Σ_{t,h,w} M² + eps)."""
    if maps.dim() != 5:
        raise VidcamError(f"maps: expected (N, K, t, h, w), got shape {tuple(maps.shape)}")
    sq = (maps * maps).sum(dim=(2, 3, 4), keepdim=True)
    return maps / torch.sqrt(sq + eps)


def common_grid(shapes: Sequence[Sequence[int]]) -> tuple[int, int, int]:
    """The finest grid of several (t, h, w) shapes: the per-axis maximum."""
    return tuple(max(int(s[i]) for s in shapes) for i in range(3))  # type: ignore[return-value]


def explanation_loss(
    student: torch.Tensor | Sequence[torch.Tensor],
    teacher: torch.Tensor | Sequence[torch.Tensor],
    *,
    grid: tuple[int, int, int] | None = None,
    eps: float = EPS,
) -> torch.Tensor:
    """Mean over layer pairs of ‖n(M_s) − n(M_t)‖² (see the module docstring). Scalar.

    ``student`` / ``teacher``: one (N, K, t, h, w) map or a sequence of them (one per layer
    pair, same N and K); each pair is resampled to ``grid`` (None: the finer of the two, per
    axis) by trilinear interpolation. The teacher maps are detached.
    """
    s_list = [student] if isinstance(student, torch.Tensor) else list(student)
    t_list = [teacher] if isinstance(teacher, torch.Tensor) else list(teacher)
    if not s_list or len(s_list) != len(t_list):
        raise VidcamError(
            f"explanation_loss: got {len(s_list)} student and {len(t_list)} teacher maps; "
            "give one teacher map per student map (layer pairs)"
        )
    losses = []
    for s, t in zip(s_list, t_list, strict=True):
        if s.dim() != 5 or t.dim() != 5 or s.shape[:2] != t.shape[:2]:
            raise VidcamError(
                f"explanation_loss: maps must be (N, K, t, h, w) with equal N, K; got student "
                f"{tuple(s.shape)} and teacher {tuple(t.shape)}"
            )
        size = tuple(grid) if grid is not None else common_grid([s.shape[2:], t.shape[2:]])
        t = t.detach().to(s.dtype)
        diff = normalize_map(upsample(s, size), eps) - normalize_map(upsample(t, size), eps)
        losses.append((diff * diff).sum(dim=(2, 3, 4)).mean())
    return torch.stack(losses).mean()


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0
) -> torch.Tensor:
    """Hinton et al. (2015): T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)), mean over N. Scalar."""
    if temperature <= 0:
        raise VidcamError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise VidcamError(
            f"kd_loss: logits must both be (N, classes); got {tuple(student_logits.shape)} and "
            f"{tuple(teacher_logits.shape)}"
        )
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / temperature, dim=1)
    kl = F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
    return kl * temperature**2
