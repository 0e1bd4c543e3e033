"""The model registry: look up a zoo entry by name and load it with its weights and labels.

from vidcam.models.registry import load_model
h = load_model("r3d_18", pretrained=False)   # random weights, never a download
h.module, h.input, h.layer, h.labels, h.weights_source   # a ModelHandle
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.dryrun import check_labels, dry_run
from vidcam.models.handle import ModelHandle
from vidcam.models.heads import checkpoint_labels
from vidcam.models.labels import load_labels
from vidcam.models.spec import ModelSpec
from vidcam.models.weights_source import WeightsStatus
from vidcam.models.zoo import all_specs

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in all_specs()}


def list_models() -> list[ModelSpec]:
    """All registered entries, in listing order."""
    return list(MODELS.values())


def get_spec(name: str) -> ModelSpec:
    """The entry called ``name`` (case-insensitive, ``-`` read as ``_``); unknown names raise a
    :class:`VidcamError` listing close matches and all valid names."""
    if not isinstance(name, str):
        raise VidcamError(f"model name must be a string, got {type(name).__name__}")
    if name in MODELS:
        return MODELS[name]
    key = name.strip().lower().replace("-", "_")
    if key in MODELS:
        return MODELS[key]
    close = difflib.get_close_matches(key, list(MODELS), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise VidcamError(
        f"unknown model {name!r}.{hint} Valid names: {', '.join(MODELS)} (see `vidcam models`)"
    )


def weights_status(spec: ModelSpec) -> WeightsStatus:
    """``"bundled"`` (ships with vidcam), ``"yes"`` (cached locally, loads offline) or ``"no"``."""
    return spec.weights.status()


def weights_present(spec: ModelSpec) -> bool:
    """Whether ``load_model(spec.name)`` finds pretrained weights without a download: the
    torch hub cache (``$TORCH_HOME/hub/checkpoints``) for torchvision (PyTorchVideo files,
    whose sha256 is not published, are never taken from it), vidcam's cache for I3D; bundled
    weights are always present."""
    return weights_status(spec) != "no"


def load_model(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ModelHandle:
    """Build the registered model ``name`` in eval mode on ``device``: its :class:`ModelHandle`
    (module, input spec, registered layer(s), token reshape, labels, weights provenance).

    ``weights``: a local checkpoint (a state dict, or a dict with ``state_dict`` /
    ``model_state``; ``module.`` prefixes stripped; for Hugging Face entries also a
    ``.safetensors`` file or a ``save_pretrained`` directory) — takes precedence over
    ``pretrained``. The entry is fitted to the built model first (``ModelSpec.for_model``).
    ``pretrained=True`` without ``weights`` fetches the published weights (torch hub cache
    first, hash-checked; see :mod:`vidcam.models.weights_source`); failing offline it raises a
    :class:`VidcamError` saying where the cache is and to pass ``weights``. Every file is read
    with ``weights_only=True``. ``pretrained=False``: random weights, never a download.
    """
    spec = get_spec(name)
    dev = resolve_device(device)
    if weights is not None:
        path = Path(weights).expanduser()
        if spec.loader is not None and path.is_dir():
            source = f"local directory {path}"
        elif not path.is_file():
            what = "file or directory" if spec.loader is not None else "file"
            problem = "is not a regular file" if path.exists() else "does not exist"
            raise VidcamError(f"weights {what} {str(path)!r} {problem}; pass --weights PATH")
        else:
            source = f"local checkpoint {path}"
        weights = path
    elif pretrained:
        source = spec.weights.describe()
    else:
        source = "random initialisation (pretrained=False)"
    model = spec.build(pretrained=pretrained, weights=weights, progress=progress)
    model = model.to(dev).eval()
    spec = spec.for_model(model)  # e.g. a Hugging Face checkpoint's depth and token grid
    labels = tuple(load_labels(spec.labels)) or None
    if weights is not None:  # a fine-tuned head: its class count and stored names
        labels = _checkpoint_labels(spec, model, Path(weights), labels, dev)
    return handle_of(spec, model, source, dev, labels=labels)


def _checkpoint_labels(
    spec: ModelSpec,
    model: nn.Module,
    path: Path,
    registered: tuple[str, ...] | None,
    device: torch.device,
) -> tuple[str, ...] | None:
    """The class names of a model loaded from ``path``: those stored in the checkpoint (or a
    Hugging Face config's ``id2label``), else the registered ones when the head has their
    count, else None (classes shown by index)."""
    classes = dry_run(model, spec.input, name=spec.name, device=device)
    stored = checkpoint_labels(path) if path.is_file() else None
    if stored is None:
        stored = _config_labels(model, classes)
    if stored is not None:
        check_labels(stored, classes, name=spec.name, where=f"weights {str(path)!r}")
        return stored
    return registered if registered is not None and len(registered) == classes else None


def _config_labels(model: nn.Module, classes: int) -> tuple[str, ...] | None:
    """A Hugging Face config's ``id2label`` names, unless they are its ``LABEL_i`` defaults."""
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if not isinstance(id2label, dict) or len(id2label) != classes:
        return None
    names = tuple(str(id2label[i]) for i in sorted(id2label, key=int))
    return None if all(n == f"LABEL_{i}" for i, n in enumerate(names)) else names


def handle_of(
    spec: ModelSpec,
    model: nn.Module,
    source: str,
    device: torch.device,
    *,
    labels: tuple[str, ...] | None,
) -> ModelHandle:
    """The handle of ``model``, built from the registry entry ``spec`` (fitted to it), with
    class names ``labels`` (None: classes shown by index)."""
    layer: object = list(spec.layers) if len(spec.layers) > 1 else (spec.layers or (None,))[0]
    return ModelHandle(
        module=model,
        name=spec.name,
        input=spec.input,
        layer=layer,
        reshape=spec.reshape,
        labels=labels,
        weights_source=source,
        device=device,
    )
