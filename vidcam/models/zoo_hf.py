"""Hugging Face ``transformers`` video classifiers: VideoMAE, TimeSformer and ViViT.

Optional extra: ``pip install 'vidcam[transformers]'``; nothing here imports ``transformers``
until a model is built. Weights: the hub id through ``from_pretrained`` (cache only when
``VIDCAM_OFFLINE`` / ``HF_HUB_OFFLINE`` is set), a ``save_pretrained`` directory or a weights
file (``--weights``: ``.safetensors``, or a state dict read with ``weights_only=True``), or a
small random config (``pretrained=False`` / ``--random-weights``: hidden size 32, 2 blocks, the
real input geometry, so the pipeline runs in seconds).

Token layouts (transformers 5.23 source), turned into ``(N, C, T', H', W')`` by
:class:`~vidcam.models.adapters.TokenGrid`:

* VideoMAE: Conv3d tubelets (``tubelet_size`` x 16 x 16) flattened, tokens ``(t', h', w')``, no
  class token; the head mean-pools every token, so the **last** block's output is explained.
* TimeSformer: class token, then per-frame 16 x 16 patches in ``(h', w', t)`` order (the
  embeddings permute to (patch, frame) and every divided space-time block keeps that order).
* ViViT: class token, then Conv3d tubelets (2 x 16 x 16) flattened in ``(t', h', w')`` order.

TimeSformer and ViViT classify from the class token after the last block, whose patch-token
outputs therefore get no gradient (as MViT's): their layer is the second-to-last block's output,
i.e. the last block's input, where the patches still reach the class token through attention.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.models.adapters import TokenGrid
from vidcam.models.checkpoint import load_into, read_checkpoint
from vidcam.models.spec import InputSpec, ModelSpec
from vidcam.models.weights_source import WeightsStatus

INSTALL = "pip install 'vidcam[transformers]'"
#: the small random architecture of ``pretrained=False`` (same input geometry as the real one)
TINY: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
_IMAGENET_DEFAULT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_IMAGENET_STANDARD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


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
    """One registered ``transformers`` architecture: names, hub id, layout and preprocessing."""

    name: str
    hub_id: str
    config_cls: str
    model_cls: str
    blocks: str  # dotted path of the encoder blocks inside the HF model
    order: str  # token order for TokenGrid
    cls: int  # leading class tokens
    resize_short: int
    norm: tuple[tuple[float, float, float], tuple[float, float, float]]
    stride: int  # source frames between sampled frames (the paper's sampling rate)


def _image_size(config: Any) -> tuple[int, int]:
    size = config.image_size
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def token_grid(arch: HfArch, config: Any) -> TokenGrid:
    """The :class:`TokenGrid` of an encoder block's output for ``config``."""
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
    tokens (VideoMAE with mean pooling), else the second-to-last (class-token heads)."""
    depth = int(config.num_hidden_layers)
    pooled = arch.name == "videomae" and config.use_mean_pooling
    index = depth - 1 if pooled or depth < 2 else depth - 2
    return f"net.{arch.blocks}.{index}"


def input_spec(arch: HfArch, config: Any) -> InputSpec:
    """Clip length and crop from ``config``; resize, mean/std from the processor's defaults
    (resize scaled with the crop for checkpoints of another image size)."""
    h, w = _image_size(config)
    return InputSpec(
        clip_len=int(config.num_frames),
        crop=(h, w),
        resize_short=round(arch.resize_short * min(h, w) / 224),
        mean=arch.norm[0],
        std=arch.norm[1],
        stride=arch.stride,
    )


def _check_config(arch: HfArch, config: Any, source: str) -> None:
    if type(config).__name__ != arch.config_cls:
        raise VidcamError(
            f"{source} holds a {type(config).__name__}, not a {arch.config_cls}; pick the "
            f"matching --model (videomae, timesformer, vivit)"
        )
    if int(config.num_labels) != 400:
        raise VidcamError(
            f"{source} has {config.num_labels} classes; the registry's {arch.name!r} is a "
            "Kinetics-400 classifier. For other label sets use the Python API: "
            "vidcam.explain(HfVideoClassifier(model), clip, layer=..., reshape=token_grid(...))"
        )


def _config(arch: HfArch, overrides: Mapping[str, Any]) -> Any:
    tf = transformers_module()
    try:
        return getattr(tf, arch.config_cls)(**{"num_labels": 400, **overrides})
    except (TypeError, ValueError) as exc:
        raise VidcamError(
            f"model {arch.name!r}: bad architecture options {dict(overrides)} ({exc})"
        ) from exc


def _from_pretrained(arch: HfArch, where: str, local_only: bool) -> nn.Module:
    tf = transformers_module()
    try:
        return getattr(tf, arch.model_cls).from_pretrained(where, local_files_only=local_only)
    except (OSError, ValueError, RuntimeError) as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise VidcamError(
            f"could not load {arch.name} weights from {where!r} ({type(exc).__name__}: {first}); "
            "online, the hub id downloads into the Hugging Face cache ($HF_HOME); offline, pass "
            "--weights DIR (a save_pretrained directory) or FILE, or --random-weights"
        ) from exc


def _read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix != ".safetensors":
        return read_checkpoint(path)
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise VidcamError(f"reading {path} needs safetensors: {INSTALL}") from exc
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise VidcamError(
            f"could not read weights file {str(path)!r} ({type(exc).__name__}: {exc}); pass a "
            "file written by save_pretrained / safetensors.torch.save_file"
        ) from exc


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("VIDCAM_OFFLINE", "HF_HUB_OFFLINE"))


def _loader(arch: HfArch):
    def load(
        *,
        pretrained: bool = False,
        weights: str | os.PathLike | None = None,
        progress: bool = True,
        **overrides: Any,
    ) -> nn.Module:
        """The wrapped model: from a directory / file ``weights``, the hub, or random (tiny)."""
        tf = transformers_module()
        path = Path(weights).expanduser() if weights is not None else None
        if path is not None and path.is_dir():
            if overrides:
                raise VidcamError(f"a weights directory fixes the architecture; drop {overrides}")
            net = _from_pretrained(arch, str(path), local_only=True)
            source = f"weights directory {str(path)!r}"
        elif path is not None or not pretrained:
            config = _config(arch, overrides if path is not None else {**TINY, **overrides})
            net = getattr(tf, arch.model_cls)(config)
            if path is not None:
                state = _read_weights_file(path)
                load_into(
                    HfVideoClassifier(net), state, source=repr(str(path)), model_name=arch.name
                )
            source = f"weights file {str(path)!r}" if path is not None else "the random config"
        else:
            if overrides:
                raise VidcamError(
                    f"the hub weights of {arch.hub_id} fix the architecture; drop {overrides}"
                )
            net = _from_pretrained(arch, arch.hub_id, local_only=_offline())
            source = f"hub model {arch.hub_id!r}"
        _check_config(arch, net.config, source)
        token_grid(arch, net.config)  # fails early for unsupported layouts
        return HfVideoClassifier(net).eval()

    return load


class HfWeights:
    """The hub weights of an entry: cached in the Hugging Face cache or not."""

    kind = "hf"

    def __init__(self, hub_id: str) -> None:
        self.hub_id = hub_id
        self.note = (
            f"Hugging Face hub {hub_id} (transformers from_pretrained, Hugging Face cache; "
            f"needs {INSTALL})"
        )

    def status(self) -> WeightsStatus:
        """``"yes"`` when the config and weights are in the Hugging Face cache, else ``"no"``."""
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return "no"
        if not isinstance(try_to_load_from_cache(self.hub_id, "config.json"), str):
            return "no"
        files = ("model.safetensors", "pytorch_model.bin")
        found = any(isinstance(try_to_load_from_cache(self.hub_id, f), str) for f in files)
        return "yes" if found else "no"

    def describe(self) -> str:
        return f"pretrained: Hugging Face hub {self.hub_id} (from_pretrained)"

    def __repr__(self) -> str:
        return f"HfWeights({self.hub_id!r})"


def _specialise(arch: HfArch):
    def fit(spec: ModelSpec, model: nn.Module) -> ModelSpec:
        """``spec`` with the layer, token grid and clip of the built model's config."""
        config = model.config
        return dataclasses.replace(
            spec,
            input=input_spec(arch, config),
            layers=(default_layer(arch, config),),
            reshape=token_grid(arch, config),
        )

    return fit


