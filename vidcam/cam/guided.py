"""Pixel-space video explanations: guided backprop and Guided Grad-CAM / Guided Grad-CAM++.

Guided Grad-CAM (Selvaraju et al., 2017) multiplies the guided-backprop gradient of a class
score w.r.t. the clip (fine detail, not class-discriminative) with the class's upsampled CAM
(coarse, class-discriminative)::

    res = guided_cam(model, clip, target="topk:2")   # clip (N, C, T, H, W)
    res.product                                      # (N, K, C, T, H, W)
    frames = normalize_per_clip(res.product[0, 0])   # (T, H, W, C) in [0, 1] for display

Guided backpropagation (Springenberg et al., 2015) through video models:

At every rectifier the backward pass keeps only positive gradients where the forward input was
positive::

    grad_in = relu(grad_out) * (input > 0)

How: for ONE forward, a :class:`torch.overrides.TorchFunctionMode` watches every torch call. When a
rectifier runs (``nn.ReLU`` / ``F.relu`` / ``torch.relu`` / ``x.relu()``, their in-place forms,
``ReLU6``, ``LeakyReLU``) a tensor hook is put on its output that rectifies the incoming
gradient: ``grad -> relu(grad)``. The activation's own backward then multiplies by its local
derivative, so the result is ``relu(grad_out) * f'(input)``: exactly the rule above for ReLU
(``(input > 0)``), ``(0 < input < 6)`` for ReLU6, and ``1 | negative_slope`` for LeakyReLU.

Because the mode sees *calls*, functional activations inside a ``forward`` (``F.relu(x)``, as
in vidcam's I3D) are guided just like ``nn.ReLU`` modules; in-place ReLUs work too (the hook
sits on the rectified tensor). What it can not see: ops run inside TorchScript / compiled
graphs. A warning names the activations that ran but pass gradients through unchanged (GELU,
SiLU/Swish, Sigmoid, Tanh, ELU, Hardswish, ...: the ops seen in the forward plus leaf modules
named like activations), and warns when no rectifier ran at all (the result is then the plain
input gradient).

The forward output is bit-identical (nothing in the forward changes), the model's train/eval
flags are restored, parameters' ``.grad`` is untouched (``torch.autograd.grad`` w.r.t. an internal
copy of the clip), and the mode is gone when the call returns or raises.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from vidcam.cam.backward import batched_grad, one_hot_cotangents
from vidcam.cam.checks import check_batch, check_clip, check_model
from vidcam.cam.explainer import Explainer, Explanation
from vidcam.cam.hooks import eval_mode
from vidcam.cam.layers import LayerArg
from vidcam.cam.methods import DEFAULT_METHOD, METHODS, MethodId
from vidcam.cam.targets import Target, resolve_targets
from vidcam.errors import VidcamError

__all__ = [
    "GuidedBackpropWarning",
    "GuidedExplanation",
    "guided_backprop",
    "guided_cam",
    "normalize_per_clip",
]


@dataclass(frozen=True)
class GuidedExplanation:
    """Guided Grad-CAM(++) result (tensors detached, on the model's device).

    Attributes:
        guided: (N, K, C, T, H, W) guided-backprop gradients of the target scores.
        cam: the engine's :class:`~vidcam.Explanation` for the same targets (maps (N, K, T, H, W)
            in [0, 1]).
        product: (N, K, C, T, H, W) = ``guided * cam.maps[:, :, None]``.
    """

    guided: torch.Tensor
    cam: Explanation
    product: torch.Tensor

    @property
    def targets(self) -> torch.Tensor | None:
        """(N, K) class indices explained (None for a callable target)."""
        return self.cam.targets


class GuidedBackpropWarning(UserWarning):
    """Guided backprop could not guide (part of) the model; the message says which part."""


#: Rectifiers: their output gradient is rectified (guided).
_GUIDED = frozenset(
    {
        F.relu,
        F.relu_,  # is torch.relu_
        torch.relu,
        torch.Tensor.relu,
        torch.Tensor.relu_,
        F.relu6,
        torch._C._nn.relu6,
        torch._C._nn.relu6_,
        F.leaky_relu,
        F.leaky_relu_,
    }
)
#: Guided when clipping below at >= 0 (ReLU6 is hardtanh(0, 6)); hardtanh(-1, 1) is no rectifier.
_HARDTANH = frozenset({F.hardtanh, F.hardtanh_, torch._C._nn.hardtanh, torch._C._nn.hardtanh_})

#: Elementwise activations that run unguided: their gradient passes through unchanged.
_PASSED: dict[Any, str] = {}
for _name in [
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "elu",
    "elu_",
    "celu",
    "celu_",
    "selu",
    "selu_",
    "softplus",
    "prelu",
    "rrelu",
    "rrelu_",
    "glu",
    "logsigmoid",
    "softsign",
    "tanhshrink",
    "threshold",
    "threshold_",
    "sigmoid",
    "tanh",
    "softshrink",
    "hardshrink",
]:
    if hasattr(F, _name):
        _PASSED[getattr(F, _name)] = _name.rstrip("_")
for _name in ("sigmoid", "sigmoid_", "tanh", "tanh_", "prelu", "selu", "celu", "rrelu"):
    for _owner in (torch, torch.Tensor):
        if hasattr(_owner, _name):
            _PASSED[getattr(_owner, _name)] = _name.rstrip("_")
_PASSED[torch._C._nn.gelu] = "gelu"
_PASSED[torch._C._nn.log_sigmoid] = "logsigmoid"

_GUIDE = "guide"


def _classify(func: Callable, args: tuple, kwargs: dict) -> str | None:
    """``_GUIDE`` for a rectifier, the activation's name if it runs unguided, else None."""
    if getattr(func, "__hash__", None) is None:  # unhashable callables are no activations
        return None
    if func in _HARDTANH:
        low = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        return _GUIDE if float(low) >= 0.0 else "hardtanh"
    if func in _GUIDED:
        return _GUIDE
    return _PASSED.get(func)


