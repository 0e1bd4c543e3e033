"""Decoder: a video file -> upright RGB frames with their presentation times (PyAV, streaming).

``probe(path)`` reads the header and decodes the first frame (so a file with nothing decodable
fails before any work starts). ``iter_frames(path)`` yields :class:`DecodedFrame` one at a time
and never holds more than the decoder's own buffers.

Times are exact ``Fraction`` seconds from ``pts * time_base``, counted from the first frame, so
variable-frame-rate files keep their real timing. Frames are rotated by the stream's display
matrix (phone videos) so every frame comes out upright; flips in the matrix are ignored.

Damaged input: a packet FFmpeg cannot decode (garbage in the middle, a cut-off last packet) is
skipped and decoding goes on; a demuxer error ends the stream. When frames are lost, a
:class:`DecodeWarning` gives the count. When fewer than :data:`PARTIAL_LIMIT` of the frames (or
of the duration) the header announces could be decoded, the run fails with a one-line
:class:`~vidcam.errors.VidcamError` at the end of the first decode, unless ``allow_partial``.
A file with no decodable frame is always a :class:`~vidcam.errors.VidcamError`.

What FFmpeg may open (regular files, a whitelist of demuxers): :mod:`vidcam.video.demuxers`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcam.errors import VidcamError
from vidcam.video import heap
from vidcam.video.demuxers import (  # the demuxer whitelist, importable from here too
    DEMUXERS,
    ENV_DEMUXERS,
    check_input,
    open_source,
    source_options,
)

__all__ = [
    "DEMUXERS",
    "ENV_DEMUXERS",
    "PARTIAL_LIMIT",
    "DecodeWarning",
    "DecodedFrame",
    "VideoInfo",
    "VideoSource",
    "VideoTimeout",
    "check_input",
    "check_time",
    "iter_frames",
    "probe",
    "source_options",
    "time_limit",
]

#: below this share of the announced frames (or duration) decoded, the input counts as damaged
PARTIAL_LIMIT = 0.9


class DecodeWarning(UserWarning):
    """The video could only be decoded in part (truncated or corrupt file, broken timestamps)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the header says about a video (sizes are display sizes, after rotation).

    Attributes:
        path: the file.
        width, height: upright frame size in pixels.
        fps: average frame rate (frames per second of source time).
        duration: seconds (header value, or frames / fps).
        frames: frame count (from the header when it has one, else duration × fps).
        frames_exact: ``frames`` comes from the header's frame count.
        rotation: degrees counter-clockwise applied to decoded frames (0, 90, 180, 270).
        has_audio: the file has an audio stream.
        time_base: the video stream's time base.
        start: the first frame's presentation time in the file (frame times count from it).
        duration_exact: ``duration`` is the video stream's own (not a container's, which a
            longer audio track may stretch).
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    duration: float
    frames: int
    frames_exact: bool
    rotation: int
    has_audio: bool
    time_base: Fraction
    start: Fraction = Fraction(0)
    duration_exact: bool = False


@dataclass(frozen=True)
class DecodedFrame:
    """One upright frame: ``image`` (H, W, 3) uint8 RGB; ``time`` seconds from the first frame."""

    index: int
    time: Fraction
    image: np.ndarray


def _open(path: Path) -> av.container.InputContainer:
    """``path`` opened by :func:`~vidcam.video.demuxers.open_source`, within the time limit."""
    check_time()
    return open_source(path)


class VideoTimeout(VidcamError):
    """A video took longer than the time limit of :func:`time_limit`."""


_LIMIT: list[tuple[float, float] | None] = [None]  # (monotonic deadline, seconds)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Within: opening or decoding a video raises :class:`VideoTimeout` once ``seconds`` (None:
    no limit) have passed; checked before every packet, in every thread of the process."""
    old = _LIMIT[0]
    _LIMIT[0] = None if seconds is None else (time.monotonic() + seconds, seconds)
    try:
        yield
    finally:
        _LIMIT[0] = old


def check_time() -> None:
    """Raise :class:`VideoTimeout` when the current :func:`time_limit` has passed."""
    limit = _LIMIT[0]
    if limit is not None and time.monotonic() > limit[0]:
        raise VideoTimeout(
            f"the video took longer than its time limit of {limit[1]:g} s (--video-timeout); "
            "stopped"
        )


def _rotation(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise degrees to make the frame upright, a multiple of 90."""
    deg = frame.rotation
    if not deg:
        try:
            deg = -int(float(stream.metadata.get("rotate", 0)))  # legacy tag is clockwise
        except ValueError:
            deg = 0
    return int(round(deg / 90.0)) * 90 % 360


