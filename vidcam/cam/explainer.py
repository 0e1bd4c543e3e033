"""CAMs on video models: ``Explainer`` and ``explain``.

The methods are the engine rows of the method table (:data:`vidcam.cam.methods.METHODS`): the
gradient methods (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM), Eigen-CAM and Score-CAM
(no gradient), and the input-space perturbation methods Video RISE and spatiotemporal extremal
perturbation (no layer; :mod:`vidcam.cam.perturbation`). Each row's ``kind`` says what is
captured; its map function (:mod:`vidcam.cam.dispatch`) turns that into the row's map. One call
= one forward with hooks on the explained layer(s) + one backward, batched over the K targets,
down to those layers (plus, for the Grad-CAM++ softmax variant, a chunked batched backward over
all classes). An Explainer of several methods (``method=("gradcam", "layercam", ...)``,
:meth:`Explainer.explain_all`) computes all of them from that ONE forward and ONE backward:
every gradient method reads the same A and g. The forward records autograd only from the
explained layer(s) on (see :mod:`vidcam.cam.prefix`); without a gradient method it records
nothing (``torch.no_grad``). Score-CAM adds its masked forwards (:mod:`vidcam.cam.scorecam`),
without autograd; RISE and extremal perturbation add theirs (extremal: each with a backward to
its mask) after the plain forward that picks the targets. Everything stays on the model's
device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import torch
from torch import nn

from vidcam.cam import formulas
from vidcam.cam.backward import class_moments, grads_per_target
from vidcam.cam.checks import (  # noqa: F401 (check_clip re-exported)
    check_batch,
    check_clip,
    check_methods,
    check_model,
    check_options,
    check_reached,
    free_targets,
)
from vidcam.cam.dispatch import MapRequest, map_function
from vidcam.cam.explanation import INPUT_LAYER, Explanation
from vidcam.cam.hooks import capture_layers, eval_mode
from vidcam.cam.layers import LayerArg, resolve_layers
from vidcam.cam.maps import fuse, upsample
from vidcam.cam.methods import DEFAULT_METHOD, ENGINE_METHODS, METHODS, Method, MethodId
from vidcam.cam.perturbation import Perturbation
from vidcam.cam.prefix import autograd_errors, record_forward
from vidcam.cam.reshape import Reshape
from vidcam.cam.scorecam import check_batch_size
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError

__all__ = ["ENGINE_METHODS", "INPUT_LAYER", "Explainer", "Explanation", "check_clip", "explain"]


class Explainer:
    """CAMs for a video (or image) model: one method, or several from one forward/backward.

    Args:
        model: any ``nn.Module`` taking one clip tensor.
        layer: dotted module name, a submodule, a sequence of those (maps fused onto one
            timeline, e.g. SlowFast's two pathways), or None to pick the last 3D-conv block.
        method: one of :data:`~vidcam.cam.methods.ENGINE_METHODS` (the engine rows of the
            method table :data:`vidcam.cam.methods.METHODS`), or a sequence of them (then call
            :meth:`explain_all`). Input-perturbation methods (RISE, extremal) need no layer
            (with only them, ``layer`` is not resolved).
        softmax: Grad-CAM++ on Y = softmax(S) (paper eqs. 21–24) instead of Y = exp(S).
        gradients: "positive" (relu of the gradient inside the weights; Grad-CAM++ default)
            or "all" (Grad-CAM and XGrad-CAM default); applies to those three. None picks each
            method's default (LayerCAM is relu(g) ⊙ A and HiResCAM g ⊙ A by definition).
        pooling: "volume" (one weight per channel over t×h×w) or "frame" (per time slice);
            applies to Grad-CAM, Grad-CAM++ and XGrad-CAM.
        reshape: turns a token layer's output into (N, C, T, H, W); see ``vidcam.models.spec``.
        batch_size: masked clips per forward of Score-CAM, RISE and extremal perturbation
            (None: a 128 MiB input budget, at most 32; extremal, which keeps its graph for a
            backward, at most 8); bounds their memory.
        scorecam_baseline: Score-CAM weights as the paper's increase of confidence
            p(X ⊙ H) − p(0) instead of p(X ⊙ H) (the authors' code).
        perturbation: RISE's and extremal perturbation's options (masks, grid, fill, seed,
            area, steps, ...; :class:`vidcam.cam.perturbation.Perturbation`); None: defaults.

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
        method: MethodId | Sequence[MethodId] = DEFAULT_METHOD,
        softmax: bool = False,
        gradients: Literal["positive", "all"] | None = None,
        pooling: formulas.Pooling = "volume",
        reshape: Reshape | None = None,
        batch_size: int | None = None,
        scorecam_baseline: bool = False,
        perturbation: Perturbation | None = None,
    ) -> None:
        check_model(model)
        methods = check_methods(method)
        check_options(methods, gradients, pooling, softmax)
        check_batch_size(batch_size)
        if perturbation is not None and not isinstance(perturbation, Perturbation):
            raise VidcamError(
                "perturbation: give a vidcam.cam.perturbation.Perturbation(...) or None"
            )
        self.perturbation = perturbation or Perturbation()
        self.model = model
        self.layer = layer
        self.methods: tuple[str, ...] = methods
        self.method = methods[0]
        self.softmax = softmax
        self.gradients = gradients
        self.positive = self._positive(METHODS[self.method])
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
        from one forward (+ one backward when a gradient method is among them; + the masked
        forwards of Score-CAM, RISE and extremal perturbation)."""
        clip = check_clip(clip)
        rows = [METHODS[m] for m in self.methods]
        self._check_target(rows, target)
        layers = self._layers(clip) if any(r.needs_layer for r in rows) else []
        names = [name for name, _ in layers]
        with eval_mode(self.model):
            grads = moments = None
            if any(r.needs_gradient for r in rows):
                output, scores, indices, acts, grads, moments = self._with_grads(
                    clip, target, layers
                )
            else:  # no hooks at all when only perturbation methods run
                output, scores, indices, acts = self._without_grads(clip, target, layers)
            probs = None
            if indices is not None:
                logits = output.detach()
                probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).softmax(dim=1)
            common = {
                "logits": output.detach() if indices is not None else None,
                "probs": probs,
                "targets": indices,
                "target_scores": scores.detach(),
            }
            request = MapRequest(
                self.model,
                clip,
                indices,
                scores.shape[1],
                batch_size=self.batch_size,
                scorecam_baseline=self.scorecam_baseline,
                perturbation=self.perturbation,
            )
            layered = (names, acts, grads, moments, probs)
            out = {}
            for r in rows:  # a loop, not a comprehension: warnings point at our caller
                out[r.id] = self._explain_row(r, request, layered, common)
        return out

    def _check_target(self, rows: list[Method], target: Target) -> None:
        """A callable target suits neither the softmax variant nor the masked methods."""
        if not callable(target) or isinstance(target, torch.Tensor):
            return
        if self.softmax:
            raise VidcamError("target: the softmax variant needs class indices, not a callable")
        masked = [r.id for r in rows if r.scores_masked_clips]
        if masked:
            raise VidcamError(
                f"target: {masked[0]} scores masked clips by class; give class indices"
            )

    def _positive(self, row: Method) -> bool:
        """Whether ``row`` weights with relu(g): its own gradients, or ``gradients=``."""
        chosen = self.gradients if row.gradients_option and self.gradients else row.gradients
        return chosen == "positive"

    def _explain_row(
        self, row: Method, request: MapRequest, layered: tuple, common: dict[str, Any]
    ) -> Explanation:
        """One row's Explanation: its map function (:mod:`vidcam.cam.dispatch`) on every
        captured layer, or once on the input; maps upsampled to the clip and fused."""
        names, acts, grads, moments, probs = layered
        softmax = self.softmax and row.softmax
        request = replace(
            request,
            positive=self._positive(row),
            pooling=self.pooling if row.pooled else "volume",
            probs_c=probs.gather(1, request.indices).transpose(0, 1) if softmax else None,
        )
        fn = map_function(row.id)
        if not row.needs_layer:
            results, names = [fn(request)], [INPUT_LAYER]
        else:
            results = [
                fn(
                    replace(
                        request,
                        acts=a,
                        grads=grads[i] if row.needs_gradient else None,
                        moments=moments[i] if softmax else None,
                    )
                )
                for i, a in enumerate(acts)
            ]
        size = _size(request.clip)
        full = [upsample(r.raw, size) if r.full is None else r.full for r in results]
        return Explanation(
            maps=fuse(full, names, stacklevel=4),
            raw_per_layer=tuple(r.raw for r in results),
            weights_per_layer=tuple(r.weights for r in results),
            layers=tuple(names),
            method=row.id + ("/softmax" if softmax else ""),
            forwards=1 + sum(r.forwards for r in results),
            masked_clips=sum(r.masked_clips for r in results),
            backwards=sum(r.backwards for r in results),
            **common,
        )

    def _with_grads(self, clip: torch.Tensor, target: Target, layers) -> tuple:
        """Hooked forward (autograd from the layers on), targets, one batched backward."""
        names = [name for name, _ in layers]
        with torch.enable_grad(), autograd_errors():
            output, store = record_forward(self.model, clip, layers, full_graph=self._full_graph)
            check_reached(store, names)
            scores, indices = resolve_targets(output, target)
            check_batch(scores, clip)
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
        check_reached(store, names)
        scores, indices = free_targets(output, target)
        check_batch(scores, clip)
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


def _size(clip: torch.Tensor) -> tuple[int, int, int]:
    """(T, H, W) of a clip (N, C, T, H, W); T = 1 for (N, C, H, W)."""
    return tuple(clip.shape[2:]) if clip.dim() == 5 else (1, *clip.shape[2:])  # type: ignore[return-value]


def explain(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    method: MethodId = DEFAULT_METHOD,
    softmax: bool = False,
    gradients: Literal["positive", "all"] | None = None,
    pooling: formulas.Pooling = "volume",
    reshape: Reshape | None = None,
    batch_size: int | None = None,
    scorecam_baseline: bool = False,
    perturbation: Perturbation | None = None,
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
        perturbation=perturbation,
    )
    return explainer(clip, target)
