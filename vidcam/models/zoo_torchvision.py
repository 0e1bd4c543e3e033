"""torchvision's Kinetics-400 video models (``torchvision.models.video``).

Input specs are torchvision's own: the weights' ``transforms()`` (resize, crop, mean/std) and
the ``_docs`` of their meta (``frame_rate``, ``clip_len`` used for the published accuracy).
VideoResNets resize to (128, 171), i.e. short side 128 for 4:3 video; S3D resizes to
(256, 256), recorded here as short side 256.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torchvision.models.video as tvv
from torch import nn

from vidcam.cam.reshape import Reshape
from vidcam.models.adapters import TokensToVolume, channels_last_to_volume
from vidcam.models.spec import InputSpec, ModelSpec
from vidcam.models.weights_source import WeightsSource

_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)
_RESNET_INPUT = InputSpec(
    clip_len=16, crop=(112, 112), resize_short=128, mean=_KINETICS_MEAN, std=_KINETICS_STD, fps=15
)


def _spec(
    name: str,
    fn: Callable[..., nn.Module],
    weights_enum: Any,
    input: InputSpec,
    layers: tuple[str, ...],
    description: str,
    test_input: tuple[int, int, int],
    test_arch: dict[str, Any] | None = None,
    reshape: Reshape | None = None,
) -> ModelSpec:
    """``arch`` options of ``build`` go to the torchvision constructor (e.g. ``spatial_size`` /
    ``temporal_size`` for MViT); the weights' file name carries their sha256 prefix."""
    url = weights_enum.DEFAULT.url
    return ModelSpec(
        name=name,
        source="torchvision",
        input=input,
        layers=layers,
        labels="kinetics400",
        make=functools.partial(fn, weights=None),
        weights=WeightsSource.hub(url, note=f"torchvision {weights_enum.DEFAULT} ({url})"),
        test_input=test_input,
        test_arch=test_arch or {},
        reshape=reshape,
        description=description,
    )


_RESNET_LAYER_NOTE = (
    "layer4: the last residual stage (512 channels at T/8 x H/16 x W/16), right before the "
    "global average pool and linear classifier."
)

SPECS: list[ModelSpec] = [
    _spec(
        "r3d_18",
        tvv.r3d_18,
        tvv.R3D_18_Weights,
        _RESNET_INPUT,
        ("layer4",),
        "3D ResNet-18 (Tran et al. 2018), Kinetics-400 top-1 63.2. " + _RESNET_LAYER_NOTE,
        test_input=(4, 32, 32),
    ),
    _spec(
        "mc3_18",
        tvv.mc3_18,
        tvv.MC3_18_Weights,
        _RESNET_INPUT,
        ("layer4",),
        "Mixed-convolution ResNet-18 (3D convs in the first stage, 2D after), top-1 63.96. "
        "layer4: the last residual stage (512 channels at T x H/16 x W/16: no temporal "
        "downsampling), before the pool.",
        test_input=(4, 32, 32),
    ),
    _spec(
        "r2plus1d_18",
        tvv.r2plus1d_18,
        tvv.R2Plus1D_18_Weights,
        _RESNET_INPUT,
        ("layer4",),
        "R(2+1)D-18 (factorised spatial + temporal convs), top-1 67.46. " + _RESNET_LAYER_NOTE,
        test_input=(4, 32, 32),
    ),
    _spec(
        "s3d",
        tvv.s3d,
        tvv.S3D_Weights,
        InputSpec(
            clip_len=128,
            crop=(224, 224),
            resize_short=256,
            mean=_KINETICS_MEAN,
            std=_KINETICS_STD,
            fps=15,
        ),
        ("features.15",),
        "S3D (separable 3D Inception), top-1 68.37 at 128 frames (any T >= 14 works). "
        "features.15: the last separable Inception block (Mixed_5c, 1024 channels at "
        "T/8 x 7 x 7) before the (2, 7, 7) average pool; 224x224 is required by that pool.",
        test_input=(14, 224, 224),
    ),
    _spec(
        "mvit_v1_b",
        tvv.mvit_v1_b,
        tvv.MViT_V1_B_Weights,
        InputSpec(clip_len=16, crop=(224, 224), resize_short=256, fps=7.5),
        ("blocks.14",),
        "MViT-V1-B 16x4 (multiscale ViT), top-1 78.48; needs exactly 16 x 224 x 224. "
        "blocks.14: the second-to-last block (768 ch, 8 x 7 x 7 tokens + class token). The "
        "last block is useless for Grad-CAM: only its class token reaches the head (after a "
        "per-token LayerNorm), so its patch tokens get zero gradient.",
        test_input=(16, 224, 224),  # torchvision fixes the size in mvit_*()
        reshape=TokensToVolume(),
    ),
    _spec(
        "mvit_v2_s",
        tvv.mvit_v2_s,
        tvv.MViT_V2_S_Weights,
        InputSpec(clip_len=16, crop=(224, 224), resize_short=256, fps=7.5),
        ("blocks.14",),
        "MViT-V2-S 16x4 (relative positions, residual pooling), top-1 80.76; needs exactly "
        "16 x 224 x 224. blocks.14: the second-to-last block (768 ch, 8 x 7 x 7 tokens); the "
        "last block's patch tokens never reach the class-token head (zero gradient).",
        test_input=(16, 224, 224),  # torchvision fixes the size in mvit_*()
        reshape=TokensToVolume(),
    ),
    _spec(
        "swin3d_t",
        tvv.swin3d_t,
        tvv.Swin3D_T_Weights,
        InputSpec(
            clip_len=32,
            crop=(224, 224),
            resize_short=256,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            fps=15,
        ),
        ("norm",),
        "Video Swin-T, top-1 77.72 (32 frames at 15 fps). norm: the LayerNorm after the last "
        "stage (features.6), channels-last (N, T/2, H/32, W/32, 768): the exact tensor the "
        "global average pool and linear head read, so Grad-CAM's weights are the head's (CAM).",
        test_input=(4, 64, 64),
        reshape=channels_last_to_volume,
    ),
]