def probe(path: str | Path) -> VideoInfo:
    """Header facts plus rotation, read from the first decoded frame."""
    p = check_input(path)
    container = _open(p)
    try:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1_000_000)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = Fraction(fps) if fps else Fraction(25)
        decoded = _Decoded(container, stream)
        first = next(iter(decoded), None)  # damaged packets before it are skipped
        if first is None:
            reason = f" ({decoded.error})" if decoded.error else ""
            raise VidcamError(
                f"input {str(p)!r}: the video stream holds no decodable frame{reason}"
            )
        rotation = _rotation(first, stream)
        exact = bool(stream.duration) or (bool(container.duration) and not container.streams.audio)
        if stream.duration:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frames = stream.frames or max(1, round(duration * fps))
        if not duration:
            duration = float(frames / fps)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            path=p,
            width=w,
            height=h,
            fps=fps,
            duration=duration,
            frames=int(frames),
            frames_exact=bool(stream.frames),
            rotation=rotation,
            has_audio=bool(container.streams.audio),
            time_base=tb,
            start=Fraction(first.pts * tb) if first.pts is not None else Fraction(0),
            duration_exact=exact,
        )
    finally:
        container.close()


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def iter_frames(
    path: str | Path,
    info: VideoInfo | None = None,
    *,
    warn: bool = True,
    allow_partial: bool = False,
) -> Iterator[DecodedFrame]:
    """Yield every decodable frame in presentation order, upright RGB, with its time.

    Missing or non-increasing timestamps are replaced by ``previous + 1/fps`` (one
    DecodeWarning). Undecodable packets are skipped; a demuxer error after the first frame ends
    the stream (DecodeWarning). Lost frames are counted in a DecodeWarning; when less than
    :data:`PARTIAL_LIMIT` of the announced frames or duration came out, a VidcamError ends the
    iteration unless ``allow_partial``. ``warn=False`` skips warnings and that check (for a
    second pass over a file already reported on).
    """
    info = info or probe(path)
    container = _open(info.path)
    try:
        stream = container.streams.video[0]
        # slice threads only: frame threads drop the frames in flight at a damaged packet (and
        # a decoder thread per core would compete with the model's threads in pass 1)
        stream.thread_type = "SLICE"
        period = 1 / info.fps
        first_pts: int | None = None
        prev: Fraction | None = None
        fixed = 0
        index = 0
        frames = _Decoded(container, stream)
        for frame in frames:
            if frame.pts is not None and first_pts is None:
                first_pts = frame.pts
            t = (frame.pts - first_pts) * info.time_base if frame.pts is not None else None
            if t is None or (prev is not None and t <= prev):
                fixed += 1
                t = prev + period if prev is not None else Fraction(0)
            image = _upright(_rgb(frame), info.rotation)
            yield DecodedFrame(index=index, time=Fraction(t), image=image)
            prev = t
            index += 1
            if index % heap.TRIM_EVERY == 0:
                heap.trim()
        if index == 0:
            reason = f" ({frames.error})" if frames.error else ""
            raise VidcamError(
                f"input {str(info.path)!r}: the video stream holds no decodable frame{reason}"
            )
        if warn:
            _report(info, index, float(prev or 0) + float(period), frames, fixed, allow_partial)
    finally:
        container.close()


