"""PyTorchVideo's Kinetics-400 models (``pytorchvideo.models.hub``).

Input specs follow PyTorchVideo's model zoo (``<clip_len>x<stride>`` at 30 fps source video,
mean 0.45 / std 0.225); the clip length and crop also fix each head's pooling kernel in the hub
source, so other clip sizes need ``build(head_pool=...)``. Only ``pytorchvideo.models`` is
imported (never ``pytorchvideo.transforms``, which is broken with current torchvision).

X3D and R(2+1)D heads end in a Softmax; it is removed (:func:`drop_head_softmax`) so the models
return logits, which Grad-CAM differentiates.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from vidcam.cam.reshape import Reshape
from vidcam.errors import VidcamError
from vidcam.models.adapters import SlowFastAdapter, TokensToVolume, drop_head_softmax
from vidcam.models.checkpoint import url_file_name
from vidcam.models.spec import InputSpec, ModelSpec
from vidcam.models.weights_source import WeightsSource


def _hub_module(name: str) -> Any:
    """``pytorchvideo.models.hub.<name>``, importing without its torch.jit deprecation noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        return importlib.import_module(f"pytorchvideo.models.hub.{name}")


def set_head_pool(model: nn.Module, kernels: Sequence[int] | Sequence[Sequence[int]]) -> None:
    """Set the kernel of the head's average pool(s) (SlowFast: one per pathway, in order).

    PyTorchVideo sizes these pools for the published clip (e.g. (8, 7, 7) for 8 x 224 x 224),
    which makes smaller clips fail; the pools have no parameters, so weights are unaffected.
    """
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool3d)]
    sizes = [tuple(kernels)] if isinstance(kernels[0], int) else [tuple(k) for k in kernels]
    if len(sizes) != len(pools):
        raise VidcamError(f"head_pool needs {len(pools)} kernel(s), got {len(sizes)}")
    for pool, size in zip(pools, sizes, strict=True):
        pool.kernel_size = size


#: Full sha256 of each PyTorchVideo checkpoint, by file name. PyTorchVideo publishes none (its
#: file names carry no hash prefix either, unlike torchvision's) and none was found in public
#: sources, so every entry is None: a cached file of these is then never loaded (see
#: :mod:`vidcam.models.weights_source`). Fill in a digest only from a trustworthy publication.
PUBLISHED_SHA256: dict[str, str | None] = {
    "X3D_XS.pyth": None,
    "X3D_S.pyth": None,
    "X3D_M.pyth": None,
    "X3D_L.pyth": None,
    "SLOW_8x8_R50.pyth": None,
    "I3D_8x8_R50.pyth": None,
    "C2D_8x8_R50.pyth": None,
    "CSN_32x2_R101.pyth": None,
    "R2PLUS1D_16x4_R50.pyth": None,
    "SLOWFAST_8x8_R50.pyth": None,
    "MVIT_B_16x4.pyth": None,
}


def _make(
    module: str, fn: str, wrap: Callable[[nn.Module], nn.Module] | None = None
) -> Callable[..., nn.Module]:
    """``make(head_pool=None, **arch)``: the hub model (random weights, Softmax removed).

    ``head_pool`` resizes the head's pooling kernel(s) (see :func:`set_head_pool`) for clips of
    another size; ``arch`` goes to the hub constructor where it allows (MViT's
    ``spatial_size`` / ``temporal_size``).
    """

    def make(
        head_pool: Sequence[int] | Sequence[Sequence[int]] | None = None, **arch: Any
    ) -> nn.Module:
        net = drop_head_softmax(getattr(_hub_module(module), fn)(pretrained=False, **arch))
        if head_pool is not None:
            set_head_pool(net, head_pool)
        return wrap(net) if wrap is not None else net

    return make


def _input(clip_len: int, stride: int, crop: int, short: int) -> InputSpec:
    return InputSpec(clip_len=clip_len, crop=(crop, crop), resize_short=short, stride=stride)


def _spec(
    name: str,
    module: str,
    input: InputSpec,
    layers: tuple[str, ...],
    description: str,
    test_input: tuple[int, int, int],
    test_arch: dict[str, Any],
    *,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    reshape: Reshape | None = None,
) -> ModelSpec:
    url = _hub_module(module).checkpoint_paths[name]
    sha256 = PUBLISHED_SHA256[url_file_name(url)]
    unverified = "" if sha256 else "; no published sha256, so never taken from the hub cache"
    weights = WeightsSource.hub(
        url, note=f"PyTorchVideo model zoo ({url}){unverified}", sha256=sha256
    )
    return ModelSpec(
        name=name,
        source="pytorchvideo",
        input=input,
        layers=layers,
        labels="kinetics400",
        make=_make(module, name, wrap),
        weights=weights,
        test_input=test_input,
        test_arch=test_arch,
        reshape=reshape,
        description=description,
    )


