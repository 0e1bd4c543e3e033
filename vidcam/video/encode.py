"""Encoder: annotated RGB frames -> an H.264 MP4/MOV/MKV or a GIF (PyAV).

Video: libx264, yuv420p (plays in browsers), ``crf`` 18, preset ``veryfast``. Odd sizes are
padded by one pixel (edge copy) to even ones; content is never cropped. Every frame carries its
own presentation time (``pts`` in a fine time base), so variable frame rates survive; the
nominal rate is the source's average rate. (Matroska stores times in milliseconds.)

Audio: when ``audio_from`` names a file with an audio stream, its packets are copied into the
output (re-encoded to AAC when the container cannot hold the codec), shifted so the audio keeps
its offset to the first video frame and cut at the end of the video
(:mod:`vidcam.video.audio_copy`).

GIF (output ending in ``.gif``): per-frame palettes (FFmpeg ``palettegen``/``paletteuse``).
GIF delays are whole 1/100 s and players stretch delays under 2/100 s to 10/100 s, so at most
50 frames per second can play at their speed: every frame is shown from its own time rounded
to 1/100 s, and a frame less than 2/100 s after the previous one shown is left out (sources
above 50 fps: a 1/50 s grid, the first frame of each slot shown from the slot's start). The delays
then add up to the real duration; a warning (in :attr:`VideoEncoder.notes` too) counts the
frames left out. GIF has no audio.

The file is written to a temporary name next to the output (``.NAME.tmp-XXXX.EXT``) and given
the output's name only when complete; on any error or interrupt the temporary file is removed.
Without ``overwrite`` that last step never replaces a file: when another run created the
output meanwhile, this one fails with a VidcamError and leaves the other's file alone.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import cv2
import numpy as np

from vidcam.errors import VidcamError
from vidcam.paths import AtomicFile
from vidcam.video.audio_copy import AudioCopy, has_audio

VALID_EXTENSIONS = (".mp4", ".mov", ".mkv", ".gif")
_GIF_TB = Fraction(1, 100)
_GIF_MIN_DELAY = 2  # in 1/100 s: shorter delays play as 10/100 s in browsers and FFmpeg
_BT601 = 6  # AVCOL_SPC_SMPTE170M: the BT.601 matrix of rgb_to_i420
_LIMITED = 1  # AVCOL_RANGE_MPEG: Y in 16..235


#: BT.601 limited-range chroma rows (U, V) of an RGB pixel, with their offset: FFmpeg's and
#: OpenCV's integer coefficients (/256)
_CHROMA = np.array(
    [[-38 / 256, -74 / 256, 112 / 256, 128.0], [112 / 256, -94 / 256, -18 / 256, 128.0]],
    dtype=np.float32,
)


def rgb_to_i420(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, H and W even -> (3H/2, W) uint8 I420 (yuv420p planes): BT.601
    limited range; each chroma sample is the chroma of its 2x2 block's mean RGB (the same as the
    mean of its chroma, which is linear in RGB; within one level, as that mean is rounded to
    uint8 first). OpenCV's own RGB->I420 takes the block's top-left pixel instead,
    which drops the colour of a 1-pixel line on an odd row; swscale's conversion costs 6x more
    (1.4 against 0.23 ms a 640x360 frame) and round-trips real footage no closer (rendered
    bikes.mp4 frames: 1.52 against 1.33 levels mean error)."""
    h, w = image.shape[:2]
    image = np.ascontiguousarray(image)
    out = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)  # its Y plane is the one wanted
    half = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)  # 2x2 means
    uv = cv2.transform(half, _CHROMA)
    flat, q = out.reshape(-1), h * w // 4
    flat[h * w : h * w + q] = uv[..., 0].ravel()
    flat[h * w + q :] = uv[..., 1].ravel()
    return out


def check_output_extension(path: str | Path) -> str:
    """The lower-case extension of ``path``; VidcamError when it is not a supported one."""
    ext = Path(path).suffix.lower()
    if ext not in VALID_EXTENSIONS:
        raise VidcamError(
            f"output {str(path)!r}: unsupported extension {ext or '(none)'!r}; "
            f"use one of {', '.join(VALID_EXTENSIONS)}"
        )
    return ext


