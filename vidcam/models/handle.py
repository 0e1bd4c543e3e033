"""The one model handle: a network ready to explain, with everything vidcam must know about it.

Every entry point (the Python pipeline, ``vidcam explain``, ``vidcam batch`` local and Ray,
``vidcam evaluate``, the report) takes a registered name, an ``nn.Module`` with its
:class:`~vidcam.models.spec.InputSpec`, or a :class:`ModelHandle`; they all end up here through
:func:`vidcam.models.open.open_model`, which builds each model once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.cam.reshape import Reshape
from vidcam.models.spec import InputSpec


@dataclass(frozen=True)
class ModelHandle:
    """A model ready to explain.

    Attributes:
        module: the network, on ``device``; it maps a clip ``(N, C, T, H, W)`` (RGB, normalised
            as ``input`` says) to logits ``(N, classes)``. Models that take another layout
            (Hugging Face's ``(N, T, C, H, W)``) are wrapped so that this holds.
        name: registry name, ``hf:...``, ``file.py:FUNCTION``, or the module's class name.
        input: how clips are fed (clip length, resize/crop, mean/std, fps or stride).
        layer: the layer(s) to explain: a dotted name, a list of names (fused onto one
            timeline), a submodule, or None (automatic, see :func:`vidcam.cam.layers.default_layer`).
        reshape: turns a token layer's output into ``(N, C, T, H, W)`` (transformers), else None.
        labels: class names index-aligned with the outputs, or None (class indices are shown).
        weights_source: where the weights came from, in words (a path, a URL, "random", ...).
        device: where ``module`` lives.
    """

    module: nn.Module
    name: str
    input: InputSpec
    layer: Any
    reshape: Reshape | None
    labels: tuple[str, ...] | None
    weights_source: str
    device: torch.device

    def __post_init__(self) -> None:
        if self.labels is not None and not isinstance(self.labels, tuple):
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))

    @property
    def layers(self) -> list[Any]:
        """The explained layers as a list ([] for automatic)."""
        if self.layer is None:
            return []
        return list(self.layer) if isinstance(self.layer, list | tuple) else [self.layer]

    def replace(
        self,
        *,
        spec: InputSpec | None = None,
        labels: Sequence[str] | None = None,
        layer: Any = None,
    ) -> ModelHandle:
        """This handle with the given (non-None) fields replaced; itself when none is given."""
        changes: dict[str, Any] = {}
        if spec is not None:
            changes["input"] = spec
        if labels is not None:
            changes["labels"] = tuple(str(x) for x in labels)
        if layer is not None:
            changes["layer"] = layer
        return dataclasses.replace(self, **changes) if changes else self

    def to(self, device: torch.device) -> ModelHandle:
        """The handle with its module on ``device`` (itself when already there)."""
        if device == self.device:
            return self
        return dataclasses.replace(self, module=self.module.to(device), device=device)
