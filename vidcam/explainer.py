"""Grad-CAM and Grad-CAM++ on video models: ``Explainer`` and ``explain``.

One call = one forward with hooks on the explained layer(s) + one backward, batched over the K
targets, down to those layers (plus, for the softmax variant, a chunked batched backward over
all classes). Everything stays on the model's device.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidcam import cam_math
from vidcam.errors import VidcamError
from vidcam.hooks import capture_layers, eval_mode
from vidcam.layers import LayerArg, resolve_layers
from vidcam.models.spec import Reshape
from vidcam.targets import Target, resolve_targets

Method = Literal["gradcam", "gradcam++"]
METHODS = ("gradcam", "gradcam++")

#: element budget for one batched backward over classes (softmax variant)
_CLASS_CHUNK_ELEMENTS = 1 << 25


@dataclass(frozen=True)
class Explanation:
    """Result of one explanation call (all tensors detached, on the model's device).

    Attributes:
        maps: (N, K, T, H, W) in [0, 1]; upsampled (trilinear) to the clip, min-max normalised
            per (sample, target); multiple layers are fused by averaging their normalised maps.
        raw_per_layer: per layer, (N, K, t, h, w) feature-level maps relu(Σ_k w_k A_k).
        weights_per_layer: per layer, channel weights (N, K, C, t|1).
        logits: (N, num_classes) model output, or None when it is not a class-score matrix.
        probs: (N, num_classes) softmax of ``logits``, or None.
        targets: (N, K) class indices, or None for a callable target.
        target_scores: (N, K) the explained scores (logits of the targets, or the callable's).
        layers: names of the explained layers.
        method: "gradcam", "gradcam++" or "gradcam++/softmax".
    """

    maps: torch.Tensor
    raw_per_layer: tuple[torch.Tensor, ...]
    weights_per_layer: tuple[torch.Tensor, ...]
    logits: torch.Tensor | None
    probs: torch.Tensor | None
    targets: torch.Tensor | None
    target_scores: torch.Tensor
    layers: tuple[str, ...]
    method: str

    @property
    def raw(self) -> torch.Tensor:
        """(N, K, t, h, w) feature-level map of the first explained layer."""
        return self.raw_per_layer[0]


class Explainer:
    """Grad-CAM / Grad-CAM++ for a video (or image) model.

    Args:
        model: any ``nn.Module`` taking one clip tensor.
        layer: dotted module name, a submodule, a sequence of those (maps fused onto one
            timeline, e.g. SlowFast's two pathways), or None to pick the last 3D-conv block.
        method: "gradcam" or "gradcam++".
        softmax: Grad-CAM++ on Y = softmax(S) (paper eqs. 21–24) instead of Y = exp(S).
        gradients: "positive" (relu of the gradient inside the weights; Grad-CAM++ default)
            or "all" (Grad-CAM default). None picks the method's default.
        pooling: "volume" (one weight per channel over t×h×w) or "frame" (per time slice).
        reshape: turns a token layer's output into (N, C, T, H, W); see ``vidcam.models.spec``.

    The object holds no hooks between calls; each call restores the model exactly (train/eval
    flags, ``requires_grad``, parameters' ``.grad``).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerArg | Sequence[LayerArg] | None = None,
        *,
        method: Method = "gradcam++",
        softmax: bool = False,
        gradients: Literal["positive", "all"] | None = None,
        pooling: cam_math.Pooling = "volume",
        reshape: Reshape | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise VidcamError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if method not in METHODS:
            raise VidcamError(f"method {method!r} is not one of {', '.join(METHODS)}")
        if gradients not in (None, "positive", "all"):
            raise VidcamError(f"gradients {gradients!r} must be 'positive', 'all' or None")
        if pooling not in ("volume", "frame"):
            raise VidcamError(f"pooling {pooling!r} must be 'volume' or 'frame'")
        if softmax and method != "gradcam++":
            raise VidcamError(
                "softmax=True is the Grad-CAM++ softmax variant; use method='gradcam++'"
            )
        self.model = model
        self.layer = layer
        self.method = method
        self.softmax = softmax
        self.positive = (
            gradients or ("positive" if method == "gradcam++" else "all")
        ) == "positive"
        self.pooling: cam_math.Pooling = pooling
        self.reshape = reshape
        self._resolved: dict[int, list[tuple[str, nn.Module]]] = {}

    def __call__(self, clip: torch.Tensor, target: Target = None) -> Explanation:
        """Explain ``clip`` (N, C, T, H, W) — or (N, C, H, W), treated as T = 1 — for ``target``.

        ``target``: None/"top1", "topk:K", an int, a sequence of ints (the same K classes for
        every sample), an (N, K) LongTensor, or a callable ``output -> (N,) | (N, K)`` scores.
        """
        clip = _check_clip(clip)
        if self.softmax and callable(target) and not isinstance(target, torch.Tensor):
            raise VidcamError("target: the softmax variant needs class indices, not a callable")
        layers = self._layers(clip)
        with eval_mode(self.model), capture_layers(layers) as store, torch.enable_grad():
            output = self.model(clip)
            scores, indices = resolve_targets(output, target)
            if scores.shape[0] != clip.shape[0]:
                raise VidcamError(
                    f"target: got scores for {scores.shape[0]} samples, the clip batch has "
                    f"{clip.shape[0]}"
                )
            names = [name for name, _ in layers]
            missing = [name for name in names if name not in store]
            if missing:
                raise VidcamError(
                    f"layer {missing[0]!r} was never reached by the model's forward; pick a layer "
                    "that the forward pass runs"
                )
            tensors = [store[name].tensor for name in names]
            grads = _grads_per_target(scores, tensors, names)
            moments = _class_moments(output, tensors) if self.softmax else None
            acts = [self._volume(store[name].tensor, store[name].output, name) for name in names]
            grads = [
                torch.stack([self._volume(gk, store[name].output, name) for gk in g])
                for g, name in zip(grads, names, strict=True)
            ]
            if moments is not None:
                moments = [
                    tuple(self._volume(m, store[name].output, name) for m in mom)
                    for mom, name in zip(moments, names, strict=True)
                ]
        probs = None
        if indices is not None:
            logits = output.detach()
            probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).softmax(dim=1)
        raws, weights = [], []
        for i, (a, g) in enumerate(zip(acts, grads, strict=True)):
            probs_c = None
            if self.softmax:
                probs_c = probs.gather(1, indices).transpose(0, 1)  # (K, N)
            raw, w = self._cam(a, g, moments[i] if moments else None, probs_c)
            raws.append(raw)
            weights.append(w)
        size = tuple(clip.shape[2:]) if clip.dim() == 5 else (1, *clip.shape[2:])
        maps = _fuse([_upsample(r, size) for r in raws], names)
        return Explanation(
            maps=maps,
            raw_per_layer=tuple(raws),
            weights_per_layer=tuple(weights),
            logits=output.detach() if indices is not None else None,
            probs=probs,
            targets=indices,
            target_scores=scores.detach(),
            layers=tuple(names),
            method=self.method + ("/softmax" if self.softmax else ""),
        )

    def _layers(self, clip: torch.Tensor) -> list[tuple[str, nn.Module]]:
        key = clip.dim()
        if key not in self._resolved:
            self._resolved[key] = resolve_layers(self.model, self.layer, clip)
        return self._resolved[key]

    def _volume(self, tensor: torch.Tensor, output: object, name: str) -> torch.Tensor:
        """A captured tensor (or its gradient) as a float (N, C, t, h, w) volume."""
        t = tensor.detach()
        if self.reshape is not None:
            t = self.reshape(t, output)
        if t.dim() == 4:
            t = t.unsqueeze(2)
        if t.dim() != 5:
            raise VidcamError(
                f"layer {name!r} outputs shape {tuple(t.shape)}, not (N, C, T, H, W) or "
                "(N, C, H, W); pick a convolutional layer or pass reshape=... for token layers"
            )
        return t if t.dtype in (torch.float32, torch.float64) else t.float()

    def _cam(
        self,
        acts: torch.Tensor,
        grads: torch.Tensor,
        moments: tuple[torch.Tensor, ...] | None,
        probs_c: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.method == "gradcam":
            first, alpha = grads, None
        elif moments is not None and probs_c is not None:
            first, d2, d3 = cam_math.softmax_derivatives(grads, *moments, probs_c)
            alpha = cam_math.gradcampp_softmax_alpha(acts, d2, d3, self.pooling)
        else:
            first = grads
            alpha = cam_math.gradcampp_alpha(acts, grads, self.pooling)
        w = cam_math.channel_weights(alpha, first, positive=self.positive, pooling=self.pooling)
        raw = cam_math.weighted_map(acts, w)
        return raw, w[..., 0, 0].transpose(0, 1)


def explain(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    method: Method = "gradcam++",
    softmax: bool = False,
    gradients: Literal["positive", "all"] | None = None,
    pooling: cam_math.Pooling = "volume",
    reshape: Reshape | None = None,
) -> Explanation:
    """One-shot :class:`Explainer` call. clip (N, C, T, H, W) -> maps (N, K, T, H, W)."""
    explainer = Explainer(
        model,
        layer,
        method=method,
        softmax=softmax,
        gradients=gradients,
        pooling=pooling,
        reshape=reshape,
    )
    return explainer(clip, target)


def _check_clip(clip: torch.Tensor) -> torch.Tensor:
    if not isinstance(clip, torch.Tensor):
        raise VidcamError(
            f"clip: expected a torch.Tensor (N, C, T, H, W), got {type(clip).__name__}"
        )
    if clip.dim() not in (4, 5):
        raise VidcamError(
            f"clip: expected shape (N, C, T, H, W) or (N, C, H, W), got {tuple(clip.shape)}; "
            "add a batch axis with clip[None] for a single clip"
        )
    if not clip.is_floating_point():
        raise VidcamError(
            f"clip: expected a float tensor, got {clip.dtype}; convert frames with "
            ".float() / 255 and normalise as the model expects"
        )
    if clip.numel() == 0:
        raise VidcamError(f"clip: empty tensor of shape {tuple(clip.shape)}")
    return clip


def _grads_per_target(
    scores: torch.Tensor, tensors: list[torch.Tensor], names: list[str]
) -> list[torch.Tensor]:
    """∂scores[:, k]/∂tensor for every target k: one backward batched over K. (K, N, ...)."""
    if not scores.requires_grad:
        raise VidcamError("target: the scores are not differentiable w.r.t. the explained layer")
    k = scores.shape[1]
    eye = torch.eye(k, dtype=scores.dtype, device=scores.device)
    grad_outputs = eye[:, None, :].expand(k, *scores.shape).contiguous()
    grads = _batched_grad(scores, tensors, grad_outputs)
    out = []
    for g, t, name in zip(grads, tensors, names, strict=True):
        if g is None:
            raise VidcamError(f"layer {name!r} does not influence the target score; pick another")
        out.append(g.expand(k, *t.shape) if g.dim() == t.dim() else g)
    return out


def _batched_grad(
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


def _class_moments(
    output: torch.Tensor, tensors: list[torch.Tensor]
) -> list[tuple[torch.Tensor, ...]]:
    """Ḡ, V, M3 of the per-class gradients ∂S^k/∂A, weighted by p = softmax(S).

    Gradients of all M classes come from chunked backward passes batched over classes.
    Returns, per tensor, (mean, variance, third central moment), each shaped like the tensor.
    """
    n, m = output.shape
    probs = output.detach().double().softmax(dim=1)  # (N, M)
    per_class = sum(t.numel() for t in tensors)
    chunk = max(1, min(m, _CLASS_CHUNK_ELEMENTS // max(per_class, 1)))
    acc_dtype = torch.float32 if output.device.type == "mps" else torch.float64
    sums = [
        [torch.zeros(t.shape, dtype=acc_dtype, device=t.device) for _ in range(3)] for t in tensors
    ]
    eye = torch.eye(m, dtype=output.dtype, device=output.device)
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        grad_outputs = eye[start:stop, None, :].expand(stop - start, n, m).contiguous()
        grads = _batched_grad(output, tensors, grad_outputs)
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


def _upsample(raw: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(N, K, t, h, w) -> (N, K, T, H, W) by trilinear interpolation."""
    n, k = raw.shape[:2]
    if tuple(raw.shape[2:]) == tuple(size):
        return raw
    up = F.interpolate(
        raw.reshape(n * k, 1, *raw.shape[2:]), size=size, mode="trilinear", align_corners=False
    )
    return up.reshape(n, k, *size)


def normalize_maps(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-max normalise (N, K, ...) per (n, k); constant maps become zeros.

    Returns ``(normalised, constant)`` with ``constant`` a (N, K) bool mask.
    """
    flat = maps.flatten(2)
    lo = flat.amin(dim=2, keepdim=True)
    hi = flat.amax(dim=2, keepdim=True)
    span = hi - lo
    constant = span <= 1e-6 * torch.maximum(hi.abs(), lo.abs()).clamp_min(1e-30)
    out = torch.where(
        constant, torch.zeros_like(flat), (flat - lo) / torch.where(constant, 1.0, span)
    )
    return out.reshape(maps.shape), constant[..., 0]


def _fuse(maps: list[torch.Tensor], names: list[str]) -> torch.Tensor:
    """Normalise each layer's upsampled map, average them, normalise again; warn on constants."""
    normed = [normalize_maps(m)[0] for m in maps]
    fused = normed[0] if len(normed) == 1 else torch.stack(normed).mean(0)
    out, constant = normalize_maps(fused)
    if bool(constant.any()):
        bad = [tuple(i) for i in constant.nonzero().tolist()][:5]
        warnings.warn(
            f"the map at layer(s) {', '.join(names)} is constant (e.g. zero gradients) for "
            f"(sample, target) {bad}; returned as zeros",
            RuntimeWarning,
            stacklevel=3,
        )
    return out
