"""Capture a layer's activation for one forward pass; hooks are removed in ``finally``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.errors import VidcamError


@dataclass
class Captured:
    """What a hooked layer produced: the tensor to differentiate against and its full output."""

    tensor: torch.Tensor
    output: Any
    calls: int = 1


def _first_tensor(output: Any) -> tuple[torch.Tensor | None, int | None]:
    if isinstance(output, torch.Tensor):
        return output, None
    if isinstance(output, tuple | list):
        for i, item in enumerate(output):
            if isinstance(item, torch.Tensor):
                return item, i
    return None, None


@contextmanager
def capture_layers(
    layers: list[tuple[str, nn.Module]], on_capture: Callable[[str], None] | None = None
) -> Iterator[dict[str, Captured]]:
    """Hook ``layers`` for the duration of the ``with`` block; yields ``{name: Captured}``.

    The captured tensor requires grad (an activation that does not — frozen model, or a forward
    run without autograd so far — becomes a leaf that does), and the layer passes on a *clone*,
    so in-place ops downstream (``ReLU(inplace=True)``) can not modify the captured activation.
    For tuple outputs (e.g. MViT's ``(tokens, thw)``) the first tensor is captured.
    ``on_capture(name)`` runs after each capture, before the clone is made (the gradient-free
    prefix switches grad mode on there, see :mod:`vidcam.cam.prefix`).
    """
    store: dict[str, Captured] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            tensor, index = _first_tensor(output)
            if tensor is None:
                raise VidcamError(
                    f"layer {name!r} returned {type(output).__name__}, which holds no tensor; "
                    "choose a layer that outputs a feature tensor"
                )
            if not tensor.is_floating_point():
                raise VidcamError(f"layer {name!r} returned a {tensor.dtype} tensor; need float")
            if not tensor.requires_grad:  # frozen model or input without grad
                tensor = tensor.detach().requires_grad_(True)
            if name in store:
                store[name] = Captured(tensor, output, store[name].calls + 1)
            else:
                store[name] = Captured(tensor, output)
            if on_capture is not None:
                on_capture(name)
            passed_on = tensor.clone()
            if index is None:
                return passed_on
            items = list(output)
            items[index] = passed_on
            if hasattr(output, "_fields"):  # namedtuple
                return type(output)(*items)
            return type(output)(items)

        return hook

    try:
        for name, module in layers:
            handles.append(module.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()
    for name, cap in store.items():
        if cap.calls > 1:
            warnings.warn(
                f"layer {name!r} ran {cap.calls} times in one forward; its last call is explained",
                stacklevel=3,
            )


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode for the block; restore every module's own flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, flag in flags:
            module.training = flag
