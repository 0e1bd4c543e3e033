"""Window and memory checks, before any work: does a window batch fit the model, the video and
the free memory?

:func:`check_window` bounds ``clip_len`` / ``stride`` / ``batch_size`` by the model's clip, the
video's length and the free memory (one-line errors naming the option); :func:`check_memory` is
its memory part, estimated from the model's activations (:func:`activation_profile`,
:func:`window_need`) when the model is open, else from the input size;
:func:`auto_batch_size` is the most windows per engine call when ``batch_size`` is None.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidcam.device import available_memory, live_tensor_bytes, resolve_device
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec
from vidcam.video.decode import VideoInfo
from vidcam.video.preprocess import band_geometry
from vidcam.video.sample import check_clip_len
from vidcam.video.spatial import tile_offsets

#: without the model (``model=None``): forward + backward of one window needs at least this
#: many times its input tensor (a floor: measured on the CPU, one window, the sample model
#: 6.6x, x3d_s 16x, r3d_18 36x, r2plus1d_18 57x), so a batch whose input x this exceeds the
#: free memory cannot run. With the model, :func:`window_need` estimates it from a dry run.
WORKING_SET_FACTOR = 8

#: with the model: one window's peak = PIPELINE_FACTOR x its input (the window's frames, the
#: clip, the maps) + ACTIVATION_MARGIN x the peak of the forward's live tensors (kernel
#: workspaces on top) + BACKWARD_FACTOR x the tensors made from the explained layer on (kept
#: for the backward, then their gradients), per :func:`activation_profile`. Peak RSS measured
#: on the CPU (2 threads, one window in full mode, x its input; the estimate in brackets):
#: sample 6.6 (7.0), x3d_xs 18 (23), x3d_s 16 (23), r3d_18 36 (44), mc3_18 37 (46),
#: r2plus1d_18 57 (64). Not measured on GPUs (cuDNN's workspaces differ).
PIPELINE_FACTOR = 4.0
ACTIVATION_MARGIN = 1.5
BACKWARD_FACTOR = 3.0

#: ``batch_size=None`` (auto): at most this many bytes of windows per engine call (a heavy window
#: such as I3D's 64x224² goes alone), at most AUTO_BATCH_MAX windows. On the CPU this bound is
#: a candidate that :class:`vidcam.video.batching.BatchPlan` times against one window per call
AUTO_BATCH_BYTES = {"cpu": 20 << 20, "cuda": 512 << 20}
AUTO_BATCH_MAX = {"cpu": 8, "cuda": 32}
#: and while the free memory holds this many times their input (model unknown) or
#: AUTO_MEMORY_SHARE of it holds their estimated need (:func:`window_need`)
AUTO_WORKING_SET = 256
AUTO_MEMORY_SHARE = 0.5


def auto_batch_size(
    spec: InputSpec,
    clip_len: int,
    frame_hw: tuple[int, int] | None,
    spatial: str,
    device: str | torch.device,
    model: ModelHandle | None = None,
) -> int:
    """The most windows per engine call when ``batch_size`` is None: as many as fit the device
    kind's :data:`AUTO_BATCH_BYTES` input budget and the free memory, at least 1. On an
    accelerator that is the batch; on the CPU :class:`vidcam.video.batching.BatchPlan` times
    it against one window per call."""
    kind = torch.device(device).type  # a resolved device (not "auto")
    kind = kind if kind in AUTO_BATCH_BYTES else "cpu"
    one = max(1, window_bytes(spec, clip_len, 1, frame_hw, spatial))
    n = min(AUTO_BATCH_MAX[kind], AUTO_BATCH_BYTES[kind] // one)
    free = available_memory(device)
    profile = activation_profile(model, spec, clip_len) if model is not None else None
    if free is not None and profile is None:
        n = min(n, free // (one * AUTO_WORKING_SET))
    elif free is not None:
        need = window_need(spec, clip_len, 1, frame_hw, spatial, profile)
        n = min(n, int(free * AUTO_MEMORY_SHARE) // max(1, need))
    return max(1, int(n))


def check_count(name: str, value: object) -> None:
    """``value`` is an int >= 1 (not a bool), else a VidcamError naming the option ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise VidcamError(f"{name} must be an int >= 1, got {value!r}")


