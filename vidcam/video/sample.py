"""Clip sampler: which source frames each model window sees.

Windows hold ``clip_len`` samples taken at the model's frame rate (``InputSpec.fps``: sample
times ``start + j / fps``, each showing the last source frame whose time is ``<= t``, as a
player would) or at every ``stride``-th source frame (``InputSpec.stride``). Consecutive windows
start ``hop`` samples apart (default ``clip_len // 2``: 50 % overlap). The first window starts
at the first frame; the last window is aligned so that its last sample is the last frame, so the
windows cover the whole video (as pytorchvideo's ``UniformClipSampler(backpad_last=True)``).
A video shorter than one clip gets one window whose missing samples repeat the last frame
(a :class:`ShortVideoWarning` says so).

The arithmetic is exact (``Fraction`` seconds). :class:`WindowScheduler` applies it while frames
stream in: ``push(time)`` per decoded frame returns the windows that became complete,
``finish()`` the end-aligned last one. :func:`plan_windows` does the same for a known list.
"""

from __future__ import annotations

import warnings
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec

#: ``clip_len`` may be at most this many times the model's own clip length
MAX_CLIP_FACTOR = 8


def check_clip_len(clip_len: object, native: int) -> int:
    """``clip_len`` as an int in ``[1, MAX_CLIP_FACTOR * native]`` (``native``: the model's own
    clip length); one-line VidcamError naming ``--clip-len`` otherwise."""
    if isinstance(clip_len, bool) or not isinstance(clip_len, int):
        raise VidcamError(f"--clip-len (clip_len) must be an int >= 1, got {clip_len!r}")
    limit = MAX_CLIP_FACTOR * native
    if not 1 <= clip_len <= limit:
        raise VidcamError(
            f"--clip-len {clip_len} is out of range: give 1 to {limit} frames "
            f"({MAX_CLIP_FACTOR} x the model's own clip of {native}; longer windows only pad "
            "and multiply memory)"
        )
    return clip_len


class ShortVideoWarning(UserWarning):
    """The video is shorter than one clip; its last frame is repeated to fill the clip."""


@dataclass(frozen=True)
class Window:
    """One model clip: ``frames[j]`` is the source frame index of sample ``j``, ``times[j]`` its
    time in seconds (from the first frame). ``padded``: some samples repeat the last frame
    because the video ended; ``pad``: how many (the last ``pad`` samples, never shown: their
    slices carry no heat onto any frame, see :mod:`vidcam.video.to_source`)."""

    index: int
    frames: tuple[int, ...]
    times: tuple[Fraction, ...]
    padded: bool = False
    pad: int = 0

    @property
    def start(self) -> Fraction:
        return self.times[0]

    @property
    def end(self) -> Fraction:
        return self.times[-1]


