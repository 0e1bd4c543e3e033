"""The options of a video run, as one typed value, and its output paths, checked before any work.

:class:`ExplainOptions` is what the command line builds (``vidcam explain`` / ``vidcam
batch``), what :func:`~vidcam.video.explain_video` and its siblings build once from their
keyword arguments, what pass 1 (:func:`~vidcam.video.explain_pass.explain_pass`) and the batch
worker read, and what the report shows: its fields are documented once, here. It is frozen,
validated on construction and pickles (Ray actors get it as is). :func:`check_paths` validates
the input and outputs (:mod:`vidcam.paths`). Window and memory checks: :mod:`vidcam.video.memory`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.cam.methods import DEFAULT_METHOD, Method, get_method, panel_ids, panels_for
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec
from vidcam.paths import check_distinct, check_output
from vidcam.video.decode import check_input
from vidcam.video.encode import check_output_extension
from vidcam.video.memory import check_count, check_window
from vidcam.video.scale import DEFAULT_NORMALIZE, NORMALIZE
from vidcam.video.spatial import SPATIAL

#: the fields :func:`~vidcam.models.open.open_model` builds a handle from (besides the device)
OPENED_WITH = ("spec", "labels", "layer", "card", "weights", "pretrained")


@dataclass(frozen=True)
class ExplainOptions:
    """How to explain a video (every field optional; ``ExplainOptions()`` is ``vidcam explain``'s
    defaults). Invalid values raise a one-line VidcamError naming the option.

    Attributes:
        model: anything :func:`vidcam.models.open.open_model` takes: a registered name
            (``vidcam models``; default "i3d"), a name a package registers (entry points
            ``vidcam.models``), ``"path/file.py:FUNCTION"`` / ``"package.module:FUNCTION"``,
            ``"hf:DIR"`` / ``"hf:ORG/NAME"``, a ``.pt2`` file, an ``nn.Module`` (then ``spec``
            or ``card`` is required) or a :class:`~vidcam.models.handle.ModelHandle` (used as
            is: build it once with ``open_model`` to explain many videos).
        spec: how to feed the model (overrides the card's and the model's own).
        labels: class names, or a file of them (one per line; default: the model's own).
        layer: layer(s) to explain (default: the model's registered layers, else automatic).
        card: a model card (TOML: clip length, fps/stride, sizes, mean/std, layout, labels,
            layer; ``vidcam models card NAME`` prints a template); the other options
            override it.
        method: a method id (``vidcam.cam.methods.METHODS``; default "gradcam++").
        softmax: Grad-CAM++'s softmax-score variant.
        target: "top1" (default; each window's own top class), "topk:K" (maps of the K top
            classes, combined by their per-pixel maximum), a class index or a class name.
        clip_len: samples per window (default: the model's).
        stride: window hop in samples (default: clip_len // 2, i.e. 50 % overlap).
        device: "auto" (default), "cpu" or "cuda".
        weights, pretrained: passed to the model registry.
        progress: progress lines on stderr (default True).
        side_by_side: the panels, as given: False (the method alone), True (its default pair:
            Grad-CAM | Grad-CAM++, or the CAM next to the guided product), or method ids
            (``"gradcam,layercam"`` or a sequence); stored as False, True or a tuple of ids
            (:func:`vidcam.cam.methods.panel_ids`). :attr:`panels` is what pass 1 renders
            and the batch's ``--evaluate`` scores.
        batch_size: windows per engine call (default None: auto, see
            :func:`vidcam.video.memory.auto_batch_size` for the bound and
            :class:`vidcam.video.batching.BatchPlan` for the CPU's choice under it).
        normalize: the heatmaps' display scale, a pass-2 choice (:mod:`vidcam.video.scale`):
            "video" (default: one robust scale for the whole video, its 99th percentile = 1,
            gamma 0.6), "clip" (one scale per window volume) or "frame" (every frame min-max
            normalised); pass 1 spools maps in the CAM's own units, whatever the scale.
        spatial: where the model looks: "auto" (default: the whole frame when the model
            allows it), "full", "tiles" or "center" (:mod:`vidcam.video.spatial`).
    """

    model: str | nn.Module | ModelHandle = "i3d"
    spec: InputSpec | None = None
    labels: Sequence[str] | str | os.PathLike | None = None
    layer: Any = None
    card: str | os.PathLike | None = None
    method: str = DEFAULT_METHOD
    softmax: bool = False
    target: str | int | None = "top1"
    clip_len: int | None = None
    stride: int | None = None
    device: str | torch.device = "auto"
    weights: str | None = None
    pretrained: bool = True
    progress: bool = True
    side_by_side: bool | tuple[str, ...] = False
    batch_size: int | None = None
    normalize: str = DEFAULT_NORMALIZE
    spatial: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "side_by_side", panel_ids(self.side_by_side))
        if self.spatial not in SPATIAL:
            raise VidcamError(f"spatial {self.spatial!r} must be one of {', '.join(SPATIAL)}")
        if self.normalize not in NORMALIZE:
            raise VidcamError(f"normalize {self.normalize!r} must be one of {', '.join(NORMALIZE)}")
        get_method(self.method)
        if self.batch_size is not None:
            check_count("--batch-size (batch_size)", self.batch_size)
        if self.clip_len is not None:
            check_count("--clip-len (clip_len)", self.clip_len)
        if self.stride is not None:
            check_count("--stride (stride)", self.stride)
        spec = self.known_spec()
        if spec is not None:
            check_window(
                spec,
                clip_len=self.clip_len,
                stride=self.stride,
                batch_size=self.batch_size,
                spatial=self.spatial,
                device=self.device,
                model=self.model if isinstance(self.model, ModelHandle) else None,
            )

    @classmethod
    def of(cls, options: ExplainOptions | Mapping[str, Any] | None = None) -> ExplainOptions:
        """``options`` as an :class:`ExplainOptions`: as is, or built from a mapping of its
        field names (an unknown name is a one-line VidcamError listing the valid ones)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, Mapping):
            raise VidcamError(
                f"explain options must be an ExplainOptions or a dict, got {type(options).__name__}"
            )
        cls._check_names(options)
        return cls(**options)

    @classmethod
    def _check_names(cls, options: Mapping[str, Any]) -> None:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [str(k) for k in options if k not in names]
        if unknown:
            raise VidcamError(
                f"explain options: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(names)}"
            )

    def replace(self, **changes: Any) -> ExplainOptions:
        """A copy with ``changes`` (validated again)."""
        self._check_names(changes)
        return dataclasses.replace(self, **changes)

    def model_keywords(self) -> dict[str, Any]:
        """:func:`~vidcam.models.open.open_model`'s keywords besides ``model``, ``device`` and
        ``progress``: the fields of :data:`OPENED_WITH`."""
        return {k: getattr(self, k) for k in OPENED_WITH}

    def with_model(self, handle: ModelHandle, **changes: Any) -> ExplainOptions:
        """These options for the opened ``handle`` (built from them once, e.g. by
        :func:`~vidcam.models.open.open_model`): the fields it was opened with
        (:data:`OPENED_WITH`) back to their defaults, since the handle carries them."""
        opened = {f.name: f.default for f in dataclasses.fields(self) if f.name in OPENED_WITH}
        return self.replace(model=handle, **opened, **changes)

    def known_spec(self) -> InputSpec | None:
        """The model's input spec when known before loading it (given, or registered)."""
        if self.spec is not None:
            return self.spec
        if isinstance(self.model, ModelHandle):
            return self.model.input
        if isinstance(self.model, str):
            from vidcam.models.registry import MODELS

            entry = MODELS.get(self.model.strip().lower().replace("-", "_"))
            return entry.input if entry is not None else None
        return None

    @property
    def the_method(self) -> Method:
        return get_method(self.method)

    @property
    def panels(self) -> tuple[Method, ...]:
        """The methods shown, in panel order: what pass 1 renders and what the batch's
        ``--evaluate`` scores."""
        return panels_for(self.the_method, self.side_by_side)


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
