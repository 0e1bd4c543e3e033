"""Reading, matching and downloading model weights, with errors that say what to do."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from urllib.error import URLError

import torch
import torch.hub
from torch import nn

from vidcam.errors import VidcamError

#: keys under which training checkpoints keep the model's state dict
_NESTED_KEYS = ("state_dict", "model_state", "model")


def hub_checkpoint_dir() -> Path:
    """Where ``torch.hub`` caches downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_file(url: str) -> Path:
    """The path ``torch.hub.load_state_dict_from_url(url)`` caches ``url`` under."""
    return hub_checkpoint_dir() / os.path.basename(url.split("?")[0])


def extract_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a state dict, or a dict holding one under ``state_dict`` /
    ``model_state`` / ``model``; ``module.`` prefixes (DataParallel) are stripped."""
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise VidcamError(
            f"{source} holds no state dict (expected a dict of tensors, or a dict with a "
            f"'state_dict' or 'model_state' entry); save it with torch.save(model.state_dict(), "
            "PATH)"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. counters or configs stored next to the tensors
        name = str(key)
        while name.startswith("module."):
            name = name[len("module.") :]
        out[name] = value
    if not out:
        raise VidcamError(f"{source} holds no tensors; is it a PyTorch model checkpoint?")
    return out


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a local checkpoint file (tensors only, ``weights_only=True``) as a state dict."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise VidcamError(f"weights file {str(p)!r} does not exist; pass --weights PATH to a file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise VidcamError(
            f"could not read weights file {str(p)!r} as a PyTorch checkpoint ({exc}); it must "
            "be a file written by torch.save holding tensors (a state dict)"
        ) from exc
    return extract_state_dict(obj, repr(str(p)))


def _match_prefix(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add or strip one wrapper prefix (e.g. ``net.`` of an adapter) when that makes keys fit."""
    want = set(model.state_dict())
    if set(state) <= want:
        return state
    prefixes = {k.split(".", 1)[0] + "." for k in want if "." in k}
    best, best_hits = state, len(want & set(state))
    for prefix in sorted(prefixes):
        added = {prefix + k: v for k, v in state.items()}
        stripped = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
        for cand in (added, stripped):
            hits = len(want & set(cand))
            if hits > best_hits:
                best, best_hits = cand, hits
    return best


def _examples(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_into(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str, model_name: str
) -> None:
    """Load ``state`` into ``model`` strictly; mismatches raise a :class:`VidcamError` naming
    a few missing / unexpected / wrongly shaped keys."""
    state = _match_prefix(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_examples(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_examples(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} keys with another shape: {_examples(wrong, 2)}")
        raise VidcamError(
            f"weights from {source} do not fit model {model_name!r}: "
            + "; ".join(parts)
            + f". Pass a checkpoint of {model_name!r} (or pick the matching --model)"
        )
    model.load_state_dict(state, strict=True)


def download_state_dict(
    url: str, *, model_name: str, progress: bool = True, check_hash: bool = False
) -> dict[str, torch.Tensor]:
    """Fetch ``url`` through ``torch.hub`` (cached under :func:`hub_checkpoint_dir`).

    Network failures (no internet, DNS, HTTP errors, a truncated or corrupt download) become a
    :class:`VidcamError` telling where the cache is and how to use a local file instead.
    """
    try:
        obj = torch.hub.load_state_dict_from_url(
            url, progress=progress, map_location="cpu", check_hash=check_hash
        )
    except (URLError, OSError, RuntimeError) as exc:
        raise VidcamError(
            f"could not download the pretrained weights of {model_name!r} from {url} ({exc}). "
            f"torch.hub caches weights in {hub_checkpoint_dir()} ($TORCH_HOME/hub/checkpoints): "
            f"copy {cached_file(url).name} there, or pass --weights PATH to a local checkpoint "
            "(weights=PATH), or use pretrained=False for random weights"
        ) from exc
    return extract_state_dict(obj, url)