def _rectify(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0)


class _GuidedMode(TorchFunctionMode):
    """Active during one forward: hooks rectifiers' outputs, records unguided activations."""

    def __init__(self) -> None:
        super().__init__()
        self.guided = 0
        self.passed: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        kind = _classify(func, args, kwargs)
        if kind == _GUIDE:
            self.guided += 1
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(_rectify)
        elif kind is not None:
            self.passed.add(kind)
        return out


#: Class-name fragments of activation modules (custom ones too, e.g. pytorchvideo's Swish).
_ACTIVATION_NAME = re.compile(r"swish|gelu|silu|mish|sigmoid|tanh|elu|softplus|glu", re.I)
_GUIDED_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)


def _unguided_modules(model: nn.Module, seen: set[str]) -> set[str]:
    """Class names of leaf activation modules that are no rectifiers (and not already named)."""
    names = set()
    for module in model.modules():
        cls = type(module).__name__
        if next(module.children(), None) is not None or isinstance(module, _GUIDED_MODULES):
            continue
        if isinstance(module, nn.Hardtanh) and module.min_val >= 0:  # guided like ReLU6
            continue
        if _ACTIVATION_NAME.search(cls) and cls.lower() not in seen:
            names.add(cls)
    return names


def _warn(model: nn.Module, mode: _GuidedMode) -> None:
    """Warn (at the caller of the public function) about unguided or missing activations."""
    passed = mode.passed | _unguided_modules(model, mode.passed)
    if passed:
        names = ", ".join(sorted(passed, key=str.lower))
        warnings.warn(
            f"guided backprop: these activations are not rectifiers and pass gradients through "
            f"unguided: {names} (only ReLU, ReLU6 and LeakyReLU are guided)",
            GuidedBackpropWarning,
            stacklevel=4,
        )
    if mode.guided == 0:
        warnings.warn(
            "guided backprop: no ReLU/ReLU6/LeakyReLU ran in the forward (the model has none, "
            "or hides its ops in TorchScript/compiled code), so the result is the plain input "
            "gradient",
            GuidedBackpropWarning,
            stacklevel=4,
        )


