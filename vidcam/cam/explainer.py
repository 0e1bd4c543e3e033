"""CAMs on video models: ``Explainer`` and ``explain``.

Methods: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM (gradient methods), Eigen-CAM
and Score-CAM (no gradient). One call = one forward with hooks on the explained layer(s) + one
backward, batched over the K targets, down to those layers (plus, for the Grad-CAM++ softmax
variant, a chunked batched backward over all classes). An Explainer of several methods
(``method=("gradcam", "layercam", ...)``, :meth:`Explainer.explain_all`) computes all of them
from that ONE forward and ONE backward: every gradient method reads the same A and g. The
forward records autograd only from the explained layer(s) on (see :mod:`vidcam.cam.prefix`);
without a gradient method it records nothing (``torch.no_grad``). Score-CAM adds its masked
forwards (:mod:`vidcam.cam.scorecam`), without autograd. Everything stays on the model's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from vidcam.cam import formulas, rules
from vidcam.cam.backward import class_moments, grads_per_target
from vidcam.cam.hooks import capture_layers, eval_mode
from vidcam.cam.layers import LayerArg, resolve_layers
from vidcam.cam.maps import fuse, upsample
from vidcam.cam.prefix import autograd_errors, record_forward
from vidcam.cam.scorecam import check_batch_size, score_weights
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError
from vidcam.models.spec import Reshape

Method = Literal["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam"]
METHODS = rules.ENGINE_METHODS


@dataclass(frozen=True)
class Explanation:
    """Result of one explanation call (all tensors detached, on the model's device).

    Attributes:
        maps: (N, K, T, H, W) in [0, 1]; upsampled (trilinear) to the clip, min-max normalised
            per (sample, target); multiple layers are fused by averaging their normalised maps.
        raw_per_layer: per layer, (N, K, t, h, w) feature-level maps (e.g. relu(Σ_k w_k A_k)).
        weights_per_layer: per layer, channel weights (N, K, C, t|1); LayerCAM and HiResCAM:
            their elementwise weights (N, K, C, t, h, w); Eigen-CAM: the principal direction.
        logits: (N, num_classes) model output, or None when it is not a class-score matrix.
        probs: (N, num_classes) softmax of ``logits``, or None.
        targets: (N, K) class indices, or None for a callable target.
        target_scores: (N, K) the explained scores (logits of the targets, or the callable's).
        layers: names of the explained layers.
        method: the method id ("gradcam++/softmax" for the softmax variant).
        forwards: model forward calls this method needed (1, or 1 + Score-CAM's batches).
        masked_clips: clips Score-CAM scored through those forwards (0 for the others).
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
    forwards: int = 1
    masked_clips: int = 0

    @property
    def raw(self) -> torch.Tensor:
        """(N, K, t, h, w) feature-level map of the first explained layer."""
        return self.raw_per_layer[0]


class Explainer:
    """CAMs for a video (or image) model: one method, or several from one forward/backward.

    Args:
        model: any ``nn.Module`` taking one clip tensor.
        layer: dotted module name, a submodule, a sequence of those (maps fused onto one
            timeline, e.g. SlowFast's two pathways), or None to pick the last 3D-conv block.
        method: one of :data:`METHODS` ("gradcam", "gradcam++", "xgradcam", "layercam",
            "hirescam", "eigencam", "scorecam"), or a sequence of them (then call
            :meth:`explain_all`).
        softmax: Grad-CAM++ on Y = softmax(S) (paper eqs. 21–24) instead of Y = exp(S).
        gradients: "positive" (relu of the gradient inside the weights; Grad-CAM++ default)
            or "all" (Grad-CAM and XGrad-CAM default); applies to those three. None picks each
            method's default (LayerCAM is relu(g) ⊙ A and HiResCAM g ⊙ A by definition).
        pooling: "volume" (one weight per channel over t×h×w) or "frame" (per time slice);
            applies to Grad-CAM, Grad-CAM++ and XGrad-CAM.
        reshape: turns a token layer's output into (N, C, T, H, W); see ``vidcam.models.spec``.
        batch_size: Score-CAM's masked clips per forward (None: a 128 MiB input budget, at
            most 32); bounds its memory.
        scorecam_baseline: Score-CAM weights as the paper's increase of confidence
            p(X ⊙ H) − p(0) instead of p(X ⊙ H) (the authors' code).

    The object holds no hooks between calls; each call restores the model exactly (train/eval
    flags, ``requires_grad``, parameters' ``.grad``) and the caller's grad mode. Autograd records
    only from the explained layer(s) to the score; calling a gradient method inside
    ``torch.inference_mode()`` is an error (``torch.no_grad()`` around it is fine).
    """

    #: private: record the whole forward (the engine before the gradient-free prefix), for
    #: benchmarks and equivalence tests only
    _full_graph: bool = False

    def __init__(
        self,
        model: nn.Module,
        layer: LayerArg | Sequence[LayerArg] | None = None,
        *,
        method: Method | Sequence[Method] = "gradcam++",
        softmax: bool = False,
        gradients: Literal["positive", "all"] | None = None,
        pooling: formulas.Pooling = "volume",
        reshape: Reshape | None = None,
        batch_size: int | None = None,
        scorecam_baseline: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise VidcamError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        methods = _check_methods(method)
        if gradients not in (None, "positive", "all"):
            raise VidcamError(f"gradients {gradients!r} must be 'positive', 'all' or None")
        if gradients is not None and not set(methods) & set(rules.DEFAULT_GRADIENTS):
            raise VidcamError(
                f"gradients= applies to {', '.join(rules.DEFAULT_GRADIENTS)}; {methods[0]} "
                "fixes its own (LayerCAM: relu(g), HiResCAM: g); leave gradients=None"
            )
        if pooling not in ("volume", "frame"):
            raise VidcamError(f"pooling {pooling!r} must be 'volume' or 'frame'")
        if pooling == "frame" and not set(methods) & set(rules.POOLED_METHODS):
            raise VidcamError(
                f"pooling='frame' applies to {', '.join(rules.POOLED_METHODS)}; {methods[0]} "
                "does not pool weights: leave pooling='volume'"
            )
        if softmax and "gradcam++" not in methods:
            raise VidcamError(
                "softmax=True is the Grad-CAM++ softmax variant; use method='gradcam++'"
            )
        check_batch_size(batch_size)
        self.model = model
        self.layer = layer
        self.methods: tuple[str, ...] = methods
        self.method = methods[0]
        self.softmax = softmax
        self.gradients = gradients
        self._positive = {
            m: (gradients or d) == "positive" for m, d in rules.DEFAULT_GRADIENTS.items()
        }
        self.positive = self._positive.get(self.method, self.method == "layercam")
        self.pooling: formulas.Pooling = pooling
        self.reshape = reshape
        self.batch_size = batch_size
        self.scorecam_baseline = scorecam_baseline
        self._resolved: dict[int, list[tuple[str, nn.Module]]] = {}

    def __repr__(self) -> str:
        layer = self.layer if self.layer is not None else "auto"
        method = self.method if len(self.methods) == 1 else self.methods
        extra = ", softmax=True" if self.softmax else ""
        grads = f", gradients={self.gradients!r}" if self.gradients else ""
        return (
            f"Explainer({type(self.model).__name__}, layer={layer!r}, method={method!r}"
            f"{extra}{grads}, pooling={self.pooling!r}"
            f"{', reshape=' + getattr(self.reshape, '__name__', 'custom') if self.reshape else ''})"
        )

    def __call__(self, clip: torch.Tensor, target: Target = None) -> Explanation:
        """Explain ``clip`` (N, C, T, H, W) — or (N, C, H, W), treated as T = 1 — for ``target``.

        ``target``: None/"top1", "topk:K", an int, a sequence of ints (the same K classes for
        every sample), an (N, K) LongTensor, or a callable ``output -> (N,) | (N, K)`` scores.
        """
        if len(self.methods) > 1:
            raise VidcamError(
                f"this Explainer computes {len(self.methods)} methods; call "
                ".explain_all(clip, target), which returns {method: Explanation}"
            )
        return self.explain_all(clip, target)[self.method]

    def explain_all(self, clip: torch.Tensor, target: Target = None) -> dict[str, Explanation]:
        """Every method of this Explainer for ``clip`` and ``target`` (as :meth:`__call__`),
        from one forward (+ one backward when a gradient method is among them)."""
        clip = check_clip(clip)
        is_callable = callable(target) and not isinstance(target, torch.Tensor)
        if is_callable and self.softmax:
            raise VidcamError("target: the softmax variant needs class indices, not a callable")
        if is_callable and "scorecam" in self.methods:
            raise VidcamError("target: scorecam weighs softmax scores; give class indices")
        layers = self._layers(clip)
        names = [name for name, _ in layers]
        with eval_mode(self.model):
            if any(m in rules.GRADIENT_METHODS for m in self.methods):
                output, scores, indices, acts, grads, moments = self._with_grads(
                    clip, target, layers
                )
            else:
                output, scores, indices, acts = self._without_grads(clip, target, layers)
                grads = moments = None
            probs = None
            if indices is not None:
                logits = output.detach()
                probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).softmax(dim=1)
            size = tuple(clip.shape[2:]) if clip.dim() == 5 else (1, *clip.shape[2:])
            out = {}
            for m in self.methods:
                raws, weights, forwards, masked = [], [], 1, 0
                for i, a in enumerate(acts):
                    if m in rules.GRADIENT_METHODS:
                        softmax = self.softmax and m == "gradcam++"
                        raw, w = rules.gradient_cam(
                            m,
                            a,
                            grads[i],
                            positive=self._positive.get(m, False),
                            pooling=self.pooling if m in rules.POOLED_METHODS else "volume",
                            moments=moments[i] if softmax else None,
                            probs_c=probs.gather(1, indices).transpose(0, 1) if softmax else None,
                        )
                    elif m == "eigencam":
                        raw, w = rules.eigen_cam(a, scores.shape[1])
                    else:
                        sw = score_weights(
                            self.model,
                            clip,
                            a,
                            indices,
                            batch_size=self.batch_size,
                            baseline=self.scorecam_baseline,
                        )
                        raw = formulas.weighted_map(a, sw.weights)
                        w = sw.weights[..., 0, 0].transpose(0, 1)
                        forwards += sw.forwards
                        masked += sw.clips
                    raws.append(raw)
                    weights.append(w)
                out[m] = Explanation(
                    maps=fuse([upsample(r, size) for r in raws], names),
                    raw_per_layer=tuple(raws),
                    weights_per_layer=tuple(weights),
                    logits=output.detach() if indices is not None else None,
                    probs=probs,
                    targets=indices,
                    target_scores=scores.detach(),
                    layers=tuple(names),
                    method=m + ("/softmax" if self.softmax and m == "gradcam++" else ""),
                    forwards=forwards,
                    masked_clips=masked,
                )
        return out

    def _with_grads(self, clip: torch.Tensor, target: Target, layers) -> tuple:
        """Hooked forward (autograd from the layers on), targets, one batched backward."""
        names = [name for name, _ in layers]
        with torch.enable_grad(), autograd_errors():
            output, store = record_forward(self.model, clip, layers, full_graph=self._full_graph)
            _check_reached(store, names)
            scores, indices = resolve_targets(output, target)
            _check_batch(scores, clip)
            tensors = [store[name].tensor for name in names]
            grads = grads_per_target(scores, tensors, names)
            moments = class_moments(output, tensors) if self.softmax else None
            acts = [self._volume(store[n].tensor, store[n].output, n) for n in names]
            grads = [
                torch.stack([self._volume(gk, store[name].output, name) for gk in g])
                for g, name in zip(grads, names, strict=True)
            ]
            if moments is not None:
                moments = [
                    tuple(self._volume(m, store[name].output, name) for m in mom)
                    for mom, name in zip(moments, names, strict=True)
                ]
        return output, scores.detach(), indices, acts, grads, moments

    def _without_grads(self, clip: torch.Tensor, target: Target, layers) -> tuple:
        """Hooked forward without autograd (Eigen-CAM, Score-CAM); targets on the output."""
        names = [name for name, _ in layers]
        with capture_layers(layers) as store, torch.no_grad():
            output = self.model(clip)
        _check_reached(store, names)
        scores, indices = _free_targets(output, target)
        _check_batch(scores, clip)
        acts = [self._volume(store[n].tensor, store[n].output, n) for n in names]
        return output, scores, indices, acts

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


def _check_methods(method: Any) -> tuple[str, ...]:
    items = [method] if isinstance(method, str) else list(method) if method is not None else []
    if not items:
        raise VidcamError(f"method: give one of {', '.join(METHODS)} (or a list of them)")
    for m in items:
        if m not in METHODS:
            hint = (
                "; guided variants are vidcam.cam.guided.guided_cam" if "guided" in str(m) else ""
            )
            raise VidcamError(f"method {m!r} is not one of {', '.join(METHODS)}{hint}")
    return tuple(dict.fromkeys(items))


def _check_reached(store: dict, names: list[str]) -> None:
    missing = [name for name in names if name not in store]
    if missing:
        raise VidcamError(
            f"layer {missing[0]!r} was never reached by the model's forward; pick a layer "
            "that the forward pass runs"
        )


def _check_batch(scores: torch.Tensor, clip: torch.Tensor) -> None:
    if scores.shape[0] != clip.shape[0]:
        raise VidcamError(
            f"target: got scores for {scores.shape[0]} samples, the clip batch has {clip.shape[0]}"
        )


def _free_targets(output: Any, target: Target) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`resolve_targets` on an output computed without autograd: the targets are read
    from a detached copy made a leaf (no graph reaches into the model)."""
    if isinstance(output, torch.Tensor):
        output = output.detach().requires_grad_(True)
    with torch.enable_grad():
        scores, indices = resolve_targets(output, target)
    return scores.detach(), indices


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
    batch_size: int | None = None,
    scorecam_baseline: bool = False,
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
        batch_size=batch_size,
        scorecam_baseline=scorecam_baseline,
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
