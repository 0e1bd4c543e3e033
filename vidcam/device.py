"""Pick the compute device from a user's string ("auto", "cpu", "cuda", "cuda:1")."""

from __future__ import annotations

import torch
from torch import nn

from vidcam.errors import VidcamError


def resolve_device(device: str | torch.device, model: nn.Module | None = None) -> torch.device:
    """ "auto" -> the module's device (if given) or cuda when available, else cpu."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if model is not None:
            p = next(model.parameters(), None)
            if p is not None:
                return p.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidcamError(
            f"device {device!r} requested but CUDA is not available here; use --device cpu"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidcamError(f"device {device!r} is not one of auto, cpu, cuda") from None
