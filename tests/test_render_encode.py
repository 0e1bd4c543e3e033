"""Renderer numerics and the encoder's round trips through real files (MP4/MKV/GIF, audio)."""

from __future__ import annotations

import warnings
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from conftest import pattern_frames

from vidcam.errors import VidcamError
from vidcam.video.decode import iter_frames, probe
from vidcam.video.encode import VideoEncoder, check_output_extension
from vidcam.video.render import COLORMAPS, Panel, Renderer, colormap_lut, opacity, overlay


def test_colormap_names_and_lut():
    for name in ("jet", "turbo", "inferno", "viridis"):
        assert name in COLORMAPS
    lut = colormap_lut("Turbo")
    bgr = cv2.applyColorMap(np.array([[0, 128, 255]], np.uint8), cv2.COLORMAP_TURBO)[0]
    np.testing.assert_array_equal(lut[[0, 128, 255]], bgr[:, ::-1])
    with pytest.raises(VidcamError, match="not one of: .*jet.*viridis"):
        colormap_lut("rainbowz")


def test_overlay_is_a_per_pixel_alpha_blend():
    """a = opacity(alpha, peak)[heat]: out = a × colour + (1 − a) × image, per pixel, within
    the 1.5 levels of its uint8 tables (255 (1 − a) and a × colour, each rounded, then one
    rounded product); exact where a is 0 or 1."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    heat = rng.random((64, 48)).astype(np.float32)
    lut = colormap_lut("jet")
    for alpha in (0.3, 0.6, 1.0):
        got = overlay(img, heat, lut, alpha)
        h8 = np.rint(heat * 255).astype(int)
        a = opacity(alpha, int(h8.max()))[h8][..., None].astype(np.float64)
        want = a * lut[h8] + (1 - a) * img
        err = np.abs(got.astype(float) - want)
        assert err.max() <= 1.5 + 1e-6 and err.mean() < 0.4
        assert (got[a[..., 0] == 0] == img[a[..., 0] == 0]).all()  # cold: the source, exactly
        full = a[..., 0] == 1
        assert (got[full] == lut[h8][full]).all()
        assert a.max() > 0.2 and (a == 0).any()  # hot pixels tinted, cold ones not


def test_renderer_side_by_side_and_strip():
    H, W = 60, 80
    times = np.arange(10) / 10.0
    imp = np.zeros(10)
    imp[9] = 1.0
    r = Renderer(H, W, colormap="jet", alpha=1.0, importance=imp, times=times)
    img = np.full((H, W, 3), 100, np.uint8)
    heat = np.zeros((H, W), np.float32)
    heat[:, W // 2 :] = 1.0  # right half hot, left half cold
    out = r(img, [Panel("A", heat=heat), Panel("B", image=img)], time=0.0, frame=0)
    assert out.shape == (H, 2 * W, 3)
    sh = r._strip.height
    strip = out[H - sh :, :W]
    # frame 9 (importance 1) sits in the last column: a full bar; frame 0's column: playhead
    assert (strip[:, W - 1] == (255, 190, 40)).all()
    assert (strip[:, 0] == 255).all()
    # above the strip: cold = the source exactly, full heat at alpha 1 = jet's colour for 1
    assert tuple(out[H - sh - 20, W // 4]) == (100, 100, 100)
    assert tuple(out[H - sh - 20, 3 * W // 4]) == tuple(colormap_lut("jet")[255])
    assert tuple(out[H - sh - 20, W + W // 2]) == (100, 100, 100)  # image panel as is
    with pytest.raises(VidcamError, match="alpha"):
        Renderer(H, W, alpha=1.5)


def test_extension_check():
    assert check_output_extension("a/B.MP4") == ".mp4"
    with pytest.raises(VidcamError, match=r"\.mp4, \.mov, \.mkv, \.gif"):
        check_output_extension("out.avi")


def _encode(path, frames, times, **kw):
    with VideoEncoder(path, width=frames.shape[2], height=frames.shape[1], **kw) as enc:
        for f, t in zip(frames, times, strict=True):
            enc.write(f, t)
    return enc


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_h264_roundtrip(tmp_path, ext):
    frames = pattern_frames(24, 48, 64)
    out = tmp_path / f"o{ext}"
    _encode(out, frames, [Fraction(i, 24) for i in range(24)], fps=24)
    info = probe(out)
    assert (info.width, info.height, info.fps) == (64, 48, 24)
    got = list(iter_frames(out))
    assert len(got) == 24
    tol = 0.0005 if ext == ".mkv" else 0  # Matroska stores milliseconds
    assert all(abs(g.time - Fraction(i, 24)) <= tol for i, g in enumerate(got))
    assert info.duration == pytest.approx(1.0, abs=0.05)
    err = np.abs(got[10].image.astype(int) - frames[10].astype(int)).mean()
    assert err < 8
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt) == ("h264", "yuv420p")
    assert list(tmp_path.iterdir()) == [out]  # the temporary file is gone


def test_odd_size_is_padded_not_cropped(tmp_path):
    frames = pattern_frames(3, 61, 97)
    frames[:, :, -1] = (250, 10, 10)  # last column red, last row blue
    frames[:, -1, :] = (10, 10, 250)
    out = tmp_path / "odd.mp4"
    _encode(out, frames, [0, Fraction(1, 10), Fraction(2, 10)], fps=10)
    got = next(iter(iter_frames(out))).image
    assert got.shape == (62, 98, 3)
    assert got[20, 97, 0] > 180 and got[20, 96, 0] > 180  # padding copies the red edge
    assert got[61, 40, 2] > 180 and got[60, 40, 2] > 180


def test_vfr_timestamps_survive(tmp_path):
    frames = pattern_frames(6, 32, 48)
    times = [Fraction(t, 1000) for t in (0, 40, 200, 240, 700, 740)]
    for ext in (".mp4", ".mkv"):
        out = tmp_path / f"vfr{ext}"
        _encode(out, frames, times, fps=Fraction(25), time_base=Fraction(1, 1000))
        assert [f.time for f in iter_frames(out)] == times


def test_gif_output(tmp_path):
    frames = pattern_frames(8, 40, 50)
    out = tmp_path / "o.gif"
    _encode(out, frames, [Fraction(i, 10) for i in range(8)], fps=10)
    got = list(iter_frames(out))
    assert len(got) == 8
    assert [g.time for g in got] == [Fraction(i, 10) for i in range(8)]
    assert got[0].image.shape == (40, 50, 3)
    assert np.abs(got[3].image.astype(int) - frames[3].astype(int)).mean() < 12


def test_audio_is_kept(tmp_path, videos):
    src = videos["h264_audio"]
    info = probe(src)
    frames = [f for f in iter_frames(src)]
    out = tmp_path / "with_audio.mp4"
    with VideoEncoder(
        out,
        width=info.width,
        height=info.height,
        fps=info.fps,
        time_base=info.time_base,
        audio_from=src,
    ) as enc:
        for f in frames:
            enc.write(f.image, f.time)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        n_samples = sum(fr.samples for fr in c.decode(a))
    assert n_samples / 16000 == pytest.approx(2.0, abs=0.15)
    assert len(list(iter_frames(out))) == 30


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_leaves_no_file_and_keeps_old_output(tmp_path, exc):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous")
    frames = pattern_frames(3, 16, 16)
    with pytest.raises(exc), VideoEncoder(out, width=16, height=16, fps=10) as enc:
        enc.write(frames[0], 0)
        assert any(p.name.startswith(".o.tmp-") for p in tmp_path.iterdir())
        raise exc()
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def _gif_delays(path) -> list[int]:
    """Each GIF frame's delay in 1/100 s, as the file stores them (what players wait)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.time_base == Fraction(1, 100)
        return [p.duration for p in c.demux(s) if p.size]


