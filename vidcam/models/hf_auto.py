"""Any Hugging Face video classifier: ``--model hf:DIR`` and ``hf:ORG/NAME``.

:func:`open_hf` builds an ``AutoModelForVideoClassification`` checkpoint (a ``save_pretrained``
directory, read offline; or a hub id through ``from_pretrained``, cache only when
``VIDCAM_OFFLINE`` / ``HF_HUB_OFFLINE`` is set) and returns its
:class:`~vidcam.models.handle.ModelHandle`, everything read from the checkpoint itself:

* token reshape (:func:`token_grid`) from ``config.json``: ``num_frames``, ``image_size``,
  ``patch_size``, ``tubelet_size`` (and TimeSformer's ``attention_type``);
* the layer (:func:`default_layer`): the same rule as the registry's three transformers;
* labels from ``id2label``; transformers' placeholders (``LABEL_0``, ``LABEL_1``, ... at their
  own index, what a config without labels gets) carry no name, so they count as no labels and
  class indices are shown (``--labels FILE`` names them);
* the input spec (:func:`input_spec`): clip length ``num_frames``, crop ``image_size``; resize,
  mean/std from ``video_preprocessor_config.json`` or ``preprocessor_config.json`` (the first
  present; keys missing there keep the processor class's defaults, :attr:`HfArch.processor`);
  sampling stride: the architecture's paper rate (the checkpoint does not record it).

The registry's ``videomae``, ``timesformer`` and ``vivit`` entries (:mod:`vidcam.models.zoo_hf`)
use the same layout, layer and input functions. Model types without a known token layout
(:data:`ARCHS`) are a one-line error naming the supported ones.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.adapters import TokenGrid
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec

INSTALL = "pip install 'vidcam[transformers]'"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def transformers_module() -> Any:
    """``import transformers``, or a one-line :class:`VidcamError` saying how to install it."""
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise VidcamError(
            f"the Hugging Face video models need the transformers package ({exc}); "
            f"install it with: {INSTALL}"
        ) from exc


class HfVideoClassifier(nn.Module):
    """A ``transformers`` ``*ForVideoClassification`` model taking vidcam's clip layout.

    ``(N, C, T, H, W)`` clip -> ``(N, num_labels)`` logits; the wrapped model (``net``) takes
    ``pixel_values`` ``(N, T, C, H, W)`` and returns an output object with ``.logits``. Its
    layers are named ``net.<hf name>``; state dicts with or without ``net.`` load.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @property
    def config(self) -> Any:
        return self.net.config

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dim() != 5:
            raise VidcamError(
                f"{type(self.net).__name__} needs a clip (N, C, T, H, W), got {tuple(clip.shape)}"
            )
        return self.net(pixel_values=clip.transpose(1, 2)).logits


@dataclass(frozen=True)
class HfArch:
    """A ``transformers`` video architecture vidcam knows the token layout of.

    ``processor``: the preprocessor class's defaults (``image_mean``, ``image_std``,
    ``rescale_factor``, ``offset``, ``size``, ``crop_size``), which a checkpoint's preprocessor
    file overrides key by key; ``stride``: source frames between sampled frames (the paper's).
    """

    name: str  # the config's model_type
    hub_id: str  # the registry's Kinetics-400 checkpoint
    config_cls: str
    model_cls: str
    blocks: str  # dotted path of the encoder blocks inside the HF model
    order: str  # token order for TokenGrid
    cls: int  # leading class tokens
    stride: int
    processor: Mapping[str, Any] = field(default_factory=dict, hash=False)


def _processor(mean: Any, std: Any, scale: float, short: int, offset: bool) -> dict[str, Any]:
    crop = {"height": 224, "width": 224}
    size = {"shortest_edge": short}
    keys = ("image_mean", "image_std", "rescale_factor", "offset", "size", "crop_size")
    return dict(zip(keys, (mean, std, scale, offset, size, crop), strict=True))


