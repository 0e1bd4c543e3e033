"""Find the layer to explain: by dotted name, by module, or automatically."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

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


def default_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The layer vidcam explains when none is given.

    Known architectures use :data:`KNOWN_LAYERS`; PyTorchVideo ``Net`` models use the last
    stage before the head (``blocks.<n-2>``). Otherwise one traced forward finds the last module,
    in execution order, that contains a convolution and returns a feature volume of the input's
    rank with more than one spatial position; it is widened to the outermost ancestor returning
    the same tensor. If nothing qualifies, the error lists candidate layers.
    """
    cls = type(model).__name__
    if cls in KNOWN_LAYERS:
        return KNOWN_LAYERS[cls]
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks) >= 2 and cls == "Net":
        return f"blocks.{len(blocks) - 2}"
    return _traced_default(model, example)


def _traced_default(model: nn.Module, example: torch.Tensor) -> str:
    rank = example.dim()
    finished: list[tuple[str, torch.Tensor]] = []
    name_of = {module: name for name, module in model.named_modules()}
    has_conv = {
        name: any(isinstance(m, nn.Conv3d | nn.Conv2d) for m in module.modules())
        for name, module in model.named_modules()
    }

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            finished.append((name_of[module], output))

    handles = [m.register_forward_hook(hook) for n, m in model.named_modules() if n]
    try:
        with eval_mode(model), torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()

    def is_volume(t: torch.Tensor) -> bool:
        return t.dim() == rank and t.shape[-1] * t.shape[-2] > 1

    best: tuple[str, torch.Tensor] | None = None
    for name, out in finished:
        if is_volume(out) and has_conv.get(name, False):
            best = (name, out)
    if best is None:
        candidates = [f"{n} {tuple(o.shape[1:])}" for n, o in finished if o.dim() in (4, 5)]
        listing = "; ".join(candidates[-12:]) or "none (no module returned a 4D/5D tensor)"
        raise VidcamError(
            f"could not pick a layer to explain in {type(model).__name__}; pass layer=... "
            f"(candidates, last ones: {listing})"
        )
    name, out = best
    # widen to the outermost ancestor that returns the very same tensor
    for other, o in finished:  # ancestors finish after their children
        if o is out and name.startswith(other + "."):
            name = other
    return name