@pytest.mark.parametrize(("fps", "seconds", "shown"), [(60, 2, 100), (240, 1, 50), (25, 1, 25)])
def test_gif_plays_at_the_source_speed(tmp_path, fps, seconds, shown):
    """Players stretch GIF delays under 2/100 s to 10/100 s: above 50 fps frames are left out
    (a 1/50 s grid), so every delay is >= 2/100 s and they add up to the source's duration."""
    n = fps * seconds
    frames = pattern_frames(n, 24, 32)
    out = tmp_path / f"f{fps}.gif"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = _encode(out, frames, [Fraction(i, fps) for i in range(n)], fps=fps)
    delays = _gif_delays(out)
    assert enc.frames == len(delays) == shown
    assert min(delays) >= 2
    assert abs(sum(delays) / 100 - seconds) <= 1 / fps + 0.01  # within a frame (and a 1/100 s)
    with av.open(str(out)) as c:  # what a player reads as the duration
        assert abs(c.duration / 1e6 - seconds) <= 1 / fps + 0.01
    msgs = [str(w.message) for w in caught]
    if shown < n:
        assert msgs == [
            f"GIF plays at most 50 frames per second: {n - shown} of {n} frames left out, "
            "timing kept (write .mp4 to keep every frame)"
        ]
        assert enc.notes == msgs
    else:
        assert msgs == [] and enc.notes == []


