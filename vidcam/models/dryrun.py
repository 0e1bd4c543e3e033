"""One dry run of a model on a zero clip: its class count, or a one-line error saying why not.

The clip is ``(1, 3, T, H, W)`` of the model's :class:`~vidcam.models.spec.InputSpec`, run
without gradients in eval mode (every module's own flag restored afterwards). It runs on the
meta device first (shapes only: milliseconds whatever the model, no memory) and on the model's
device only when the model cannot run on meta.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec


@contextmanager
def _eval(module: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _forward(module: nn.Module, x: torch.Tensor, meta: bool) -> Any:
    with _eval(module), torch.no_grad():
        if not meta:
            return module(x)
        state = dict(module.named_parameters()) | dict(module.named_buffers())
        fake = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
        return functional_call(module, fake, (x,), strict=False)


def _run(module: nn.Module, shape: tuple[int, ...], device: torch.device) -> Any:
    """The output on a zero clip of ``shape``: on meta, else (no meta kernel) on ``device``."""
    try:
        return _forward(module, torch.zeros(shape, device="meta"), meta=True)
    except Exception:  # noqa: BLE001 - no meta kernel or data-dependent code: run it for real
        return _forward(module, torch.zeros(shape, device=device), meta=False)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).strip().splitlines()[:1])[:240]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _layout_hint(module: nn.Module, shape: tuple[int, ...], device: torch.device) -> str:
    """What to do about a failing clip: whether the other layout runs."""
    n, c, t, h, w = shape
    try:
        _run(module, (n, t, c, h, w), device)
    except Exception:  # noqa: BLE001 - it fails either way: the hint stays general
        return (
            'check the input layout (a card\'s layout = "NTCHW" for models taking '
            "(N, T, C, H, W)) and the card's clip_len and crop"
        )
    return (
        'the model runs on (N, T, C, H, W): wrong input layout; set layout = "NTCHW" in its --card'
    )


def dry_run(module: nn.Module, spec: InputSpec, *, name: str, device: torch.device) -> int:
    """The class count of ``module`` (its output on a zero ``(1, 3, T, H, W)`` clip must be
    ``(1, classes)``); one-line :class:`VidcamError` otherwise."""
    shape = (1, 3, spec.clip_len, *spec.crop)
    try:
        out = _run(module, shape, device)
    except VidcamError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failing is a user error
        raise VidcamError(
            f"model {name} fails on a zero clip {shape} in the input layout (N, C, T, H, W) "
            f"({_first_line(exc)}); {_layout_hint(module, shape, device)}"
        ) from None
    if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == 1:
        return int(out.shape[1])
    if isinstance(out, torch.Tensor):
        got = f"shape {tuple(out.shape)}"
    else:
        logits = getattr(out, "logits", None)
        extra = " (return its .logits)" if isinstance(logits, torch.Tensor) else ""
        got = f"a {type(out).__name__}{extra}"
    raise VidcamError(
        f"model {name} returns {got} for a zero clip {shape}, not (1, classes): its forward "
        "must return the logits as a tensor (N, classes)"
    )


def check_labels(labels: tuple[str, ...] | None, classes: int, *, name: str, where: str) -> None:
    """A one-line error naming both counts when ``labels`` do not match the head."""
    if labels is not None and len(labels) != classes:
        raise VidcamError(
            f"{where} has {len(labels)} class names but model {name} outputs {classes} classes; "
            "give one name per output, in output order"
        )
