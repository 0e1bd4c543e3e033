"""Argument and result checks of the engine, one copy each: the model, the clip, the method ids
and their options (``gradients``, ``pooling``, ``softmax``; read from the method table), the
reached layers, the batch of scores, and targets read from an output computed without autograd.
:class:`~vidcam.cam.explainer.Explainer`, :func:`~vidcam.cam.differentiable.differentiable_cam`
and :mod:`vidcam.cam.guided` all validate through these."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vidcam.cam.methods import METHODS, MethodId, method_ids
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError

GRADIENTS: tuple[str, ...] = ("positive", "all")
POOLINGS: tuple[str, ...] = ("volume", "frame")


def check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise VidcamError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return model


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


def check_methods(method: Any, allowed: tuple[MethodId, ...] | None = None) -> tuple[str, ...]:
    """``method`` (an id or a sequence of ids) -> the ids, each once, all in ``allowed``
    (default: the engine rows of the table, read now)."""
    allowed = method_ids(engine=True) if allowed is None else allowed
    items = [method] if isinstance(method, str) else list(method) if method is not None else []
    if not items:
        raise VidcamError(f"method: give one of {', '.join(allowed)} (or a list of them)")
    for m in items:
        if m not in allowed:
            guided = "guided" in str(m)  # a guided row's id, or a guided spelling of a CAM
            hint = "; guided variants are vidcam.cam.guided.guided_cam" if guided else ""
            raise VidcamError(f"method {m!r} is not one of {', '.join(allowed)}{hint}")
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
    """The method options against ``methods``' rows of the table (one line naming the bad
    option): ``gradients`` applies to rows with ``gradients_option``, ``pooling="frame"`` to
    ``pooled`` rows, ``softmax`` to rows with the ``softmax`` variant."""
    rows = [METHODS[m] for m in methods]
    if gradients is not None and gradients not in GRADIENTS:
        raise VidcamError(f"gradients {gradients!r} must be 'positive', 'all' or None")
    if gradients is not None and not any(r.gradients_option for r in rows):
        takes = method_ids(engine=True, gradients_option=True)
        raise VidcamError(
            f"gradients= applies to {', '.join(takes)}; {methods[0]} fixes its own (LayerCAM: "
            "relu(g), HiResCAM: g); leave gradients=None"
        )
    if pooling not in POOLINGS:
        raise VidcamError(f"pooling {pooling!r} must be 'volume' or 'frame'")
    if pooling == "frame" and not any(r.pooled for r in rows):
        raise VidcamError(
            f"pooling='frame' applies to {', '.join(method_ids(engine=True, pooled=True))}; "
            f"{methods[0]} does not pool weights: leave pooling='volume'"
        )
    if softmax and not any(r.softmax for r in rows):
        variant = ", ".join(method_ids(engine=True, softmax=True))
        raise VidcamError(f"softmax=True is the Grad-CAM++ softmax variant; use method={variant!r}")
