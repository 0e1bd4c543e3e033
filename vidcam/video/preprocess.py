"""Preprocess: source frames -> the model's clip tensor, remembering the geometry to undo.

Per :class:`~vidcam.models.spec.InputSpec`: the short side is resized to ``resize_short``
(OpenCV area averaging when shrinking — antialiased — bilinear when enlarging; the long side
scales by the same factor, floored like pytorchvideo's ``short_side_scale``), the centre
``crop`` is taken (zero-padded if the frame is smaller), the crop goes to the device as uint8,
and clips are scaled to [0, 1] and normalised per channel there. :class:`Geometry` records the scale and
the crop offset so that :mod:`vidcam.video.to_source` can put maps back on the source pixel grid.
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


class Preprocessor:
    """Frames (H, W, 3) uint8 RGB -> crops (h, w, 3) uint8 on ``device`` -> clips.

    ``frame`` is applied to each decoded frame as it arrives; ``clip`` stacks T crops into the
    normalised model input (1, 3, T, h, w) float32.
    """

    def __init__(self, spec: InputSpec, height: int, width: int, device: torch.device) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.geometry = geometry_for(height, width, spec)
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=self.device)

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
        x = x.mul_(1 / 255.0).sub_(self._mean).div_(self._std)
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