#: keyword arguments of ``to_ndarray``: one swscale thread where PyAV has the option (17+).
#: Its default, a pool of one thread per core for every frame, costs more than it saves on
#: frames this small and takes cores from the model (300 frames of 640x360 on 2 cores:
#: decode + RGB 0.33 CPU-s / 0.21 s wall against 0.45 CPU-s / 0.33 s)
_RGB_OPTIONS: dict[str, int] = {"threads": 1}


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a decoded frame (swscale, the frame's own colorspace)."""
    global _RGB_OPTIONS
    if _RGB_OPTIONS:
        try:
            return frame.to_ndarray(format="rgb24", **_RGB_OPTIONS)
        except TypeError:  # PyAV < 17: reformat() has no `threads`
            _RGB_OPTIONS = {}
    return frame.to_ndarray(format="rgb24")


class _Decoded:
    """Frames of ``stream``, skipping packets the decoder rejects (counted in ``skipped``); a
    demuxer error ends the stream (kept in ``error``)."""

    def __init__(self, container: av.container.InputContainer, stream) -> None:
        self._packets = container.demux(stream)
        self.skipped = 0
        self.error: str | None = None

    def __iter__(self) -> Iterator[av.VideoFrame]:
        while True:
            check_time()
            try:
                packet = next(self._packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the container itself is broken here: stop
                self.error = str(exc)
                return
            try:
                decoded = packet.decode()
            except av.FFmpegError:  # a damaged packet: the decoder resyncs on the next ones
                self.skipped += 1
                continue
            yield from decoded


def _report(
    info: VideoInfo,
    n: int,
    seconds: float,
    frames: _Decoded,
    fixed: int,
    allow_partial: bool,
) -> None:
    """Warnings (and the partial-input check) at the end of a decode of ``n`` frames that
    cover ``seconds``."""
    name = info.path.name
    expected = info.frames if info.frames_exact else None
    lost = max(0, expected - n) if expected is not None else 0
    short_frames = expected is not None and n < PARTIAL_LIMIT * expected
    short_time = info.duration_exact and seconds < PARTIAL_LIMIT * info.duration
    damage = []
    if frames.skipped:
        damage.append(f"{frames.skipped} damaged packet(s) skipped")
    if frames.error:
        damage.append(f"decoding stopped at t={seconds:.2f}s: {frames.error}")
    why = f" ({'; '.join(damage)})" if damage else ""
    if (short_frames or short_time) and not allow_partial:
        got = (
            f"{n} of {expected} frames"
            if short_frames
            else f"{seconds:.2f} s of {info.duration:.2f} s"
        )
        raise VidcamError(
            f"input {str(info.path)!r} is damaged or truncated: only {got} could be "
            f"decoded{why}; pass --allow-partial (allow_partial=True) to accept a partial result"
        )
    if lost > 2 or damage or short_time:
        count = f"{n} of {expected} frames decoded, {lost} lost" if lost else f"{n} frames decoded"
        span = f", {seconds:.2f} s of {info.duration:.2f} s" if short_time else ""
        warnings.warn(
            f"{name}: damaged or truncated input: {count}{span}{why}; the rest is kept",
            DecodeWarning,
            stacklevel=3,
        )
    if fixed:
        warnings.warn(
            f"{name}: {fixed} frame(s) had missing or non-increasing timestamps; "
            f"timed at 1/{float(info.fps):g} s after the previous frame",
            DecodeWarning,
            stacklevel=3,
        )


class VideoSource:
    """A video file opened for the pipeline: checked and probed once (:attr:`info`), then
    decoded as often as needed with :meth:`frames` (each call streams the file from the start).
    ``allow_partial``: accept a damaged input of which much less than announced decodes.
    """

    def __init__(self, path: str | Path, *, allow_partial: bool = False) -> None:
        self.path = check_input(path)
        self.info = probe(self.path)
        self.allow_partial = allow_partial

    def frames(self, *, warn: bool = True) -> Iterator[DecodedFrame]:
        """Every decodable frame, upright RGB, in presentation order (see :func:`iter_frames`;
        a damaged input fails unless :attr:`allow_partial`)."""
        return iter_frames(self.path, self.info, warn=warn, allow_partial=self.allow_partial)

    def __repr__(self) -> str:
        i = self.info
        return f"VideoSource({str(self.path)!r}, {i.width}x{i.height}, {float(i.fps):g} fps)"
