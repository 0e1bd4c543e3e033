"""User arguments -> pipeline objects: the device, the target class, the model to explain.

``resolve_device("auto")`` and :func:`load_pipeline_model` (a registered
name or an ``nn.Module`` with its :class:`~vidcam.models.spec.InputSpec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec, Reshape


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
