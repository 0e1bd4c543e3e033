"""Spatial modes: which part of each frame the model sees, and how its maps cover the frame.

- ``"center"``: the centre crop of the model's size after the short-side resize (the model's
  own test protocol; the rest of a wide frame gets no heat).
- ``"full"``: the model runs fully convolutionally on the whole frame, short side resized to
  ``InputSpec.resize_short`` and each side rounded to a multiple of the network's total stride
  (:func:`~vidcam.video.preprocess.full_geometry`), its logits averaged over space and time —
  the fully-convolutional testing of PySlowFast. Heads whose fixed-kernel pools slide over a
  larger grid and then average (DeepMind's I3D, S3D, PyTorchVideo's heads) do that already;
  others are run through :class:`SpatialMean`.
- ``"tiles"``: crops of the model's size overlapping by at least :data:`MIN_OVERLAP` across the
  long side (:func:`tile_offsets`), for models that need a fixed size (attention models: MViT,
  Swin3D). Prediction: the average of the tiles' probabilities; the top class of that average
  is explained in every tile, so the stitched map is of one class. Tile maps are blended on the
  CAM's own (un-normalised) scale with linear ramps over the overlaps (:func:`stitch`).
- ``"auto"`` (default): ``full`` when the model allows it (:func:`full_support`), else ``tiles``
  when the centre crop would show less than :data:`TILES_BELOW` of the long side, else
  ``center``.

:func:`plan_spatial` makes the choice for one video: the mode, the window geometry and the
module the engine runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from vidcam.cam.hooks import eval_mode
from vidcam.cam.reshape import Reshape
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec
from vidcam.video.preprocess import Geometry, band_geometry, full_geometry, geometry_for

SPATIAL = ("auto", "full", "tiles", "center")
MIN_OVERLAP = 0.25  # tiles overlap their neighbours by at least this fraction of a tile
TILES_BELOW = 0.9  # auto: tiles when the centre crop shows less than this of the long side
_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)


@dataclass(frozen=True)
class FullSupport:
    """Whether a model runs fully convolutionally on a larger frame, and how.

    ``stride``: the network's total spatial stride (frame sides are rounded to multiples of it);
    ``pools``: fixed-kernel pools that pool the whole feature map at the crop size and must
    keep doing so (their output is averaged — max-pools: maximised — over the larger grid);
    ``reduce``: the output carries a grid of logits to average; ``reason``: why not, if not.
    """

    ok: bool
    reason: str = ""
    stride: int = 32
    pools: tuple[nn.Module, ...] = ()
    reduce: bool = False


class SpatialMean(nn.Module):
    """``inner`` with its output averaged over space and time: a view, not a copy.

    It shares ``inner``'s submodules, parameters and buffers under the same names, so layer
    names stay valid and hooks on them fire; ``inner`` itself is never modified (the hooks that
    make ``pools`` global exist only during a forward). Its default layer, when none is given,
    is found by tracing (the known architectures never need this view).
    """

    def __init__(
        self, inner: nn.Module, pools: Sequence[nn.Module] = (), reduce: bool = True
    ) -> None:
        super().__init__()
        self._modules = inner._modules
        self._parameters = inner._parameters
        self._buffers = inner._buffers
        object.__setattr__(self, "inner", inner)  # not a child: names stay the inner's
        self.pools = tuple(pools)
        self.reduce = reduce
        self.training = inner.training

    def forward(self, x: torch.Tensor) -> Any:
        inner, flag = self.inner, self.inner.training
        inner.training = self.training
        handles = [p.register_forward_hook(_global_pool) for p in self.pools]
        try:
            y = inner(x)
        finally:
            inner.training = flag
            for h in handles:
                h.remove()
        if self.reduce and isinstance(y, torch.Tensor) and y.dim() > 2:
            y = y.flatten(2).mean(2)
        return y


def _global_pool(module: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.dim() < 3:
        return out
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
        return out.amax(dim=(-2, -1), keepdim=True)
    return out.mean(dim=(-2, -1), keepdim=True)


def is_attention_model(module: nn.Module, reshape: Reshape | None = None) -> bool:
    """Token models (a ``reshape`` for their layers, or any attention module): trained on one
    token grid (MViT's position embeddings fail on others), so they get tiles, never ``full``."""
    return reshape is not None or any(
        isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__
        for m in module.modules()
    )


def full_support(
    module: nn.Module,
    spec: InputSpec,
    height: int,
    width: int,
    *,
    reshape: Reshape | None = None,
    device: torch.device | str = "cpu",
    clip_len: int | None = None,
) -> FullSupport:
    """Can ``module`` run fully convolutionally on a ``height`` × ``width`` video, and how?

    Decided by shape probes: forwards of a zero clip on the meta device (shapes only: costs
    milliseconds, whatever the model; the real device only if the model cannot run on meta),
    at the crop size (the stride, the global pools, the number of classes) and at the full
    frame size (the output must be the same (1, classes), or a grid of them to average).
    """
    if is_attention_model(module, reshape):
        return FullSupport(False, "an attention model trained on one token grid")
    t, (ch, cw) = clip_len or spec.clip_len, spec.crop
    meta = True
    try:
        out, seen = _probe(module, (t, ch, cw), device, (), meta=True)
    except Exception:  # noqa: BLE001 - no meta kernel (data-dependent code): probe for real
        meta = False
        try:
            out, seen = _probe(module, (t, ch, cw), device, (), meta=False)
        except Exception as exc:  # noqa: BLE001
            return FullSupport(False, f"it fails on a crop-size clip: {_first_line(exc)}")
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        return FullSupport(False, "its output is not (N, classes)")
    classes = out.shape[1]
    ratios = [ch / s[-2] for m, (_, s) in seen.items() if _spatial(s) and _is_conv(m)]
    stride = 2 ** round(math.log2(max(ratios))) if ratios else 1
    pools = tuple(m for m, (i, o) in seen.items() if isinstance(m, _POOLS) and _globals(i, o))
    size = full_geometry(height, width, spec, stride).crop
    reason = ""
    for hooked in ((), pools) if pools else ((),):
        try:
            y, _ = _probe(module, (t, *size), device, hooked, meta=meta)
        except Exception as exc:  # noqa: BLE001 - any failure means: not at this size
            reason = f"it fails on a {size[1]}x{size[0]} frame: {_first_line(exc)}"
            continue
        if isinstance(y, torch.Tensor) and y.dim() >= 2 and tuple(y.shape[:2]) == (1, classes):
            return FullSupport(True, "", stride, hooked, reduce=y.dim() > 2)
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        reason = f"its output on a {size[1]}x{size[0]} frame is {shape}, not (1, {classes})"
    return FullSupport(False, reason, stride)


def _probe(
    module: nn.Module,
    thw: tuple[int, int, int],
    device: torch.device | str,
    pools: Sequence[nn.Module],
    *,
    meta: bool,
) -> tuple[Any, dict[nn.Module, tuple[torch.Size, torch.Size]]]:
    """One no-grad forward of a zero (1, 3, T, H, W) clip; records (input, output) shapes of
    every convolution and pool."""
    seen: dict[nn.Module, tuple[torch.Size, torch.Size]] = {}

    def record(m: nn.Module, inputs: Any, out: Any) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(out, torch.Tensor):
            seen[m] = (inputs[0].shape, out.shape)

    watched = [m for m in module.modules() if _is_conv(m) or isinstance(m, _POOLS)]
    handles = [m.register_forward_hook(record) for m in watched]
    handles += [p.register_forward_hook(_global_pool) for p in pools]
    dev = torch.device("meta") if meta else torch.device(device)
    x = torch.zeros(1, 3, *thw, device=dev)
    try:
        with eval_mode(module), torch.no_grad():
            if meta:
                state = dict(module.named_parameters()) | dict(module.named_buffers())
                fake = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
                out = functional_call(module, fake, (x,), strict=False)
            else:
                out = module(x)
    finally:
        for h in handles:
            h.remove()
    return out, seen


def _is_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d | nn.Conv3d)


