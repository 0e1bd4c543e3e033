"""Decoder: exact frames and times from real encoded files, rotation, and every bad input."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from conftest import pattern_frames, write_video

from vidcam.errors import VidcamError
from vidcam.video.decode import DecodeWarning, iter_frames, probe


def test_lossless_roundtrip_frames_and_times(videos):
    info = probe(videos["lossless"])
    assert (info.width, info.height, info.fps, info.rotation) == (64, 48, 25, 0)
    assert not info.has_audio
    frames = list(iter_frames(videos["lossless"]))
    expected = pattern_frames(20, 48, 64)
    assert len(frames) == 20
    for i, f in enumerate(frames):
        assert f.index == i
        assert f.time == Fraction(i, 25)
        np.testing.assert_array_equal(f.image, expected[i])


def test_odd_size(videos):
    info = probe(videos["odd"])
    assert (info.width, info.height) == (97, 61)
    frames = list(iter_frames(videos["odd"]))
    assert [f.time for f in frames] == [Fraction(i, 10) for i in range(12)]
    np.testing.assert_array_equal(frames[7].image, pattern_frames(12, 61, 97, seed=1)[7])


def test_variable_frame_rate_keeps_timestamps(videos):
    frames = list(iter_frames(videos["vfr"]))
    ms = [0, 40, 80, 200, 240, 500, 540, 580, 620, 900]
    assert [f.time for f in frames] == [Fraction(t, 1000) for t in ms]


def test_rotation_metadata_gives_upright_frames(videos):
    info = probe(videos["rotated"])
    assert info.rotation == 90
    assert (info.width, info.height) == (32, 48)  # stored 48x32, displayed rotated
    frames = list(iter_frames(videos["rotated"]))
    stored = pattern_frames(6, 32, 48, seed=4)
    assert frames[0].image.shape == (48, 32, 3)
    # counter-clockwise by 90: the stored top-right corner is the displayed top-left
    up = np.rot90(stored[2], k=1).astype(int)
    err = np.abs(frames[2].image.astype(int) - up)
    assert err.mean() < 3  # qp 0 H.264 in yuv444p: lossless up to RGB<->YUV rounding
    wrong = np.abs(frames[2].image.astype(int) - np.rot90(stored[2], k=-1).astype(int))
    assert wrong.mean() > 20


def test_audio_stream_is_reported(videos):
    assert probe(videos["h264_audio"]).has_audio


def test_h264_roundtrip_count_and_rate(videos):
    info = probe(videos["h264_audio"])
    assert (info.frames, info.fps, info.frames_exact) == (30, 15, True)
    assert info.duration == pytest.approx(2.0, abs=1e-6)
    assert len(list(iter_frames(videos["h264_audio"]))) == 30


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("garbage", "not a readable video file"),
        ("audio_only", "only audio"),
    ],
)
def test_bad_inputs_raise_one_line(videos, key, needle):
    with pytest.raises(VidcamError, match=needle) as exc:
        probe(videos[key])
    assert "\n" not in str(exc.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(VidcamError, match="does not exist"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(VidcamError, match="is not a file"):
        probe(tmp_path)


def test_stream_without_frames_is_an_error(tmp_path):
    import av

    p = tmp_path / "empty.mkv"
    c = av.open(str(p), "w")
    s = c.add_stream("ffv1", rate=25)
    s.width, s.height = 16, 16
    c.start_encoding()
    c.close()
    assert p.stat().st_size > 0
    with pytest.raises(VidcamError, match="not a readable|no decodable|no frame"):
        probe(p)


def test_truncated_file_fails_unless_partial_is_allowed(videos):
    with pytest.raises(VidcamError, match=r"truncated: only \d+ of 60 frames .*allow-partial"):
        list(iter_frames(videos["truncated"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = list(iter_frames(videos["truncated"], allow_partial=True))
    assert 0 < len(frames) < 60
    msgs = [str(w.message) for w in caught if issubclass(w.category, DecodeWarning)]
    assert len(msgs) == 1
    assert "truncated" in msgs[0]
    assert f"{len(frames)} of 60 frames decoded, {60 - len(frames)} lost" in msgs[0]
    times = [f.time for f in frames]  # their own times: a frame lost to the cut leaves a gap
    assert times == sorted(set(times)) and all((t * 25).denominator == 1 for t in times)
    assert times[:10] == [Fraction(i, 25) for i in range(10)]


def test_decoder_streams(tmp_path):
    """The generator decodes lazily: taking 2 frames of a long file does not decode it all."""
    frames = pattern_frames(1, 32, 32).repeat(400, axis=0)
    p = write_video(tmp_path / "long.mkv", frames)
    import vidcam.video.decode as decode_mod

    decoded = []
    real = decode_mod._Decoded.__iter__

    def counting(self):
        for frame in real(self):
            decoded.append(frame.pts)
            yield frame

    decode_mod._Decoded.__iter__ = counting
    try:
        it = iter_frames(p)
        first = [next(it), next(it)]
        it.close()
    finally:
        decode_mod._Decoded.__iter__ = real
    assert [f.index for f in first] == [0, 1]
    # only a few frames past the two taken were decoded (a lookahead of one), not 400
    assert 2 <= len(decoded) <= 4, len(decoded)


def test_long_decodes_return_freed_heap_pages(videos, monkeypatch):
    """Every ``TRIM_EVERY`` frames the decoder asks the allocator to give freed pages back."""
    from vidcam.video import heap

    calls = []
    monkeypatch.setattr(heap, "TRIM_EVERY", 6)
    monkeypatch.setattr(heap, "trim", lambda: calls.append(1))
    assert len(list(iter_frames(videos["lossless"]))) == 20
    assert len(calls) == 3  # after frames 6, 12, 18
    monkeypatch.undo()
    heap.trim()  # the real call (glibc's malloc_trim on Linux)
    monkeypatch.setattr(heap, "_TRIM", None)
    heap.trim()  # where the libc has none it is a no-op
