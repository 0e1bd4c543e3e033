"""The explainer's forward: no autograd before the explained layer(s), autograd from there on.

A CAM needs gradients only from the explained activation A to the score, so the layers before A
need not record a graph (recording it costs up to ~10 % time and 2–3.4× the memory of plain
inference on 3D CNNs). :func:`record_forward` runs the model with grad mode OFF; the forward hook
of the first explained layer to finish makes its activation a leaf that requires grad and
switches grad mode ON. Grad mode is thread-local global state, so it stays on after the hook
returns and the rest of the forward records; the caller's mode is restored in ``finally``.

Why "from the first capture on" is exact for every layer set: any path from an explained layer
to the score starts at that layer's output, which exists only after its hook ran, so it lies in
the recorded part. That holds for layers nested in, or fed by, an earlier explained layer: a
later layer whose output depends on an earlier leaf requires grad and is differentiated against
as it is (not detached), exactly as with full recording. For parallel layers (SlowFast's two
pathways) the ops between the first and the last capture are recorded although no gradient
needs them (for SlowFast: the fast pathway's last stage) — correct, just not minimal.

Falls back to recording the whole forward (one more forward; the reason is logged at debug level
on the ``vidcam`` logger) when grad mode is off again when the model returns: the model switched
it off itself after the capture (its own ``torch.no_grad()`` block around the layer, an
``autograd.Function`` wrapping it, or worker threads that do not see our thread's grad mode).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from vidcam.cam.hooks import Captured, capture_layers
from vidcam.errors import VidcamError

log = logging.getLogger("vidcam")


def check_autograd_available() -> None:
    """Raise a :class:`VidcamError` when autograd can not be used here (inference mode)."""
    if torch.is_inference_mode_enabled():
        raise VidcamError(
            "the explainer needs autograd, which torch.inference_mode() disables; call it "
            "outside inference mode (torch.no_grad() around it is fine)"
        )


@contextmanager
def autograd_errors() -> Iterator[None]:
    """Turn autograd's inference-tensor error into a :class:`VidcamError` that says what to do."""
    try:
        yield
    except RuntimeError as exc:
        if "Inference tensors" not in str(exc):
            raise
        raise VidcamError(
            "the model's parameters or buffers are inference tensors (made under "
            "torch.inference_mode()), which autograd can not use; build or load the model "
            f"outside inference mode ({str(exc).splitlines()[0]})"
        ) from exc


@contextmanager
def grad_mode(enabled: bool) -> Iterator[None]:
    """Set grad mode for the block; restore the mode found on entry, also when it raises (and
    when something inside the block set the mode without restoring it, as our hook does)."""
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(enabled)
    try:
        yield
    finally:
        torch.set_grad_enabled(previous)


class _Switch:
    """Called by the capture hooks: the first call switches grad mode on (prefix mode only)."""

    def __init__(self, prefix: bool) -> None:
        self.prefix = prefix
        self.first: str | None = None

    def __call__(self, name: str) -> None:
        if self.first is None:
            self.first = name
        if self.prefix:
            torch.set_grad_enabled(True)


def record_forward(
    model: nn.Module,
    clip: torch.Tensor,
    layers: list[tuple[str, nn.Module]],
    *,
    full_graph: bool = False,
) -> tuple[Any, dict[str, Captured]]:
    """``model(clip)`` with ``layers`` hooked: returns (output, ``{name: Captured}``).

    The part of the forward before the first explained layer runs without autograd unless
    ``full_graph`` (the whole forward records, as guided backprop's own forward does). The
    caller's grad mode is restored on return and on error; the output records from the
    explained layers on, so scores taken from it are differentiable w.r.t. the captured tensors
    when they are computed with grad mode enabled.
    """
    check_autograd_available()
    if clip.is_inference():  # an inference tensor can be read, but not saved for backward
        clip = clip.clone()
    if not full_graph:
        result = _run(model, clip, layers, prefix=True)
        if result is not None:
            return result
    return _run(model, clip, layers, prefix=False)


def _run(
    model: nn.Module, clip: torch.Tensor, layers: list[tuple[str, nn.Module]], *, prefix: bool
) -> tuple[Any, dict[str, Captured]] | None:
    switch = _Switch(prefix)
    with capture_layers(layers, on_capture=switch) as store, grad_mode(not prefix):
        output = model(clip)
        if prefix and switch.first is not None and not torch.is_grad_enabled():
            log.debug(
                "explainer: grad mode was off again when %s returned (its forward switched "
                "it off after layer %r); falling back to recording the whole forward",
                type(model).__name__,
                switch.first,
            )
            return None
    if prefix and switch.first is not None:
        log.debug(
            "explainer: no autograd before layer %r; recording from there (%d explained)",
            switch.first,
            len(layers),
        )
    return output, store
