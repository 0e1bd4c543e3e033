"""Preprocess: source frames -> the model's clip tensor, remembering the geometry to undo.

Per :class:`~vidcam.models.spec.InputSpec`: the short side is resized to ``resize_short``
(OpenCV area averaging when shrinking — antialiased — bilinear when enlarging; the long side
scales by the same factor, floored like pytorchvideo's ``short_side_scale``), the centre
``crop`` is taken (zero-padded if the frame is smaller), the crop goes to the device as uint8,
and clips are scaled to [0, 1] and normalised per channel there. :class:`Geometry` records the scale and
the crop offset so that :mod:`vidcam.video.to_source` can put maps back on the source pixel grid.

The window the model sees depends on the spatial mode (:mod:`vidcam.video.spatial`):
:func:`geometry_for` is the centre crop; :func:`full_geometry` the whole frame, each side
resized to a multiple of the network's stride; :func:`band_geometry` the centre band as wide as
the resized frame along its long side, which overlapping tiles cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec


@dataclass(frozen=True)
class Geometry:
    """Source frame (H, W) -> resized (H1, W1) -> crop (h, w) at ``offset`` (top, left) in the
    resized frame (negative offsets: the crop reaches past the frame, zero-padded)."""

    source: tuple[int, int]
    resized: tuple[int, int]
    crop: tuple[int, int]
    offset: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): resized pixels per source pixel."""
        return self.resized[0] / self.source[0], self.resized[1] / self.source[1]

    def crop_box(self) -> tuple[float, float, float, float]:
        """The crop in source pixel coordinates: (y0, x0, y1, x1), edges (not centres)."""
        sy, sx = self.scale
        top, left = self.offset
        return top / sy, left / sx, (top + self.crop[0]) / sy, (left + self.crop[1]) / sx

    def covers_source(self) -> bool:
        """True when the crop shows the whole source frame."""
        y0, x0, y1, x1 = self.crop_box()
        h, w = self.source
        return y0 <= 0 and x0 <= 0 and y1 >= h and x1 >= w


def geometry_for(height: int, width: int, spec: InputSpec) -> Geometry:
    """The resize/crop geometry for a ``height`` × ``width`` source under ``spec``."""
    if height < 1 or width < 1:
        raise VidcamError(f"frame size must be positive, got {width}x{height}")
    short = spec.resize_short
    if height <= width:
        resized = (short, max(1, int(width * short / height)))
    else:
        resized = (max(1, int(height * short / width)), short)
    ch, cw = spec.crop
    offset = (int(round((resized[0] - ch) / 2.0)), int(round((resized[1] - cw) / 2.0)))
    return Geometry(source=(height, width), resized=resized, crop=(ch, cw), offset=offset)


