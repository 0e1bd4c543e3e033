"""The registry's Hugging Face entries: ``videomae``, ``timesformer`` and ``vivit`` (Kinetics-400).

Optional extra: ``pip install 'vidcam[transformers]'``; nothing here imports ``transformers``
until a model is built. Weights: the hub id through ``from_pretrained`` (cache only when
``VIDCAM_OFFLINE`` / ``HF_HUB_OFFLINE`` is set or the hub cannot be reached), a
``save_pretrained`` directory or a weights file (``--weights``: ``.safetensors``, or a state
dict read with ``weights_only=True``), or a small random config (``pretrained=False`` /
``--random-weights``: hidden size 32, 2 blocks, the real input geometry: runs in seconds).

Token layouts, layer and input spec come from the checkpoint's config through the functions of
``--model hf:DIR`` (:mod:`vidcam.models.hf_auto`); the loading helpers here serve both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import re
import socket
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.models.checkpoint import load_into, load_weights_only, read_checkpoint
from vidcam.models.hf_auto import (  # noqa: F401 - re-exported: the registry's names
    ARCHS,
    INSTALL,
    HfArch,
    HfVideoClassifier,
    default_layer,
    input_spec,
    offline,
    token_grid,
    transformers_module,
)
from vidcam.models.spec import ModelSpec
from vidcam.models.weights_source import WeightsStatus

#: the small random architecture of ``pretrained=False`` (same input geometry as the real one)
TINY: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


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


@contextlib.contextmanager
def quiet_progress(progress: bool) -> Iterator[None]:
    """transformers' progress bars ("Loading weights") only when ``progress``, and none of its
    load reports (missing keys are vidcam's one-line error); both restored afterwards."""
    logging = transformers_module().utils.logging
    was, level = logging.is_progress_bar_enabled(), logging.get_verbosity()
    if not progress and was:
        logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if was and not logging.is_progress_bar_enabled():
            logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")


def load_pretrained(
    model_cls: str, where: str, *, local_only: bool, what: str, fix: str, **kwargs: Any
) -> nn.Module:
    """``transformers.<model_cls>.from_pretrained(where)``; failures are one line naming
    ``what`` and saying ``fix``. A pickle that is not weights-only is refused (transformers reads
    ``.bin`` files with ``weights_only=True``: nothing runs) without torch's advice to load it
    unsafely; a checkpoint that leaves weights uninitialised (e.g. no classifier) is refused."""
    tf = transformers_module()
    try:
        net, info = getattr(tf, model_cls).from_pretrained(
            where, local_files_only=local_only, output_loading_info=True, **kwargs
        )
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        detail = f"it pickles the global {found.group(1)}" if found else "not tensors only"
        raise VidcamError(
            f"{what}: a weights file is not a weights-only checkpoint ({detail}); vidcam never "
            "runs code from a checkpoint. Save the model with save_pretrained (safetensors)"
        ) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise VidcamError(
            f"could not load {what} ({type(exc).__name__}: {_first_line(exc)}); {fix}"
        ) from exc
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        more = f", ... ({len(missing)} in all)" if len(missing) > 3 else ""
        raise VidcamError(
            f"{what}: the checkpoint has no weights for {', '.join(missing[:3])}{more}; pass a "
            "video classifier's checkpoint (with its head), or --random-weights"
        )
    return net


def check_pickles(directory: Path) -> None:
    """Refuse a ``save_pretrained`` directory whose ``.bin`` weights (what transformers reads
    when there is no ``.safetensors``) are not weights-only pickles, before transformers opens
    them: each is unpickled here with ``weights_only=True``, which never runs code."""
    if any(directory.glob("*.safetensors")):
        return
    for path in sorted(directory.glob("*.bin")):
        load_weights_only(
            path,
            what=f"weights file {str(path)!r}",
            fix="save the model with save_pretrained (safetensors), or pass tensors only",
        )


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file, or a torch state dict read with ``weights_only=True``."""
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


def _from_pretrained(arch: HfArch, where: str, local_only: bool, progress: bool) -> nn.Module:
    if Path(where).is_dir():
        check_pickles(Path(where))
    with quiet_progress(progress):
        return load_pretrained(
            arch.model_cls,
            where,
            local_only=local_only,
            what=f"{arch.name} weights from {where!r}",
            fix="online, the hub id downloads into the Hugging Face cache ($HF_HOME); offline, "
            "pass --weights DIR (a save_pretrained directory) or FILE, or --random-weights",
        )


#: preprocessor files read from a Hugging Face checkpoint, the first present wins
PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")


def read_processor_file(where: str, local: bool, cache_only: bool, name: str) -> dict | None:
    """The first of :data:`PROCESSOR_FILES` a checkpoint has (directory ``where`` when
    ``local``, else hub id), as a dict; None if it has none."""
    for file_name in PROCESSOR_FILES:
        if local:
            found: str | None = str(Path(where) / file_name)
            found = found if Path(found).is_file() else None
        else:
            found = transformers_module().utils.cached_file(
                where,
                file_name,
                local_files_only=cache_only,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
        if found is None:
            continue
        try:
            data = json.loads(Path(found).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise VidcamError(
                f"{name}: could not read {file_name} ({exc}); fix or remove it"
            ) from exc
        if not isinstance(data, dict):
            raise VidcamError(f"{name}: {file_name} must hold a JSON object")
        return data
    return None


def hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the Hugging Face endpoint cannot be reached (one TCP connection), or None. Without
    this probe, huggingface_hub retries an unreachable hub for half a minute, logging each try.
    Behind a proxy (``HTTPS_PROXY`` / ``ALL_PROXY``) nothing is probed."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} cannot be reached: {exc}"
    return None


def build_auto(
    where: str,
    config: Any,
    *,
    local: bool,
    cache_only: bool,
    name: str,
    fix: str,
    weights: str | os.PathLike | None,
    pretrained: bool,
    progress: bool,
) -> tuple[nn.Module, str]:
    """``AutoModelForVideoClassification`` for ``config`` (``hf:`` models, see
    :func:`vidcam.models.hf_auto.open_hf`): the weights of ``where`` (a directory when
    ``local``, else a hub id; the Hugging Face cache only when ``cache_only``), of the file
    ``weights``, or random (``pretrained=False``). Returns (the model, its weights' origin)."""
    auto = "AutoModelForVideoClassification"
    if weights is not None or not pretrained:
        net = getattr(transformers_module(), auto).from_config(config)
        if weights is None:
            return net, f"random initialisation from {name}'s config (pretrained=False)"
        path = Path(weights).expanduser()
        state = read_weights_file(path)
        load_into(HfVideoClassifier(net), state, source=repr(str(path)), model_name=name)
        return net, f"weights file {str(path)!r} ({name}'s config)"
    if local:
        check_pickles(Path(where))
    with quiet_progress(progress):
        net = load_pretrained(auto, where, local_only=cache_only, what=name, fix=fix, config=config)
    return net, f"Hugging Face {'directory' if local else 'hub model'} {where!r}"


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
            net = _from_pretrained(arch, str(path), local_only=True, progress=progress)
            source = f"weights directory {str(path)!r}"
        elif path is not None or not pretrained:
            config = _config(arch, overrides if path is not None else {**TINY, **overrides})
            net = getattr(tf, arch.model_cls)(config)
            if path is not None:
                state = read_weights_file(path)
                load_into(
                    HfVideoClassifier(net), state, source=repr(str(path)), model_name=arch.name
                )
            source = f"weights file {str(path)!r}" if path is not None else "the random config"
        else:
            if overrides:
                raise VidcamError(
                    f"the hub weights of {arch.hub_id} fix the architecture; drop {overrides}"
                )
            cache_only = offline() or bool(hub_unreachable())
            net = _from_pretrained(arch, arch.hub_id, cache_only, progress)
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
