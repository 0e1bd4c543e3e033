"""User arguments -> pipeline objects: the device, the target class, the model to explain.

``resolve_device("auto")``, ``resolve_target("Playing guitar", labels)`` (class names are
matched loosely and misspellings get suggestions) and :func:`load_pipeline_model` (a registered
name or an ``nn.Module`` with its :class:`~vidcam.models.spec.InputSpec`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec, Reshape

_TOPK = re.compile(r"^top(?:k:)?(\d+)$")  # same spellings as vidcam.cam.targets


def resolve_target(target: str | int | None, labels: Sequence[str] | None) -> str | int:
    """ "top1" | "topk:K" | class index | class name (matched against ``labels``)."""
    if target is None:
        return "top1"
    if isinstance(target, int):
        return _check_index(target, labels)
    text = str(target).strip()
    if text.lower() == "top1":
        return "top1"
    m = _TOPK.match(text.lower())
    if m:
        if int(m.group(1)) < 1:
            raise VidcamError(f"target {text!r}: K must be >= 1")
        return f"topk:{int(m.group(1))}"
    if re.fullmatch(r"\d+", text):
        return _check_index(int(text), labels)
    if not labels:
        raise VidcamError(
            f"target {text!r}: this model has no class names; give a class index, top1 or topk:K"
        )
    key = _norm(text)
    for i, name in enumerate(labels):
        if _norm(name) == key:
            return i
    close = difflib.get_close_matches(text, list(labels), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise VidcamError(f"target {text!r} is not a class of this model{hint}")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _check_index(i: int, labels: Sequence[str] | None) -> int:
    if i < 0 or (labels and i >= len(labels)):
        n = f" (0..{len(labels) - 1})" if labels else ""
        raise VidcamError(f"target class index {i} is out of range{n}")
    return i


@dataclass(frozen=True)
class PipelineModel:
    """The model to explain, with how to feed it and what to explain in it."""

    module: nn.Module
    name: str
    spec: InputSpec
    layer: Any
    reshape: Reshape | None
    labels: Sequence[str] | None


def load_pipeline_model(
    model: str | nn.Module,
    spec: InputSpec | None,
    labels: Sequence[str] | None,
    layer: Any,
    weights: str | None,
    pretrained: bool,
    device: str | torch.device,
    progress: bool,
) -> tuple[PipelineModel, torch.device]:
    """A registered model by name (``spec``/``labels``/``layer`` override its registration) or
    an ``nn.Module`` (``spec`` required), moved to the resolved device."""
    if isinstance(model, nn.Module):
        if spec is None:
            raise VidcamError(
                "spec: a model passed as nn.Module needs its InputSpec (clip length, crop, "
                "resize, mean/std, fps or stride)"
            )
        dev = resolve_device(device, model)
        module = model.to(dev)
        return PipelineModel(module, type(model).__name__, spec, layer, None, labels), dev
    if not isinstance(model, str):
        raise VidcamError(f"model: expected a name or an nn.Module, got {type(model).__name__}")
    from vidcam.models.registry import load_model

    dev = resolve_device(device)
    loaded = load_model(
        model, weights=weights, pretrained=pretrained, device=dev, progress=progress
    )
    ms = loaded.spec
    chosen = layer if layer is not None else (list(ms.layers) if ms.layers else None)
    if isinstance(chosen, list) and len(chosen) == 1:
        chosen = chosen[0]
    return (
        PipelineModel(
            module=loaded.model,
            name=ms.name,
            spec=spec or ms.input,
            layer=chosen,
            reshape=ms.reshape,
            labels=labels if labels is not None else loaded.labels,
        ),
        dev,
    )
