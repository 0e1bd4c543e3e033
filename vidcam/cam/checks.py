"""Argument and result checks of the engine: the clip, the method ids, the reached layers, the
batch of scores, and targets read from an output computed without autograd."""

from __future__ import annotations

from typing import Any

import torch

from vidcam.cam import rules
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError

METHODS = rules.ENGINE_METHODS


def check_clip(clip: torch.Tensor) -> torch.Tensor:
    if not isinstance(clip, torch.Tensor):
        raise VidcamError(
            f"clip: expected a torch.Tensor (N, C, T, H, W), got {type(clip).__name__}"
        )
    if clip.dim() not in (4, 5):
        raise VidcamError(
            f"clip: expected shape (N, C, T, H, W) or (N, C, H, W), got {tuple(clip.shape)}; "
            "add a batch axis with clip[None] for a single clip"
        )
    if not clip.is_floating_point():
        raise VidcamError(
            f"clip: expected a float tensor, got {clip.dtype}; convert frames with "
            ".float() / 255 and normalise as the model expects"
        )
    if clip.numel() == 0:
        raise VidcamError(f"clip: empty tensor of shape {tuple(clip.shape)}")
    return clip


def check_methods(method: Any) -> tuple[str, ...]:
    items = [method] if isinstance(method, str) else list(method) if method is not None else []
    if not items:
        raise VidcamError(f"method: give one of {', '.join(METHODS)} (or a list of them)")
    for m in items:
        if m not in METHODS:
            hint = (
                "; guided variants are vidcam.cam.guided.guided_cam" if "guided" in str(m) else ""
            )
            raise VidcamError(f"method {m!r} is not one of {', '.join(METHODS)}{hint}")
    return tuple(dict.fromkeys(items))


def check_reached(store: dict, names: list[str]) -> None:
    missing = [name for name in names if name not in store]
    if missing:
        raise VidcamError(
            f"layer {missing[0]!r} was never reached by the model's forward; pick a layer "
            "that the forward pass runs"
        )


def check_batch(scores: torch.Tensor, clip: torch.Tensor) -> None:
    if scores.shape[0] != clip.shape[0]:
        raise VidcamError(
            f"target: got scores for {scores.shape[0]} samples, the clip batch has {clip.shape[0]}"
        )


def free_targets(output: Any, target: Target) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`resolve_targets` on an output computed without autograd: the targets are read
    from a detached copy made a leaf (no graph reaches into the model)."""
    if isinstance(output, torch.Tensor):
        output = output.detach().requires_grad_(True)
    with torch.enable_grad():
        scores, indices = resolve_targets(output, target)
    return scores.detach(), indices


def check_options(methods: tuple[str, ...], gradients: Any, pooling: Any, softmax: bool) -> None:
    """The Explainer's method options against its methods (one line naming the bad option)."""
    if gradients not in (None, "positive", "all"):
        raise VidcamError(f"gradients {gradients!r} must be 'positive', 'all' or None")
    if gradients is not None and not set(methods) & set(rules.DEFAULT_GRADIENTS):
        raise VidcamError(
            f"gradients= applies to {', '.join(rules.DEFAULT_GRADIENTS)}; {methods[0]} "
            "fixes its own (LayerCAM: relu(g), HiResCAM: g); leave gradients=None"
        )
    if pooling not in ("volume", "frame"):
        raise VidcamError(f"pooling {pooling!r} must be 'volume' or 'frame'")
    if pooling == "frame" and not set(methods) & set(rules.POOLED_METHODS):
        raise VidcamError(
            f"pooling='frame' applies to {', '.join(rules.POOLED_METHODS)}; {methods[0]} "
            "does not pool weights: leave pooling='volume'"
        )
    if softmax and "gradcam++" not in methods:
        raise VidcamError("softmax=True is the Grad-CAM++ softmax variant; use method='gradcam++'")
