"""Fixtures: small videos written with PyAV (lossless where exactness matters) and tiny models."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from vidcam.models.spec import InputSpec


def write_video(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int | Fraction = 25,
    times: list[Fraction] | None = None,
    codec: str = "ffv1",
    audio: bool = False,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write (N, H, W, 3) uint8 RGB ``frames``; ``times`` (seconds) gives explicit pts (VFR).

    ffv1 (in .mkv) stores RGB losslessly; libx264 uses qp 0 unless ``options`` say otherwise.
    """
    n, h, w, _ = frames.shape
    c = av.open(str(path), "w", options=container_options or {})
    s = c.add_stream(codec, rate=fps)
    s.width, s.height = w, h
    tb = Fraction(1, 1000)
    if codec == "ffv1":
        s.pix_fmt = "bgr0"
    elif codec == "libx264":
        s.pix_fmt = "yuv444p"
        s.options = options or {"qp": "0"}
    if times is not None:
        s.time_base = tb
        s.codec_context.time_base = tb
    if rotation is not None:
        s.set_display_rotation(rotation)
    a = None
    if audio:
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
    for i in range(n):
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
        if times is not None:
            f.pts = round(times[i] / tb)
            f.time_base = tb
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    if a is not None:
        dur = float(times[-1]) + 0.04 if times is not None else n / float(fps)
        mux_sine(c, a, dur)
    c.close()
    return path


def mux_sine(c: av.container.OutputContainer, a: av.AudioStream, seconds: float) -> None:
    """Encode and mux ``seconds`` of a 440 Hz mono sine (16 kHz float) into audio stream ``a``."""
    t = np.arange(int(16000 * seconds)) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    af = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
    af.sample_rate = 16000
    af.pts = 0
    for p in a.encode(af):
        c.mux(p)
    for p in a.encode():
        c.mux(p)


def pattern_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Distinct, reproducible frames: a gradient plus a frame-number stripe plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (x * 255 // max(w - 1, 1)).astype(np.uint8)
        out[i, ..., 1] = (y * 255 // max(h - 1, 1)).astype(np.uint8)
        out[i, ..., 2] = (i * 37) % 256
        out[i] ^= rng.integers(0, 16, (h, w, 3), dtype=np.uint8)
    return out


def moving_square(
    n: int, h: int, w: int, box: tuple[int, int, int, int], size: int = 8
) -> np.ndarray:
    """Dark frames with a bright ``size`` square bouncing inside ``box`` = (y0, x0, y1, x1)."""
    y0, x0, y1, x1 = box
    out = np.full((n, h, w, 3), 20, np.uint8)
    span_x = max(1, x1 - x0 - size)
    span_y = max(1, y1 - y0 - size)
    for i in range(n):
        px = x0 + (3 * i) % (2 * span_x)
        px = px if px - x0 <= span_x else x0 + 2 * span_x - (px - x0)
        py = y0 + (2 * i) % (2 * span_y)
        py = py if py - y0 <= span_y else y0 + 2 * span_y - (py - y0)
        out[i, py : py + size, px : px + size] = 235
    return out


class MotionNet(nn.Module):
    """Responds only to bright moving content: ``feat`` = relu(±temporal difference of the
    summed RGB), class 0 ("motion") = mean of ``feat``, class 1 ("still") = its negative."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv3d(3, 2, kernel_size=(2, 1, 1), bias=False)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0, :, 0] = -1.0
            conv.weight[0, :, 1] = 1.0
            conv.weight[1, :, 0] = 1.0
            conv.weight[1, :, 1] = -1.0
        self.feat = nn.Sequential(conv, nn.ReLU())
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feat(x)
        return self.head(f.mean(dim=(2, 3, 4)))


MOTION_SPEC = InputSpec(
    clip_len=8, crop=(48, 48), resize_short=48, mean=(0.5,) * 3, std=(0.5,) * 3, stride=1
)


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A set of small test videos (session-wide; each test reads them, never writes)."""
    d = tmp_path_factory.mktemp("videos")
    v: dict[str, Path] = {}
    v["lossless"] = write_video(d / "lossless.mkv", pattern_frames(20, 48, 64), fps=25)
    v["odd"] = write_video(d / "odd.mkv", pattern_frames(12, 61, 97, seed=1), fps=10)
    vfr_times = [Fraction(t, 1000) for t in (0, 40, 80, 200, 240, 500, 540, 580, 620, 900)]
    v["vfr"] = write_video(d / "vfr.mkv", pattern_frames(10, 32, 48, seed=2), times=vfr_times)
    v["h264_audio"] = write_video(
        d / "audio.mp4", pattern_frames(30, 48, 64, seed=3), fps=15, codec="libx264", audio=True
    )
    v["rotated"] = write_video(
        d / "rotated.mp4", pattern_frames(6, 32, 48, seed=4), codec="libx264", rotation=90
    )
    v["garbage"] = d / "garbage.mp4"
    v["garbage"].write_bytes(os.urandom(4096))
    fs = write_video(
        d / "fast.mp4",
        pattern_frames(60, 96, 128, seed=5),
        codec="libx264",
        options={"crf": "20"},
        container_options={"movflags": "+faststart"},
    )
    data = fs.read_bytes()
    v["truncated"] = d / "truncated.mp4"
    v["truncated"].write_bytes(data[: len(data) // 2])
    v["audio_only"] = d / "audio_only.m4a"
    c = av.open(str(v["audio_only"]), "w")
    a = c.add_stream("aac", rate=16000)
    a.layout = "mono"
    mux_sine(c, a, 1.0)
    c.close()
    return v


#: seconds after which a wait counts as a hang: only something that never returns reaches it,
#: however slow or loaded the machine (no wall-clock deadline decides a pass)
HANG_S = 900.0


def run_bounded(fn, timeout: float = HANG_S):
    """Run ``fn()`` in a daemon thread: (finished, its result or exception). A hang shows as
    not finished after the generous ``timeout`` (the call returns or blocks forever), so no
    wall-clock deadline decides a pass."""
    import threading

    box: list = []

    def target():
        try:
            box.append(fn())
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return (not t.is_alive()), (box[0] if box else None)
