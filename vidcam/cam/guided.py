"""Pixel-space video explanations: guided backprop and Guided Grad-CAM / Guided Grad-CAM++.

Guided Grad-CAM (Selvaraju et al., 2017) multiplies the guided-backprop gradient of a class
score w.r.t. the clip (fine detail, not class-discriminative) with the class's upsampled CAM
(coarse, class-discriminative)::

    res = guided_cam(model, clip, target="topk:2")   # clip (N, C, T, H, W)
    res.product                                      # (N, K, C, T, H, W)
    frames = normalize_per_clip(res.product[0, 0])   # (T, H, W, C) in [0, 1] for display
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.cam.explainer import Explainer, Explanation
from vidcam.cam.guided_backprop import GuidedBackpropWarning, _guided_gradients, guided_backprop
from vidcam.cam.layers import LayerArg
from vidcam.cam.targets import Target
from vidcam.errors import VidcamError

__all__ = [
    "GuidedBackpropWarning",
    "GuidedExplanation",
    "guided_backprop",
    "guided_cam",
    "normalize_per_clip",
]


@dataclass(frozen=True)
class GuidedExplanation:
    """Guided Grad-CAM(++) result (tensors detached, on the model's device).

    Attributes:
        guided: (N, K, C, T, H, W) guided-backprop gradients of the target scores.
        cam: the engine's :class:`~vidcam.Explanation` for the same targets (maps (N, K, T, H, W)
            in [0, 1]).
        product: (N, K, C, T, H, W) = ``guided * cam.maps[:, :, None]``.
    """

    guided: torch.Tensor
    cam: Explanation
    product: torch.Tensor

    @property
    def targets(self) -> torch.Tensor | None:
        """(N, K) class indices explained (None for a callable target)."""
        return self.cam.targets


def guided_cam(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    method: str = "gradcam++",
    explainer: Explainer | None = None,
    **explainer_kwargs: Any,
) -> GuidedExplanation:
    """Guided Grad-CAM++ (``method="gradcam++"``) or Guided Grad-CAM (``"gradcam"``).

    The target is resolved once, from the guided pass's forward; the CAM pass explains the
    same (N, K) class indices (so "topk:K" can not pick different classes twice). A callable
    target is passed to both passes as is. The CAM pass runs without guided hooks.

    Args:
        model, clip, target: as in :func:`guided_backprop`.
        layer, method, explainer_kwargs: passed to :class:`vidcam.Explainer` ("guided-gradcam++"
            and "guided-gradcam" are accepted as method names too).
        explainer: an existing :class:`vidcam.Explainer` of ``model`` to reuse instead (keeps
            its resolved layer across calls, e.g. window after window of a video).

    Returns:
        :class:`GuidedExplanation` with ``guided``, ``cam`` and ``product``.
    """
    if isinstance(method, str) and method.startswith("guided-"):
        method = method[len("guided-") :]
    if explainer is None:
        explainer = Explainer(model, layer=layer, method=method, **explainer_kwargs)  # validates
    elif explainer.model is not model:
        raise VidcamError("explainer: it explains another model; pass one built for `model`")
    guided, _, indices = _guided_gradients(model, clip, target)
    cam = explainer(clip, target=indices if indices is not None else target)
    if cam.maps.shape[:2] != guided.shape[:2]:
        raise VidcamError(
            f"target: the callable gave {guided.shape[1]} scores per sample in the guided pass "
            f"and {cam.maps.shape[1]} in the CAM pass; it must be deterministic"
        )
    product = guided * cam.maps[:, :, None].to(guided.dtype)
    return GuidedExplanation(guided=guided, cam=cam, product=product)


def normalize_per_clip(x: torch.Tensor) -> torch.Tensor:
    """Map a (C, T, H, W) gradient volume to displayable (T, H, W, C) frames in [0, 1].

    One normalisation for the whole clip, not per frame, so frames keep their relative
    strength and brightness does not flicker: ``0.5 + 0.1 * (x - mean) / std`` clipped to
    [0, 1], with mean and (population) std over all of C, T, H, W (the usual ``deprocess_image``
    of guided backprop, without its absolute epsilon, so it is invariant to the gradient's
    scale: tiny gradients are not washed out). Zero (mean) maps to mid grey, values beyond
    ±5 std saturate; a constant clip gives 0.5 everywhere. Channel order is kept (RGB in, RGB
    out).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise VidcamError(
            f"x: expected one clip (C, T, H, W), got {shape}; index the batch and target first, "
            "e.g. res.product[0, 0]"
        )
    if x.numel() == 0:
        raise VidcamError(f"x: empty tensor of shape {tuple(x.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    v = x.detach().to(torch.float64 if dtype == torch.float64 else torch.float32)
    centred = v - v.mean()
    std = centred.square().mean().sqrt()
    scale = torch.where(std > 0, 0.1 / std, torch.zeros_like(std))
    out = (0.5 + centred * scale).clamp(0.0, 1.0)
    return out.permute(1, 2, 3, 0).contiguous().to(dtype)