def _x3d(name: str, clip_len: int, stride: int, crop: int, short: int, top1: float) -> ModelSpec:
    return _spec(
        name,
        "x3d",
        _input(clip_len, stride, crop, short),
        ("blocks.4",),
        f"X3D-{name[4:].upper()} {clip_len}x{stride}, top-1 {top1}. blocks.4: the last residual "
        f"stage (192 channels at T x {crop // 32} x {crop // 32}) before the head's 1x1x1 convs.",
        test_input=(4, 64, 64),
        test_arch={"head_pool": (4, 2, 2)},
    )


def _resnet_note(layer: str, what: str) -> str:
    return f"{layer}: the last residual stage ({what}) before the head's average pool."


SPECS: list[ModelSpec] = [
    _x3d("x3d_xs", 4, 12, 160, 182, 69.12),
    _x3d("x3d_s", 13, 6, 160, 182, 73.33),
    _x3d("x3d_m", 16, 5, 224, 256, 75.94),
    _x3d("x3d_l", 16, 5, 312, 356, 77.44),
    _spec(
        "slow_r50",
        "resnet",
        _input(8, 8, 224, 256),
        ("blocks.4",),
        "Slow-only R50 8x8, top-1 74.58. "
        + _resnet_note("blocks.4", "2048 channels at 8 x 7 x 7, no temporal downsampling"),
        test_input=(4, 64, 64),
        test_arch={"head_pool": (4, 2, 2)},
    ),
    _spec(
        "i3d_r50",
        "resnet",
        _input(8, 8, 224, 256),
        ("blocks.5",),
        "I3D R50 8x8 (ResNet-50 inflated), top-1 73.27. "
        + _resnet_note(
            "blocks.5", "2048 channels at 4 x 7 x 7; blocks.2 is the max pool after res2"
        ),
        test_input=(4, 64, 64),
        test_arch={"head_pool": (2, 2, 2)},
    ),
    _spec(
        "c2d_r50",
        "resnet",
        _input(8, 8, 224, 256),
        ("blocks.5",),
        "C2D R50 8x8 (2D convs, temporal pooling once), top-1 71.46. "
        + _resnet_note(
            "blocks.5", "2048 channels at 4 x 7 x 7; blocks.2 is the max pool after res2"
        ),
        test_input=(4, 64, 64),
        test_arch={"head_pool": (2, 2, 2)},
    ),
    _spec(
        "csn_r101",
        "csn",
        _input(32, 2, 224, 256),
        ("blocks.4",),
        "ir-CSN R101 32x2 (channel-separated convs), top-1 77.0. "
        + _resnet_note("blocks.4", "2048 channels at 4 x 7 x 7"),
        test_input=(8, 64, 64),
        test_arch={"head_pool": (1, 2, 2)},
    ),
    _spec(
        "r2plus1d_r50",
        "r2plus1d",
        _input(16, 4, 224, 256),
        ("blocks.4",),
        "R(2+1)D R50 16x4, top-1 76.01. " + _resnet_note("blocks.4", "2048 channels at 4 x 7 x 7"),
        test_input=(8, 64, 64),
        test_arch={"head_pool": (2, 2, 2)},
    ),
    _spec(
        "slowfast_r50",
        "slowfast",
        _input(32, 2, 224, 256),
        ("net.blocks.4.multipathway_blocks.0", "net.blocks.4.multipathway_blocks.1"),
        "SlowFast R50 8x8 (fast 32x2, slow 8x8, alpha 4), top-1 76.4, wrapped in "
        "SlowFastAdapter (one clip in; slow = T/4 frames). Layers: the last residual stage of "
        "both pathways (slow 2048 ch at 8 x 7 x 7, fast 256 ch at 32 x 7 x 7); their maps are "
        "fused on the input timeline.",
        test_input=(8, 64, 64),
        test_arch={"head_pool": ((2, 2, 2), (8, 2, 2))},
        wrap=SlowFastAdapter,
    ),
    _spec(
        "mvit_base_16x4",
        "vision_transformers",
        _input(16, 4, 224, 256),
        ("blocks.14",),
        "MViT-B 16x4, top-1 78.9; needs exactly 16 x 224 x 224. blocks.14: the second-to-last "
        "block (768 ch, 8 x 7 x 7 tokens + class token); the last block's patch tokens never "
        "reach the class-token head (zero gradient).",
        test_input=(4, 64, 64),
        test_arch={"spatial_size": 64, "temporal_size": 4},
        reshape=TokensToVolume(),
    ),
]