def _guided_gradients(
    model: nn.Module, clip: torch.Tensor, target: Target = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Guided gradients plus what the forward decided (called by the public functions only).

    Returns ``(guided, logits, indices)``: ``guided`` (N, K, C, T, H, W) (T = 1 for a 4D clip),
    ``logits`` the detached model output, ``indices`` the (N, K) resolved class indices (None for
    a callable target). One forward; the K targets share one batched backward.
    """
    check_model(model)
    check_clip(clip)
    x = clip.detach().clone().requires_grad_(True)  # the user's tensor is never touched
    mode = _GuidedMode()
    with eval_mode(model), torch.enable_grad():
        with mode:
            output = model(x)
        if isinstance(output, torch.Tensor) and not output.requires_grad:
            raise VidcamError(
                "the model output does not depend differentiably on the clip (is the forward "
                "wrapped in torch.no_grad or does it detach?)"
            )
        _warn(model, mode)
        scores, indices = resolve_targets(output, target)
        check_batch(scores, clip)
        (grad,) = batched_grad(scores, [x], one_hot_cotangents(scores))
    if grad is None:
        raise VidcamError("target: the scores do not depend on the clip; nothing to explain")
    guided = grad.movedim(0, 1)  # (N, K, C, [T,] H, W)
    if clip.dim() == 4:
        guided = guided.unsqueeze(3)
    logits = output.detach() if isinstance(output, torch.Tensor) else output
    return guided.contiguous(), logits, indices


def guided_backprop(model: nn.Module, clip: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Guided-backprop gradients of the target scores w.r.t. the clip.

    Args:
        model: takes one clip tensor, returns (N, num_classes) scores (any output for a
            callable target).
        clip: (N, C, T, H, W) float on the model's device, or (N, C, H, W) (T = 1).
        target: as in :class:`vidcam.Explainer`: None/"top1" | int | sequence of ints |
            (N, K) LongTensor | "topk:K" | callable(output) -> (N,) or (N, K) scores.

    Returns:
        (N, K, C, T, H, W) guided gradients, on the clip's device.
    """
    return _guided_gradients(model, clip, target)[0]


def guided_cam(
    model: nn.Module,
    clip: torch.Tensor,
    target: Target = None,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    method: MethodId = DEFAULT_METHOD,
    explainer: Explainer | None = None,
    **explainer_kwargs: Any,
) -> GuidedExplanation:
    """Guided Grad-CAM++ (``method="gradcam++"``) or Guided Grad-CAM (``"gradcam"``).

    The target is resolved once, from the guided pass's forward; the CAM pass explains the
    same (N, K) class indices (so "topk:K" can not pick different classes twice). A callable
    target is passed to both passes as is. The CAM pass runs without guided hooks.

    Args:
        model, clip, target: as in :func:`guided_backprop`.
        layer, method, explainer_kwargs: passed to :class:`vidcam.Explainer` ("guided-gradcam++"
            and "guided-gradcam" are accepted as method names too).
        explainer: an existing :class:`vidcam.Explainer` of ``model`` to reuse instead (keeps
            its resolved layer across calls, e.g. window after window of a video).

    Returns:
        :class:`GuidedExplanation` with ``guided``, ``cam`` and ``product``.
    """
    row = METHODS.get(method) if isinstance(method, str) else None
    if row is not None:  # a guided row's id names its CAM (the table's ``cam``)
        method = row.cam
    if explainer is None:
        explainer = Explainer(model, layer=layer, method=method, **explainer_kwargs)  # validates
    elif explainer.model is not model:
        raise VidcamError("explainer: it explains another model; pass one built for `model`")
    guided, _, indices = _guided_gradients(model, clip, target)
    cam = explainer(clip, target=indices if indices is not None else target)
    if cam.maps.shape[:2] != guided.shape[:2]:
        raise VidcamError(
            f"target: the callable gave {guided.shape[1]} scores per sample in the guided pass "
            f"and {cam.maps.shape[1]} in the CAM pass; it must be deterministic"
        )
    product = guided * cam.maps[:, :, None].to(guided.dtype)
    return GuidedExplanation(guided=guided, cam=cam, product=product)


def normalize_per_clip(x: torch.Tensor) -> torch.Tensor:
    """Map a (C, T, H, W) gradient volume to displayable (T, H, W, C) frames in [0, 1].

    One normalisation for the whole clip, not per frame, so frames keep their relative
    strength and brightness does not flicker: ``0.5 + 0.1 * (x - mean) / std`` clipped to
    [0, 1], with mean and (population) std over all of C, T, H, W (the usual ``deprocess_image``
    of guided backprop, without its absolute epsilon, so it is invariant to the gradient's
    scale: tiny gradients are not washed out). Zero (mean) maps to mid grey, values beyond
    ±5 std saturate; a constant clip gives 0.5 everywhere. Channel order is kept (RGB in, RGB
    out).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise VidcamError(
            f"x: expected one clip (C, T, H, W), got {shape}; index the batch and target first, "
            "e.g. res.product[0, 0]"
        )
    if x.numel() == 0:
        raise VidcamError(f"x: empty tensor of shape {tuple(x.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    v = x.detach().to(torch.float64 if dtype == torch.float64 else torch.float32)
    centred = v - v.mean()
    std = centred.square().mean().sqrt()
    scale = torch.where(std > 0, 0.1 / std, torch.zeros_like(std))
    out = (0.5 + centred * scale).clamp(0.0, 1.0)
    return out.permute(1, 2, 3, 0).contiguous().to(dtype)