ARCHS: dict[str, HfArch] = {
    a.name: a
    for a in (
        HfArch(
            "videomae", "MCG-NJU/videomae-base-finetuned-kinetics", "VideoMAEConfig",
            "VideoMAEForVideoClassification", "videomae.encoder.layer", "thw", 0, 4,
            _processor(0.5, 0.5, 1 / 255, 224, False),
        ),
        HfArch(
            "timesformer", "facebook/timesformer-base-finetuned-k400", "TimesformerConfig",
            "TimesformerForVideoClassification", "timesformer.encoder.layer", "hwt", 1, 32,
            _processor((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1 / 255, 224, False),
        ),
        HfArch(
            # pixels go to [-1, 1] (x / 127.5 - 1), then are normalised by 0.5 / 0.5
            "vivit", "google/vivit-b-16x2-kinetics400", "VivitConfig",
            "VivitForVideoClassification", "vivit.layers", "thw", 1, 2,
            _processor(0.5, 0.5, 1 / 127.5, 256, True),
        ),
    )
}  # fmt: skip


def arch_for(config: Any, source: str) -> HfArch:
    """The :class:`HfArch` of ``config.model_type``; other types are a one-line error."""
    model_type = str(getattr(config, "model_type", "") or "")
    if model_type not in ARCHS:
        raise VidcamError(
            f"{source}: model_type {model_type!r} ({type(config).__name__}) has no token layout "
            f"in vidcam; supported: {', '.join(ARCHS)}"
        )
    return ARCHS[model_type]


def _image_size(config: Any) -> tuple[int, int]:
    size = config.image_size
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def token_grid(arch: HfArch, config: Any) -> TokenGrid:
    """The :class:`TokenGrid` of an encoder block's output for ``config`` (transformers 5.x
    layouts): VideoMAE: Conv3d tubelets flattened ``(t', h', w')``, no class token; ViViT: a class
    token, then tubelets ``(t', h', w')``; TimeSformer: a class token, then per-frame patches in
    ``(h', w', t)`` order (its embeddings permute to (patch, frame); every block keeps it)."""
    h, w = _image_size(config)
    if arch.name == "timesformer":
        if config.attention_type == "space_only":
            raise VidcamError(
                "TimeSformer with attention_type='space_only' keeps frames in the batch "
                "dimension; vidcam explains 'divided_space_time' and 'joint_space_time' models"
            )
        p = config.patch_size
        return TokenGrid((config.num_frames, h // p, w // p), order="hwt", cls=1)
    if arch.name == "vivit":
        tt, th, tw = config.tubelet_size
        return TokenGrid((config.num_frames // tt, h // th, w // tw), order="thw", cls=1)
    p, tt = config.patch_size, config.tubelet_size
    return TokenGrid((config.num_frames // tt, h // p, w // p), order="thw", cls=0)


def default_layer(arch: HfArch, config: Any) -> str:
    """The last block whose patch tokens reach the logits: the last one when the head pools all
    tokens (VideoMAE with mean pooling), else the second-to-last: the class-token heads of
    TimeSformer and ViViT read the last block's class token only, so its patch tokens get no
    gradient (as MViT's), while its input's patches reach the class token through attention."""
    depth = int(config.num_hidden_layers)
    pooled = arch.name == "videomae" and config.use_mean_pooling
    index = depth - 1 if pooled or depth < 2 else depth - 2
    return f"net.{arch.blocks}.{index}"


def _numbers(value: Any, key: str, source: str) -> tuple[float, float, float]:
    items = [value] * 3 if isinstance(value, int | float) else value
    try:
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or isinstance(value, str):
        raise VidcamError(f"{source}: {key} must be a number or 3 numbers (RGB), got {value!r}")
    return out  # type: ignore[return-value]


def _size(value: Any, key: str, source: str) -> dict[str, int]:
    """``size`` / ``crop_size`` as a dict (an int is the short side, transformers' legacy)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"shortest_edge": value}
    if isinstance(value, Mapping) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()
    ):
        return {str(k): int(v) for k, v in value.items()}
    raise VidcamError(f"{source}: {key} must be a positive int or a dict of them, got {value!r}")


def _normalisation(p: Mapping[str, Any], source: str) -> tuple[tuple, tuple]:
    """mean/std on vidcam's [0, 1] pixels equal to the processor's ``(P * rescale_factor -
    offset - image_mean) / image_std`` on [0, 255] pixels P."""
    rescale = bool(p.get("do_rescale", True))
    try:
        scale = float(p["rescale_factor"]) * 255 if rescale else 1.0
    except (TypeError, ValueError):
        raise VidcamError(f"{source}: rescale_factor must be a number") from None
    shift = 1.0 if rescale and p.get("offset", False) else 0.0
    if p.get("do_normalize", True):
        mean = _numbers(p["image_mean"], "image_mean", source)
        std = _numbers(p["image_std"], "image_std", source)
    else:
        mean, std = (0.0,) * 3, (1.0,) * 3
    if scale <= 0 or 0 in std:
        raise VidcamError(f"{source}: rescale_factor and image_std must be non-zero")
    return tuple((m + shift) / scale for m in mean), tuple(s / scale for s in std)


def _resize_short(p: Mapping[str, Any], crop: tuple[int, int], source: str) -> int:
    """The processor's short-side resize, scaled by the model's crop over the processor's crop
    when they differ; ``{height, width}`` resizes count as their short side (vidcam keeps the
    aspect ratio and centre-crops); no resize: the crop's short side."""
    size = _size(p.get("size", {}), "size", source)
    proc_crop = None
    if p.get("do_center_crop", True) and p.get("crop_size") is not None:
        c = _size(p["crop_size"], "crop_size", source)
        proc_crop = (c["height"], c["width"]) if {"height", "width"} <= set(c) else None
    if "shortest_edge" in size:
        short = size["shortest_edge"]
    elif {"height", "width"} <= set(size):
        short = min(size["height"], size["width"])
        proc_crop = proc_crop or (size["height"], size["width"])
    else:
        short = min(crop)
    if not p.get("do_resize", True):
        short, proc_crop = min(crop), None
    if proc_crop is not None and min(proc_crop) != min(crop):
        short = round(short * min(crop) / min(proc_crop))
    return max(1, short)


def input_spec(arch: HfArch, config: Any, processor: Mapping[str, Any] | None = None) -> InputSpec:
    """The input of a checkpoint: clip length and crop from ``config``; resize and mean/std from
    ``processor`` (a preprocessor file's dict) over the processor class's defaults."""
    p = {**arch.processor, **(processor or {})}
    source = "preprocessor config" if processor else arch.name
    h, w = _image_size(config)
    mean, std = _normalisation(p, source)
    return InputSpec(
        clip_len=int(config.num_frames),
        crop=(h, w),
        resize_short=_resize_short(p, (h, w), source),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        stride=arch.stride,
    )


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")


def offline() -> bool:
    """Whether ``VIDCAM_OFFLINE`` or ``HF_HUB_OFFLINE`` forbids the network (cache only)."""
    return any(os.environ.get(v, "") not in ("", "0") for v in ("VIDCAM_OFFLINE", "HF_HUB_OFFLINE"))


def labels_of(config: Any, source: str) -> tuple[str, ...] | None:
    """Class names from ``config.id2label`` in index order; None when they are transformers'
    placeholders ``LABEL_<i>`` (a config saved without names)."""
    id2label = dict(getattr(config, "id2label", None) or {})
    try:
        names = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise VidcamError(f"{source}: config id2label keys must be class indices") from None
    n = int(config.num_labels)
    if sorted(names) != list(range(n)):
        raise VidcamError(
            f"{source}: config id2label has {len(names)} entries, not the head's {n} classes "
            f"0..{n - 1}; fix id2label in config.json or pass --labels FILE"
        )
    labels = tuple(names[i] for i in range(n))
    return None if all(name == f"LABEL_{i}" for i, name in enumerate(labels)) else labels


def _locate(ref: str) -> tuple[str, bool]:
    """(where, local): a ``save_pretrained`` directory, or a hub id ``ORG/NAME``."""
    if not ref.strip():
        raise VidcamError("hf: needs a directory or a hub id after it: hf:DIR or hf:ORG/NAME")
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise VidcamError(f"hf:{ref} is a file; pass the directory save_pretrained wrote")
    if not _HUB_ID.fullmatch(ref):
        raise VidcamError(
            f"hf:{ref}: no such directory, and not a hub id ORG/NAME; pass hf:DIR (written by "
            "save_pretrained) or hf:ORG/NAME"
        )
    return ref, False


def _hub_fix(where: str, unreachable: str | None = None) -> str:
    why = f" ({unreachable})" if unreachable else ""
    return (
        f"there is no local directory {where!r} either{why}. Online, a hub id downloads into the "
        "Hugging Face cache ($HF_HOME); offline (no network, HF_HUB_OFFLINE or VIDCAM_OFFLINE) "
        "only cached models load: save_pretrained it where you are online and pass hf:DIR"
    )


def _config(where: str, local: bool, cache_only: bool, name: str, fix: str) -> Any:
    tf = transformers_module()
    try:
        return tf.AutoConfig.from_pretrained(
            where, local_files_only=cache_only, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise VidcamError(
            f"{name}: could not read its config ({type(exc).__name__}: {_first_line(exc)}); "
            + (fix + " (with its config.json)" if local else fix)
        ) from exc


def open_hf(
    ref: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> ModelHandle:
    """The handle of the Hugging Face video classifier ``ref`` (the text after ``hf:``; a
    leading ``hf:`` is dropped).

    ``ref``: a ``save_pretrained`` directory (read offline, never a network call) or a hub id
    ``ORG/NAME``. ``weights``: a ``.safetensors`` or weights-only torch file loaded into the
    config's architecture instead; ``pretrained=False``: random weights of that architecture.
    The module maps ``(N, C, T, H, W)`` clips to ``(N, num_labels)`` logits.
    """
    if not isinstance(ref, str):
        raise VidcamError(f"hf: expected a directory or hub id string, got {type(ref).__name__}")
    ref = ref.removeprefix("hf:")  # the whole --model text is accepted too
    where, local = _locate(ref)
    name = f"hf:{ref}"
    # loading lives with the registry's entries (vidcam.models.zoo_hf), which import this module
    from vidcam.models.zoo_hf import build_auto, hub_unreachable, read_processor_file

    unreachable = None if local or offline() else hub_unreachable()
    cache_only = local or offline() or unreachable is not None
    fix = "pass a directory written by save_pretrained" if local else _hub_fix(where, unreachable)
    config = _config(where, local, cache_only, name, fix)
    arch = arch_for(config, name)
    grid = token_grid(arch, config)  # unsupported layouts fail before any weights load
    spec = input_spec(arch, config, read_processor_file(where, local, cache_only, name))
    labels = labels_of(config, name)
    net, source = build_auto(
        where, config, local=local, cache_only=cache_only, name=name, fix=fix,
        weights=weights, pretrained=pretrained, progress=progress,
    )  # fmt: skip
    dev = resolve_device(device)
    return ModelHandle(
        module=HfVideoClassifier(net).eval().to(dev),
        name=name,
        input=spec,
        layer=default_layer(arch, config),
        reshape=grid,
        labels=labels,
        weights_source=source,
        device=dev,
    )