def _defaults(arch: HfArch) -> Any:
    """The hub checkpoint's configuration (the config class defaults with 400 labels), as a
    plain namespace so listing the registry never imports transformers."""
    base = {"num_hidden_layers": 12, "image_size": 224, "patch_size": 16, "num_labels": 400}
    extra = {
        "videomae": {"num_frames": 16, "tubelet_size": 2, "use_mean_pooling": True},
        "timesformer": {"num_frames": 8, "attention_type": "divided_space_time"},
        "vivit": {"num_frames": 32, "tubelet_size": (2, 16, 16)},
    }[arch.name]
    return type("Config", (), {**base, **extra})


def _spec(arch: HfArch, description: str) -> ModelSpec:
    config = _defaults(arch)
    return ModelSpec(
        name=arch.name,
        source="transformers",
        input=input_spec(arch, config),
        layers=(default_layer(arch, config),),
        labels="kinetics400",
        make=_loader(arch),
        weights=HfWeights(arch.hub_id),
        test_input=(int(config.num_frames), 224, 224),
        test_arch={},
        reshape=token_grid(arch, config),
        description=description,
        loader=_loader(arch),
        specialise=_specialise(arch),
    )


ARCHS: dict[str, HfArch] = {
    a.name: a
    for a in (
        HfArch(
            "videomae", "MCG-NJU/videomae-base-finetuned-kinetics", "VideoMAEConfig",
            "VideoMAEForVideoClassification", "videomae.encoder.layer", "thw", 0, 224,
            _IMAGENET_STANDARD, 4,
        ),
        HfArch(
            "timesformer", "facebook/timesformer-base-finetuned-k400", "TimesformerConfig",
            "TimesformerForVideoClassification", "timesformer.encoder.layer", "hwt", 1, 224,
            _IMAGENET_DEFAULT, 32,
        ),
        HfArch(
            "vivit", "google/vivit-b-16x2-kinetics400", "VivitConfig",
            "VivitForVideoClassification", "vivit.layers", "thw", 1, 256,
            # the processor maps pixels to [-1, 1] (x/127.5 - 1), then normalises by 0.5/0.5:
            # (p - 0.75) / 0.25 on [0, 1] pixels
            ((0.75, 0.75, 0.75), (0.25, 0.25, 0.25)), 2,
        ),
    )
}  # fmt: skip

SPECS: list[ModelSpec] = [
    _spec(
        ARCHS["videomae"],
        "VideoMAE-B (Tong et al. 2022) fine-tuned on Kinetics-400, 16 frames / 4, via "
        f"transformers ({INSTALL}). Tubelets 2x16x16: 8 x 14 x 14 tokens, no class token, "
        "mean-pooled head. net.videomae.encoder.layer.11: the last block (768 ch).",
    ),
    _spec(
        ARCHS["timesformer"],
        "TimeSformer-B (Bertasius et al. 2021, divided space-time attention) on Kinetics-400, "
        f"8 frames / 32, via transformers ({INSTALL}). Class token + 14 x 14 patches x 8 frames "
        "in (h, w, t) order. net.timesformer.encoder.layer.10: the last block's input (its "
        "output's patch tokens never reach the class-token head).",
    ),
    _spec(
        ARCHS["vivit"],
        "ViViT-B 16x2 (Arnab et al. 2021, spatio-temporal attention) on Kinetics-400, 32 frames "
        f"/ 2, via transformers ({INSTALL}). Class token + tubelets 2x16x16: 16 x 14 x 14 "
        "tokens. net.vivit.layers.10: the last block's input (class-token head).",
    ),
]
