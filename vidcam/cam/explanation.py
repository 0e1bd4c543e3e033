"""The engine's result record, :class:`Explanation` (re-exported by :mod:`vidcam.cam.explainer`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: the "layer" an input-space perturbation method (RISE, extremal perturbation) explains
INPUT_LAYER = "input"


@dataclass(frozen=True)
class Explanation:
    """Result of one explanation call (all tensors detached, on the model's device).

    Attributes:
        maps: (N, K, T, H, W) in [0, 1]; upsampled (trilinear) to the clip, min-max normalised
            per (sample, target); multiple layers are fused by averaging their normalised maps.
            RISE and extremal: their clip-sized saliency / mask, normalised.
        raw_per_layer: per layer, (N, K, t, h, w) feature-level maps (e.g. relu(Σ_k w_k A_k));
            RISE: its saliency averaged over each mask-grid cell; extremal: the smoothed mask
            on its grid (one "layer", :data:`INPUT_LAYER`).
        weights_per_layer: per layer, channel weights (N, K, C, t|1); LayerCAM and HiResCAM:
            their elementwise weights (N, K, C, t, h, w); Eigen-CAM: the principal direction;
            RISE: every masked clip's score (N, K, masks); extremal: (N, K, 2) the preserved
            clip's score and the mask's mean.
        logits: (N, num_classes) model output, or None when it is not a class-score matrix.
        probs: (N, num_classes) softmax of ``logits``, or None.
        targets: (N, K) class indices, or None for a callable target.
        target_scores: (N, K) the explained scores (logits of the targets, or the callable's).
        layers: names of the explained layers.
        method: the method id ("gradcam++/softmax" for the softmax variant).
        forwards: model forward calls this method needed (1, or 1 + the masked batches of
            Score-CAM, RISE or extremal perturbation).
        masked_clips: masked clips scored through those forwards (0 for the CAMs).
        backwards: backward passes through the whole model to the input (extremal: one per
            step and batch; 0 for the others, whose backward stops at the layer).
    """

    maps: torch.Tensor
    raw_per_layer: tuple[torch.Tensor, ...]
    weights_per_layer: tuple[torch.Tensor, ...]
    logits: torch.Tensor | None
    probs: torch.Tensor | None
    targets: torch.Tensor | None
    target_scores: torch.Tensor
    layers: tuple[str, ...]
    method: str
    forwards: int = 1
    masked_clips: int = 0
    backwards: int = 0

    @property
    def first_layer_raw(self) -> torch.Tensor:
        """(N, K, t, h, w) feature-level map of the FIRST explained layer only (see
        ``raw_per_layer`` for every layer; RISE/extremal: their one input "layer")."""
        return self.raw_per_layer[0]
