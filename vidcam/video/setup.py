"""Everything checked before any work: the options of a video run and its file paths.

:class:`ExplainOptions` holds the keyword arguments of :func:`~vidcam.video.explain_video`
(validated on construction); :func:`check_paths` validates input and outputs
(:mod:`vidcam.paths`); :func:`check_window` bounds ``clip_len`` / ``stride`` / ``batch_size`` by
the model's clip, the video's length and the free memory (one-line errors naming the option).
The model itself is opened by :func:`vidcam.models.open.open_model`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

from vidcam.cam.methods import Method, get_method
from vidcam.device import resolve_device
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.spec import InputSpec
from vidcam.paths import check_distinct, check_output
from vidcam.video.decode import VideoInfo, check_input
from vidcam.video.encode import check_output_extension
from vidcam.video.sample import check_clip_len
from vidcam.video.scale import DEFAULT_NORMALIZE, NORMALIZE
from vidcam.video.spatial import SPATIAL


@dataclass(frozen=True)
class ExplainOptions:
    """The keyword arguments of :func:`~vidcam.video.explain_video` (documented there)."""

    model: str | nn.Module | ModelHandle = "i3d"
    spec: InputSpec | None = None
    labels: Sequence[str] | str | os.PathLike | None = None
    layer: Any = None
    card: str | os.PathLike | None = None
    method: str = "gradcam++"
    softmax: bool = False
    target: str | int | None = "top1"
    clip_len: int | None = None
    stride: int | None = None
    device: str | torch.device = "auto"
    weights: str | None = None
    pretrained: bool = True
    progress: bool = True
    side_by_side: bool = False
    batch_size: int | None = None
    normalize: str = DEFAULT_NORMALIZE
    spatial: str = "auto"

    def __post_init__(self) -> None:
        if self.spatial not in SPATIAL:
            raise VidcamError(f"spatial {self.spatial!r} must be one of {', '.join(SPATIAL)}")
        if self.normalize not in NORMALIZE:
            raise VidcamError(f"normalize {self.normalize!r} must be one of {', '.join(NORMALIZE)}")
        get_method(self.method)
        if self.batch_size is not None:
            _check_count("--batch-size (batch_size)", self.batch_size)
        if self.clip_len is not None:
            _check_count("--clip-len (clip_len)", self.clip_len)
        if self.stride is not None:
            _check_count("--stride (stride)", self.stride)
        spec = self.known_spec()
        if spec is not None:
            check_window(
                spec,
                clip_len=self.clip_len,
                stride=self.stride,
                batch_size=self.batch_size,
                spatial=self.spatial,
                device=self.device,
            )

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
        """The methods shown, in panel order."""
        m = self.the_method
        return m.side_by_side() if self.side_by_side else (m,)


class ExplainKwargs(TypedDict, total=False):
    """The keyword arguments of the pipeline's entry points (see :class:`ExplainOptions`)."""

    model: str | nn.Module | ModelHandle
    spec: InputSpec | None
    labels: Sequence[str] | str | os.PathLike | None
    layer: Any
    card: str | os.PathLike | None
    method: str
    softmax: bool
    target: str | int | None
    clip_len: int | None
    stride: int | None
    device: str | torch.device
    weights: str | None
    pretrained: bool
    progress: bool
    side_by_side: bool
    batch_size: int | None
    normalize: str
    spatial: str


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


#: forward + backward of one window needs at least this many times its input tensor (peak
#: memory measured on CPU: the bundled sample model 12-27x, r3d_18 117-210x, x3d_xs 135x), so
#: a window batch whose input x this factor exceeds the free memory cannot run
WORKING_SET_FACTOR = 8

#: ``batch_size=None`` (auto): at most this many bytes of windows per engine call (a heavy window
#: such as I3D's 64x224² goes alone), at most AUTO_BATCH_MAX windows. On the CPU this bound is
#: a candidate that :class:`vidcam.video.batching.BatchPlan` times against one window per call
AUTO_BATCH_BYTES = {"cpu": 20 << 20, "cuda": 512 << 20}
AUTO_BATCH_MAX = {"cpu": 8, "cuda": 32}
#: and while the free memory holds this many times their input (the measured peaks above)
AUTO_WORKING_SET = 256


def auto_batch_size(
    spec: InputSpec,
    clip_len: int,
    frame_hw: tuple[int, int] | None,
    spatial: str,
    device: str | torch.device,
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
    if free is not None:
        n = min(n, free // (one * AUTO_WORKING_SET))
    return max(1, int(n))


def _check_count(name: str, value: object) -> None:
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


def available_memory(device: str | torch.device | None = None) -> int | None:
    """Bytes free for the run: a CUDA device's free memory, else the host's available memory
    (``MemAvailable``, else free pages; capped by a cgroup limit); None when unknown."""
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    sizes = [_meminfo_available(), _cgroup_free()]
    if sizes[0] is None:
        try:
            sizes[0] = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not on this platform
            sizes[0] = None
    known = [s for s in sizes if s is not None and s > 0]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    """The room left under a cgroup (v2, else v1) memory limit, None when unlimited."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


def check_window(
    spec: InputSpec,
    *,
    clip_len: int | None = None,
    stride: int | None = None,
    batch_size: int | None = 1,
    info: VideoInfo | None = None,
    spatial: str = "auto",
    device: str | torch.device | None = None,
) -> None:
    """Refuse window options the model, the video or the memory cannot take (one line each,
    naming the option): ``clip_len`` above ``MAX_CLIP_FACTOR`` x the model's own clip or (with
    the video's header ``info``) longer than both the video and the model's clip, ``stride``
    above ``clip_len``, and a window batch whose input x :data:`WORKING_SET_FACTOR` exceeds
    the free memory of ``device``; ``batch_size`` None (auto) is checked as 1 window."""
    batch_size = 1 if batch_size is None else batch_size
    _check_count("--batch-size (batch_size)", batch_size)
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
    if isinstance(device, str):
        device = resolve_device(device)
    free = available_memory(device)
    if free is None:
        return
    frame_hw = (info.height, info.width) if info is not None else None
    need = window_bytes(spec, n, batch_size, frame_hw, spatial) * WORKING_SET_FACTOR
    if need > free:
        one = window_bytes(spec, n, 1, frame_hw, spatial) * WORKING_SET_FACTOR
        what = "--batch-size" if batch_size > 1 and one <= free else "--clip-len"
        fix = f"at most {free // one}" if what == "--batch-size" else "a shorter one"
        raise VidcamError(
            f"{what}: {batch_size} window(s) of {n} frames need at least {_gib(need)} "
            f"({WORKING_SET_FACTOR} x their {_gib(need // WORKING_SET_FACTOR)} input) but "
            f"{_gib(free)} is free on {device or 'this machine'}; give {what} {fix}"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
