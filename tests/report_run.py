"""A small real run of the sample model for the report tests: a browser-playable clip (H.264,
yuv420p) with a hostile name in an odd folder, explained with ``write_explained_video``; and
the tests' HTML helpers (:class:`Tags`, :func:`resolve`)."""

from __future__ import annotations

import html.parser
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import av
import numpy as np

from vidcam.video import write_explained_video

#: a folder and file name that together read ``<script>alert(1)</script>`` (a name cannot hold
#: "/"), plus characters that break naive links: space, #, ?, %, &
HOSTILE_DIR = "odd #1 ?%20 <script>alert(1)<"
HOSTILE_FILE = "script> & <img src=x onerror=alert(2)>.mp4"
FRAMES, FPS, SIZE = 40, 8, 112  # 40 frames at clip 16 / stride 8: windows at 0, 8, 16, 24


def write_clip(path: Path, n: int = FRAMES, size: int = SIZE, fps: int = FPS) -> Path:
    """A bright square moving right over a dark background, H.264 yuv420p (browsers play it)."""
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=fps)
    s.width = s.height = size
    s.pix_fmt = "yuv420p"
    s.options = {"crf": "18", "preset": "veryfast"}
    for i in range(n):
        img = np.full((size, size, 3), 30, np.uint8)
        x = 8 + (i * 2) % (size - 32)
        img[40:64, x : x + 24] = (230, 230, 60)
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


@dataclass(frozen=True)
class Run:
    source: Path
    video: Path
    json: Path
    preview: Path
    explanation: dict


def sample_run(base: Path, *, side_by_side: bool = True) -> Run:
    """Explain a generated clip with the sample model; outputs beside it, in the odd folder."""
    d = base / HOSTILE_DIR
    d.mkdir(parents=True)
    source = write_clip(d / HOSTILE_FILE)
    video, js, sheet = d / "annotated #1 ?.mp4", d / "run.json", d / "sheet 100%.png"
    write_explained_video(
        source,
        video,
        model="sample",
        json_path=js,
        preview=sheet,
        stride=8,
        side_by_side=side_by_side,
        target="topk:2",
        progress=False,
    )
    return Run(source, video, js, sheet, json.loads(js.read_text(encoding="utf-8")))


class Tags(html.parser.HTMLParser):
    """Every start tag as (name, attrs dict), in order; text of <script> elements."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def resolve(page: Path, href: str) -> Path:
    assert "://" not in href and not href.startswith("/"), href
    return (page.parent / unquote(href)).resolve()
