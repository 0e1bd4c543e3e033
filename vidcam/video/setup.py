"""Everything checked before any work: the options of a video run and its file paths.

:class:`ExplainOptions` holds the keyword arguments of :func:`~vidcam.video.explain_video`
(validated on construction); :func:`check_paths` validates input and outputs
(:mod:`vidcam.paths`). The model itself is resolved by :func:`vidcam.models.record.resolve_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

from vidcam.cam.methods import Method, get_method
from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec
from vidcam.paths import check_distinct, check_output
from vidcam.video.decode import check_input
from vidcam.video.encode import check_output_extension
from vidcam.video.scale import DEFAULT_NORMALIZE, NORMALIZE
from vidcam.video.spatial import SPATIAL


@dataclass(frozen=True)
class ExplainOptions:
    """The keyword arguments of :func:`~vidcam.video.explain_video` (documented there)."""

    model: str | nn.Module = "i3d"
    spec: InputSpec | None = None
    labels: Sequence[str] | None = None
    layer: Any = None
    method: str = "gradcam++"
    softmax: bool = False
    target: str | int | None = "top1"
    clip_len: int | None = None
    stride: int | None = None
    device: str | torch.device = "auto"
    weights: str | None = None
    pretrained: bool = True
    progress: bool = True
    side_by_side: bool = False
    batch_size: int = 1
    normalize: str = DEFAULT_NORMALIZE
    spatial: str = "auto"

    def __post_init__(self) -> None:
        if self.spatial not in SPATIAL:
            raise VidcamError(f"spatial {self.spatial!r} must be one of {', '.join(SPATIAL)}")
        if self.normalize not in NORMALIZE:
            raise VidcamError(f"normalize {self.normalize!r} must be one of {', '.join(NORMALIZE)}")
        get_method(self.method)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise VidcamError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.batch_size < 1:
            raise VidcamError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def the_method(self) -> Method:
        return get_method(self.method)

    @property
    def panels(self) -> tuple[Method, ...]:
        """The methods shown, in panel order."""
        m = self.the_method
        return m.side_by_side() if self.side_by_side else (m,)


class ExplainKwargs(TypedDict, total=False):
    """The keyword arguments of the pipeline's entry points (see :class:`ExplainOptions`)."""

    model: str | nn.Module
    spec: InputSpec | None
    labels: Sequence[str] | None
    layer: Any
    method: str
    softmax: bool
    target: str | int | None
    clip_len: int | None
    stride: int | None
    device: str | torch.device
    weights: str | None
    pretrained: bool
    progress: bool
    side_by_side: bool
    batch_size: int
    normalize: str
    spatial: str


def check_paths(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    json_path: str | Path | None = None,
) -> tuple[Path, Path]:
    """Validate input and output(s) before any work; returns (input, output) paths."""
    src = check_input(path)
    out = Path(output)
    check_output_extension(out)
    check_output("output", out, inputs=[src], overwrite=overwrite)
    if json_path:
        check_output("--json", json_path, inputs=[src], overwrite=overwrite)
    check_distinct([("the output video", out), ("--json", json_path)])
    return src, out
