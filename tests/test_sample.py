"""Clip sampler: windows checked against pytorchvideo's exact-Fraction UniformClipSampler and
hand-computed index arithmetic; streaming equals planning; short videos pad with a warning."""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

import pytest
from pytorchvideo.data.clip_sampling import UniformClipSampler

from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec
from vidcam.video.sample import ClipSampler, ShortVideoWarning, WindowScheduler, plan_windows


def _oracle_starts(times, clip_len, hop, fps):
    """Window start times from pytorchvideo (video "duration": last frame + one sample)."""
    sampler = UniformClipSampler(Fraction(clip_len) / fps, Fraction(hop) / fps, backpad_last=True)
    duration = times[-1] + 1 / fps
    starts, last = [], Fraction(0)
    while True:
        info = sampler(last, duration, {})
        starts.append(Fraction(info.clip_start_sec))
        last = info.clip_end_sec
        if info.is_last_clip:
            return starts


@pytest.mark.parametrize(
    ("src_fps", "n", "fps", "clip_len", "hop"),
    [
        (30, 100, Fraction(25, 2), 8, 4),
        (25, 64, Fraction(25), 16, 8),
        (24, 50, Fraction(30), 8, 8),
        (Fraction(30000, 1001), 90, Fraction(15), 4, 1),
    ],
)
def test_time_mode_matches_pytorchvideo(src_fps, n, fps, clip_len, hop):
    times = [Fraction(i) / src_fps for i in range(n)]
    windows = plan_windows(times, ClipSampler(clip_len=clip_len, hop=hop, fps=fps))
    starts = _oracle_starts(times, clip_len, hop, fps)
    assert len(windows) == len(starts)
    for w, s in zip(windows, starts, strict=True):
        want = tuple(bisect_right(times, s + Fraction(j) / fps) - 1 for j in range(clip_len))
        assert w.frames == want
        assert w.times == tuple(times[i] for i in want)
    assert windows[0].frames[0] == 0
    assert windows[-1].frames[-1] == n - 1  # last window aligned to the end


def test_index_mode_hand_values():
    times = [Fraction(i, 25) for i in range(20)]
    ws = plan_windows(times, ClipSampler(clip_len=4, hop=2, stride=3))
    assert [w.frames for w in ws] == [(0, 3, 6, 9), (6, 9, 12, 15), (10, 13, 16, 19)]
    assert not any(w.padded for w in ws)


def test_every_frame_is_inside_some_window():
    times = [Fraction(i, 30) for i in range(77)]
    ws = plan_windows(times, ClipSampler(clip_len=8, hop=8, fps=Fraction(12)))
    for i, t in enumerate(times):
        assert any(
            w.times[0] - Fraction(1, 24) <= t <= w.times[-1] + Fraction(1, 24) for w in ws
        ), i


def test_vfr_picks_frame_on_screen():
    ms = [0, 40, 80, 200, 240, 500, 540]
    times = [Fraction(t, 1000) for t in ms]
    (w, *_) = plan_windows(times, ClipSampler(clip_len=6, hop=3, fps=Fraction(10)))
    # sample times 0, .1, .2, .3, .4, .5 -> frames shown then: 0, 2 (80 ms), 3, 4, 4, 5
    assert w.frames == (0, 2, 3, 4, 4, 5)


def test_short_video_pads_last_frame_with_warning():
    times = [Fraction(i, 25) for i in range(5)]
    with pytest.warns(ShortVideoWarning, match="shorter than one clip"):
        ws = plan_windows(times, ClipSampler(clip_len=8, hop=4, fps=Fraction(25)))
    assert len(ws) == 1
    assert ws[0].frames == (0, 1, 2, 3, 4, 4, 4, 4)
    assert ws[0].padded
    with pytest.warns(ShortVideoWarning):
        ws = plan_windows(times, ClipSampler(clip_len=4, hop=2, stride=2))
    assert ws[0].frames == (0, 2, 4, 4)


def test_streaming_with_dropping_equals_plan():
    times = [Fraction(i, 30) for i in range(123)]
    for sampler in (
        ClipSampler(clip_len=8, hop=3, fps=Fraction(25, 2)),
        ClipSampler(clip_len=5, hop=2, stride=3),
    ):
        sched = WindowScheduler(sampler)
        got = []
        max_kept = 0
        for t in times:
            got.extend(sched.push(t))
            sched.drop_before(sched.oldest_needed())
            max_kept = max(max_kept, sched.count - sched._base)
        got.extend(sched.finish())
        assert got == plan_windows(times, sampler)
        assert max_kept < 40  # only about one window's span of frames is kept


def test_from_spec_and_overrides():
    spec = InputSpec(clip_len=16, crop=(112, 112), resize_short=128, fps=7.5)
    s = ClipSampler.from_spec(spec)
    assert (s.clip_len, s.hop, s.fps, s.stride) == (16, 8, Fraction(15, 2), None)
    s = ClipSampler.from_spec(spec, clip_len=4, hop=1)
    assert (s.clip_len, s.hop) == (4, 1)
    with pytest.raises(VidcamError, match="between 1 and the clip length"):
        ClipSampler.from_spec(spec, clip_len=4, hop=5)
