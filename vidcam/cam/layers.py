"""Find the layer to explain: by dotted name, by module, or automatically."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vidcam.cam.hooks import eval_mode
from vidcam.errors import VidcamError

LayerArg = str | nn.Module

#: Known video architectures (by class name) and the layer worth explaining.
KNOWN_LAYERS: dict[str, str] = {
    "VideoResNet": "layer4",  # torchvision r3d_18, mc3_18, r2plus1d_18
    "S3D": "features",  # torchvision s3d
    "InceptionI3d": "Mixed_5c",  # vidcam's Kinetics-400 I3D
}


def resolve_layers(
    model: nn.Module, layer: LayerArg | Sequence[LayerArg], example: torch.Tensor
) -> list[tuple[str, nn.Module]]:
    """Turn the user's ``layer`` argument into ``[(name, module), ...]``.

    ``layer`` is a dotted name, a submodule of ``model``, a sequence of those, or None for the
    default (see :func:`default_layer`; ``example`` is a clip the model accepts).
    """
    if layer is None:
        name = default_layer(model, example)
        return [(name, model.get_submodule(name))]
    items = [layer] if isinstance(layer, str | nn.Module) else list(layer)
    if not items:
        raise VidcamError("layer: got an empty sequence; give at least one layer name or module")
    return [_resolve_one(model, item) for item in items]


def _resolve_one(model: nn.Module, layer: LayerArg) -> tuple[str, nn.Module]:
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise VidcamError(
            f"layer: the given {type(layer).__name__} module is not a submodule of the model; "
            "pass one of model.named_modules() or its dotted name"
        )
    if not isinstance(layer, str):
        raise VidcamError(
            f"layer: expected a dotted module name or an nn.Module, got {type(layer).__name__}"
        )
    modules = dict(model.named_modules())
    if layer in modules and layer:
        return layer, modules[layer]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if not hint:
        tops = [n for n in names if "." not in n]
        hint = f"top-level modules are: {', '.join(tops[:20])}"
    raise VidcamError(f"layer {layer!r} does not exist in {type(model).__name__}; {hint}")


def dry_run(
    model: nn.Module, example: torch.Tensor, on_output: Callable[[str, nn.Module, Any], None]
) -> list[str]:
    """One forward of ``example`` with no grad, in eval mode, calling ``on_output(name, module,
    output)`` as each named submodule returns (children before their parents). Every module's
    train/eval flag is restored and every hook removed, also on errors. Returns the names in
    the order their forwards started (parents before their children)."""
    started: list[str] = []
    name_of = {module: name for name, module in model.named_modules() if name}

    def pre_hook(module: nn.Module, _inputs: object) -> None:
        if name_of[module] not in started:
            started.append(name_of[module])

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        on_output(name_of[module], module, output)

    handles = []
    try:
        for module in name_of:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(hook))
        with eval_mode(model), torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return started


def first_tensor(output: Any) -> torch.Tensor | None:
    """``output`` if a tensor, else the first tensor of a tuple/list output (MViT's blocks
    return ``(tokens, thw)``), else None — what the explainer captures of a layer."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        return next((o for o in output if isinstance(o, torch.Tensor)), None)
    return None


def default_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The layer vidcam explains when none is given.

    1. Known architectures (by class name) use :data:`KNOWN_LAYERS` (torchvision's VideoResNet:
       ``layer4``, S3D: ``features``, I3D: ``Mixed_5c``).
    2. PyTorchVideo ``Net`` models use the last stage before the head (``blocks.<n-2>``).
    3. Any other model (the automatic rule): one dry forward of ``example[:1]`` (no grad, eval
       mode) picks the **last module to finish** that (a) contains a ``Conv2d``/``Conv3d`` (itself
       or a descendant) and (b) returns a tensor of the input's rank (a 5D feature volume for a
       video clip) with more than one spatial position (H x W > 1). As a container finishes
       after its children, the outermost block returning that volume wins. Token layers (3D
       outputs) never qualify: name them with ``layer=...`` and a ``reshape``.

    If nothing qualifies, a one-line :class:`VidcamError` names the candidates: the last
    modules that returned a 4D/5D tensor, or, when none did, the last modules' output shapes.
    ``vidcam layers MODEL`` lists every candidate with its shape and marks this pick.
    """
    cls = type(model).__name__
    if cls in KNOWN_LAYERS:
        return KNOWN_LAYERS[cls]
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks) >= 2 and cls == "Net":
        return f"blocks.{len(blocks) - 2}"
    return _traced_default(model, example)


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape[1:])).replace(" ", "")


def _traced_default(model: nn.Module, example: torch.Tensor) -> str:
    rank = example.dim()
    has_conv = {
        name: any(isinstance(m, nn.Conv3d | nn.Conv2d) for m in module.modules())
        for name, module in model.named_modules()
    }
    best: list[str] = []
    volumes: list[str] = []  # 4D/5D outputs, in finishing order
    others: list[str] = []

    def on_output(name: str, _module: nn.Module, output: Any) -> None:
        t = first_tensor(output)
        if t is None:
            return
        spatial = t.dim() >= 4 and t.shape[-1] * t.shape[-2] > 1
        if t.dim() == rank and spatial and has_conv.get(name, False):
            best.append(name)
        (volumes if t.dim() in (4, 5) else others).append(f"{name} {_shape(t)}")

    dry_run(model, example[:1], on_output)
    if best:
        return best[-1]
    if volumes:
        listing = f"the last 4D/5D outputs: {'; '.join(volumes[-12:])}"
    else:
        listing = (
            f"no module returns a 4D/5D feature volume; last outputs: {'; '.join(others[-8:])}"
        )
    raise VidcamError(
        f"could not pick a layer to explain in {type(model).__name__} (none contains a "
        f"convolution and returns a {rank}D volume with H x W > 1); pass layer=... (--layer NAME"
        f"; a token layer needs reshape=...); candidates, {listing}"
    )
