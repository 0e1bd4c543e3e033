"""The engine's dispatch: every method's map function, found from its row of the table.

Each engine row of :data:`vidcam.cam.methods.METHODS` names a function of this module
(``Method.function``) with ONE contract: :class:`MapRequest` -> :class:`MethodMap`. The
:class:`~vidcam.cam.explainer.Explainer` captures what the row's ``kind`` asks for (the layer's
activations; for the gradient kind also their gradients, from one backward shared by all
gradient methods; nothing for the input-perturbation kind), calls the function once per
explained layer (once for an input method) and turns the results into an
:class:`~vidcam.cam.explanation.Explanation`. The formulas are in :mod:`vidcam.cam.formulas`;
Score-CAM's masked forwards in :mod:`vidcam.cam.scorecam`; RISE and extremal perturbation in
:mod:`vidcam.cam.rise` and :mod:`vidcam.cam.extremal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from vidcam.cam import formulas
from vidcam.cam.extremal import extremal
from vidcam.cam.methods import METHODS, MethodId
from vidcam.cam.perturbation import Perturbation, PerturbationResult
from vidcam.cam.rise import rise
from vidcam.cam.scorecam import default_batch, score_weights
from vidcam.errors import VidcamError


@dataclass(frozen=True)
class MapRequest:
    """What a map function may read.

    Attributes:
        model: the explained model (eval mode); clip: its input (N, C, T, H, W) or (N, C, H, W).
        indices: (N, K) class indices explained, or None for a callable target.
        k: K, the targets per sample.
        acts: (N, C, t, h, w) the layer's activations (None for an input-perturbation row).
        grads: (K, N, C, t, h, w) ∂score_k/∂acts (gradient rows only).
        moments: (Ḡ, V, M3) shaped like ``acts`` and probs_c (K, N): the Grad-CAM++ softmax
            variant (only for a row with ``softmax`` when ``softmax=True``).
        positive: weight with relu(g) ("positive" gradients) instead of g.
        pooling: "volume" or "frame" ("volume" for rows that are not ``pooled``).
        batch_size, scorecam_baseline, perturbation: the Explainer's options of the masked
            methods.
    """

    model: nn.Module
    clip: torch.Tensor
    indices: torch.Tensor | None
    k: int
    acts: torch.Tensor | None = None
    grads: torch.Tensor | None = None
    moments: tuple[torch.Tensor, ...] | None = None
    probs_c: torch.Tensor | None = None
    positive: bool = False
    pooling: formulas.Pooling = "volume"
    batch_size: int | None = None
    scorecam_baseline: bool = False
    perturbation: Perturbation = field(default_factory=Perturbation)


@dataclass(frozen=True)
class MethodMap:
    """A map function's result for one layer (or the input).

    Attributes:
        raw: (N, K, t, h, w) feature-level map (the engine upsamples it to the clip).
        weights: its weights, e.g. (N, K, C, t|1) channel weights (see ``Explanation``).
        full: (N, K, T, H, W) a clip-sized map when the method makes one itself (input
            perturbation); None: the engine upsamples ``raw``.
        forwards, masked_clips, backwards: model forwards, masked clips scored and backward
            passes to the input it ran beyond the engine's one forward.
    """

    raw: torch.Tensor
    weights: torch.Tensor
    full: torch.Tensor | None = None
    forwards: int = 0
    masked_clips: int = 0
    backwards: int = 0


MapFunction = Callable[[MapRequest], MethodMap]


def map_function(method: MethodId) -> MapFunction:
    """The function the table's row ``method`` names (``Method.function``) in this module."""
    row = METHODS[method]
    fn = globals().get(row.function) if row.function else None
    if not callable(fn):
        raise VidcamError(
            f"method {method!r}: its row names map function {row.function!r}, which "
            f"{__name__} does not define; add `def {row.function or 'name'}(req: MapRequest) "
            "-> MethodMap` there"
        )
    return fn


