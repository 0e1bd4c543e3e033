"""Backward passes for the explainer: per-target gradients batched over targets, and the
per-class gradient moments of the Grad-CAM++ softmax variant (batched over classes in chunks)."""

from __future__ import annotations

import warnings

import torch

from vidcam.errors import VidcamError

#: element budget for one batched backward over classes (softmax variant)
CLASS_CHUNK_ELEMENTS = 1 << 25


def grads_per_target(
    scores: torch.Tensor, tensors: list[torch.Tensor], names: list[str]
) -> list[torch.Tensor]:
    """∂scores[:, k]/∂tensor for every target k: one backward batched over K. (K, N, ...)."""
    if not scores.requires_grad:
        raise VidcamError("target: the scores are not differentiable w.r.t. the explained layer")
    k = scores.shape[1]
    eye = torch.eye(k, dtype=scores.dtype, device=scores.device)
    grad_outputs = eye[:, None, :].expand(k, *scores.shape).contiguous()
    grads = batched_grad(scores, tensors, grad_outputs)
    out = []
    for g, t, name in zip(grads, tensors, names, strict=True):
        if g is None:
            raise VidcamError(f"layer {name!r} does not influence the target score; pick another")
        out.append(g.expand(k, *t.shape) if g.dim() == t.dim() else g)
    return out


def batched_grad(
    outputs: torch.Tensor, inputs: list[torch.Tensor], grad_outputs: torch.Tensor
) -> tuple[torch.Tensor | None, ...]:
    """autograd.grad batched over the first axis of ``grad_outputs`` (B, *outputs.shape)."""
    if grad_outputs.shape[0] == 1:
        grads = torch.autograd.grad(
            outputs, inputs, grad_outputs=grad_outputs[0], retain_graph=True, allow_unused=True
        )
        return tuple(None if g is None else g.unsqueeze(0) for g in grads)
    try:
        return torch.autograd.grad(
            outputs,
            inputs,
            grad_outputs=grad_outputs,
            retain_graph=True,
            allow_unused=True,
            is_grads_batched=True,
        )
    except RuntimeError as exc:
        if "atching rule" not in str(exc) and "vmap" not in str(exc):
            raise
        # an op (or a user's tensor hook) without a vmap rule: one backward per batch entry
        warnings.warn(
            f"batched backward unavailable ({str(exc).splitlines()[0]}); "
            "falling back to one backward per target",
            RuntimeWarning,
            stacklevel=3,
        )
    per_entry = [
        torch.autograd.grad(outputs, inputs, grad_outputs=go, retain_graph=True, allow_unused=True)
        for go in grad_outputs
    ]
    return tuple(
        None if parts[0] is None else torch.stack(parts) for parts in zip(*per_entry, strict=True)
    )


def class_moments(
    output: torch.Tensor, tensors: list[torch.Tensor]
) -> list[tuple[torch.Tensor, ...]]:
    """Ḡ, V, M3 of the per-class gradients ∂S^k/∂A, weighted by p = softmax(S).

    Gradients of all M classes come from chunked backward passes batched over classes.
    Returns, per tensor, (mean, variance, third central moment), each shaped like the tensor.
    """
    n, m = output.shape
    probs = output.detach().double().softmax(dim=1)  # (N, M)
    per_class = sum(t.numel() for t in tensors)
    chunk = max(1, min(m, CLASS_CHUNK_ELEMENTS // max(per_class, 1)))
    acc_dtype = torch.float32 if output.device.type == "mps" else torch.float64
    sums = [
        [torch.zeros(t.shape, dtype=acc_dtype, device=t.device) for _ in range(3)] for t in tensors
    ]
    eye = torch.eye(m, dtype=output.dtype, device=output.device)
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        grad_outputs = eye[start:stop, None, :].expand(stop - start, n, m).contiguous()
        grads = batched_grad(output, tensors, grad_outputs)
        p = probs[:, start:stop].transpose(0, 1).to(acc_dtype)  # (B, N)
        for acc, g, t in zip(sums, grads, tensors, strict=True):
            if g is None:
                continue
            g = g.to(acc_dtype)
            pw = p.reshape(*p.shape, *([1] * (t.dim() - 1)))
            g2 = g * g
            acc[0] += (pw * g).sum(0)
            acc[1] += (pw * g2).sum(0)
            acc[2] += (pw * g2 * g).sum(0)
    out = []
    for (m1, m2, m3), t in zip(sums, tensors, strict=True):
        var = m2 - m1 * m1
        third = m3 - 3 * m1 * m2 + 2 * m1 * m1 * m1
        out.append(tuple(x.to(t.dtype) for x in (m1, var, third)))
    return out
