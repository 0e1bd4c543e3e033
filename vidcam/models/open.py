"""Turn what the user has into a :class:`~vidcam.models.handle.ModelHandle`.

:func:`open_model` takes a :class:`ModelHandle` (returned as is, overrides applied), an
``nn.Module`` (with its :class:`~vidcam.models.spec.InputSpec` or a card), or a string: every
form of ``--model`` (:mod:`vidcam.models.sources`: registered names, ``file.py:FUNCTION``,
``package.module:FUNCTION``, ``hf:DIR``, entry points, ``.pt2`` files). Every entry point of
the pipeline, the batch workers and ``vidcam evaluate`` call it once per process and pass the
handle on, so each model is built once.

Precedence: flags (``spec``, ``labels``, ``layer``) over the card over the model's own. A user
model (anything but a registered one or a handle) gets one dry run on a zero clip
(:func:`vidcam.models.dryrun.dry_run`): its output must be ``(1, classes)`` and the class names
must number ``classes``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.card import ModelCard, read_card
from vidcam.models.dryrun import check_labels, dry_run
from vidcam.models.handle import ModelHandle
from vidcam.models.labels import labels_arg
from vidcam.models.sources import Opened, load_user_weights, open_ref
from vidcam.models.spec import InputSpec
from vidcam.models.wrap import InputAdapter, inner_name

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

    ``spec``, ``labels`` (names, or a file with one per line) and ``layer`` override the card
    (``card``: a model card file, :mod:`vidcam.models.card`), which overrides what the model
    brings (its registration, factory, checkpoint or handle). ``weights``: a checkpoint for a
    registered architecture (a head of another class count is rebuilt from its shapes) or a
    state dict for a user's module; ``pretrained`` applies to registered names.
    """
    the_card = read_card(card) if card is not None else None
    flag_labels = labels_arg(labels, what="labels")
    if isinstance(model, ModelHandle):
        dev = resolve_device(device, model.module)
        base = Opened.of_handle(model.to(dev), registry=True)
    elif isinstance(model, nn.Module):
        dev = resolve_device(device, model)
        base = Opened(model.to(dev), type(model).__name__, None)
        if weights is not None:
            base = load_user_weights(base, weights)
    elif isinstance(model, str):
        dev = resolve_device(device)
        base = open_ref(
            model, weights=weights, pretrained=pretrained, device=dev, progress=progress
        )
    else:
        raise VidcamError(
            f"model: expected a name, an nn.Module or a ModelHandle, got {type(model).__name__}"
        )
    handle = _handle(base, the_card, spec, flag_labels, layer, dev)
    if not base.registry or the_card is not None or flag_labels is not None:
        classes = dry_run(handle.module, handle.input, name=handle.name, device=dev)
        where = _labels_origin(labels, flag_labels, the_card)
        check_labels(handle.labels, classes, name=handle.name, where=where)
    return handle


def _handle(
    base: Opened,
    card: ModelCard | None,
    spec: InputSpec | None,
    labels: tuple[str, ...] | None,
    layer: Any,
    dev: torch.device,
) -> ModelHandle:
    """``base`` with the card's settings, then the flags', applied."""
    if spec is None:
        spec = card.spec(base.spec) if card is not None else base.spec
    if spec is None:
        raise VidcamError(
            f"model {base.name} has no input spec of its own: give a model card (--card "
            "MODEL.toml: clip_len, crop, mean, std, fps or stride; 'vidcam models card NAME' "
            "prints a template), or spec=InputSpec(...) in Python"
        )
    if layer is None:
        layer = card.layer if card is not None and card.layer is not None else base.layer
    module = base.module
    if card is not None and card.adapts:
        module = InputAdapter(
            module, layout=card.layout or "NCTHW", bgr=card.channel_order == "BGR"
        )
        layer = inner_name(layer)
    _check_layer_names(module, layer, base.name)
    if labels is None:
        labels = card.labels if card is not None and card.labels is not None else base.labels
    return ModelHandle(
        module=module,
        name=base.name,
        input=spec,
        layer=layer,
        reshape=base.reshape,
        labels=labels,
        weights_source=base.weights_source,
        device=dev,
    )


def _check_layer_names(module: nn.Module, layer: Any, name: str) -> None:
    """Every named layer exists in ``module`` (else a one-line error with close names)."""
    names = [layer] if isinstance(layer, str) else layer if isinstance(layer, list) else []
    known = None
    for item in names:
        if not isinstance(item, str):
            continue
        known = known or {n for n, _ in module.named_modules() if n}
        if item not in known:
            close = difflib.get_close_matches(item, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise VidcamError(
                f"layer {item!r} does not exist in model {name}{hint} ('vidcam layers' lists them)"
            )


def _labels_origin(
    given: object, flag_labels: tuple[str, ...] | None, card: ModelCard | None
) -> str:
    """Where the class names came from, for the count error."""
    if flag_labels is not None:
        return f"labels file {str(given)!r}" if isinstance(given, str | os.PathLike) else "labels"
    if card is not None and card.labels is not None:
        return f"card {card.path} (labels)"
    return "the model's labels"