def _channel_map(acts: torch.Tensor, w: torch.Tensor) -> MethodMap:
    """relu(Σ_k w_k A_k) from weights (K, N, C, t|1, 1, 1); weights kept as (N, K, C, t|1)."""
    return MethodMap(formulas.weighted_map(acts, w), w[..., 0, 0].transpose(0, 1))


def gradcam_map(req: MapRequest) -> MethodMap:
    """Grad-CAM: w = mean of g (or relu(g)) over the pooled axes."""
    w = formulas.channel_weights(None, req.grads, positive=req.positive, pooling=req.pooling)
    return _channel_map(req.acts, w)


def gradcampp_map(req: MapRequest) -> MethodMap:
    """Grad-CAM++: w = Σ alpha·relu(g) (eq. 19), or its softmax variant (eqs. 21–24)."""
    acts, grads = req.acts, req.grads
    if req.moments is not None and req.probs_c is not None:
        first, d2, d3 = formulas.softmax_derivatives(grads, *req.moments, req.probs_c)
        alpha = formulas.gradcampp_softmax_alpha(acts, d2, d3, req.pooling)
    else:
        first, alpha = grads, formulas.gradcampp_alpha(acts, grads, req.pooling)
    w = formulas.channel_weights(alpha, first, positive=req.positive, pooling=req.pooling)
    return _channel_map(acts, w)


def xgradcam_map(req: MapRequest) -> MethodMap:
    """XGrad-CAM: w = Σ (A / Σ A) g over the pooled axes."""
    g = req.grads.clamp_min(0) if req.positive else req.grads
    return _channel_map(req.acts, formulas.xgradcam_weights(req.acts, g, req.pooling))


def elementwise_cam(req: MapRequest) -> MethodMap:
    """LayerCAM (relu(g) ⊙ A, ``positive``) and HiResCAM (g ⊙ A): elementwise weights
    (N, K, C, t, h, w)."""
    w = req.grads.clamp_min(0) if req.positive else req.grads
    return MethodMap(formulas.elementwise_map(req.acts, w), w.transpose(0, 1))


def eigencam_map(req: MapRequest) -> MethodMap:
    """Eigen-CAM (class-agnostic): the first principal direction, the same for all K targets."""
    v = formulas.eigencam_weights(req.acts)  # (N, C)
    w = v[None, :, :, None, None, None].expand(req.k, *v.shape, 1, 1, 1)  # (K, N, C, 1, 1, 1)
    return _channel_map(req.acts, w)


def scorecam_map(req: MapRequest) -> MethodMap:
    """Score-CAM: each channel's weight is the target's score on the clip masked by it."""
    sw = score_weights(
        req.model,
        req.clip,
        req.acts,
        req.indices,
        batch_size=req.batch_size,
        baseline=req.scorecam_baseline,
    )
    raw = formulas.weighted_map(req.acts, sw.weights)
    w = sw.weights[..., 0, 0].transpose(0, 1)
    return MethodMap(raw, w, forwards=sw.forwards, masked_clips=sw.clips)


def _from_perturbation(res: PerturbationResult) -> MethodMap:
    return MethodMap(res.raw, res.weights, res.full, res.forwards, res.clips, res.backwards)


def rise_map(req: MapRequest) -> MethodMap:
    """Video RISE in batches of ``batch_size`` masked clips (default: the input budget)."""
    image = req.clip.dim() == 4
    x5 = req.clip.unsqueeze(2) if image else req.clip
    batch = req.batch_size or default_batch(req.clip)
    return _from_perturbation(rise(req.model, x5, image, req.indices, req.perturbation, batch))


def extremal_map(req: MapRequest) -> MethodMap:
    """Extremal perturbation in batches of ``batch_size`` (default: the budget, at most 8:
    each batch keeps its graph for a backward)."""
    image = req.clip.dim() == 4
    x5 = req.clip.unsqueeze(2) if image else req.clip
    batch = req.batch_size or min(8, default_batch(req.clip))
    res = extremal(req.model, x5, image, req.indices, req.perturbation, batch)
    return _from_perturbation(res)
