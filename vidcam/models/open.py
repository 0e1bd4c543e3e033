"""Turn what the user has into a :class:`~vidcam.models.handle.ModelHandle`.

:func:`open_model` takes a :class:`ModelHandle` (returned as is, overrides applied), an
``nn.Module`` with its :class:`~vidcam.models.spec.InputSpec`, or a string: a registered name
(``vidcam models``). Every entry point of the pipeline, the batch workers and ``vidcam
evaluate`` call it once per process and pass the handle on, so each model is built once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec

#: what ``open_model`` accepts as its ``model`` argument
ModelArg = str | nn.Module | ModelHandle


def open_model(
    model: ModelArg,
    *,
    spec: InputSpec | None = None,
    labels: Sequence[str] | str | os.PathLike | None = None,
    layer: Any = None,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    card: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> ModelHandle:
    """The handle of ``model`` on the resolved ``device``.

    ``spec``, ``labels`` and ``layer`` override what the model brings (its registration, its
    handle); an ``nn.Module`` needs ``spec``. ``weights`` / ``pretrained`` apply to registered
    names only (see :func:`vidcam.models.registry.load_model`).
    """
    if card is not None:  # model cards: see vidcam/models/card.py (being written)
        raise VidcamError("card: model cards are not supported yet")
    if isinstance(model, ModelHandle):
        dev = resolve_device(device, model.module)
        return model.to(dev).replace(spec=spec, labels=labels, layer=layer)
    if isinstance(model, nn.Module):
        if spec is None:
            raise VidcamError(
                "spec: a model passed as nn.Module needs its InputSpec (clip length, crop, "
                "resize, mean/std, fps or stride)"
            )
        dev = resolve_device(device, model)
        return ModelHandle(
            module=model.to(dev),
            name=type(model).__name__,
            input=spec,
            layer=layer,
            reshape=None,
            labels=tuple(labels) if labels is not None else None,
            weights_source="user module",
            device=dev,
        )
    if not isinstance(model, str):
        raise VidcamError(
            f"model: expected a name, an nn.Module or a ModelHandle, got {type(model).__name__}"
        )
    from vidcam.models.registry import load_model

    dev = resolve_device(device)
    handle = load_model(
        model, weights=weights, pretrained=pretrained, device=dev, progress=progress
    )
    return handle.replace(spec=spec, labels=labels, layer=layer)
