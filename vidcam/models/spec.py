"""What vidcam must know about a model: how to build and feed it, and which layer to explain."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vidcam.cam.reshape import Reshape  # noqa: F401 (re-exported: the models' token adapters)
from vidcam.errors import VidcamError
from vidcam.models.checkpoint import extract_state_dict, load_into, load_weights_only
from vidcam.models.heads import fit_head
from vidcam.models.weights_source import WeightsSource, WeightsStatus


class WeightsInfo(Protocol):
    """What the registry needs of a weights source that loads itself (see ``ModelSpec.loader``):
    a ``note`` for ``vidcam models``, :meth:`status` and :meth:`describe` as in
    :class:`WeightsSource`."""

    note: str

    def status(self) -> WeightsStatus: ...

    def describe(self) -> str: ...


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
    """A registered model: constructor, weights source, input spec, class names and layers.

    ``make(**arch)`` constructs the architecture with random weights; :meth:`build` is the one
    way to get a model with its weights. ``layers`` are dotted module names; when several are
    given (e.g. SlowFast's two pathways) their maps are fused onto one timeline.
    ``test_input`` is the smallest clip ``(T, H, W)`` the architecture accepts when built with
    ``test_arch`` (e.g. resized PyTorchVideo head pools), for quick tests.

    ``loader(pretrained=, weights=, progress=, **arch)``, when set, builds the model *with* its
    weights itself (Hugging Face ``from_pretrained``; ``weights`` may then be a directory) and
    ``weights`` only describes them; ``specialise(spec, model)`` returns the entry fitted to a
    built model whose architecture comes from its checkpoint (layer names, token grid, clip).
    """

    name: str
    source: str
    input: InputSpec
    layers: tuple[str, ...]
    labels: str
    make: Callable[..., nn.Module]
    weights: WeightsSource | WeightsInfo
    test_input: tuple[int, int, int]
    test_arch: Mapping[str, Any] = field(default_factory=dict)
    reshape: Reshape | None = None
    description: str = ""
    loader: Callable[..., nn.Module] | None = None
    specialise: Callable[[ModelSpec, nn.Module], ModelSpec] | None = None

    @property
    def weights_note(self) -> str:
        """Where the pretrained weights come from, in words."""
        return self.weights.note

    def build(
        self,
        pretrained: bool = False,
        weights: str | os.PathLike | None = None,
        progress: bool = True,
        **arch: Any,
    ) -> nn.Module:
        """The model in eval mode: random weights unless ``pretrained`` (the published weights,
        see :class:`WeightsSource`) or a local checkpoint ``weights`` (which takes precedence).
        ``arch`` goes to :attr:`make`; published weights only fit the default architecture."""
        if self.loader is not None:
            return self.loader(
                pretrained=pretrained, weights=weights, progress=progress, **arch
            ).eval()
        if not isinstance(self.weights, WeightsSource):
            raise VidcamError(f"model {self.name!r}: its weights source needs a loader")
        model = self.make(**arch)
        if weights is not None:  # a fine-tuned head of another class count is rebuilt first
            state, origin = self._local_state(weights, progress)
            fit_head(model, state)
            load_into(model, state, source=origin, model_name=self.name)
        elif pretrained:
            state, origin = self.weights.state_dict(None, model_name=self.name, progress=progress)
            load_into(model, state, source=origin, model_name=self.name)
        return model.eval()

    def _local_state(
        self, weights: str | os.PathLike, progress: bool
    ) -> tuple[dict[str, torch.Tensor], str]:
        """The state dict of a local checkpoint; for I3D also a plain ``torch.save`` state dict
        (a fine-tuned model) besides vidcam's converted file and DeepMind's originals."""
        if getattr(self.weights, "kind", None) == "i3d" and zipfile.is_zipfile(weights):
            from vidcam.models.i3d_weights import FORMAT

            obj = load_weights_only(
                Path(weights), what=f"weights file {str(weights)!r}", fix="pass a checkpoint file"
            )
            if not (isinstance(obj, Mapping) and obj.get("format") == FORMAT):
                return extract_state_dict(obj, repr(str(weights))), repr(str(weights))
        return self.weights.state_dict(weights, model_name=self.name, progress=progress)

    def for_model(self, model: nn.Module) -> ModelSpec:
        """This entry fitted to ``model`` (see ``specialise``); itself when nothing depends on
        the checkpoint's architecture."""
        return self if self.specialise is None else self.specialise(self, model)