def full_geometry(height: int, width: int, spec: InputSpec, stride: int = 32) -> Geometry:
    """The whole frame: short side resized to ``spec.resize_short`` (long side in proportion),
    then each side rounded to the nearest multiple of ``stride`` (at least the crop), so every
    feature cell of the network covers exactly ``stride`` pixels. Nothing is cut off; the
    aspect changes by at most half a stride per side (the per-axis scale maps back exactly)."""
    g = geometry_for(height, width, spec)
    s = max(1, int(stride))
    size = tuple(
        s * max(round(r / s), -(-c // s), 1) for r, c in zip(g.resized, spec.crop, strict=True)
    )
    return Geometry(source=g.source, resized=size, crop=size, offset=(0, 0))


def band_geometry(height: int, width: int, spec: InputSpec) -> Geometry:
    """The centre crop widened to the whole resized frame along its long side (at least the
    crop): the window that tiles of the crop's size cover."""
    g = geometry_for(height, width, spec)
    axis = 1 if g.resized[1] >= g.resized[0] else 0
    crop, offset = list(g.crop), list(g.offset)
    crop[axis] = max(g.crop[axis], g.resized[axis])
    offset[axis] = int(round((g.resized[axis] - crop[axis]) / 2.0))
    return Geometry(g.source, g.resized, (crop[0], crop[1]), (offset[0], offset[1]))


class Normalization:
    """A model's per-channel normalisation, the one place vidcam applies and undoes it: model
    input = (pixels − mean) / std, pixels in [0, 1]; ``mean`` and ``std`` (C,) float32 on
    ``device``. ``dim``: the channel axis of the tensors given (1 for (N, C, T, H, W), -1 for
    channels-last frames). The values are checked by :class:`~vidcam.models.spec.InputSpec`."""

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu"
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)

    def _stats(self, x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = [1] * x.dim()
        shape[dim] = -1
        return self.mean.view(shape), self.std.view(shape)

    def apply(self, x: torch.Tensor, dim: int = 1, *, inplace: bool = False) -> torch.Tensor:
        """Pixels in [0, 1] -> model input, ``(x − mean) / std`` (``inplace``: in ``x``)."""
        mean, std = self._stats(x, dim)
        return x.sub_(mean).div_(std) if inplace else (x - mean) / std

    def undo(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Model input -> pixels, ``x · std + mean`` (a new tensor; not clamped)."""
        mean, std = self._stats(x, dim)
        return x * std + mean


class Preprocessor:
    """Frames (H, W, 3) uint8 RGB -> crops (h, w, 3) uint8 on ``device`` -> clips.

    ``frame`` is applied to each decoded frame as it arrives; ``clip`` stacks T crops into the
    normalised model input (1, 3, T, h, w) float32. ``geometry`` (default: the centre crop,
    :func:`geometry_for`) says which window of the resized frame is kept.
    """

    def __init__(
        self,
        spec: InputSpec,
        height: int,
        width: int,
        device: torch.device,
        geometry: Geometry | None = None,
    ) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.geometry = geometry if geometry is not None else geometry_for(height, width, spec)
        if self.geometry.source != (height, width):
            raise VidcamError(
                f"geometry for {self.geometry.source[1]}x{self.geometry.source[0]} does not "
                f"match the video size {width}x{height}"
            )
        self.normalization = Normalization(spec.mean, spec.std, self.device)

    def frame(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (h, w, 3) uint8 crop on the device.

        Resizing happens on the CPU before the upload (the decoded frame is there already, and
        only the small crop then crosses to an accelerator).
        """
        g = self.geometry
        image = np.asarray(image)
        if image.shape != (*g.source, 3) or image.dtype != np.uint8:
            raise VidcamError(
                f"frame of shape {image.shape} {image.dtype} does not match the video size "
                f"{g.source[1]}x{g.source[0]} (uint8 RGB)"
            )
        if g.resized != g.source:
            shrink = g.resized[0] < g.source[0]
            image = cv2.resize(
                image,
                (g.resized[1], g.resized[0]),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
            )
        crop = np.ascontiguousarray(_crop(image, g.offset, g.crop))
        return torch.from_numpy(crop).to(self.device, non_blocking=True)

    def clip(self, crops: Sequence[torch.Tensor]) -> torch.Tensor:
        """T crops (h, w, 3) uint8 -> (1, 3, T, h, w) float32, (x / 255 - mean) / std."""
        x = torch.stack(list(crops)).float()  # (T, h, w, 3), channels last: contiguous math
        x = self.normalization.apply(x.mul_(1 / 255.0), dim=-1, inplace=True)
        return x.permute(3, 0, 1, 2).unsqueeze(0).contiguous()


def _crop(x: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> (h, w, C) window at ``offset``; parts outside the frame are zeros."""
    top, left = offset
    h, w = size
    H, W = x.shape[:2]
    pad = (max(0, -top), max(0, top + h - H), max(0, -left), max(0, left + w - W))
    if any(pad):
        x = cv2.copyMakeBorder(x, *pad, cv2.BORDER_CONSTANT, value=0)
        top, left = top + pad[0], left + pad[2]
    return x[top : top + h, left : left + w]