def _spatial(shape: torch.Size) -> bool:
    return len(shape) in (4, 5) and shape[-1] * shape[-2] > 1


def _globals(inp: torch.Size, out: torch.Size) -> bool:
    """A pool that reduces a feature map to one spatial position."""
    return len(out) >= 3 and tuple(out[-2:]) == (1, 1) and inp[-1] * inp[-2] > 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


@dataclass(frozen=True)
class SpatialPlan:
    """One video's spatial choice: ``mode`` ("full", "tiles" or "center": what runs),
    ``geometry`` (source -> the window the maps cover: the whole frame, the band the tiles
    cover, or the crop), ``module`` (what the engine runs). Tiles: ``offsets`` along the clip
    axis ``axis`` (-1: side by side, -2: stacked), each ``size`` long."""

    mode: str
    geometry: Geometry
    module: nn.Module
    offsets: tuple[int, ...] = ()
    axis: int = -1
    size: int = 0


def plan_spatial(
    m: ModelHandle, mode: str, height: int, width: int, clip_len: int | None = None
) -> SpatialPlan:
    """The spatial plan for model ``m`` on a ``height`` × ``width`` video with clips of
    ``clip_len`` frames (default: the model's; see the module docstring). ``mode="full"`` on a
    model that cannot run on the whole frame raises."""
    if mode not in SPATIAL:
        raise VidcamError(f"spatial {mode!r} must be one of {', '.join(SPATIAL)}")
    spec = m.input
    center = SpatialPlan("center", geometry_for(height, width, spec), m.module)
    if mode == "center":
        return center
    if mode in ("auto", "full"):
        sup = full_support(
            m.module, spec, height, width, reshape=m.reshape, device=m.device, clip_len=clip_len
        )
        if sup.ok:
            module = m.module
            if sup.pools or sup.reduce:
                module = SpatialMean(m.module, sup.pools, sup.reduce)
            return SpatialPlan("full", full_geometry(height, width, spec, sup.stride), module)
        if mode == "full":
            raise VidcamError(
                f"spatial 'full': model {m.name} cannot run on the whole frame ({sup.reason}); "
                "use 'tiles', 'center' or 'auto'"
            )
    band = band_geometry(height, width, spec)
    axis = 1 if band.crop[1] > spec.crop[1] else 0
    length, size = band.crop[axis], spec.crop[axis]
    if length <= size or (mode == "auto" and size >= TILES_BELOW * length):
        return center
    offsets = tuple(tile_offsets(length, size))
    return SpatialPlan("tiles", band, m.module, offsets, axis - 2, size)


