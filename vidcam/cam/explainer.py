"""Grad-CAM and Grad-CAM++ on video models: ``Explainer`` and ``explain``.

One call = one forward with hooks on the explained layer(s) + one backward, batched over the K
targets, down to those layers (plus, for the softmax variant, a chunked batched backward over
all classes). The forward records autograd only from the explained layer(s) on: the part before
them runs like plain inference (see :mod:`vidcam.cam.prefix`). Everything stays on the model's
device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vidcam.cam import formulas
from vidcam.cam.backward import class_moments, grads_per_target
from vidcam.cam.hooks import eval_mode
from vidcam.cam.layers import LayerArg, resolve_layers
from vidcam.cam.maps import fuse, upsample
from vidcam.cam.prefix import autograd_errors, record_forward
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError
from vidcam.models.spec import Reshape

Method = Literal["gradcam", "gradcam++"]
METHODS = ("gradcam", "gradcam++")


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
    flags, ``requires_grad``, parameters' ``.grad``) and the caller's grad mode. Autograd records
    only from the explained layer(s) to the score; calling it inside ``torch.inference_mode()``
    is an error (``torch.no_grad()`` around it is fine).
    """

    #: private: record the whole forward (the engine before the gradient-free prefix), for
    #: benchmarks and equivalence tests only
    _full_graph: bool = False

    def __init__(
        self,
        model: nn.Module,
        layer: LayerArg | Sequence[LayerArg] | None = None,
        *,
        method: Method = "gradcam++",
        softmax: bool = False,
        gradients: Literal["positive", "all"] | None = None,
        pooling: formulas.Pooling = "volume",
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
        self.pooling: formulas.Pooling = pooling
        self.reshape = reshape
        self._resolved: dict[int, list[tuple[str, nn.Module]]] = {}
        # the weight rule, picked once: (grads, moments, probs_c, acts) -> (first, alpha)
        if method == "gradcam":
            self._rule = _gradcam_rule
        elif softmax:
            self._rule = self._gradcampp_softmax_rule
        else:
            self._rule = self._gradcampp_rule

    def __repr__(self) -> str:
        layer = self.layer if self.layer is not None else "auto"
        extra = ", softmax=True" if self.softmax else ""
        grads = "positive" if self.positive else "all"
        return (
            f"Explainer({type(self.model).__name__}, layer={layer!r}, method={self.method!r}"
            f"{extra}, gradients={grads!r}, pooling={self.pooling!r}"
            f"{', reshape=' + getattr(self.reshape, '__name__', 'custom') if self.reshape else ''})"
        )

    def __call__(self, clip: torch.Tensor, target: Target = None) -> Explanation:
        """Explain ``clip`` (N, C, T, H, W) — or (N, C, H, W), treated as T = 1 — for ``target``.

        ``target``: None/"top1", "topk:K", an int, a sequence of ints (the same K classes for
        every sample), an (N, K) LongTensor, or a callable ``output -> (N,) | (N, K)`` scores.
        """
        clip = check_clip(clip)
        if self.softmax and callable(target) and not isinstance(target, torch.Tensor):
            raise VidcamError("target: the softmax variant needs class indices, not a callable")
        layers = self._layers(clip)
        with eval_mode(self.model), torch.enable_grad(), autograd_errors():
            output, store = record_forward(self.model, clip, layers, full_graph=self._full_graph)
            names = [name for name, _ in layers]
            missing = [name for name in names if name not in store]
            if missing:
                raise VidcamError(
                    f"layer {missing[0]!r} was never reached by the model's forward; pick a layer "
                    "that the forward pass runs"
                )
            scores, indices = resolve_targets(output, target)
            if scores.shape[0] != clip.shape[0]:
                raise VidcamError(
                    f"target: got scores for {scores.shape[0]} samples, the clip batch has "
                    f"{clip.shape[0]}"
                )
            tensors = [store[name].tensor for name in names]
            grads = grads_per_target(scores, tensors, names)
            moments = class_moments(output, tensors) if self.softmax else None
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
        maps = fuse([upsample(r, size) for r in raws], names)
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
        first, alpha = self._rule(acts, grads, moments, probs_c)
        w = formulas.channel_weights(alpha, first, positive=self.positive, pooling=self.pooling)
        raw = formulas.weighted_map(acts, w)
        return raw, w[..., 0, 0].transpose(0, 1)

    def _gradcampp_rule(self, acts, grads, moments, probs_c):
        """Eq. 19 (exponential score): alpha from the gradients' powers."""
        return grads, formulas.gradcampp_alpha(acts, grads, self.pooling)

    def _gradcampp_softmax_rule(self, acts, grads, moments, probs_c):
        """Eqs. 21–24 (softmax score): derivatives of Y from the class moments."""
        first, d2, d3 = formulas.softmax_derivatives(grads, *moments, probs_c)
        return first, formulas.gradcampp_softmax_alpha(acts, d2, d3, self.pooling)


def _gradcam_rule(acts, grads, moments, probs_c):
    """Grad-CAM: the mean gradient (alpha = None: uniform)."""
    return grads, None


def explain(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    method: Method = "gradcam++",
    softmax: bool = False,
    gradients: Literal["positive", "all"] | None = None,
    pooling: formulas.Pooling = "volume",
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


def check_clip(clip: torch.Tensor) -> torch.Tensor:
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
