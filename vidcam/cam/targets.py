"""The one target grammar: the user's ``target`` -> differentiable scores ``(N, K)``.

:func:`resolve_targets` applies a :data:`Target` to a model output; :func:`parse_target`
parses a command-line spelling ("top1", "topk:K", an index, a class name matched loosely,
misspellings get suggestions) before any work; :func:`find_class` looks a class name up.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from vidcam.errors import VidcamError

#: None (top-1) | int | sequence of ints (K classes for every sample) | LongTensor (N, K)
#: | "top1" | "topk:K" | callable(model_output) -> (N,) or (N, K) differentiable scores
Target = None | int | Sequence[int] | torch.Tensor | str | Callable[[Any], torch.Tensor]

_TOPK = re.compile(r"^top(?:k:)?(\d+)$")


def resolve_targets(output: Any, target: Target) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Select the scores to explain.

    Args:
        output: the model's output; a ``(N, num_classes)`` tensor unless ``target`` is callable.
        target: see :data:`Target`.

    Returns:
        ``(scores, indices)``: ``scores`` (N, K) still attached to the graph; ``indices`` (N, K)
        long class indices, or None for a callable target.
    """
    if callable(target) and not isinstance(target, torch.Tensor):
        return _callable_scores(output, target), None
    logits = _logits(output)
    indices = _indices(logits, target)
    return logits.gather(1, indices), indices


def _logits(output: Any) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise VidcamError(
            f"the model output is {shape}, not (N, num_classes) class scores; pass a callable "
            "target (output -> (N,) scores) to explain another quantity"
        )
    if not output.requires_grad:
        raise VidcamError(
            "the model output does not depend differentiably on the explained layer "
            "(is the forward wrapped in torch.no_grad or does it detach?)"
        )
    return output


def _indices(logits: torch.Tensor, target: Target) -> torch.Tensor:
    n, num_classes = logits.shape
    device = logits.device
    if target is None:
        target = "top1"
    if isinstance(target, str):
        match = _TOPK.match(target.strip().lower())
        if not match or int(match.group(1)) < 1:
            raise VidcamError(
                f"target {target!r} is not understood; use 'top1', 'topk:K', a class index, "
                "a list of indices, an (N, K) index tensor or a callable"
            )
        k = int(match.group(1))
        if k > num_classes:
            raise VidcamError(f"target {target!r}: the model has only {num_classes} classes")
        return logits.detach().topk(k, dim=1).indices
    if isinstance(target, bool):
        raise VidcamError("target: got a bool; give a class index")
    if isinstance(target, int):
        idx = torch.full((n, 1), target, dtype=torch.long, device=device)
    elif isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise VidcamError(f"target: index tensor must be integer, got {target.dtype}")
        if target.dim() == 0:
            idx = target.reshape(1, 1).expand(n, 1)
        elif target.dim() == 1:
            idx = target.reshape(1, -1).expand(n, -1)
        elif target.dim() == 2 and target.shape[0] == n:
            idx = target
        else:
            raise VidcamError(
                f"target: index tensor of shape {tuple(target.shape)} does not fit a batch of "
                f"{n}; use (K,) for the same classes in every sample or ({n}, K) per sample"
            )
        idx = idx.to(device=device, dtype=torch.long)
    elif isinstance(target, Sequence) and target and all(isinstance(t, int) for t in target):
        idx = torch.tensor(list(target), dtype=torch.long, device=device).expand(n, -1)
    else:
        raise VidcamError(
            f"target: cannot use {type(target).__name__}; use None/'top1', 'topk:K', an int, "
            "a list of ints, an (N, K) LongTensor or a callable"
        )
    if idx.numel() == 0:
        raise VidcamError("target: no class given")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise VidcamError(
            f"target: class index {bad} is out of range for a model with {num_classes} classes "
            f"(valid: 0..{num_classes - 1})"
        )
    return idx.contiguous()


def _callable_scores(output: Any, fn: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    scores = fn(output)
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        raise VidcamError(
            f"target: the callable returned {type(scores).__name__}"
            + (f" of {scores.dtype}" if isinstance(scores, torch.Tensor) else "")
            + "; it must return a float tensor of scores (N,) or (N, K)"
        )
    if not scores.requires_grad:
        raise VidcamError(
            "target: the callable's scores are not differentiable (no grad_fn); compute them "
            "from the model output with torch ops, without .detach(), .item() or argmax"
        )
    if scores.dim() == 1:
        scores = scores[:, None]
    if scores.dim() != 2:
        raise VidcamError(
            f"target: the callable returned shape {tuple(scores.shape)}; expected (N,) or (N, K)"
        )
    return scores


def parse_target(target: str | int | None, labels: Sequence[str] | None) -> str | int:
    """A command-line target spelling -> "top1" | "topk:K" | a class index (a class name is
    matched against ``labels``); no model output needed (see :func:`resolve_targets`)."""
    if target is None:
        return "top1"
    if isinstance(target, int):
        return _check_index(target, labels)
    text = str(target).strip()
    if text.lower() == "top1":
        return "top1"
    m = _TOPK.match(text.lower())
    if m:
        if int(m.group(1)) < 1:
            raise VidcamError(f"target {text!r}: K must be >= 1")
        return f"topk:{int(m.group(1))}"
    if re.fullmatch(r"\d+", text):
        return _check_index(int(text), labels)
    if not labels:
        raise VidcamError(
            f"target {text!r}: this model has no class names; give a class index, top1 or topk:K"
        )
    found = find_class(text, labels)
    if found is not None:
        return found
    close = difflib.get_close_matches(text, list(labels), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise VidcamError(f"target {text!r} is not a class of this model{hint}")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _check_index(i: int, labels: Sequence[str] | None) -> int:
    if i < 0 or (labels and i >= len(labels)):
        n = f" (0..{len(labels) - 1})" if labels else ""
        raise VidcamError(f"target class index {i} is out of range{n}")
    return i


def find_class(name: str, labels: Sequence[str] | None) -> int | None:
    """Index of class ``name`` in ``labels`` (case, spaces, ``_`` and ``-`` ignored), or None."""
    key = _norm(name)
    for i, label in enumerate(labels or ()):
        if _norm(str(label)) == key:
            return i
    return None
