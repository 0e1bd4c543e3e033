"""Which layers of a model can be explained, with their output shapes (``vidcam layers``).

:func:`list_layers` runs one dry forward of a zero clip (no grad, eval mode restored, hooks
removed: see :func:`vidcam.cam.layers.dry_run`) and records each module's output shape and the
feature volume a CAM of it would be computed on (after the model's token ``reshape``, if any),
then marks the layer vidcam explains: the given/registered one, else
:func:`vidcam.cam.layers.default_layer`'s pick (whose error, when nothing qualifies, names the
candidates). Nothing of the model changes; only shapes are kept, never the activations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from vidcam.cam.layers import LayerArg, dry_run, first_tensor, resolve_layers
from vidcam.cam.reshape import Reshape
from vidcam.errors import VidcamError


@dataclass(frozen=True)
class LayerCandidate:
    """One module's output in the dry run.

    Attributes:
        name: dotted module name (what ``--layer`` takes).
        module: the module's class name.
        output: the output's shape without the batch dimension: ``(C, T, H, W)`` for a 3D
            convolution's volume, ``(C, H, W)`` for a 2D one, ``(tokens, C)`` for a
            transformer block (first tensor of a tuple output).
        volume: what a CAM of this layer is computed on, without the batch dimension:
            ``(C, T, H, W)`` (after the model's token reshape; 2D maps count as ``T = 1``),
            or None when the layer gives no feature volume (vector, logits, unreshapable tokens).
        depth: dots in ``name`` (0 for the model's direct children).
        calls: how often the module ran in one forward (the last call is the one explained).
        picked: whether vidcam explains this layer.
    """

    name: str
    module: str
    output: tuple[int, ...]
    volume: tuple[int, int, int, int] | None
    depth: int
    calls: int
    picked: bool

    @property
    def usable(self) -> bool:
        """A feature volume with more than one spatial position."""
        return self.volume is not None and self.volume[2] * self.volume[3] > 1


@dataclass(frozen=True)
class LayerListing:
    """The candidates of one model, in the order their forwards started (a block before its
    parts); ``picked``: the explained layer(s); ``automatic``: picked by :func:`default_layer`
    (no layer given or registered); ``input``: the dry run's clip shape."""

    input: tuple[int, ...]
    picked: tuple[str, ...]
    automatic: bool
    candidates: tuple[LayerCandidate, ...]

    def shown(self, everything: bool = False) -> list[LayerCandidate]:
        """The rows worth showing: every module that returned a tensor (``everything``), else
        the usable layers no deeper than the deepest picked one, and the picked ones."""
        if everything:
            return list(self.candidates)
        depth = max((c.depth for c in self.candidates if c.picked), default=0)
        return [c for c in self.candidates if c.picked or (c.usable and c.depth <= depth)]

    def to_dict(self, everything: bool = False) -> dict[str, Any]:
        """JSON-ready: ``input``, ``picked``, ``automatic``, ``layers`` (shapes as lists)."""
        rows = [asdict(c) | {"usable": c.usable} for c in self.shown(everything)]
        for row in rows:
            row["output"] = list(row["output"])
            row["volume"] = list(row["volume"]) if row["volume"] is not None else None
        return {
            "input": list(self.input),
            "picked": list(self.picked),
            "automatic": self.automatic,
            "layers": rows,
        }


def _volume(tensor: torch.Tensor, output: Any, reshape: Reshape | None) -> tuple | None:
    """The (C, T, H, W) a CAM of this output is computed on (as the explainer makes it)."""
    if not tensor.is_floating_point():
        return None
    vol = tensor
    if reshape is not None:
        try:
            vol = reshape(tensor, output)
        except (VidcamError, RuntimeError, ValueError, IndexError):
            return None  # the model's reshape does not apply to this layer's output
    if vol.dim() == 4:
        vol = vol.unsqueeze(2)
    return tuple(int(v) for v in vol.shape[1:]) if vol.dim() == 5 else None


def list_layers(
    model: nn.Module,
    example: torch.Tensor,
    *,
    layer: LayerArg | Sequence[LayerArg] | None = None,
    reshape: Reshape | None = None,
) -> LayerListing:
    """The layers of ``model`` on ``example`` (a clip ``(1, C, T, H, W)`` it accepts, e.g.
    zeros of its input shape), marking ``layer`` (names or submodules; None: the automatic
    rule of :func:`vidcam.cam.layers.default_layer`, which raises a one-line
    :class:`VidcamError` naming the candidates when no layer qualifies). ``reshape`` turns
    token outputs into volumes (the model's, as given to the explainer)."""
    if not isinstance(model, nn.Module):
        raise VidcamError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    picked = [name for name, _ in resolve_layers(model, layer, example[:1])]
    seen: dict[str, tuple[str, tuple[int, ...], tuple | None, int]] = {}

    def on_output(name: str, module: nn.Module, output: Any) -> None:
        tensor = first_tensor(output)
        if tensor is None:
            return
        calls = seen[name][3] + 1 if name in seen else 1
        shape = tuple(int(v) for v in tensor.shape[1:])
        seen[name] = (type(module).__name__, shape, _volume(tensor, output, reshape), calls)

    order = dry_run(model, example[:1], on_output)
    rows = [
        LayerCandidate(
            name=n,
            module=seen[n][0],
            output=seen[n][1],
            volume=seen[n][2],
            depth=n.count("."),
            calls=seen[n][3],
            picked=n in picked,
        )
        for n in order
        if n in seen
    ]
    return LayerListing(
        input=tuple(int(v) for v in example[:1].shape),
        picked=tuple(picked),
        automatic=layer is None,
        candidates=tuple(rows),
    )