def video_samples(spec: InputSpec, info: VideoInfo) -> int | None:
    """How many model samples the video holds at the model's rate (from its header)."""
    if spec.fps is not None:
        if not info.duration or info.duration <= 0:
            return None
        return int(info.duration * spec.fps) + 1
    return -(-info.frames // spec.stride) if info.frames > 0 else None


def window_bytes(
    spec: InputSpec,
    clip_len: int,
    batch_size: int,
    frame_hw: tuple[int, int] | None = None,
    spatial: str = "auto",
) -> int:
    """Bytes of one engine call's input, ``(batch_size, 3, clip_len, H, W)`` float32: H x W is
    the model's crop, or (``spatial`` auto/full/tiles, frame size known) the whole frame with
    its short side resized to the model's."""
    h, w = spec.crop
    if frame_hw is not None and spatial != "center":
        fh, fw = frame_hw
        scale = spec.resize_short / max(1, min(fh, fw))
        h, w = max(h, round(fh * scale)), max(w, round(fw * scale))
    return batch_size * 3 * clip_len * h * w * 4


def model_input_bytes(
    spec: InputSpec, clip_len: int, frame_hw: tuple[int, int] | None, spatial: str
) -> int:
    """Bytes of what the model runs on for one window: the whole frame (``full``), every tile
    of the crop's size (``tiles``; :func:`~vidcam.video.spatial.tile_offsets`), the crop
    (``center``), the larger of the first two for ``auto`` (the model decides later)."""
    crop = window_bytes(spec, clip_len, 1)
    if frame_hw is None or spatial == "center":
        return crop
    full = window_bytes(spec, clip_len, 1, frame_hw, "full")
    band = band_geometry(*frame_hw, spec).crop
    axis = 1 if band[1] > spec.crop[1] else 0
    tiles = crop * len(tile_offsets(band[axis], spec.crop[axis]))
    return {"full": full, "tiles": tiles}.get(spatial, max(full, tiles))


@dataclass(frozen=True)
class ActivationProfile:
    """A model's activations per byte of its input, from one forward of a zero clip of its own
    size (:func:`activation_profile`): ``peak``, the most bytes of tensors alive at once when
    the forward records nothing before the explained layer (as the engine's,
    :mod:`vidcam.cam.prefix`); ``recorded``, the bytes made from that layer on (kept for the
    backward). Convolutional activations grow with the input, so both scale to any window."""

    peak: float
    recorded: float


_PROFILES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def activation_profile(
    model: ModelHandle, spec: InputSpec | None = None, clip_len: int | None = None
) -> ActivationProfile | None:
    """``model``'s :class:`ActivationProfile` for clips of ``clip_len`` frames (default: its
    own) at its crop size (:func:`vidcam.device.live_tensor_bytes`): on the meta device
    (shapes only: milliseconds, no memory), else on the model's device; None when the model
    fails on such a clip (the run says why)."""
    spec = spec or model.input
    shape = (1, 3, clip_len or spec.clip_len, *spec.crop)
    key = (shape, repr(model.layer))
    known = _PROFILES.setdefault(model.module, {})
    if key not in known:
        known[key] = None
        try:
            layers = [_submodule(model.module, x) for x in model.layers]
        except AttributeError:  # a misnamed layer: the run says so; estimate as automatic
            layers = []
        for device in (None, model.device):
            try:
                peak, recorded = live_tensor_bytes(model.module, layers, shape, device)
            except Exception:  # noqa: BLE001 - no meta kernel / the model's own failure
                continue
            n = math.prod(shape) * 4
            known[key] = ActivationProfile(peak / n, recorded / n)
            break
    return known[key]


def _submodule(module: nn.Module, layer: Any) -> nn.Module:
    return layer if isinstance(layer, nn.Module) else module.get_submodule(str(layer))


def window_need(
    spec: InputSpec,
    clip_len: int,
    batch_size: int,
    frame_hw: tuple[int, int] | None,
    spatial: str,
    profile: ActivationProfile,
) -> int:
    """Estimated peak bytes of explaining ``batch_size`` windows (see :data:`PIPELINE_FACTOR`)."""
    window = window_bytes(spec, clip_len, 1, frame_hw, spatial)
    model = model_input_bytes(spec, clip_len, frame_hw, spatial)
    per = ACTIVATION_MARGIN * profile.peak + BACKWARD_FACTOR * profile.recorded
    return int(batch_size * (PIPELINE_FACTOR * window + per * model))


def check_window(
    spec: InputSpec,
    *,
    clip_len: int | None = None,
    stride: int | None = None,
    batch_size: int | None = 1,
    info: VideoInfo | None = None,
    spatial: str = "auto",
    device: str | torch.device | None = None,
    model: ModelHandle | None = None,
) -> None:
    """Refuse window options the model, the video or the memory cannot take (one line each,
    naming the option): ``clip_len`` above ``MAX_CLIP_FACTOR`` x the model's own clip or (with
    the video's header ``info``) longer than both the video and the model's clip, ``stride``
    above ``clip_len``, and a window batch whose estimated peak exceeds the free memory of
    ``device`` (with the opened ``model``: :func:`window_need`, else its input x
    :data:`WORKING_SET_FACTOR`); ``batch_size`` None (auto) is checked as 1 window."""
    batch_size = 1 if batch_size is None else batch_size
    check_count("--batch-size (batch_size)", batch_size)
    n = spec.clip_len if clip_len is None else check_clip_len(clip_len, spec.clip_len)
    if stride is not None and not 1 <= stride <= n:
        raise VidcamError(
            f"--stride {stride} is out of range: give 1 to the clip length {n} (a larger hop "
            "would skip frames between windows)"
        )
    samples = video_samples(spec, info) if info is not None else None
    if samples is not None and n > max(spec.clip_len, samples):
        raise VidcamError(
            f"--clip-len {n} is longer than the video ({samples} frames at the model's "
            f"sampling) and the model's own clip ({spec.clip_len}): give at most "
            f"{max(spec.clip_len, samples)}; the rest would only repeat the last frame"
        )
    frame_hw = (info.height, info.width) if info is not None else None
    check_memory(spec, n, batch_size, frame_hw, spatial, device, model)


def check_memory(
    spec: InputSpec,
    n: int,
    batch_size: int = 1,
    frame_hw: tuple[int, int] | None = None,
    spatial: str = "auto",
    device: str | torch.device | None = None,
    model: ModelHandle | None = None,
) -> None:
    """The memory part of :func:`check_window` for windows of ``n`` frames of a ``frame_hw``
    video: one line naming the option to change: a smaller ``--batch-size``, else a smaller
    ``--spatial`` mode that fits, else a shorter ``--clip-len``. With the opened ``model``
    (and ``spatial`` the mode that runs: full, tiles or center) the estimate is
    :func:`window_need`, else the input x :data:`WORKING_SET_FACTOR`."""
    if isinstance(device, str):
        device = resolve_device(device)
    free = available_memory(device)
    if free is None:
        return
    profile = activation_profile(model, spec, n) if model is not None else None
    how = "the model's activations, by a dry run" if profile else f"{WORKING_SET_FACTOR} x input"

    def need(b: int, mode: str) -> int:
        if profile is None:
            return window_bytes(spec, n, b, frame_hw, mode) * WORKING_SET_FACTOR
        return window_need(spec, n, b, frame_hw, mode, profile)

    if need(batch_size, spatial) <= free:
        return
    one, where = need(1, spatial), f"{_gib(free)} is free on {device or 'this machine'}"
    if one <= free:
        raise VidcamError(
            f"--batch-size {batch_size}: {batch_size} windows of {n} frames need about "
            f"{_gib(need(batch_size, spatial))} ({how}) but {where}; give --batch-size at "
            f"most {free // one}"
        )
    whole = frame_hw is not None and spatial != "center"
    fits = [m for m in ("tiles", "center") if whole and m != spatial and need(1, m) <= free]
    fix = f"use --spatial {' or '.join(fits)} or " if fits else ""
    what = f"--spatial {spatial} with --clip-len {n}" if whole else f"--clip-len {n}"
    raise VidcamError(
        f"{what}: one window needs about {_gib(one)} ({how}) but {where}; {fix}give a "
        "shorter --clip-len"
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
