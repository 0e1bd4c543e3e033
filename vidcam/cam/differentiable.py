r"""Differentiable Grad-CAM / Grad-CAM++: maps that stay in the autograd graph, so a loss on the
map trains the model (explanation distillation, :mod:`vidcam.distill`).

The gradients ∂S/∂A are taken with ``create_graph=True``; the weights and the map are then
ordinary differentiable tensor functions of A and of those gradients, hence of every parameter.

Grad-CAM++ uses the closed form of eq. 19 (exponential score) with g² cancelled::

    alpha · g = g² / (2 g² + (Σ A) g³) · g = g / (2 + (Σ A) g)      (g != 0)

It is the same value as :func:`vidcam.cam.formulas.gradcampp_alpha` times g wherever g != 0, but
its derivative stays finite as g -> 0 (the uncancelled quotient has g⁴ in the denominator of its
derivative, which underflows in float32 for |g| < 1e-10). Where g == 0 or 2 + (Σ A) g == 0 the
weight term is 0, like the engine's ``_safe_div`` convention. For post-ReLU activations
(Σ A >= 0) and positive gradients the denominator is >= 2, so the weights are smooth there.

The map is relu(Σ_k w_k A_k) (:func:`vidcam.cam.formulas.weighted_map`): differentiable except on
the measure-zero set where a voxel is exactly 0; autograd then uses relu'(0) = 1 (``clamp_min``'s
rule). Normalisation for a loss is left to the caller (see :func:`vidcam.distill.normalize_map`,
epsilon-guarded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vidcam.cam import formulas
from vidcam.cam.checks import check_clip, check_methods, check_model, check_options
from vidcam.cam.hooks import capture_layers
from vidcam.cam.layers import LayerArg, resolve_layers
from vidcam.cam.methods import DEFAULT_METHOD, METHODS, MethodId
from vidcam.cam.prefix import autograd_errors, check_autograd_available
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError

#: a method id with a ``differentiable`` weights function in the table
#: (:data:`vidcam.cam.methods.DIFFERENTIABLE_METHODS`)
DiffMethod = MethodId


@dataclass(frozen=True)
class DifferentiableCam:
    """Result of :func:`differentiable_cam`; every tensor is attached to the graph.

    Attributes:
        maps: per layer, (N, K, t, h, w) feature-level maps relu(Σ_k w_k A_k).
        weights: per layer, (N, K, C, t|1) channel weights.
        logits: the model output (N, num_classes) of the same forward (use it for CE/KD).
        scores: (N, K) the explained scores.
        layers: names of the explained layers.
    """

    maps: tuple[torch.Tensor, ...]
    weights: tuple[torch.Tensor, ...]
    logits: torch.Tensor
    scores: torch.Tensor
    layers: tuple[str, ...]


def gradcam_weights(
    acts: torch.Tensor, grads: torch.Tensor, *, positive: bool, pooling: formulas.Pooling
) -> torch.Tensor:
    """Grad-CAM weights, the mean of g (or relu(g)): grads (K, N, C, t, h, w) ->
    (K, N, C, t|1, 1, 1); ``acts`` unused (the same signature as the other weights)."""
    return formulas.channel_weights(None, grads, positive=positive, pooling=pooling)


def gradcampp_weights_smooth(
    acts: torch.Tensor, grads: torch.Tensor, *, positive: bool, pooling: formulas.Pooling
) -> torch.Tensor:
    """Eq. 19 weights Σ alpha·relu(g) in the cancelled form (see the module docstring).

    acts (N, C, t, h, w), grads (K, N, C, t, h, w) -> (K, N, C, t|1, 1, 1).
    """
    den = 2 + formulas.activation_sums(acts, pooling) * grads
    ok = (grads != 0) & (den != 0)
    alpha = torch.where(ok, 1 / torch.where(ok, den, torch.ones_like(den)), 0.0)
    return formulas.channel_weights(alpha, grads, positive=positive, pooling=pooling)


def _as_volume(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() == 4:
        t = t.unsqueeze(2)
    if t.dim() != 5:
        raise VidcamError(
            f"layer {name!r} outputs shape {tuple(t.shape)}, not (N, C, T, H, W) or (N, C, H, W); "
            "pick a convolutional layer (token layers are not supported here)"
        )
    return t


def differentiable_cam(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | list[LayerArg],
    method: DiffMethod = DEFAULT_METHOD,
    gradients: Literal["positive", "all"] | None = None,
    pooling: formulas.Pooling = "volume",
    create_graph: bool = True,
) -> DifferentiableCam:
    """One forward of ``model`` on ``clip`` (N, C, T, H, W) with hooks on ``layer``; maps in-graph.

    ``target`` as in :class:`vidcam.cam.explainer.Explainer` (e.g. an (N, K) LongTensor of
    labels). ``method``: a row of the method table with a ``differentiable`` weights function
    (Grad-CAM, Grad-CAM++). Unlike the Explainer, the model runs in its *current* train/eval
    mode (training loops call this in train mode; with BatchNorm in train mode the samples of a
    batch are coupled, and the gradient used is ∂(Σ_n S_n)/∂A, as in every batched CAM). Hooks
    are removed in ``finally``; ``.grad`` of parameters, ``requires_grad`` and modes are not
    touched. ``create_graph=False`` gives the same values without a graph through the gradients.
    """
    check_model(model)
    allowed = tuple(m.id for m in METHODS.values() if m.differentiable)
    row = METHODS[check_methods(method, allowed)[0]]
    check_options((row.id,), gradients, pooling, softmax=False)
    if layer is None:
        raise VidcamError("layer: give the layer(s) to explain (a dotted name or a submodule)")
    check_clip(clip)
    check_autograd_available()
    positive = (gradients or row.gradients) == "positive"
    weights_of = globals()[row.differentiable]
    layers = resolve_layers(model, layer, clip)
    names = [name for name, _ in layers]
    with torch.enable_grad(), autograd_errors(), capture_layers(layers) as store:
        output = model(clip)
        missing = [name for name in names if name not in store]
        if missing:
            raise VidcamError(f"layer {missing[0]!r} was never reached by the model's forward")
        scores, _ = resolve_targets(output, target)
        tensors = [store[name].tensor for name in names]
        per_target = _grads_in_graph(scores, tensors, names, create_graph)
    maps, weights = [], []
    for i, name in enumerate(names):
        acts = _as_volume(tensors[i], name)
        g = torch.stack([_as_volume(pt[i], name) for pt in per_target])  # (K, N, C, t, h, w)
        w = weights_of(acts, g, positive=positive, pooling=pooling)
        maps.append(formulas.weighted_map(acts, w))
        weights.append(w[..., 0, 0].transpose(0, 1))
    return DifferentiableCam(tuple(maps), tuple(weights), output, scores, tuple(names))


def _grads_in_graph(
    scores: torch.Tensor, tensors: list[torch.Tensor], names: list[str], create_graph: bool
) -> list[tuple[torch.Tensor, ...]]:
    """Per target k, ∂(Σ_n scores[n, k])/∂tensor for every tensor, kept in the graph."""
    per_target = []
    for k in range(scores.shape[1]):
        grads = torch.autograd.grad(
            scores[:, k].sum(),
            tensors,
            create_graph=create_graph,
            retain_graph=True,
            allow_unused=True,
        )
        for g, name in zip(grads, names, strict=True):
            if g is None:
                raise VidcamError(f"layer {name!r} does not influence the target score")
        per_target.append(grads)
    return per_target