@dataclass(frozen=True)
class ClipSampler:
    """Window geometry: ``clip_len`` samples, windows ``hop`` samples apart, taken at ``fps``
    (time mode) or every ``stride``-th frame (index mode; exactly one of the two)."""

    clip_len: int
    hop: int
    fps: Fraction | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.clip_len < 1:
            raise VidcamError(f"clip length must be >= 1, got {self.clip_len}")
        if not 1 <= self.hop <= self.clip_len:
            raise VidcamError(
                f"--stride (window hop) must be between 1 and the clip length {self.clip_len}, "
                f"got {self.hop}"
            )
        if (self.fps is None) == (self.stride is None):
            raise VidcamError("give exactly one of fps and stride for clip sampling")
        if self.fps is not None and self.fps <= 0:
            raise VidcamError(f"sampling fps must be > 0, got {self.fps}")
        if self.stride is not None and self.stride < 1:
            raise VidcamError(f"frame stride must be >= 1, got {self.stride}")

    @classmethod
    def from_spec(
        cls, spec: InputSpec, *, clip_len: int | None = None, hop: int | None = None
    ) -> ClipSampler:
        """The model's sampling, with optional overrides (``hop`` default: half a clip)."""
        n = spec.clip_len if clip_len is None else check_clip_len(clip_len, spec.clip_len)
        fps = Fraction(spec.fps).limit_denominator(10_000) if spec.fps is not None else None
        return cls(
            clip_len=n, hop=max(1, n // 2) if hop is None else int(hop), fps=fps, stride=spec.stride
        )

    @property
    def period(self) -> Fraction:
        """Seconds between samples (time mode)."""
        if self.fps is None:
            raise VidcamError("this sampler takes every stride-th frame; it has no sample period")
        return 1 / self.fps

    def describe(self) -> str:
        rate = (
            f"{float(self.fps):g} fps" if self.fps is not None else f"every {self.stride} frame(s)"
        )
        return f"{self.clip_len} frames at {rate}, windows {self.hop} samples apart"


class WindowScheduler:
    """Turns a stream of frame times into complete windows, in order.

    ``push(t)`` registers the next frame (index = number pushed so far) and returns windows
    whose samples are all known; ``finish()`` returns the end-aligned last window.
    ``oldest_needed()`` is the smallest frame index a future window may sample: frames before
    it can be dropped.
    """

    def __init__(self, sampler: ClipSampler) -> None:
        self.sampler = sampler
        self._times: list[Fraction] = []  # times of frames _base, _base + 1, ...
        self._base = 0
        self._k = 0  # next grid window
        self._emitted = 0
        self._last_end: Fraction | int | None = None  # last sample (time or index) emitted
        self._done = False

    @property
    def count(self) -> int:
        return self._base + len(self._times)

    def push(self, time: Fraction) -> list[Window]:
        if self._done:
            raise RuntimeError("push() after finish()")
        if self._times and time <= self._times[-1]:
            raise VidcamError(f"frame times must increase: {time} after {self._times[-1]}")
        self._times.append(Fraction(time))
        out = []
        while True:
            w = self._grid_window_if_ready()
            if w is None:
                break
            out.append(w)
        return out

    def finish(self) -> list[Window]:
        """The last window, aligned to the last frame (none if the grid already ends there)."""
        if self._done:
            return []
        self._done = True
        if not self.count:
            return []
        s = self.sampler
        n_last = self.count - 1
        if s.fps is not None:
            last_t = self._times[-1]
            if self._last_end is not None and self._last_end >= last_t:
                return []
            start = max(Fraction(0), last_t - (s.clip_len - 1) * s.period)
            w = self._time_window(start)
        else:
            if self._last_end is not None and self._last_end >= n_last:
                return []
            start_i = max(0, n_last - (s.clip_len - 1) * s.stride)
            w = self._index_window(start_i)
        if w.padded:
            span = (
                f"{float(self._times[-1]):.3g} s" if s.fps is not None else f"{self.count} frame(s)"
            )
            warnings.warn(
                f"the video ({span}) is shorter than one clip ({s.describe()}); the last frame "
                "is repeated to fill the clip",
                ShortVideoWarning,
                stacklevel=2,
            )
        return [w]

    def oldest_needed(self) -> int:
        s = self.sampler
        if s.fps is not None:
            if not self._times:
                return self._base
            earliest = min(self._grid_start(self._k), self._times[-1] - (s.clip_len - 1) * s.period)
            return max(self._base, self._pick(earliest))
        latest = self.count - 1 - (s.clip_len - 1) * s.stride
        return max(self._base, min(self._k * s.hop * s.stride, latest))

    def drop_before(self, index: int) -> None:
        """Forget the times of frames before ``index`` (never past ``oldest_needed()``)."""
        index = min(index, self.oldest_needed())
        cut = index - self._base
        if cut > 0:
            del self._times[:cut]
            self._base = index

    # -- arithmetic ---------------------------------------------------------------------------

    def _grid_start(self, k: int) -> Fraction:
        return k * self.sampler.hop * self.sampler.period

    def _pick(self, t: Fraction) -> int:
        """Index of the last frame with time <= t (the first frame when t precedes it)."""
        return self._base + max(0, bisect_right(self._times, t) - 1)

    def _grid_window_if_ready(self) -> Window | None:
        s = self.sampler
        if s.fps is not None:
            last = self._grid_start(self._k) + (s.clip_len - 1) * s.period
            if self._times[-1] <= last:  # a later frame could still be the one shown at `last`
                return None
            w = self._time_window(self._grid_start(self._k))
        else:
            first = self._k * s.hop * s.stride
            if self.count - 1 < first + (s.clip_len - 1) * s.stride:
                return None
            w = self._index_window(first)
        self._k += 1
        return w

    def _time_window(self, start: Fraction) -> Window:
        s = self.sampler
        last_t = self._times[-1]
        sample_t = [start + j * s.period for j in range(s.clip_len)]
        frames = tuple(self._pick(t) for t in sample_t)
        self._last_end = sample_t[-1]
        pad = sum(t > last_t for t in sample_t) if self._done else 0
        return self._make(frames, pad=pad)

    def _index_window(self, first: int) -> Window:
        s = self.sampler
        n_last = self.count - 1
        wanted = [first + j * s.stride for j in range(s.clip_len)]
        frames = tuple(min(i, n_last) for i in wanted)
        self._last_end = frames[-1]
        return self._make(frames, pad=sum(i > n_last for i in wanted))

    def _make(self, frames: tuple[int, ...], *, pad: int) -> Window:
        times = tuple(self._times[i - self._base] for i in frames)
        w = Window(index=self._emitted, frames=frames, times=times, padded=pad > 0, pad=pad)
        self._emitted += 1
        return w


def plan_windows(times: Sequence[Fraction], sampler: ClipSampler) -> list[Window]:
    """All windows for frames at ``times`` (seconds, increasing) — the streaming plan at once."""
    sched = WindowScheduler(sampler)
    out: list[Window] = []
    for t in times:
        out.extend(sched.push(t))
    out.extend(sched.finish())
    return out
