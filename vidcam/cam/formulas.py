r"""The CAM formulas on feature volumes. Pure tensor functions; no hooks, no models.

Shapes: activations ``A`` are (N, C, t, h, w); gradients ``G`` carry a leading target axis,
(K, N, C, t, h, w). ``pooling="volume"`` pools weights over the whole t×h×w volume of a channel
(one weight per channel); ``pooling="frame"`` pools over h×w per time slice (one weight per
channel and time step, as MMAction2/SlowFast visualisations do).

Grad-CAM++ (Chattopadhyay et al., WACV 2018), eq. 19, for the exponential score Y = exp(S)::

    alpha = g² / (2 g² + (Σ_{t,i,j} A) g³)          (alpha = 0 where the denominator is 0)
    w_k   = Σ_{t,i,j} alpha · relu(g)
    map   = relu(Σ_k w_k A_k)

The softmax variant (eqs. 21–24) uses Y^c = softmax(S)^c. With G_k = ∂S^k/∂A, p = softmax(S),
Ḡ = Σ_k p_k G_k, D = G_c − Ḡ, V = Σ_k p_k (G_k − Ḡ)², M3 = Σ_k p_k (G_k − Ḡ)³ and S piecewise
linear in A (second derivatives of S vanish)::

    ∂Y/∂A = p_c D,   ∂²Y/∂A² = p_c (D² − V),   ∂³Y/∂A³ = p_c (D³ − 3 D V − M3)
    alpha = (D² − V) / (2 (D² − V) + (Σ A)(D³ − 3 D V − M3)),   w_k = Σ alpha · relu(p_c D)
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["volume", "frame"]


def pooled_dims(pooling: Pooling) -> tuple[int, ...]:
    """Axes of a (..., C, t, h, w) tensor that a weight is pooled over."""
    return (-3, -2, -1) if pooling == "volume" else (-2, -1)


def activation_sums(acts: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Σ A over the pooled axes, kept as broadcastable singleton dims. (N, C, t|1, 1, 1)."""
    return acts.sum(dim=pooled_dims(pooling), keepdim=True)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 0 where den == 0 (the paper's convention alpha = 0 where g = 0)."""
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), 0.0)


def gradcampp_alpha(acts: torch.Tensor, grads: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Eq. 19 alpha for the exponential score. acts (N,C,t,h,w), grads (K,N,C,t,h,w)."""
    g2 = grads * grads
    return _safe_div(g2, 2 * g2 + activation_sums(acts, pooling) * g2 * grads)


def softmax_derivatives(
    grads_c: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    third: torch.Tensor,
    probs_c: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First, second and third derivatives of Y^c = softmax(S)^c w.r.t. A (elementwise).

    grads_c (K,N,C,t,h,w) = ∂S^c/∂A; mean/var/third (N,C,t,h,w) = Ḡ, V, M3 over all classes
    weighted by p; probs_c (K, N) = p_c.
    """
    p = probs_c.reshape(*probs_c.shape, 1, 1, 1, 1)
    d = grads_c - mean
    d1 = p * d
    d2 = p * (d * d - var)
    d3 = p * (d * d * d - 3 * d * var - third)
    return d1, d2, d3


def gradcampp_softmax_alpha(
    acts: torch.Tensor, d2: torch.Tensor, d3: torch.Tensor, pooling: Pooling
) -> torch.Tensor:
    """General eq. 10 alpha from the 2nd/3rd derivatives: d2 / (2 d2 + (Σ A) d3)."""
    return _safe_div(d2, 2 * d2 + activation_sums(acts, pooling) * d3)


def channel_weights(
    alpha: torch.Tensor | None, first: torch.Tensor, *, positive: bool, pooling: Pooling
) -> torch.Tensor:
    """Channel weights: Σ alpha·relu(∂Y/∂A) (Grad-CAM++) or mean(∂Y/∂A) (Grad-CAM, alpha None).

    first (K,N,C,t,h,w); returns (K,N,C,1,1,1) for volume pooling, (K,N,C,t,1,1) per frame.
    """
    g = first.clamp_min(0) if positive else first
    dims = pooled_dims(pooling)
    if alpha is None:
        return g.mean(dim=dims, keepdim=True)
    return (alpha * g).sum(dim=dims, keepdim=True)


def weighted_map(acts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """relu(Σ_k w_k A_k): acts (N,C,t,h,w), weights (K,N,C,t|1,1,1) -> (N,K,t,h,w)."""
    w = weights[..., 0, 0]  # (K, N, C, t|1)
    if w.shape[-1] == 1:
        cam = torch.einsum("knc,ncthw->nkthw", w[..., 0], acts)
    else:
        cam = torch.einsum("knct,ncthw->nkthw", w, acts)
    return cam.clamp_min(0)
