"""The files a report page shows: whether a browser can play a video (its codec and
container, read with PyAV when the page is written), its display size, and the page's
``href`` for it — a relative link, or with ``embed`` the file itself as a ``data:`` URI.

Browsers play H.264, VP8, VP9 and AV1 in MP4/MOV or WebM/Matroska (and Theora or VP8 in
Ogg); checked in headless Chromium, which shows MPEG-4 part 2 (OpenCV's ``mp4v``), HEVC,
Motion JPEG and anything in AVI as a black box. H.264 other than 8-bit 4:2:0 plays in
Chromium but not in every browser: the page says so beside the player.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import av

from vidcam.errors import VidcamError
from vidcam.paths import read_regular
from vidcam.video.decode import DEMUXERS, ENV_DEMUXERS, probe

#: container family (a word of PyAV's format name) -> (codecs browsers play, MIME type)
PLAYABLE: dict[str, tuple[frozenset[str], str]] = {
    "mp4": (frozenset({"h264", "vp9", "av1", "libdav1d", "libaom-av1"}), "video/mp4"),
    "webm": (frozenset({"vp8", "vp9", "av1", "libdav1d", "libaom-av1", "h264"}), "video/webm"),
    "ogg": (frozenset({"theora", "vp8"}), "video/ogg"),
}
MKV = "video/x-matroska"
H264_EVERYWHERE = frozenset({"yuv420p", "yuvj420p"})  # 8-bit 4:2:0: every browser
IMAGES = {".gif": "image/gif", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".webp": "image/webp"}  # fmt: skip
#: the most one embedded file may hold: Firefox refuses data: URIs over 32 MB (base64 adds 1/3)
EMBED_FILE_LIMIT = 24 * 2**20
#: the most a page may carry in all (the browser holds it in memory as text)
EMBED_TOTAL_LIMIT = 64 * 2**20
_MB = 1e6


@dataclass(frozen=True)
class Media:
    """One file the page shows.

    Attributes:
        path: the file.
        kind: "video" or "image".
        playable: a browser's <video> (or <img>) shows it.
        codec: the codec as people name it with FFmpeg's id, e.g. "MPEG-4 part 2 (mpeg4)"
            ("" for an image or an unreadable file).
        why: one sentence when it is not playable (or plays only in some browsers).
        width, height: display size in pixels (None when unknown).
        mime: the MIME type for a data: URI.
    """

    path: Path
    kind: str
    playable: bool
    codec: str = ""
    why: str = ""
    width: int | None = None
    height: int | None = None
    mime: str = "application/octet-stream"


def _family(format_name: str) -> str | None:
    names = set(format_name.split(","))
    for family, aliases in (("mp4", {"mp4", "mov"}), ("webm", {"webm", "matroska"}),
                            ("ogg", {"ogg"})):  # fmt: skip
        if names & aliases:
            return family
    return None


def probe_media(path: str | Path) -> Media:
    """What a browser makes of ``path`` (read with PyAV; FFmpeg's list demuxers refused)."""
    p = Path(path)
    if p.suffix.lower() in IMAGES:
        return Media(p, "image", True, mime=IMAGES[p.suffix.lower()])
    extra = [d.strip() for d in os.environ.get(ENV_DEMUXERS, "").split(",") if d.strip()]
    options = {"format_whitelist": ",".join([*DEMUXERS, *extra]), "protocol_whitelist": "file"}
    try:
        size = probe(p)
        with av.open(str(p), "r", container_options=options) as c:
            ctx = c.streams.video[0].codec_context
            codec, pix, fmt = ctx.name, ctx.pix_fmt or "", c.format.name
            long = ctx.codec.long_name or codec
            container = c.format.long_name or fmt
    except (VidcamError, av.FFmpegError, IndexError, OSError) as exc:
        return Media(p, "video", False, why=f"it could not be read ({_first_line(exc)})")
    family = _family(fmt)
    named = f"{long} ({codec})"
    w, h = size.width, size.height
    if family is None or codec not in PLAYABLE[family][0]:
        where = (p.suffix[1:].upper() or fmt) if family else container
        why = f"it holds {named} video (container: {where}), which browsers do not play"
        return Media(p, "video", False, named, why, w, h)
    why, mime = "", PLAYABLE[family][1]
    if codec == "h264" and pix not in H264_EVERYWHERE:
        why = f"its H.264 has {pix} pixels: Chromium plays it, some browsers only 8-bit 4:2:0"
    elif codec == "h264" and family == "webm":
        why, mime = "it is H.264 in Matroska: Chromium plays it, some browsers do not", MKV
    return Media(p, "video", True, named, why, w, h, mime)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_embed(files: list[tuple[str, Path]]) -> None:
    """Before writing: every (what, path) to embed fits :data:`EMBED_FILE_LIMIT`, all of them
    :data:`EMBED_TOTAL_LIMIT`; else one line naming the file (or the total) and the way out."""
    way_out = "leave out --report-embed (embed=False): the page then links the files beside it"
    total = 0
    for what, path in files:
        size = os.stat(path).st_size
        total += size
        if size > EMBED_FILE_LIMIT:
            raise VidcamError(
                f"--report-embed: {what} {str(path)!r} is {size / _MB:.1f} MB, over the "
                f"{EMBED_FILE_LIMIT / _MB:.1f} MB a data: URI may hold in every browser; {way_out}"
            )
    if total > EMBED_TOTAL_LIMIT:
        raise VidcamError(
            f"--report-embed: the files to embed total {total / _MB:.1f} MB, over the "
            f"{EMBED_TOTAL_LIMIT / _MB:.1f} MB one page may carry; {way_out}"
        )


def data_uri(media: Media) -> str:
    """``media``'s bytes as a ``data:`` URI (read without following links; the size is
    bounded by :data:`EMBED_FILE_LIMIT`)."""
    body = read_regular(media.path, EMBED_FILE_LIMIT)
    return f"data:{media.mime};base64,{base64.b64encode(body).decode('ascii')}"
