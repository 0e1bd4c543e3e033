"""The engine's methods by kind, and each gradient method's map from the SAME A and g.

All gradient methods of one call share one forward and one backward: :func:`gradient_cam`
turns the captured activations and gradients into one method's map and weights. The formulas
are in :mod:`vidcam.cam.formulas`; Score-CAM's masked forwards in :mod:`vidcam.cam.scorecam`;
the input-space perturbation methods (no layer) in :mod:`vidcam.cam.perturbation`.
"""

from __future__ import annotations

import torch

from vidcam.cam import formulas

#: methods computed from the gradient of the score at the layer (one shared backward)
GRADIENT_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam")
#: methods that need no gradient at all (run without autograd)
FREE_METHODS: tuple[str, ...] = ("eigencam", "scorecam")
#: input-space perturbation methods: masked forwards of the clip, no layer (Video RISE and
#: spatiotemporal extremal perturbation, :mod:`vidcam.cam.perturbation`)
PERTURBATION_METHODS: tuple[str, ...] = ("rise", "extremal")
#: every method of the engine, in the order tables and help list them
ENGINE_METHODS: tuple[str, ...] = GRADIENT_METHODS + FREE_METHODS + PERTURBATION_METHODS
#: methods whose weights pool over the volume or per frame (``pooling`` applies)
POOLED_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam")
#: default of ``gradients`` per method that takes the option ("positive" = relu(g))
DEFAULT_GRADIENTS: dict[str, str] = {"gradcam": "all", "gradcam++": "positive", "xgradcam": "all"}
#: methods that are not cheap (many forwards): never a default
SLOW_METHODS: tuple[str, ...] = ("scorecam", *PERTURBATION_METHODS)


def gradient_cam(
    method: str,
    acts: torch.Tensor,
    grads: torch.Tensor,
    *,
    positive: bool,
    pooling: formulas.Pooling,
    moments: tuple[torch.Tensor, ...] | None = None,
    probs_c: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient method's (raw map (N, K, t, h, w), weights) from acts (N, C, t, h, w) and
    grads (K, N, C, t, h, w).

    Weights are (N, K, C, t|1) for the pooled methods, (N, K, C, t, h, w) for LayerCAM and
    HiResCAM (their elementwise weights relu(g) / g). ``moments``/``probs_c``: the Grad-CAM++
    softmax variant (eqs. 21–24).
    """
    if method in ("layercam", "hirescam"):
        w = grads.clamp_min(0) if method == "layercam" else grads
        return formulas.elementwise_map(acts, w), w.transpose(0, 1)
    if method == "xgradcam":
        g = grads.clamp_min(0) if positive else grads
        w = formulas.xgradcam_weights(acts, g, pooling)
    elif method == "gradcam":
        w = formulas.channel_weights(None, grads, positive=positive, pooling=pooling)
    elif moments is not None and probs_c is not None:
        first, d2, d3 = formulas.softmax_derivatives(grads, *moments, probs_c)
        alpha = formulas.gradcampp_softmax_alpha(acts, d2, d3, pooling)
        w = formulas.channel_weights(alpha, first, positive=positive, pooling=pooling)
    else:
        alpha = formulas.gradcampp_alpha(acts, grads, pooling)
        w = formulas.channel_weights(alpha, grads, positive=positive, pooling=pooling)
    return formulas.weighted_map(acts, w), w[..., 0, 0].transpose(0, 1)


def eigen_cam(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-CAM (class-agnostic): the same map for each of the K targets.
    acts (N, C, t, h, w) -> (raw (N, K, t, h, w), weights (N, K, C, 1))."""
    v = formulas.eigencam_weights(acts)  # (N, C)
    w = v[None, :, :, None, None, None].expand(k, *v.shape, 1, 1, 1)  # (K, N, C, 1, 1, 1)
    return formulas.weighted_map(acts, w), w[..., 0, 0].transpose(0, 1)