def test_audio_ends_with_the_video(tmp_path):
    """A 2 s sine under a 1 s video: the output's audio stops at the video's end (last frame
    time + 1/fps), to within half an AAC packet (1024 samples at 16 kHz = 64 ms)."""
    from conftest import write_video

    src = write_video(tmp_path / "a.mp4", pattern_frames(15, 32, 32), fps=15, audio=True)
    frames = list(iter_frames(src))[:8]  # video ends at 8/15 s ~ 0.533 s, audio lasts 1.04 s
    out = tmp_path / "cut.mp4"
    with VideoEncoder(out, width=32, height=32, fps=15, audio_from=src) as enc:
        for f in frames:
            enc.write(f.image, f.time)
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        end = max(float((p.pts + p.duration) * a.time_base) for p in c.demux(a) if p.size)
    assert abs(end - 8 / 15) <= 0.032 + 1e-6


def test_i420_chroma_is_the_mean_of_each_2x2_block():
    """A 1-pixel red dot on an odd row and column keeps its colour (OpenCV's own RGB->I420
    samples the block's top-left pixel and would drop it): U, V = the BT.601 chroma of the
    block's mean RGB, and Y is the per-pixel BT.601 luma (FFmpeg's integer coefficients)."""
    from vidcam.video.encode import rgb_to_i420

    img = np.zeros((4, 6, 3), np.uint8)
    img[1, 1] = (255, 0, 0)
    yuv = rgb_to_i420(img)
    assert yuv.shape == (6, 6)
    y = yuv[:4]
    u = yuv[4:].reshape(-1)[:6].reshape(2, 3)
    v = yuv[4:].reshape(-1)[6:].reshape(2, 3)
    assert y[1, 1] == round(16 + 66 * 255 / 256) and (y[0] == 16).all()  # 82: red's luma
    mean = 255 / 4  # the red of the block holding the dot; its chroma within one level (the
    # block mean is rounded to uint8 before the chroma is)
    assert abs(int(u[0, 0]) - (128 - 38 * mean / 256)) <= 1  # 118.5
    assert abs(int(v[0, 0]) - (128 + 112 * mean / 256)) <= 1  # 155.9
    assert (u.reshape(-1)[1:] == 128).all() and (v.reshape(-1)[1:] == 128).all()


def test_h264_output_is_tagged_bt601_limited(tmp_path):
    frames = np.full((4, 32, 48, 3), (200, 40, 40), np.uint8)
    out = tmp_path / "tag.mp4"
    _encode(out, frames, [i / 25 for i in range(4)], fps=25)
    with av.open(str(out)) as c:
        f = next(c.decode(video=0))
        assert (int(f.colorspace), int(f.color_range)) == (6, 1)  # SMPTE 170M, MPEG range
        assert np.abs(f.to_ndarray(format="rgb24").astype(int) - (200, 40, 40)).max() <= 3


def test_overlay_lit_box_at_the_left_edge_of_an_odd_width_frame():
    """Heat only in columns 0-2 of a 5-wide frame (rows not 4-byte aligned): every hot pixel is
    tinted, every cold one left as it was."""
    img = np.full((3, 5, 3), 100, np.uint8)
    heat = np.zeros((3, 5), np.float32)
    heat[:, :3] = 1.0
    out = overlay(img, heat, colormap_lut("jet"), 1.0)
    assert (out[:, :3] == colormap_lut("jet")[255]).all()
    assert (out[:, 3:] == 100).all()
