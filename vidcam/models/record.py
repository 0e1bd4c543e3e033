"""One model record: the module to explain, how to feed it and what to explain in it.

:func:`resolve_model` turns the user's ``model`` argument — a registered name (``vidcam
models``) or an ``nn.Module`` with its :class:`~vidcam.models.spec.InputSpec` — into a
:class:`ModelRecord` on the resolved device. The video pipeline and ``vidcam evaluate`` both
use it.
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
class ModelRecord:
    """A model ready to explain.

    Attributes:
        module: the network, on ``device`` (its train/eval flags as the user left them).
        name: registry name, or the module's class name.
        input: how clips are fed (clip length, resize/crop, mean/std, fps or stride).
        layer: the layer(s) to explain (a name, a list of names, or None: automatic).
        reshape: turns a token layer's output into (N, C, T, H, W) (transformers), else None.
        labels: class names index-aligned with the outputs, or None.
        weights_source: where the weights came from (a path, "bundled", "random", ...).
        device: where ``module`` lives.
    """

    module: nn.Module
    name: str
    input: InputSpec
    layer: Any
    reshape: Reshape | None
    labels: Sequence[str] | None
    weights_source: str
    device: torch.device

    @property
    def layers(self) -> list[Any]:
        """The explained layers as a list ([] for automatic)."""
        if self.layer is None:
            return []
        return list(self.layer) if isinstance(self.layer, (list, tuple)) else [self.layer]


def resolve_model(
    model: str | nn.Module,
    *,
    spec: InputSpec | None = None,
    labels: Sequence[str] | None = None,
    layer: Any = None,
    weights: str | None = None,
    pretrained: bool = True,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> ModelRecord:
    """A registered model by name (``spec``/``labels``/``layer`` override its registration) or
    an ``nn.Module`` (``spec`` required), moved to the resolved device."""
    if isinstance(model, nn.Module):
        if spec is None:
            raise VidcamError(
                "spec: a model passed as nn.Module needs its InputSpec (clip length, crop, "
                "resize, mean/std, fps or stride)"
            )
        dev = resolve_device(device, model)
        return ModelRecord(
            module=model.to(dev),
            name=type(model).__name__,
            input=spec,
            layer=layer,
            reshape=None,
            labels=labels,
            weights_source="user module",
            device=dev,
        )
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
    return ModelRecord(
        module=loaded.model,
        name=ms.name,
        input=spec or ms.input,
        layer=chosen,
        reshape=ms.reshape,
        labels=labels if labels is not None else (list(loaded.labels) if loaded.labels else None),
        weights_source=str(loaded.weights_source or ""),
        device=dev,
    )
