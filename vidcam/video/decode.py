"""Decoder: a video file -> upright RGB frames with their presentation times (PyAV, streaming).

``probe(path)`` reads the header and decodes the first frame (so a file with nothing decodable
fails before any work starts). ``iter_frames(path)`` yields :class:`DecodedFrame` one at a time
and never holds more than the decoder's own buffers.

Times are exact ``Fraction`` seconds from ``pts * time_base``, counted from the first frame, so
variable-frame-rate files keep their real timing. Frames are rotated by the stream's display
matrix (phone videos) so every frame comes out upright; flips in the matrix are ignored.

A decode error after some frames stops decoding with a :class:`DecodeWarning` naming how many
frames were decoded; the frames before it are kept. A file with no decodable frame is a
:class:`~vidcam.errors.VidcamError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcam.errors import VidcamError


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


@dataclass(frozen=True)
class DecodedFrame:
    """One upright frame: ``image`` (H, W, 3) uint8 RGB; ``time`` seconds from the first frame."""

    index: int
    time: Fraction
    image: np.ndarray


def check_input(path: str | Path) -> Path:
    """The input path as a ``Path``; raises VidcamError when it is missing or not a file."""
    p = Path(path)
    if not p.exists():
        raise VidcamError(f"input {str(p)!r} does not exist")
    if not p.is_file():
        raise VidcamError(f"input {str(p)!r} is not a file")
    return p


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VidcamError(
            f"input {str(path)!r} is not a readable video file ({reason.lower()})"
        ) from None
    if not container.streams.video:
        n_audio = len(container.streams.audio)
        container.close()
        what = f"only audio ({n_audio} audio stream(s))" if n_audio else "no video stream"
        raise VidcamError(f"input {str(path)!r} has {what}; give a video file")
    return container


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
        first = None
        try:
            for frame in container.decode(stream):
                first = frame
                break
        except av.FFmpegError as exc:
            raise VidcamError(f"input {str(p)!r}: no frame could be decoded ({exc})") from None
        if first is None:
            raise VidcamError(f"input {str(p)!r}: the video stream holds no decodable frame")
        rotation = _rotation(first, stream)
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
        )
    finally:
        container.close()


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def iter_frames(
    path: str | Path, info: VideoInfo | None = None, *, warn: bool = True
) -> Iterator[DecodedFrame]:
    """Yield every decodable frame in presentation order, upright RGB, with its time.

    Missing or non-increasing timestamps are replaced by ``previous + 1/fps`` (one
    DecodeWarning). A decode error after the first frame ends the stream with a DecodeWarning.
    ``warn=False`` skips the warnings (for a second pass over a file already reported on).
    """
    info = info or probe(path)
    container = _open(info.path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        period = 1 / info.fps
        first_pts: int | None = None
        prev: Fraction | None = None
        fixed = 0
        index = 0
        stopped = False
        frames = _decode(container, stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                if index == 0:
                    raise VidcamError(
                        f"input {str(info.path)!r}: no frame could be decoded ({exc})"
                    ) from None
                stopped = True
                if not warn:
                    break
                warnings.warn(
                    f"{info.path.name}: decoding stopped after {index} frames "
                    f"(t={float(prev or 0):.2f}s of ~{info.duration:.2f}s): {exc}; "
                    "the rest of the video is left out",
                    DecodeWarning,
                    stacklevel=2,
                )
                break
            if frame.pts is not None and first_pts is None:
                first_pts = frame.pts
            t = (frame.pts - first_pts) * info.time_base if frame.pts is not None else None
            if t is None or (prev is not None and t <= prev):
                fixed += 1
                t = prev + period if prev is not None else Fraction(0)
            image = _upright(frame.to_ndarray(format="rgb24"), info.rotation)
            yield DecodedFrame(index=index, time=Fraction(t), image=image)
            prev = t
            index += 1
        if index == 0:
            raise VidcamError(
                f"input {str(info.path)!r}: the video stream holds no decodable frame"
            )
        if warn and not stopped and info.frames_exact and index < info.frames - 2:
            warnings.warn(
                f"{info.path.name}: decoded {index} frames but the header announces "
                f"{info.frames}; the file may be truncated",
                DecodeWarning,
                stacklevel=2,
            )
        if warn and fixed:
            warnings.warn(
                f"{info.path.name}: {fixed} frame(s) had missing or non-increasing timestamps; "
                f"timed at 1/{float(info.fps):g} s after the previous frame",
                DecodeWarning,
                stacklevel=2,
            )
    finally:
        container.close()


def _decode(container: av.container.InputContainer, stream) -> Iterator[av.VideoFrame]:
    for packet in container.demux(stream):
        yield from packet.decode()


class VideoSource:
    """A video file opened for the pipeline: checked and probed once (:attr:`info`), then
    decoded as often as needed with :meth:`frames` (each call streams the file from the start).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_input(path)
        self.info = probe(self.path)

    def frames(self, *, warn: bool = True) -> Iterator[DecodedFrame]:
        """Every decodable frame, upright RGB, in presentation order (see :func:`iter_frames`)."""
        return iter_frames(self.path, self.info, warn=warn)

    def __repr__(self) -> str:
        i = self.info
        return f"VideoSource({str(self.path)!r}, {i.width}x{i.height}, {float(i.fps):g} fps)"
