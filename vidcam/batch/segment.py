"""``start`` / ``end`` from a manifest: the selected span as a temporary lossless clip.

The pipeline explains whole files, so a segment is cut first: its upright frames are
re-encoded losslessly (FFV1 in Matroska, exact frame times kept) into a temporary folder
that :func:`segment_clip` removes on exit. The annotated video then covers only the span
(times counted from ``start``; no audio).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcam.errors import VidcamError
from vidcam.video.decode import VideoSource


@contextmanager
def segment_clip(path: Path, start: float | None, end: float | None) -> Iterator[Path]:
    """Yield ``path`` itself when no span is set, else a temporary clip of [start, end) s."""
    if start is None and end is None:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="vidcam-segment-"))
    try:
        yield _cut(VideoSource(path), folder / f"{path.stem[:100]}.mkv", start or 0.0, end)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cut(source: VideoSource, out: Path, start: float, end: float | None) -> Path:
    tb = Fraction(1, 1000)
    c = av.open(str(out), "w")
    try:
        s = c.add_stream("ffv1", rate=source.info.fps)
        s.width, s.height = source.info.width, source.info.height
        s.pix_fmt = "bgr0"
        s.time_base = tb
        s.codec_context.time_base = tb
        n = 0
        for frame in source.frames():
            t = float(frame.time)
            if t < start - 1e-9:
                continue
            if end is not None and t >= end - 1e-9:
                break
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
            f.pts = round(Fraction(t - start).limit_denominator(10**6) / tb)
            f.time_base = tb
            for p in s.encode(f):
                c.mux(p)
            n += 1
        for p in s.encode():
            c.mux(p)
    finally:
        c.close()
    if n == 0:
        span = f"{start:g}-{end:g} s" if end is not None else f"from {start:g} s"
        raise VidcamError(
            f"start/end {span} selects no frame (the video is {source.info.duration:.3g} s long)"
        )
    return out