class VideoEncoder:
    """Write frames (H, W, 3) uint8 RGB with their times (seconds from the first frame).

    Use as a context manager: a clean exit commits (gives the temporary file the name
    ``output``), an exception or KeyboardInterrupt deletes the temporary file.

    Args:
        output: destination (.mp4, .mov, .mkv or .gif).
        width, height: frame size (padded to even for H.264).
        fps: nominal (average) frame rate.
        time_base: timestamp unit of the output video stream (default 1/90000).
        audio_from: a file whose audio stream to keep (None: no audio).
        audio_offset: time of the first video frame in ``audio_from`` (seconds).
        overwrite: replace ``output`` if it exists when the file is complete (default: fail
            rather than replace a file that appeared while encoding).

    Attributes:
        frames: frames written to the file so far (GIF: the frames it shows).
        notes: what the output leaves out, as warning texts (also issued as warnings).
    """

    def __init__(
        self,
        output: str | Path,
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        time_base: Fraction | None = None,
        audio_from: str | Path | None = None,
        audio_offset: Fraction | float = 0,
        crf: int = 18,
        preset: str = "veryfast",
        overwrite: bool = False,
    ) -> None:
        self.output = Path(output)
        self.ext = check_output_extension(self.output)
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps).limit_denominator(100_000)
        self.frames = 0
        self.notes: list[str] = []
        self._offered = 0  # frames given to write()
        self._last_pts: int | None = None
        self._last_time = Fraction(0)
        self._closed = False
        self._file = AtomicFile(self.output, overwrite=overwrite)
        self.tmp = self._file.tmp
        self._audio: AudioCopy | None = None
        try:
            self._container = av.open(str(self.tmp), "w")
            if self.ext == ".gif":
                self._init_gif()
                if audio_from is not None and has_audio(audio_from):
                    self._note("GIF has no audio track; the audio is left out")
            else:
                self._init_h264(time_base or Fraction(1, 90_000), crf, preset)
                if audio_from is not None and has_audio(audio_from):
                    self._audio = AudioCopy(
                        self._container, Path(audio_from), Fraction(audio_offset)
                    )
        except BaseException as exc:
            self.abort()
            if isinstance(exc, av.FFmpegError):
                raise VidcamError(f"cannot write {str(self.output)!r}: {exc}") from None
            raise

    # -- setup --------------------------------------------------------------------------------

    def _init_h264(self, tb: Fraction, crf: int, preset: str) -> None:
        s = self._container.add_stream("libx264", rate=self.fps)
        s.width = self.width + self.width % 2
        s.height = self.height + self.height % 2
        s.pix_fmt = "yuv420p"
        s.time_base = tb
        s.codec_context.time_base = tb
        s.options = {"crf": str(crf), "preset": preset}
        # the frames are BT.601 limited range (rgb_to_i420): say so, or players guess (browsers
        # take untagged HD video for BT.709 and shift its colours)
        s.codec_context.colorspace = _BT601
        s.codec_context.color_range = _LIMITED
        self._stream = s
        self._tb = tb

    def _init_gif(self) -> None:
        s = self._container.add_stream("gif", rate=self.fps)
        s.width, s.height = self.width, self.height
        s.pix_fmt = "pal8"
        s.time_base = _GIF_TB
        s.codec_context.time_base = _GIF_TB  # else pts pass through 1/fps and get re-rounded
        self._stream = s
        self._tb = _GIF_TB
        g = av.filter.Graph()
        src = g.add_buffer(width=self.width, height=self.height, format="rgb24", time_base=_GIF_TB)
        split = g.add("split")
        gen = g.add("palettegen", "stats_mode=single:max_colors=256")
        use = g.add("paletteuse", "new=1:dither=bayer:bayer_scale=3")
        sink = g.add("buffersink")
        src.link_to(split)
        split.link_to(use, 0, 0)
        split.link_to(gen, 1, 0)
        gen.link_to(use, 0, 1)
        use.link_to(sink)
        g.configure()
        self._graph = g

    # -- writing ------------------------------------------------------------------------------

    def write(self, image: np.ndarray, time: Fraction | float) -> None:
        """Append one frame shown from ``time`` seconds (after the previous frame's time)."""
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise VidcamError(
                f"frame of shape {image.shape} {image.dtype} does not match the output "
                f"({self.height}, {self.width}, 3) uint8"
            )
        time = Fraction(time)
        self._offered += 1
        if self.ext == ".gif":
            pts = self._gif_pts(time)
            if pts is None:
                return  # too close to the frame shown before: GIF cannot show both
        else:
            pts = round(time / self._tb)
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
        self._last_pts = pts
        self._last_time = time
        if self.ext != ".gif" and (self.width % 2 or self.height % 2):
            image = cv2.copyMakeBorder(
                image, 0, self.height % 2, 0, self.width % 2, cv2.BORDER_REPLICATE
            )
        if self.ext == ".gif":
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        else:
            frame = av.VideoFrame.from_ndarray(rgb_to_i420(image), format="yuv420p")
        frame.pts = pts
        frame.time_base = self._tb
        try:
            if self.ext == ".gif":
                self._graph.push(frame)
                self._drain_gif()
            else:
                self._mux(self._stream.encode(frame))
                if self._audio is not None:  # audio up to this frame (the muxer interleaves)
                    self._audio.copy_until(time)
        except av.FFmpegError as exc:
            raise VidcamError(f"writing {str(self.output)!r} failed: {exc}") from None
        self.frames += 1

    def _gif_pts(self, time: Fraction) -> int | None:
        """The frame's GIF time in 1/100 s, or None when it is to be left out."""
        if self.fps > 100 // _GIF_MIN_DELAY:  # a 1/50 s grid, the first frame of each slot
            pts = _GIF_MIN_DELAY * math.floor(time * 100 / _GIF_MIN_DELAY)
        else:
            pts = round(time * 100)
        if self._last_pts is not None and pts < self._last_pts + _GIF_MIN_DELAY:
            return None
        return pts

    def _note(self, text: str) -> None:
        self.notes.append(text)
        warnings.warn(text, stacklevel=3)

    def _mux(self, packets) -> None:
        for p in packets:
            self._container.mux(p)

    def _drain_gif(self) -> None:
        while True:
            try:
                out = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            self._mux(self._stream.encode(out))

    # -- finishing ----------------------------------------------------------------------------

    def close(self) -> Path:
        """Flush, finish the file and move it over ``output``. Returns ``output``."""
        if self._closed:
            return self.output
        try:
            if self.frames == 0:
                raise VidcamError(f"no frame was written to {str(self.output)!r}")
            if self.ext == ".gif":
                self._graph.push(None)
                self._drain_gif()
                left_out = self._offered - self.frames
                if left_out:
                    self._note(
                        f"GIF plays at most {100 // _GIF_MIN_DELAY} frames per second: "
                        f"{left_out} of {self._offered} frames left out, timing kept "
                        "(write .mp4 to keep every frame)"
                    )
            self._mux(self._stream.encode())
            if self._audio is not None:  # the video ends when its last frame's time is up
                end = self._last_time + 1 / self.fps
                self._audio.copy_until(end, final=True)
                self._audio.close()
            self._container.close()
            self._file.commit()
            self._closed = True
        except BaseException as exc:
            self.abort()
            if isinstance(exc, av.FFmpegError):
                raise VidcamError(f"finishing {str(self.output)!r} failed: {exc}") from None
            raise
        return self.output

    def abort(self) -> None:
        """Drop everything written so far (the temporary file is deleted)."""
        self._closed = True
        for closer in (getattr(self, "_audio", None), getattr(self, "_container", None)):
            if closer is not None:
                with contextlib.suppress(Exception):  # the file is discarded: close errors moot
                    closer.close()
        if getattr(self, "_file", None) is not None:
            self._file.discard()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
