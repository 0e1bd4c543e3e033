"""Backward passes for the explainer: per-target gradients batched over targets, and the
per-class gradient moments of the Grad-CAM++ softmax variant (one backward for the mean,
chunks batched over classes for the central moments)."""

from __future__ import annotations

import warnings

import torch

from vidcam.errors import VidcamError

#: element budget for one batched backward over classes (softmax variant)
CLASS_CHUNK_ELEMENTS = 1 << 25
#: the same on the CPU, where the batched backward of a conv head runs out of cache: on 2 cores
#: x3d_m's 400-class backward to ``blocks.4`` takes 0.6 s in chunks of 8–16 classes and 1.1 s in
#: chunks of 32–64 (``tools/bench_explainer.py``); r3d_18's stays near its best (8 ms) from 16 up
CPU_CLASS_CHUNK_ELEMENTS = 1 << 21


def one_hot_cotangents(scores: torch.Tensor) -> torch.Tensor:
    """The cotangents of one backward batched over targets: scores (N, K) -> (K, N, K), entry
    k is 1 at [:, k] and 0 elsewhere (entry k's backward gives ∂Σ_n scores[n, k])."""
    k = scores.shape[1]
    eye = torch.eye(k, dtype=scores.dtype, device=scores.device)
    return eye[:, None, :].expand(k, *scores.shape).contiguous()


def grads_per_target(
    scores: torch.Tensor, tensors: list[torch.Tensor], names: list[str]
) -> list[torch.Tensor]:
    """∂scores[:, k]/∂tensor for every target k: one backward batched over K. (K, N, ...)."""
    if not scores.requires_grad:
        raise VidcamError("target: the scores are not differentiable w.r.t. the explained layer")
    k = scores.shape[1]
    grads = batched_grad(scores, tensors, one_hot_cotangents(scores))
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
    """Ḡ, V, M3 of the per-class gradients G_j = ∂S^j/∂A, weighted by p = softmax(S).

    output (N, M) scores; returns, per tensor, (Ḡ, V, M3), each shaped like the tensor::

        Ḡ = Σ_j p_j G_j,   V = Σ_j p_j (G_j − Ḡ)²,   M3 = Σ_j p_j (G_j − Ḡ)³

    Ḡ is ONE backward (cotangent p). V and M3 need every G_j (powers do not commute with the
    sum), so they come from chunked backward passes batched over classes; each chunk is
    centred on Ḡ first and reduced with a matrix product over classes, so the central moments
    are summed directly (no E[G²] − Ḡ² cancellation) in the gradients' own precision.

    Exact for any head. Why no cheaper exact route in general: when the head is linear in A up to
    a global pool (r3d_18, I3D) the G_j are cheap anyway; when a per-position nonlinearity
    sits between A and the pool (X3D's conv-BN-ReLU before its pool), G_j = R_j·diag(mask)·W per
    position and every power sum is an M×Z×|A| contraction, the same work as M backward passes.
    """
    n, m = output.shape
    bad = [tuple(t.shape) for t in tensors if n > 1 and (t.dim() == 0 or t.shape[0] != n)]
    if bad:
        raise VidcamError(
            f"softmax variant: the explained layer's output {bad[0]} has no leading batch axis "
            f"of size {n}; explain one clip at a time or pick a layer with a batch axis"
        )
    work = torch.float32 if output.dtype in (torch.float16, torch.bfloat16) else output.dtype
    probs = output.detach().to(torch.float64).softmax(dim=1)  # (N, M)
    means = batched_grad(output, tensors, probs.to(output.dtype)[None])
    means = [None if g is None else g[0].to(work) for g in means]
    per_class = sum(t.numel() for t in tensors)
    budget = CLASS_CHUNK_ELEMENTS
    if output.device.type == "cpu":
        budget = min(budget, CPU_CLASS_CHUNK_ELEMENTS)
    chunk = max(1, min(m, budget // max(per_class, 1)))
    sums = [[torch.zeros(t.shape, dtype=work, device=t.device) for _ in range(2)] for t in tensors]
    eye = torch.eye(m, dtype=output.dtype, device=output.device)
    live = [i for i, g in enumerate(means) if g is not None]
    for start in range(0, m if live else 0, chunk):
        stop = min(m, start + chunk)
        grad_outputs = eye[start:stop, None, :].expand(stop - start, n, m).contiguous()
        grads = batched_grad(output, [tensors[i] for i in live], grad_outputs)
        p = probs[:, start:stop].transpose(0, 1).to(work)  # (B, N)
        for i, g in zip(live, grads, strict=True):
            d = g.to(work).sub_(means[i]).reshape(stop - start, n, -1)  # (B, N, rest)
            d2 = d * d
            sums[i][0] += torch.einsum("bn,bnk->nk", p, d2).view(tensors[i].shape)
            sums[i][1] += torch.einsum("bn,bnk->nk", p, d2.mul_(d)).view(tensors[i].shape)
    out = []
    for mean, (var, third), t in zip(means, sums, tensors, strict=True):
        mean = torch.zeros_like(var) if mean is None else mean
        out.append(tuple(x.to(t.dtype) for x in (mean, var, third)))
    return out
