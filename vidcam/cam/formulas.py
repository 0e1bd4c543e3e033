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

The other gradient methods, with g = ∂S/∂A::

    XGrad-CAM (Fu et al., BMVC 2020):  w_k = Σ (g · A_k) / Σ A_k,   map = relu(Σ_k w_k A_k)
    LayerCAM (Jiang et al., TIP 2021): map = relu(Σ_k relu(g) ⊙ A_k)           (elementwise)
    HiResCAM (Draelos & Carin, 2020):  map = relu(Σ_k g ⊙ A_k)                 (elementwise)

Eigen-CAM (Muhammad & Yeasin, IJCNN 2020) needs no gradient: with the activations of a sample
as an (L = t·h·w, C) matrix M = U Σ Vᵀ, the map is relu(M v₁) (v₁ the first right singular
vector, the paper's projection on the first principal component, without centring), the sign
of v₁ chosen so that the projection correlates positively with the mean activation over
channels.
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


def xgradcam_weights(acts: torch.Tensor, grads: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """XGrad-CAM weights Σ(g·A)/ΣA (0 where ΣA = 0). acts (N,C,t,h,w), grads (K,N,C,t,h,w)
    -> (K, N, C, t|1, 1, 1)."""
    dims = pooled_dims(pooling)
    num = (grads * acts).sum(dim=dims, keepdim=True)
    return _safe_div(num, activation_sums(acts, pooling).expand_as(num))


def elementwise_map(acts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """relu(Σ_k w ⊙ A_k) with elementwise weights: acts (N,C,t,h,w), weights (K,N,C,t,h,w)
    -> (N, K, t, h, w). LayerCAM: w = relu(g); HiResCAM: w = g."""
    return (weights * acts).sum(dim=2).transpose(0, 1).clamp_min(0)


def eigencam_weights(acts: torch.Tensor) -> torch.Tensor:
    """First right singular vector v₁ of each sample's (t·h·w, C) activation matrix, its sign
    fixed so that M v₁ correlates positively with the channel mean. acts (N,C,t,h,w) -> (N, C).

    Ties (zero correlation, e.g. zero-mean activations) are broken by making v₁'s entry of
    largest magnitude positive.
    """
    m = acts.flatten(2).transpose(1, 2)  # (N, L, C)
    dtype = m.dtype if m.dtype == torch.float64 else torch.float32
    v = torch.linalg.svd(m.to(dtype), full_matrices=False).Vh[:, 0, :]  # (N, C)
    proj = torch.einsum("nlc,nc->nl", m.to(dtype), v)
    corr = (proj * m.to(dtype).mean(dim=2)).sum(dim=1)  # (N,)
    peak = v.gather(1, v.abs().argmax(dim=1, keepdim=True))[:, 0]
    sign = torch.where(corr != 0, corr.sign(), torch.where(peak < 0, -1.0, 1.0).to(dtype))
    return (v * sign[:, None]).to(acts.dtype)
