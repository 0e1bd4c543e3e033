"""What vidcam must know about a model: how to feed it and which layer to explain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vidcam.errors import VidcamError

#: ``reshape(activation, module_output) -> (N, C, T, H, W)``: turns a layer's captured tensor
#: (e.g. transformer tokens ``(N, 1 + T*H*W, C)``) into a feature volume. ``module_output`` is
#: whatever the layer returned (for MViT blocks the tuple ``(tokens, thw)``).
Reshape = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class InputSpec:
    """How a model expects its clip.

    Frames are sampled at ``fps`` frames per second of source time (or, when ``fps`` is None,
    every ``stride``-th source frame), ``clip_len`` frames per clip. Each frame's short side is
    resized to ``resize_short``, then the centre ``crop`` (H, W) is taken. Pixel values are scaled
    to [0, 1], then normalised per channel as ``(x - mean) / std`` (RGB order).
    """

    clip_len: int
    crop: tuple[int, int]
    resize_short: int
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    fps: float | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.clip_len < 1:
            raise VidcamError(f"InputSpec.clip_len must be >= 1, got {self.clip_len}")
        if (self.fps is None) == (self.stride is None):
            raise VidcamError("InputSpec: give exactly one of fps and stride")
        if self.fps is not None and not self.fps > 0:
            raise VidcamError(f"InputSpec.fps must be > 0, got {self.fps}")
        if self.stride is not None and self.stride < 1:
            raise VidcamError(f"InputSpec.stride must be >= 1, got {self.stride}")
        if len(self.crop) != 2 or min(self.crop) < 1 or self.resize_short < 1:
            raise VidcamError(
                f"InputSpec: crop {self.crop} must be two positive sizes (H, W) and "
                f"resize_short {self.resize_short} positive"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(abs(v) for v in self.std) == 0:
            raise VidcamError(
                f"InputSpec: mean {self.mean} and std {self.std} need 3 values (RGB), std non-zero"
            )


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: builder, input spec, class names and layers worth explaining.

    ``build(pretrained, weights)`` returns the model in eval mode with random weights when
    ``pretrained`` is False; with ``weights`` (a local file) it loads that checkpoint.
    ``layers`` are dotted module names; when several are given (e.g. SlowFast's two pathways)
    their maps are fused onto one timeline.
    """

    name: str
    source: str
    input: InputSpec
    layers: tuple[str, ...]
    labels: str
    build: Callable[..., nn.Module]
    reshape: Reshape | None = None
    description: str = ""
    weights_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def layer_list(self) -> Sequence[str]:
        return list(self.layers)