def tile_offsets(length: int, size: int, min_overlap: float = MIN_OVERLAP) -> list[int]:
    """Start of each tile: the fewest ``size`` tiles covering ``length`` whose neighbours
    overlap by at least ``min_overlap`` of a tile, spread evenly (first at 0, last at the end)."""
    if length <= size:
        return [0]
    n = 1 + math.ceil((length - size) / ((1 - min_overlap) * size) - 1e-9)
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def tile_weights(size: int, offsets: Sequence[int]) -> torch.Tensor:
    """(size,) float64 blend weight across a tile: a linear ramp over the overlap with its
    neighbours, 1 in between (weights of two overlapping tiles sum to 1: a cross-fade)."""
    steps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    ramp = max(1, size - max(steps)) if steps else size
    x = torch.arange(size, dtype=torch.float64) + 0.5
    return (torch.minimum(x, size - x) / ramp).clamp(1e-3, 1.0)


def split_tiles(clip: torch.Tensor, plan: SpatialPlan) -> torch.Tensor:
    """(B, C, T, H, W) window clips -> (B * n, C, T, h, w) tiles, each window's n in order."""
    tiles = [clip.narrow(plan.axis, o, plan.size) for o in plan.offsets]
    return torch.stack(tiles, 1).flatten(0, 1)


def stitch(tiles: torch.Tensor, plan: SpatialPlan) -> torch.Tensor:
    """(B * n, ..., size along ``plan.axis``) per-tile maps -> (B, ..., window length): the
    weighted mean of the tiles covering each position (:func:`tile_weights`)."""
    n = len(plan.offsets)
    t = tiles.unflatten(0, (tiles.shape[0] // n, n))
    length = plan.offsets[-1] + plan.size
    w = tile_weights(plan.size, plan.offsets).to(t.device, t.dtype)
    shape = [1] * (t.dim() - 1)
    shape[plan.axis] = plan.size
    w = w.reshape(shape)
    out_shape = list(t.shape[:1] + t.shape[2:])
    out_shape[plan.axis] = length
    out = t.new_zeros(out_shape)
    shape[plan.axis] = length
    den = t.new_zeros(shape)
    for i, o in enumerate(plan.offsets):
        out.narrow(plan.axis, o, plan.size).add_(t[:, i] * w)
        den.narrow(plan.axis, o, plan.size).add_(w)
    return out / den
