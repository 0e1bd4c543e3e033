"""The model registry: look up a zoo entry by name and load it with its weights and labels.

from vidcam.models.registry import load_model
lm = load_model("r3d_18", pretrained=False)   # random weights, never a download
lm.model, lm.spec.input, lm.labels, lm.weights_source
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.checkpoint import cached_file, hub_checkpoint_dir
from vidcam.models.labels import load_labels
from vidcam.models.spec import ModelSpec
from vidcam.models.zoo import all_specs

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in all_specs()}


@dataclass
class LoadedModel:
    """A built model: ``model`` (eval mode, on the requested device), its ``spec``, class names
    ``labels`` (index-aligned with its outputs) and ``weights_source`` (where weights came from)."""

    model: nn.Module
    spec: ModelSpec
    labels: list[str]
    weights_source: str


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


def weights_status(spec: ModelSpec) -> str:
    """``"bundled"`` (ships with vidcam), ``"yes"`` (cached locally, loads offline) or ``"no"``."""
    check = spec.extra.get("weights_check")
    if check is not None:
        if not check():
            return "no"
        return "bundled" if spec.extra.get("bundled") else "yes"
    if spec.extra.get("bundled"):
        return "bundled"
    url = spec.extra.get("weights_url")
    if url:
        return "yes" if cached_file(url).is_file() else "no"
    return "no"


def weights_present(spec: ModelSpec) -> bool:
    """Whether ``load_model(spec.name)`` finds pretrained weights without a download: the
    torch hub cache (``$TORCH_HOME/hub/checkpoints``) for torchvision / PyTorchVideo, vidcam's
    cache for I3D; bundled weights are always present."""
    return weights_status(spec) != "no"


def _pretrained_source(spec: ModelSpec) -> str:
    if spec.extra.get("bundled"):
        return f"pretrained: {spec.weights_note}"
    url = spec.extra.get("weights_url")
    if url:
        return f"pretrained: {url} (torch hub cache {cached_file(url)})"
    return f"pretrained: {spec.weights_note}"


def load_model(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> LoadedModel:
    """Build the registered model ``name`` in eval mode on ``device``.

    ``weights``: a local checkpoint (a state dict, or a dict with ``state_dict`` /
    ``model_state``; ``module.`` prefixes stripped) — takes precedence over ``pretrained``.
    ``pretrained=True`` without ``weights`` fetches the published weights (torch hub cache
    first); failing offline it raises a :class:`VidcamError` saying where the cache is and to
    pass ``weights``. ``pretrained=False``: random weights, never a download.
    """
    spec = get_spec(name)
    dev = resolve_device(device)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise VidcamError(f"weights file {str(path)!r} does not exist; pass --weights PATH")
        source = f"local checkpoint {path}"
        weights = path
    elif pretrained:
        source = _pretrained_source(spec)
    else:
        source = "random initialisation (pretrained=False)"
    try:
        model = spec.build(pretrained=pretrained, weights=weights, progress=progress)
    except URLError as exc:  # a builder's own download that did not wrap its network error
        raise VidcamError(
            f"could not download the pretrained weights of {spec.name!r} ({exc}); torch hub "
            f"caches weights in {hub_checkpoint_dir()} ($TORCH_HOME); pass --weights PATH "
            "to a local checkpoint or use pretrained=False"
        ) from exc
    model = model.to(dev).eval()
    return LoadedModel(
        model=model, spec=spec, labels=load_labels(spec.labels), weights_source=source
    )
