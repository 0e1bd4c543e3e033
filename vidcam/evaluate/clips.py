"""Evaluation inputs: video lists, one clip per video, and its ground truth on the model's grid.

Each video gives ONE clip: the middle one of the non-overlapping windows that
:mod:`vidcam.video.sample` plans for the model's :class:`~vidcam.models.spec.InputSpec` (for a video
exactly one clip long, the whole video). Frames are decoded with :mod:`vidcam.video.decode` and resized
and cropped with :mod:`vidcam.video.preprocess`; the ground truth (the :mod:`vidcam.evaluate.synth` JSON format)
is mapped through the same sampled frame indices, resize and crop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec
from vidcam.video.decode import iter_frames, probe
from vidcam.video.preprocess import Geometry, Preprocessor
from vidcam.video.sample import ClipSampler, plan_windows

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def list_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Video files named in ``inputs`` (files, or folders searched non-recursively), in order."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise VidcamError(f"folder {str(p)!r} holds no video ({', '.join(VIDEO_SUFFIXES)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise VidcamError(f"input {str(p)!r} does not exist; give video files or folders")
    if not out:
        raise VidcamError("no input videos given")
    return out


@dataclass
class Clip:
    """One evaluation clip: ``pixels`` (1, 3, T, h, w) float in [0, 1] on the device (before
    normalisation); ``frames[j]``: source frame index of sample j; ``geometry``: resize/crop."""

    path: Path
    pixels: torch.Tensor
    frames: tuple[int, ...]
    geometry: Geometry


def read_clip(path: str | Path, spec: InputSpec, device: torch.device | str) -> Clip:
    """Decode ``path`` and return its middle clip per ``spec`` (see module docstring)."""
    info = probe(path)
    pre = Preprocessor(spec, info.height, info.width, torch.device(device))
    crops, times = [], []
    for f in iter_frames(info.path, info):
        crops.append(pre.frame(f.image))
        times.append(f.time)
    windows = plan_windows(times, ClipSampler.from_spec(spec, hop=spec.clip_len))
    w = windows[(len(windows) - 1) // 2]
    x = pre.clip([crops[i] for i in w.frames])  # (1, 3, T, h, w), normalised
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    pixels = (x * std + mean).clamp_(0.0, 1.0)  # back to [0, 1] pixels (masking happens there)
    return Clip(info.path, pixels, tuple(w.frames), pre.geometry)


def find_gt(video: Path, gt_dir: str | Path | None) -> Path | None:
    """``<gt_dir>/<stem>.json`` when ``gt_dir`` is given, else ``<stem>.json`` next to the video."""
    p = (Path(gt_dir) / f"{video.stem}.json") if gt_dir is not None else video.with_suffix(".json")
    return p if p.is_file() else None


def load_gt(path: str | Path) -> dict:
    """Read and check a ground-truth JSON (keys ``label``, ``interval``, ``boxes``, ...)."""
    p = Path(path)
    try:
        gt = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are both
        raise VidcamError(f"ground truth {str(p)!r} is not readable JSON: {exc}") from exc
    if not isinstance(gt, dict):
        raise VidcamError(f"ground truth {str(p)!r} must be a JSON object, not {type(gt).__name__}")
    for key in ("label", "interval", "boxes"):
        if key not in gt:
            raise VidcamError(f"ground truth {str(p)!r} lacks the key {key!r}")
    if len(gt["interval"]) != 2 or not isinstance(gt["boxes"], list):
        raise VidcamError(f"ground truth {str(p)!r}: interval must be [t0, t1], boxes a list")
    return gt


@dataclass
class ClipTruth:
    """Ground truth on the clip's grid: ``boxes[j]`` (model-input pixels, per instance) for
    sample j; ``interval`` (T,) bool: sample j's source frame lies in [t0, t1)."""

    label: str
    boxes: list[list[list[float]]]
    interval: torch.Tensor


def map_gt(gt: dict, clip: Clip) -> ClipTruth:
    """Map ``gt`` (source frames and pixels) through the clip's frame sampling, resize and crop."""
    g = clip.geometry
    src_h, src_w = g.source
    gx = src_w / float(gt.get("width", src_w))  # GT drawn at another size than the video
    gy = src_h / float(gt.get("height", src_h))
    sy, sx = g.scale
    top, left = g.offset
    t0, t1 = (int(v) for v in gt["interval"])
    boxes = []
    for idx in clip.frames:
        frame_boxes = gt["boxes"][idx] if idx < len(gt["boxes"]) else []
        boxes.append(
            [
                [x0 * gx * sx - left, y0 * gy * sy - top, x1 * gx * sx - left, y1 * gy * sy - top]
                for x0, y0, x1, y1 in frame_boxes
            ]
        )
    inside = torch.tensor([t0 <= i < t1 for i in clip.frames], device=clip.pixels.device)
    return ClipTruth(str(gt["label"]), boxes, inside)
