"""Audio of the source into the encoded video: copied, or re-encoded to AAC where needed.

:class:`AudioCopy` muxes the audio stream of a source file into an output container being
written: its packets are copied when the container can hold the codec (PCM in MP4/MOV is
re-encoded: players take it only as ``ipcm``/``lpcm``), else decoded, resampled to planar
float in a named layout and encoded to AAC. Packets are shifted by the first video frame's
time in the source (``offset``), so audio and video stay in step; :meth:`AudioCopy.copy_until`
is called as video frames are written (the muxer interleaves) and, at the end, cuts the audio
at the end of the video (:func:`_cut`: decoded audio exactly; a copied packet when most of it
comes before the end).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcam.errors import VidcamError
from vidcam.video.demuxers import source_options


class AudioCopy:
    """Copies (or re-encodes to AAC) the audio of ``source`` into ``container``."""

    def __init__(self, container, source: Path, offset: Fraction) -> None:
        self._out = container
        self._in = av.open(str(source), "r", container_options=source_options())
        self._src = self._in.streams.audio[0]
        self._offset = offset
        self._packets = self._in.demux(self._src)
        self._pending = None
        codec = self._src.codec_context.name
        self._copy = codec in container.supported_codecs and self.ext_ok(container, codec)
        if self._copy:
            self._dst = container.add_stream_from_template(self._src)
        else:
            rate = self._src.codec_context.sample_rate
            # the AAC encoder takes planar float and a named layout (PCM in MKV may carry an
            # unordered "N channels" one): resample to the default layout of that many channels
            n = len(self._src.codec_context.layout.channels)
            named = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}
            if n not in named:
                raise VidcamError(f"cannot re-encode {n}-channel audio to AAC; use an .mkv output")
            layout = av.AudioLayout(named[n])
            self._dst = container.add_stream("aac", rate=rate)
            self._dst.layout = layout
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._exhausted = False  # no more source packets to copy
        self._flushed = False  # the AAC encoder has been drained

    @staticmethod
    def ext_ok(container, codec: str) -> bool:
        # mp4/mov take PCM only as 'ipcm'/'lpcm' in some players; re-encode PCM there
        return not (codec.startswith("pcm_") and container.format.name in ("mp4", "mov"))

    def copy_until(self, t: Fraction, *, final: bool = False) -> None:
        """Mux the source's audio up to ``t`` seconds of output time (all of it up to the video
        end when ``final``)."""
        if not self._exhausted:
            self._mux_until(t, final)
        if final and not self._copy and not self._flushed:  # drain AAC even after source EOF
            self._flushed = True
            self._encode(self._resampler.resample(None))
            for p in self._dst.encode(None):
                self._out.mux(p)

    def _encode(self, frames: list) -> None:
        for frame in frames:
            frame.pts = None  # the encoder numbers samples itself, from the first one kept
            for p in self._dst.encode(frame):
                self._out.mux(p)

    def _mux_until(self, t: Fraction, final: bool) -> None:
        """Packets starting before ``t``; at the ``final`` cut, a copied packet only when most
        of it is before ``t`` and decoded audio exactly up to ``t``."""
        tb = self._src.time_base
        shift = round(self._offset / tb)
        while True:
            pkt = self._pending or next(self._packets, None)
            self._pending = None
            if pkt is None or pkt.pts is None and pkt.size == 0:
                self._exhausted = True
                break
            if pkt.pts is None:
                continue
            start = (pkt.pts - shift) * tb
            half = (pkt.duration or 0) * tb / 2 if final and self._copy else 0
            if start + half >= t:
                if not final:
                    self._pending = pkt
                self._exhausted = final
                break
            if start < 0:
                continue
            if self._copy:
                pkt.pts -= shift
                if pkt.dts is not None:
                    pkt.dts -= shift
                pkt.stream = self._dst
                self._out.mux(pkt)
            else:
                for frame in pkt.decode():
                    if final:
                        begin = start if frame.pts is None else (frame.pts - shift) * tb
                        frame = _cut(frame, t - begin)
                    if frame is not None:
                        self._encode(self._resampler.resample(frame))

    def close(self) -> None:
        self._in.close()


def _cut(frame: av.AudioFrame, seconds: Fraction) -> av.AudioFrame | None:
    """``frame`` cut to its first ``seconds`` (None: nothing left)."""
    keep = int(seconds * frame.sample_rate)
    if keep >= frame.samples:
        return frame
    if keep <= 0:
        return None
    a = frame.to_ndarray()  # (channels, samples) planar, (1, samples × channels) packed
    n = keep if frame.format.is_planar else keep * len(frame.layout.channels)
    out = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(a[:, :n]), format=frame.format.name, layout=frame.layout.name
    )
    out.sample_rate = frame.sample_rate
    return out


def has_audio(path: str | Path) -> bool:
    """Whether ``path`` opens and has an audio stream (False when FFmpeg cannot open it)."""
    try:
        with av.open(str(path), "r") as c:
            return bool(c.streams.audio)
    except av.FFmpegError:
        return False
