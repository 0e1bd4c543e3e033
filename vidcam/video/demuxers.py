"""What vidcam lets FFmpeg open: regular files only, through a whitelist of demuxers.

:func:`check_input` refuses what is not a regular file (a FIFO would block forever);
:func:`source_options` are the FFmpeg options of every open of a source (the decoder's and
the encoder's audio copy): the demuxers of :data:`DEMUXERS` plus ``$VIDCAM_DEMUXERS``, and the
file protocol only. :func:`open_source` opens a file with them and turns FFmpeg's refusals
into one-line :class:`~vidcam.errors.VidcamError` messages.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import av

from vidcam.errors import VidcamError
from vidcam.video_files import check_input_file

#: FFmpeg demuxers vidcam runs (``format_whitelist``): lists that open other files (concat, hls,
#: dash, image2: a FIFO there blocks forever) only when named in ``$VIDCAM_DEMUXERS`` (a,b).
DEMUXERS = (
    "mov", "matroska", "avi", "gif", "apng", "mpeg", "mpegts", "mpegvideo", "flv", "asf",
    "ogg", "h264", "hevc", "m4v", "mjpeg", "ivf", "nut", "yuv4mpegpipe", "mxf", "dv", "rm",
    "wtv", "obu",
)  # fmt: skip
ENV_DEMUXERS = "VIDCAM_DEMUXERS"
_LISTS = ((b"ffconcat", "an FFmpeg concat list"), (b"#EXTM3U", "an HLS playlist"), (b"<", "XML"))


check_input = check_input_file  # the pipeline's name for it


def source_options() -> dict[str, str]:
    """FFmpeg options every open of a source takes: vidcam's demuxers (plus
    ``$VIDCAM_DEMUXERS``) and the file protocol only."""
    extra = [d.strip() for d in os.environ.get(ENV_DEMUXERS, "").split(",") if d.strip()]
    allowed = ",".join(dict.fromkeys([*DEMUXERS, *extra]))
    return {"format_whitelist": allowed, "protocol_whitelist": "file"}


def open_source(path: Path) -> av.container.InputContainer:
    """``path`` opened for reading with :func:`source_options`; VidcamError when FFmpeg
    refuses it (not on the whitelist, not a video) or it has no video stream."""
    try:
        container = av.open(str(path), "r", container_options=source_options())
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        if getattr(exc, "errno", None) == errno.EINVAL:  # not on the whitelist
            raise VidcamError(
                f"input {str(path)!r} is {_list_kind(path)}: vidcam refuses formats that make "
                f"FFmpeg open other files (set {ENV_DEMUXERS}=NAME to allow a demuxer)"
            ) from None
        raise VidcamError(
            f"input {str(path)!r} is not a readable video file ({reason.lower()})"
        ) from None
    if not container.streams.video:
        n_audio = len(container.streams.audio)
        container.close()
        what = f"only audio ({n_audio} audio stream(s))" if n_audio else "no video stream"
        raise VidcamError(f"input {str(path)!r} has {what}; give a video file")
    return container


def _list_kind(path: Path) -> str:
    """What refused format ``path`` holds (from its first bytes)."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    kinds = [what for magic, what in _LISTS if head.startswith(magic)]
    return kinds[0] if kinds else "not in a format of vidcam's demuxer list (DEMUXERS)"
