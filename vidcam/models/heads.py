"""Fine-tuned checkpoints: a classifier head of another class count, and stored class names.

:func:`fit_head` rebuilds the one ``nn.Linear`` / ``nn.Conv*d`` whose weights in a checkpoint
differ from the built model's only in their output count (a head fine-tuned on other classes),
so that the checkpoint then loads strictly. :func:`checkpoint_labels` reads the class names a
training script stored beside the state dict (``labels``, ``classes`` or ``class_names``).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.models.checkpoint import load_weights_only

#: keys under which checkpoints keep class names beside the weights
LABEL_KEYS = ("labels", "classes", "class_names")
_HEADS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _aligned(model: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with one wrapper prefix (e.g. ``net.``) added or stripped when that makes more
    keys match the model's (as :func:`vidcam.models.checkpoint.load_into` does)."""
    want = set(model.state_dict())
    best, hits = dict(state), len(want & set(state))
    for prefix in sorted({k.split(".", 1)[0] + "." for k in want if "." in k}):
        for cand in (
            {prefix + k: v for k, v in state.items()},
            {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()},
        ):
            if len(want & set(cand)) > hits:
                best, hits = cand, len(want & set(cand))
    return best


def _resized(old: nn.Module, classes: int) -> nn.Module:
    """A fresh copy of head ``old`` with ``classes`` outputs (same device and dtype)."""
    w = old.weight
    bias = old.bias is not None
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, classes, bias=bias)
    else:
        new = type(old)(
            old.in_channels,
            classes,
            old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            dilation=old.dilation,
            groups=old.groups,
            bias=bias,
            padding_mode=old.padding_mode,
        )
    return new.to(device=w.device, dtype=w.dtype)


def fit_head(model: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """Replace ``model``'s classifier head by one shaped like the checkpoint's, when the only
    mismatches are the output count of its last Linear/Conv (the head); returns the new class count (None: no
    change). Any other mismatch is left for the strict load to report."""
    state = _aligned(model, state)
    own = model.state_dict()
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not wrong:
        return None
    owners = {k.rsplit(".", 1)[0] for k in wrong}
    if len(owners) != 1:
        return None
    (owner,) = owners
    if f"{owner}.weight" not in list(dict(model.named_parameters()))[-2:]:
        return None  # not the classifier (the last layer with parameters)
    head = model.get_submodule(owner)
    if not isinstance(head, _HEADS) or getattr(head, "groups", 1) != 1:
        return None
    w = state.get(f"{owner}.weight")
    if w is None or w.dim() != head.weight.dim() or w.shape[1:] != head.weight.shape[1:]:
        return None
    classes = int(w.shape[0])
    b = state.get(f"{owner}.bias")
    if (b is None) != (head.bias is None) or (b is not None and tuple(b.shape) != (classes,)):
        return None
    parent_name, _, attr = owner.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, _resized(head, classes))
    if isinstance(getattr(model, "num_classes", None), int):
        model.num_classes = classes
    return classes


def checkpoint_labels(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The class names stored in the checkpoint file ``path`` beside its state dict (keys
    :data:`LABEL_KEYS`: a list of names, or a mapping index -> name), else None. Only
    ``torch.save`` archives are looked at (read memory-mapped, tensors only)."""
    p = Path(path).expanduser()
    if not p.is_file() or not zipfile.is_zipfile(p):
        return None
    try:  # memory-mapped: the tensors (read already by the build) are not read again
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):
        obj = load_weights_only(
            p, what=f"weights file {str(p)!r}", fix="save it with torch.save({...}, PATH)"
        )
    if not isinstance(obj, Mapping):
        return None
    for key in LABEL_KEYS:
        if key in obj:
            return _names(obj[key], f"weights file {str(p)!r}: entry {key!r}")
    return None


def _names(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        try:
            value = [value[i] for i in sorted(value, key=int)]
        except (TypeError, ValueError):
            raise VidcamError(f"{what} must map class indices to names") from None
    if isinstance(value, list | tuple) and value and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise VidcamError(f"{what} must be a non-empty list of class names (str)")
